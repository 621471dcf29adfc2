"""Reading a natural-language request without a model."""

from __future__ import annotations

import pytest
import yaml

from planner.errors import SpecError
from planner.request import spec_from_request_text
from planner.spec import parse_spec

CATERING = (
    "Find catering companies in Chicago for a corporate event with 50 people. Call Lakefront "
    "Catering at +1 312 555 0101, Chicago Grill Co at (312) 555-0102 and Prairie Table Events "
    "at 312-555-0103. Get a baseline quote from the first one, then use that to negotiate "
    "better rates with the others. Compare all quotes and recommend the best option."
)


def test_the_reference_request_becomes_a_leverage_negotiation():
    spec = spec_from_request_text(CATERING)
    assert [(t.name, t.phone) for t in spec.targets] == [
        ("Lakefront Catering", "+13125550101"),
        ("Chicago Grill Co", "+13125550102"),
        ("Prairie Table Events", "+13125550103"),
    ]
    assert spec.strategy == "sequential_leverage"
    assert spec.leverage is not None
    assert spec.leverage.quantity == 50
    assert "{{#best_quote}}" in spec.assistant.instructions
    assert "a corporate event" in spec.assistant.instructions


def test_a_quote_survey_without_negotiation_runs_in_parallel():
    spec = spec_from_request_text(
        "Get prices from Lakefront Catering +13125550101 and Chicago Grill Co +13125550102"
    )
    assert spec.strategy == "parallel"
    assert spec.leverage is not None  # still compared, for the recommendation


def test_availability_request():
    spec = spec_from_request_text(
        "Check availability for a reception on Friday March 20 at The Riverside Loft "
        "(312) 555-0111 and Wicker Park Hall (312) 555-0112."
    )
    assert spec.strategy == "parallel"
    assert spec.leverage is None
    assert [t.name for t in spec.targets] == ["The Riverside Loft", "Wicker Park Hall"]
    assert "Friday March 20" in spec.assistant.instructions


def test_reminder_request():
    spec = spec_from_request_text(
        "Remind Dana Whitfield at 773-555-0121 about her appointment on Monday March 16."
    )
    assert [t.name for t in spec.targets] == ["Dana Whitfield"]
    assert "Remind" in spec.assistant.instructions


def test_request_without_numbers_needs_a_spec_or_an_llm():
    with pytest.raises(SpecError) as err:
        spec_from_request_text("Find me a caterer in Chicago and negotiate the best price")
    assert err.value.field == "request"
    assert "spec file or an LLM" in str(err.value)


def test_request_with_no_recognisable_subject_needs_a_spec_or_an_llm():
    with pytest.raises(SpecError) as err:
        spec_from_request_text("Call Lakefront Catering at +13125550101 and say hello")
    assert "spec file or an LLM" in str(err.value)


def test_a_number_nobody_is_named_for_is_an_error():
    with pytest.raises(SpecError) as err:
        spec_from_request_text("get a quote from 312-555-0101")
    assert err.value.field == "request"
    assert "name each target" in str(err.value)


def refusal(request: str) -> str:
    with pytest.raises(SpecError) as err:
        spec_from_request_text(request)
    assert err.value.field == "request"
    message = str(err.value)
    assert "spec file or an LLM" in message
    return message


def shown_spec(message: str):
    """The minimal spec a refusal shows: it must itself be a valid spec."""
    return parse_spec(yaml.safe_load(message.split("a minimal spec that would work:\n", 1)[1]))


def test_a_date_stays_out_of_the_names_and_the_next_target_out_of_the_instructions():
    spec = spec_from_request_text(
        "Check availability for a reception on Friday March 20 at Wicker Park Hall at "
        "+1 312 555 0112 and The Riverside Loft at +1 312 555 0111"
    )
    assert [(t.name, t.phone) for t in spec.targets] == [
        ("Wicker Park Hall", "+13125550112"),
        ("The Riverside Loft", "+13125550111"),
    ]
    instructions = spec.assistant.instructions
    assert "for a reception on Friday March 20." in instructions
    for leaked in ("Wicker", "Riverside", "312", "555"):
        assert leaked not in instructions


def test_a_weekday_before_a_name_belongs_to_the_date():
    spec = spec_from_request_text(
        "Check availability for dinner on Saturday Cafe Rio at +1 312 555 0162 for a party of 6"
    )
    assert [t.name for t in spec.targets] == ["Cafe Rio"]
    assert "Saturday" in spec.assistant.instructions


@pytest.mark.parametrize(
    "request_text",
    [
        "Book a dentist appointment with Dr Smith at +1 312 555 0199",
        "Call Dr Smith at +1 312 555 0199 and make a dental appointment for next week",
        "Schedule a haircut with Style Studio at +1 312 555 0171 on Friday at 3pm",
        "Reserve a table for 4 at Cafe Rio +1 312 555 0162 on Saturday at 7pm",
        "Call Dr Smith's office at +1 312 555 0199 and confirm my appointment on Tuesday at 3pm",
        "Call Lakefront Catering at +1 312 555 0101 and cancel my order for Friday",
    ],
)
def test_asks_to_get_something_done_are_refused_never_run_as_another_kind(request_text):
    message = refusal(request_text)
    assert "asks for something to be done" in message
    example = shown_spec(message)
    assert example.targets[0].name in request_text  # the spec shown uses the request's targets


def test_the_dentist_booking_refusal_names_the_word_and_shows_a_booking_spec():
    message = refusal("Book a dentist appointment with Dr Smith at +1 312 555 0199")
    assert "('Book')" in message
    example = shown_spec(message)
    assert [(t.name, t.phone) for t in example.targets] == [("Dr Smith", "+13125550199")]
    assert "book" in example.assistant.instructions.lower()
    assert "Remind" not in message.split("a minimal spec")[1]


def test_movers_asked_how_much_they_charge_get_the_job_details():
    spec = spec_from_request_text(
        "Call Acme Movers at +1 312 555 0101 and Bob's Moving at +1 312 555 0102 and ask how "
        "much they charge to move a 2-bedroom apartment from Logan Square to Evanston on May 3"
    )
    assert [(t.name, t.phone) for t in spec.targets] == [
        ("Acme Movers", "+13125550101"),
        ("Bob's Moving", "+13125550102"),
    ]
    assert spec.strategy == "parallel" and spec.leverage is not None
    assert [f.name for f in spec.extract] == ["initial_price", "final_price"]
    assert (
        "Ask for their price to move a 2-bedroom apartment from Logan Square to Evanston on May 3."
        in spec.assistant.instructions
    )


def test_who_is_cheapest_is_a_quote_survey_with_the_home_size_and_date():
    spec = spec_from_request_text(
        "Call Sparkle Cleaning (312) 555-0131, Maid Right 312-555-0132 and Fresh Home "
        "+13125550133; who is cheapest for a deep clean of a 1,500 sq ft home on Saturday June 6?"
    )
    assert [t.name for t in spec.targets] == ["Sparkle Cleaning", "Maid Right", "Fresh Home"]
    assert spec.strategy == "parallel"
    assert "for a deep clean of a 1,500 sq ft home on Saturday June 6." in (
        spec.assistant.instructions
    )


def test_a_quote_with_a_baseline_is_negotiated_one_after_another():
    spec = spec_from_request_text(
        "Get quotes for a kitchen remodel from Northside Builders at 773-555-0141 and Lincoln "
        "Renovations at 773-555-0142, then negotiate using the lowest as a baseline"
    )
    assert [t.name for t in spec.targets] == ["Northside Builders", "Lincoln Renovations"]
    assert spec.strategy == "sequential_leverage"
    assert "Ask for their price for a kitchen remodel." in spec.assistant.instructions


def test_dont_negotiate_is_a_plain_quote():
    spec = spec_from_request_text(
        "Ask Pete's Plumbing at +1 312 555 0151 and Drain Pros at +1 312 555 0152 for an "
        "estimate to replace a water heater, don't negotiate"
    )
    assert spec.strategy == "parallel"
    assert [t.name for t in spec.targets] == ["Pete's Plumbing", "Drain Pros"]
    assert "Ask for their price to replace a water heater." in spec.assistant.instructions
    assert "negotiate" not in spec.assistant.instructions


def test_per_person_prices_keep_the_date_and_head_count_as_details():
    spec = spec_from_request_text(
        "Please get me prices per person from Lakefront Catering at +1 312 555 0101 and Chicago "
        "Grill Co at +1 312 555 0102 for a wedding for 120 guests on June 6"
    )
    assert [t.name for t in spec.targets] == ["Lakefront Catering", "Chicago Grill Co"]
    assert spec.extract[1].name == "final_price_per_person"
    assert spec.leverage is not None and spec.leverage.quantity == 120
    instructions = spec.assistant.instructions
    assert "price per person for a wedding." in instructions
    assert "Date and time: June 6" in instructions and "Head count: 120 guests" in instructions


def test_an_availability_question_about_a_party_reads_the_size_and_time():
    spec = spec_from_request_text(
        "Are Luigi's at +1 312 555 0161 and Cafe Rio at +1 312 555 0162 available for a party "
        "of 12 on Saturday at 7pm?"
    )
    assert [t.name for t in spec.targets] == ["Luigi's", "Cafe Rio"]
    assert [f.name for f in spec.extract] == ["available", "offered_slots"]
    assert "availability for a party of 12 on Saturday at 7pm." in spec.assistant.instructions


def test_fully_booked_is_an_availability_question_not_a_booking():
    spec = spec_from_request_text(
        "Check if Grand Hotel at +1 312 555 0181 has rooms on Friday, they may be booked"
    )
    assert [f.name for f in spec.extract] == ["available", "offered_slots"]
    assert "on Friday" in spec.assistant.instructions


def test_a_reminder_confirming_their_appointment_keeps_the_time():
    spec = spec_from_request_text(
        "Call Dana Whitfield at 773-555-0121 to confirm her appointment on Monday March 16 at "
        "10am and Ravi Patel at 773-555-0122"
    )
    assert [t.name for t in spec.targets] == ["Dana Whitfield", "Ravi Patel"]
    assert "appointment on Monday March 16 at 10am." in spec.assistant.instructions
    assert [f.name for f in spec.extract] == ["confirmed", "reschedule_to"]


def test_a_reminder_without_the_appointments_time_is_refused():
    message = refusal("Remind Dana Whitfield at 773-555-0121 about her appointment.")
    assert "gives no date or time for the appointment" in message
    assert shown_spec(message).targets[0].name == "Dana Whitfield"


def test_two_kinds_of_question_at_once_are_refused():
    message = refusal(
        "Check availability and prices at Wicker Park Hall +1 312 555 0112 for a wedding on June 20"
    )
    assert "availability and prices or quotes at once" in message


def test_refusals_say_what_is_missing_and_show_a_working_spec():
    cases = {
        "Find me a caterer in Chicago and negotiate the best price": "names no one to call",
        "Call Lakefront Catering at +1 312 555 0101 and say hello": "does not say what to ask",
        "get a quote from 312-555-0101": "nothing names 312-555-0101",
    }
    for request_text, missing in cases.items():
        message = refusal(request_text)
        assert missing in message
        assert shown_spec(message).targets
        assert len(message) < 1500


def test_the_readme_request_names_the_job_from_the_word_before_quotes():
    spec = spec_from_request_text(
        "Get catering quotes: call Lakefront Catering at +1 312 555 0101 and Chicago Grill Co "
        "at +1 312 555 0102, use the best quote as leverage"
    )
    assert [t.name for t in spec.targets] == ["Lakefront Catering", "Chicago Grill Co"]
    assert spec.strategy == "sequential_leverage"
    assert "Ask for their price for catering." in spec.assistant.instructions


def test_a_bracketed_number_and_an_iso_date():
    spec = spec_from_request_text(
        "Call Lakefront Catering (+1 312 555 0101) for a quote for a birthday party on 2026-04-12"
    )
    assert [(t.name, t.phone) for t in spec.targets] == [("Lakefront Catering", "+13125550101")]
    assert "price for a birthday party on 2026-04-12." in spec.assistant.instructions
    assert "Details" not in spec.assistant.instructions  # nothing left unsaid
