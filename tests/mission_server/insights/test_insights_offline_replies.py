"""The offline reader on replies that answer nothing (a closing, a hedge, "I don't have that
information"), one-item lists, a day with its time, and one money question per field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.offline import OfflineExtractor
from mission_server.telephony.base import TranscriptMessage

Say = Callable[..., list[TranscriptMessage]]


def _read(say: Say, parameters: list[InsightParameter], *turns: tuple[str, str]) -> Any:
    definition = InsightDefinition(
        insight_id="ins-1", name="Facts", instructions="", parameters=tuple(parameters)
    )
    return OfflineExtractor().extract(definition, say(*turns))


def _p(name: str, type_: str, description: str, enum: tuple[str, ...] = ()) -> InsightParameter:
    return InsightParameter(name=name, type=type_, description=description, enum=enum)


SERVICES = _p("services", "array(string)", "Extra services they offer")


@pytest.mark.parametrize(
    "reply",
    [
        "I'd have to check on that, sorry.",
        "I couldn't tell you that, I'm afraid.",
        "I'm not sure, I'd have to check.",
        "I don't know offhand; I'd have to ask and get back to you.",
        "I'm sorry, I don't have that information.",
    ],
)
def test_a_reply_that_does_not_know_is_no_list_and_names_no_value(say: Say, reply: str) -> None:
    method = _p("payment_method", "enum", "How they would pay", ("cash", "check", "transfer"))
    result = _read(
        say,
        [SERVICES, method],
        ("assistant", "Could you tell me extra services you offer?"),
        ("user", reply),
        ("assistant", "Can I ask how you would pay?"),
        ("user", reply),
        ("assistant", "Thank you for your time. Goodbye!"),
        ("user", "Thanks, bye!"),
    )
    assert result.result == {}
    assert set(result.reasons) == {"services", "payment_method"}


@pytest.mark.parametrize(
    ("reply", "read"),
    [
        ("I'm sorry, I don't have that information.", None),
        ("I couldn't tell you that, I'm afraid.", None),
        ("We don't know.", None),
        ("We don't have any openings that week.", "We don't have any openings that week"),
        ("Thursday at 6pm or Friday at noon.", "Thursday at 6pm or Friday at noon"),
    ],
)
def test_a_field_wanting_the_reply_does_not_take_a_reply_that_cannot_tell(
    say: Say, reply: str, read: str | None
) -> None:
    """The venue example's ``offered_times`` ("Their answer about the times they could
    offer"): "I don't have that information" is no answer about times, so it is missing with
    the reason; a reply that says something, a no included, is read as said."""
    times = _p("offered_times", "string", "Their answer about the times they could offer")
    result = _read(
        say,
        [times],
        ("assistant", "What times could you offer for the reception?"),
        ("user", reply),
        ("assistant", "Thank you for your time. Goodbye!"),
        ("user", "Thanks, bye!"),
    )
    assert result.result.get("offered_times") == read
    assert ("offered_times" in result.reasons) == (read is None)


@pytest.mark.parametrize(
    ("reply", "items"),
    [
        ("We offer packing.", ["packing"]),
        ("We can do asphalt shingles.", ["asphalt shingles"]),
        ("Packing.", ["Packing"]),
        ("We offer packing, storage and piano moving.", ["packing", "storage", "piano moving"]),
    ],
)
def test_a_list_of_one_is_read_and_the_farewell_after_the_closing_is_not(
    say: Say, reply: str, items: list[str]
) -> None:
    turns = [
        ("assistant", "Could you tell me extra services you offer?"),
        ("user", reply),
        ("assistant", "Thank you for your time. Goodbye!"),
        ("user", "Thanks, bye!"),
    ]
    assert _read(say, [SERVICES], *turns).result == {"services": items}
    contact = _p("contact_name", "string", "Who we should ask for when we book")
    result = _read(say, [contact], ("assistant", "Thank you for your time. Goodbye!"), turns[3])
    assert "contact_name" in result.reasons


def test_a_day_keeps_its_time(say: Say) -> None:
    slot = _p("earliest_slot", "string", "Their earliest available appointment")
    result = _read(
        say,
        [slot],
        ("assistant", "Could you tell me your earliest available appointment?"),
        ("user", "It's Thursday 9am."),
    )
    assert result.result == {"earliest_slot": "Thursday 9am"}


def test_each_money_field_takes_the_reply_to_its_own_question(say: Say) -> None:
    hourly = _p("hourly_rate", "number", "Their hourly labour rate")
    callout = _p("call_out_fee", "number", "Their call-out fee, in dollars")
    result = _read(
        say,
        [hourly, callout],
        ("assistant", "Could you tell me your hourly labour rate?"),
        ("user", "That would be $95 per hour."),
        ("assistant", "Could you tell me your call-out fee, in dollars?"),
        ("user", "For that we'd charge sixty dollars."),
    )
    assert result.result == {"hourly_rate": 95, "call_out_fee": 60}


def test_the_question_gives_the_basis_of_a_bare_amount(say: Say) -> None:
    nightly = _p("rate_per_night", "number", "The nightly room rate")
    asked = ("assistant", "Could you tell me the nightly room rate?")
    result = _read(say, [nightly], asked, ("user", "It's two hundred ten dollars."))
    assert result.result == {"rate_per_night": 210}
    result = _read(say, [nightly], asked, ("user", "It's $450 for the weekend."))
    assert "rate_per_night" in result.reasons
