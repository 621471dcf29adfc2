"""The offline extractor on hand-written transcripts: every parameter type, phrasing variants,
and fields that are missing or ambiguous rather than guessed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.offline import OfflineExtractor, find_money, words_to_digits
from mission_server.insights.schema import validate_result
from mission_server.telephony.base import TranscriptMessage

Say = Callable[..., list[TranscriptMessage]]


def insight(*parameters: InsightParameter, name: str = "Quote") -> InsightDefinition:
    return InsightDefinition(insight_id="ins-1", name=name, instructions="", parameters=parameters)


def p(
    name: str,
    type_: str,
    description: str = "",
    *,
    required: bool = False,
    enum: tuple[str, ...] = (),
) -> InsightParameter:
    return InsightParameter(
        name=name, type=type_, required=required, description=description, enum=enum
    )


def extract(definition: InsightDefinition, turns: list[TranscriptMessage]) -> Any:
    result = OfflineExtractor().extract(definition, turns)
    if result.status == "completed":
        # The extractor always validates; so must what it hands back.
        assert validate_result(definition, result.result) == []
    return result


# ----------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("said", "amount"),
    [
        ("Our price is $62 per person.", 62),
        ("We'd charge 62 dollars a head.", 62),
        ("That comes to sixty-two dollars per person.", 62),
        ("For that menu it's sixty two bucks per guest.", 62),
        ("We can do $62.50 per plate.", 62.5),
        ("Per person it would be $62.", 62),
        ("It's sixty-two dollars and fifty cents a head.", 62.5),
    ],
)
def test_a_per_person_price_is_read_in_its_usual_phrasings(
    say: Say, said: str, amount: float
) -> None:
    turns = say(("assistant", "What would you charge per person for 40 guests?"), ("user", said))
    result = extract(insight(p("price_per_person", "number", required=True)), turns)
    assert result.status == "completed"
    assert result.result == {"price_per_person": amount}


@pytest.mark.parametrize(
    "said",
    [
        "All in, that's $1,250 total.",
        "The total would be one thousand two hundred and fifty dollars.",
        "$1.25k altogether.",
    ],
)
def test_a_total_is_read_apart_from_the_per_person_price(say: Say, said: str) -> None:
    turns = say(("assistant", "What would it cost?"), ("user", f"It's $25 per person. {said}"))
    result = extract(
        insight(
            p("total_price", "number", "Total cost of the event"), p("price_per_person", "number")
        ),
        turns,
    )
    assert result.result == {"total_price": 1250, "price_per_person": 25}


NEGOTIATION = [
    (
        "assistant",
        "Hi, I'm calling about catering for a dinner for 40 guests on March 14th. "
        "What would your price be?",
    ),
    ("user", "For forty people we'd be at sixty-two dollars per person, so $2,480 total."),
    ("assistant", "Another caterer quoted us $58 per person. Could you match that?"),
    ("user", "We can't go to $58, but we could do $60 a head."),
]


def test_initial_and_final_prices_come_from_the_other_party_in_order(say: Say) -> None:
    definition = insight(
        p("initial_price", "number", "The first price per person they quoted", required=True),
        p("final_price", "number", "The final price per person they offered", required=True),
    )
    result = extract(definition, say(*NEGOTIATION))
    # $58 is the competitor's figure the assistant named and the business refused: not an
    # offer of theirs, even though they repeated it.
    assert result.result == {"initial_price": 62, "final_price": 60}


def test_a_plain_yes_agrees_to_the_assistants_proposed_price(say: Say) -> None:
    turns = say(
        *NEGOTIATION,
        ("assistant", "Could you do fifty-nine dollars a head?"),
        ("user", "Yeah, we can do that."),
    )
    result = extract(insight(p("final_price", "number", "Final price per person agreed")), turns)
    assert result.result == {"final_price": 59}


def test_a_no_leaves_the_last_offer_standing(say: Say) -> None:
    turns = say(
        *NEGOTIATION,
        ("assistant", "Could you do $55 per person?"),
        ("user", "No, sorry, sixty is as low as we go."),
    )
    result = extract(insight(p("final_price", "number", "Final price per person")), turns)
    assert result.result == {"final_price": 60}


def test_the_lowest_price_and_a_money_string(say: Say) -> None:
    turns = say(
        ("assistant", "What are your packages?"),
        ("user", "Standard is $48 per person and premium is $75 per person."),
    )
    result = extract(
        insight(
            p("lowest_price", "integer", "Cheapest package price"),
            p("quote_text", "string", "The price as said"),
        ),
        turns,
    )
    # Two packages in one reply: "the price as said" could be either, so it is not guessed.
    assert result.result == {"lowest_price": 48}
    assert "ambiguous" in result.reasons["quote_text"]


def test_no_price_said_is_missing_and_fails_a_required_field(say: Say) -> None:
    turns = say(
        ("assistant", "What would you charge per person?"),
        ("user", "I'd have to check with the chef and call you back."),
    )
    result = extract(
        insight(p("final_price", "number", "Final price per person", required=True)), turns
    )
    assert result.status == "failed"
    assert result.result is None
    assert result.missing == ["final_price"]
    assert "final_price" in result.error and "no per-person amount" in result.error


def test_only_the_assistants_price_is_not_the_business_price(say: Say) -> None:
    turns = say(
        ("assistant", "Another caterer offered $58 per person. Can you beat it?"),
        ("user", "Let me check with my manager."),
    )
    result = extract(insight(p("final_price", "number", "Final price per person")), turns)
    assert result.status == "completed"
    assert result.result == {}
    assert result.missing == ["final_price"]


def test_add_on_charges_are_not_the_price_but_answer_their_own_fields(say: Say) -> None:
    turns = say(
        *NEGOTIATION,
        ("assistant", "Is delivery included at $60?"),
        ("user", "No, delivery is $150 extra, and we need a two hundred dollar deposit."),
    )
    definition = insight(
        p("final_price", "number", "Final price per person"),
        p("delivery_fee", "number", "Delivery charge"),
        p("deposit", "number", "Deposit amount"),
    )
    assert extract(definition, turns).result == {
        "final_price": 60,
        "delivery_fee": 150,
        "deposit": 200,
    }


def test_every_amount_mentioned_as_array_of_numbers(say: Say) -> None:
    result = extract(
        insight(p("mentioned_prices", "array(number)", "All prices mentioned during the call")),
        say(*NEGOTIATION),
    )
    assert result.result == {"mentioned_prices": [62, 2480, 58, 60]}


# ----------------------------------------------------------------------------- other numbers


def test_counts_are_read_next_to_their_noun_or_as_the_answer(say: Say) -> None:
    turns = say(
        ("assistant", "How many guests are you expecting?"),
        ("user", "About forty-five."),
        ("assistant", "And how long would setup take?"),
        ("user", "Setup takes about 90 minutes."),
    )
    result = extract(
        insight(
            p("guest_count", "integer", "Number of guests"),
            p("setup_minutes", "number", "Minutes needed for setup"),
        ),
        turns,
    )
    assert result.result == {"guest_count": 45, "setup_minutes": 90}


def test_two_different_counts_are_ambiguous_not_guessed(say: Say) -> None:
    turns = say(
        ("assistant", "Is the hall big enough for 40 guests?"),
        ("user", "It holds 120 guests seated."),
    )
    result = extract(insight(p("guest_count", "integer", "Number of guests")), turns)
    assert result.status == "completed"
    assert result.missing == ["guest_count"]
    assert "ambiguous" in result.reasons["guest_count"]
    assert "40" in result.reasons["guest_count"] and "120" in result.reasons["guest_count"]


def test_an_integer_field_refuses_a_fraction(say: Say) -> None:
    turns = say(
        ("assistant", "How many hours is the venue booked?"), ("user", "We book it for 4.5 hours.")
    )
    result = extract(insight(p("hours", "integer", "Hours booked")), turns)
    assert result.missing == ["hours"]
    assert "not a whole number" in result.reasons["hours"]


def test_spelled_numbers_become_digits() -> None:
    assert words_to_digits("one thousand two hundred and fifty") == "1250"
    assert words_to_digits("fifty-eight fifty") == "58 50"
    assert words_to_digits("a hundred guests") == "100 guests"
    assert words_to_digits("fifteen hundred") == "1500"
    assert words_to_digits("nothing here") == "nothing here"


def test_one_amounts_basis_does_not_leak_into_the_next() -> None:
    money = find_money("We're at $62 per person, so $1,240 total.")
    assert [(m.amount, m.unit, m.total) for m in money] == [
        (62, "person", False),
        (1240, None, True),
    ]


# ----------------------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes, delivery is included.", True),
        ("Oh, absolutely.", True),
        ("We do, within the city.", True),
        ("No problem, it's included.", True),
        ("No, delivery is extra.", False),
        ("Unfortunately not.", False),
        ("We don't include it.", False),
        ("It's not included, sorry.", False),
    ],
)
def test_yes_and_no_answers_to_the_question_just_before(
    say: Say, reply: str, expected: bool
) -> None:
    turns = say(("assistant", "Great. Does that price include delivery?"), ("user", reply))
    result = extract(
        insight(
            p("delivery_included", "boolean", "Does the quote include delivery?", required=True)
        ),
        turns,
    )
    assert result.result == {"delivery_included": expected}


def test_the_answer_belongs_to_the_matching_question_not_the_latest(say: Say) -> None:
    turns = say(
        ("assistant", "Is parking available at the venue?"),
        ("user", "Yes, plenty."),
        ("assistant", "Do you require a deposit?"),
        ("user", "No."),
    )
    result = extract(
        insight(p("parking_available", "boolean"), p("deposit_required", "boolean")), turns
    )
    assert result.result == {"parking_available": True, "deposit_required": False}


def test_a_question_never_asked_is_missing_and_an_unclear_answer_too(say: Say) -> None:
    turns = say(("assistant", "Do you require a deposit?"), ("user", "Let me check on that."))
    result = extract(
        insight(p("deposit_required", "boolean"), p("parking_available", "boolean")), turns
    )
    assert result.status == "completed"
    assert result.result == {}
    assert "neither yes nor no" in result.reasons["deposit_required"]
    assert "never asked" in result.reasons["parking_available"]


def test_array_of_booleans_answers_each_listed_flag_in_order(say: Say) -> None:
    turns = say(
        ("assistant", "Would you like email notifications?"),
        ("user", "Yes please."),
        ("assistant", "And SMS alerts?"),
        ("user", "No thanks."),
    )
    description = "Preferences in order: email notifications, SMS alerts"
    result = extract(insight(p("preferences", "array(boolean)", description)), turns)
    assert result.result == {"preferences": [True, False]}


# ----------------------------------------------------------------------------- enums

STYLE = p(
    "service_style",
    "enum",
    "How the meal is served",
    required=True,
    enum=("buffet", "plated", "family_style"),
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("For a group that size we'd recommend plated.", "plated"),
        ("We'd do it family style.", "family_style"),
        ("A BUFFET works best.", "buffet"),
    ],
)
def test_the_enum_value_the_other_party_names(say: Say, reply: str, expected: str) -> None:
    turns = say(("assistant", "Would you serve buffet or plated?"), ("user", reply))
    assert extract(insight(STYLE), turns).result == {"service_style": expected}


def test_two_enum_values_named_is_ambiguous_and_fails_when_required(say: Say) -> None:
    turns = say(
        ("assistant", "How would you serve it?"),
        ("user", "We can do buffet, or plated if you prefer."),
    )
    result = extract(insight(STYLE), turns)
    assert result.status == "failed"
    assert result.missing == ["service_style"]
    assert "ambiguous" in result.error and "'buffet' and 'plated'" in result.error


def test_a_string_with_quoted_options_is_read_like_an_enum(say: Say) -> None:
    turns = say(
        ("assistant", "Is this about billing or something technical?"),
        ("user", "It's a billing thing, I was overcharged."),
    )
    description = 'Primary issue: "technical", "billing", "account"'
    result = extract(insight(p("issue_type", "string", description)), turns)
    assert result.result == {"issue_type": "billing"}


# ----------------------------------------------------------------------------- text & lists


def test_a_string_is_the_reply_to_the_matching_question(say: Say) -> None:
    turns = say(
        ("assistant", "Who should we make the booking out to?"),
        ("user", "Well, it's Dana Whitfield."),
        ("assistant", "Which payment methods do you accept?"),
        ("user", "We take Visa, Mastercard and checks."),
    )
    result = extract(
        insight(
            p("booking_name", "string", "Name the booking is under"),
            p("payment_methods", "array(string)", "Accepted payment methods"),
        ),
        turns,
    )
    assert result.result == {
        "booking_name": "Dana Whitfield",
        "payment_methods": ["Visa", "Mastercard", "checks"],
    }


def test_listed_options_named_in_the_text_become_an_array(say: Say) -> None:
    turns = say(
        ("assistant", "Any dietary needs?"),
        ("user", "Two guests are vegan and one needs gluten-free."),
    )
    description = 'Dietary needs mentioned, e.g. "vegetarian", "vegan", "gluten-free", "halal"'
    result = extract(insight(p("dietary_needs", "array", description)), turns)
    assert result.result == {"dietary_needs": ["vegan", "gluten-free"]}


def test_an_object_is_built_from_the_subfields_its_description_lists(say: Say) -> None:
    turns = say(
        ("assistant", "What's the contact name for the order?"),
        ("user", "Sam Ortiz."),
        ("assistant", "How do you prefer we contact you?"),
        ("user", "Email, please."),
    )
    description = "Customer information including contact name and preferred contact"
    result = extract(insight(p("customer_info", "object", description)), turns)
    assert result.result == {
        "customer_info": {"contact_name": "Sam Ortiz", "preferred_contact": "Email, please"}
    }


def test_free_text_insight_is_a_summary_of_what_was_said(say: Say) -> None:
    definition = InsightDefinition(insight_id="sum", name="Summary", instructions="Summarise.")
    result = extract(definition, say(*NEGOTIATION))
    assert result.status == "completed"
    assert isinstance(result.result, str)
    # The competitor's $58 is not among the business's quotes.
    assert "quoted $62 per person, then $2,480 total, then $60 per person." in result.result
    assert "We can't go to $58, but we could do $60 a head." in result.result  # last words


def test_an_empty_transcript_cannot_be_summarised(say: Say) -> None:
    definition = InsightDefinition(insight_id="sum", name="Summary", instructions="")
    result = extract(definition, say())
    assert result.status == "failed"
    assert "empty" in result.error


def test_optional_fields_missing_are_omitted_while_found_ones_stay(say: Say) -> None:
    definition = insight(
        p("final_price", "number", "Final price per person", required=True),
        p("deposit_required", "boolean"),
        p("service_style", "enum", enum=("buffet", "plated")),
    )
    result = extract(definition, say(*NEGOTIATION))
    assert result.status == "completed"
    assert result.result == {"final_price": 60}
    assert result.missing == ["deposit_required", "service_style"]
    assert set(result.reasons) == {"deposit_required", "service_style"}


# ----------------------------------------------------------------------------- issue 12


@pytest.mark.parametrize(
    "reply",
    [
        "Oh, I'm sorry, June 14th we're fully booked.",
        "We have nothing open on Saturday. Friday is free though.",
        "Unfortunately no, we're sold out that night.",
        "Not this week, no.",
        "Sure, let me look... no, we can't do the 14th.",
    ],
)
def test_a_sure_to_the_greeting_is_not_the_answer_and_no_is_read_inside_a_reply(
    say: Say, reply: str
) -> None:
    turns = say(
        ("assistant", "Hi, is this the Harbor Room? Have you got a minute?"),
        ("user", "Sure, how can I help?"),
        ("assistant", "Is the room available on Saturday the 14th?"),
        ("user", reply),
    )
    result = extract(insight(p("available", "boolean", "Whether the room is available")), turns)
    assert result.result == {"available": False}


def test_a_yes_no_field_never_asked_about_is_missing_even_after_a_sure(say: Say) -> None:
    turns = say(
        ("assistant", "Hi, I'm calling about a reception. Do you have a moment?"),
        ("user", "Sure."),
    )
    result = extract(insight(p("available", "boolean", "Whether the venue is available")), turns)
    assert result.result == {}
    assert "never asked" in result.reasons["available"]


@pytest.mark.parametrize(
    "reply",
    [
        "I'd have to check with the manager and call you back.",
        "I can't promise that, it depends on the day.",
        "Probably, but let me confirm.",
    ],
)
def test_a_hedge_is_no_answer(say: Say, reply: str) -> None:
    turns = say(("assistant", "Can you do early check-in at noon?"), ("user", reply))
    result = extract(insight(p("early_checkin", "boolean", "Whether early check-in is ok")), turns)
    assert result.result == {}
    assert "neither yes nor no" in result.reasons["early_checkin"]


def test_match_and_beat_offers_are_the_new_price(say: Say) -> None:
    turns = say(
        ("assistant", "What's your best price on the Civic?"),
        ("user", "That one's listed at $12,400."),
        ("assistant", "Another dealer has it for $11,200. Would you match it?"),
        ("user", "Alright, we can match it at $11,200."),
    )
    result = extract(insight(p("final_price", "number", "The final price agreed")), turns)
    assert result.result == {"final_price": 11200}
    turns = say(
        ("assistant", "We have a quote of $60 per person. Can you do better?"),
        ("user", "We can beat that, $58 per person."),
    )
    assert extract(insight(p("price_per_person", "number")), turns).result == {
        "price_per_person": 58
    }


def test_a_yes_to_beat_with_no_figure_leaves_the_price_missing(say: Say) -> None:
    turns = say(
        ("assistant", "What would the roof cost?"),
        ("user", "We'd be at $12,500 for the whole job."),
        ("assistant", "Another roofer bid $11,900. Could you beat that?"),
        ("user", "Yeah, we can beat that."),
    )
    result = extract(insight(p("final_price", "number", "The final total price")), turns)
    assert result.result == {}
    assert "named no figure" in result.reasons["final_price"]


@pytest.mark.parametrize(
    ("field", "description", "said", "amount"),
    [
        ("callout_fee", "The call-out fee", "It's $85 per visit.", 85),
        ("trip_charge", "The trip charge", "There's a $60 trip charge, then $125 an hour.", 60),
        ("total_price", "Total price for the move", "We usually do $1,480 per move.", 1480),
        ("total_price", "Total price", "We'd do $1,480 for the whole job.", 1480),
        ("cleanup_price", "Price for a fall cleanup", "It's a flat $300.", 300),
        ("hourly_rate", "Their hourly rate", "There's a $60 trip charge, then $125 an hour.", 125),
        ("doc_fee", "Documentation fee", "There's a $399 doc fee on top.", 399),
    ],
)
def test_fees_charges_and_flat_or_per_job_prices(
    say: Say, field: str, description: str, said: str, amount: float
) -> None:
    turns = say(("assistant", "What do you charge to come out?"), ("user", said))
    result = extract(insight(p(field, "number", description)), turns)
    assert result.result == {field: amount}


def test_a_fee_is_not_the_price_and_a_range_is_no_price(say: Say) -> None:
    turns = say(
        ("assistant", "What would the repair cost?"),
        ("user", "Usually between $400 and $800. There's a $75 trip charge."),
    )
    result = extract(insight(p("repair_price", "number", "Price of the repair")), turns)
    assert result.result == {}


def test_items_the_assistant_named_or_the_business_denied_are_not_offered(say: Say) -> None:
    turns = say(
        ("assistant", "Do you offer dessert and delivery with the package?"),
        ("user", "We do setup and cleanup. No delivery, and dessert is extra."),
    )
    description = 'Extras they offer, e.g. "dessert", "delivery", "setup", "cleanup"'
    result = extract(insight(p("extras", "array(string)", description)), turns)
    assert result.result == {"extras": ["setup", "cleanup"]}


def test_a_denied_enum_value_is_not_the_answer(say: Say) -> None:
    turns = say(
        ("assistant", "Would you serve buffet or plated for 80 guests?"),
        ("user", "We don't do plated for groups that big, it would have to be buffet."),
    )
    assert extract(insight(STYLE), turns).result == {"service_style": "buffet"}


def test_a_yes_no_enum_is_read_from_the_answer(say: Say) -> None:
    field = p(
        "availability",
        "enum",
        "Whether they have availability or are fully booked",
        enum=("we have availability", "fully booked"),
    )
    turns = say(
        ("assistant", "Do you have availability on Saturday the 9th?"),
        ("user", "We have nothing open on Saturday."),
    )
    assert extract(insight(field), turns).result == {"availability": "fully booked"}


def test_a_string_is_the_value_not_the_sentence_or_missing(say: Say) -> None:
    turns = say(
        ("assistant", "When is the earliest you could come?"),
        ("user", "Earliest would be Thursday."),
        ("assistant", "What's your warranty?"),
        ("user", "We give ten years on workmanship, and the manufacturer covers the shingles."),
    )
    result = extract(
        insight(
            p("earliest_day", "string", "The earliest day they could come"),
            p("warranty", "string", "The warranty they give"),
        ),
        turns,
    )
    assert result.result == {"earliest_day": "Thursday"}
    assert "not a short value" in result.reasons["warranty"]
