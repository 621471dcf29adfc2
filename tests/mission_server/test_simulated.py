"""SimulatedProvider and its world file: what a user rehearsing a mission would see."""

from __future__ import annotations

import math
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mission_server.errors import ConfigurationError, ProviderError, ValidationError
from mission_server.telephony.base import (
    AskedField,
    AssistantSpec,
    CallOutcome,
    CallRequest,
    TranscriptMessage,
)
from mission_server.telephony.simulated import world as world_module
from mission_server.telephony.simulated.provider import SimulatedProvider
from mission_server.telephony.simulated.world import World, load_world

# Located through a module file: under pytest, ``mission_server`` itself may resolve to the
# tests/mission_server namespace directory.
PACKAGED = Path(world_module.__file__).parents[2] / "data" / "world.yaml"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "world.yaml"

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
FROM = "+13125550100"
LAKEFRONT, GRILL, PRAIRIE = "+13125550101", "+13125550102", "+13125550103"
NOBODY = "+13125550187"  # not in the world
GREETING = "Hi, I'm calling to inquire about catering for a corporate event. Do you have a moment?"
BASELINE = (
    "You are calling catering companies to get quotes for a 50-person corporate event on "
    "March 20. Ask for their per-person price."
)


def leverage(price: str = "$65", company: str = "Lakefront Catering") -> str:
    return (
        f"{BASELINE} The best quote so far is {price} per person from {company}. "
        "Ask if they can beat it."
    )


def request(
    to: str,
    attempt: int = 1,
    *,
    instructions: str = BASELINE,
    greeting: str | None = GREETING,
    key: str | None = None,
    channel: str = "phone_call",
    text: str | None = None,
    variables: dict[str, str] | None = None,
    name: str | None = None,
    from_number: str = FROM,
) -> CallRequest:
    event_id = key or f"ev-{to}-{zlib.crc32(instructions.encode())}"
    return CallRequest(
        idempotency_key=f"{event_id}:{attempt}",
        scheduled_event_id=event_id,
        attempt_number=attempt,
        channel=channel,  # type: ignore[arg-type]
        from_number=from_number,
        to=to,
        assistant_ref="sim-assistant-1",
        placed_at=T0 + timedelta(minutes=5 * (attempt - 1)),
        instructions=instructions,
        greeting=greeting,
        text=text,
        dynamic_variables=variables or {},
        conversation_name=name,
    )


def call(
    provider: SimulatedProvider, req: CallRequest
) -> tuple[CallOutcome, list[TranscriptMessage]]:
    placement = provider.place_call(req)
    assert placement.outcome is not None
    outcome = placement.outcome
    messages = provider.get_messages(outcome.conversation_id) if outcome.conversation_id else []
    return outcome, messages


def said(messages: list[TranscriptMessage], role: str | None = None) -> str:
    return "\n".join(m.text for m in messages if role is None or m.role == role)


def world(**overrides: Any) -> World:
    data: dict[str, Any] = {"seed": 1, "numbers": [FROM], "businesses": []}
    data.update(overrides)
    return World.from_dict(data)


def business(phone: str = "+13125550161", **fields: Any) -> dict[str, Any]:
    return {"name": "Test Kitchen", "phone": phone, **fields}


@pytest.fixture
def sim() -> SimulatedProvider:
    return SimulatedProvider.from_path(PACKAGED)


# -- the packaged world ----------------------------------------------------------------------


def test_packaged_world_is_the_example_world_and_loads() -> None:
    assert PACKAGED.read_bytes() == EXAMPLE.read_bytes()
    loaded = load_world(PACKAGED)
    assert loaded.start_time == T0
    assert {b.name for b in loaded.businesses} >= {
        "Lakefront Catering",
        "Chicago Grill Co",
        "Prairie Table Events",
    }
    assert len(loaded.numbers) == 3
    assert sum(n.hd_voice for n in loaded.numbers) == 1


# -- answer patterns -------------------------------------------------------------------------


def test_outcome_follows_the_answer_pattern_and_its_last_entry_repeats() -> None:
    sim = SimulatedProvider(world(businesses=[business(answers=["busy", "no-answer", "answer"])]))
    statuses = [call(sim, request("+13125550161", n, key="ev"))[0].call_status for n in range(1, 6)]
    assert statuses == ["busy", "no-answer", "completed", "completed", "completed"]


def test_an_always_busy_business_stays_busy() -> None:
    sim = SimulatedProvider(world(businesses=[business(answers="busy")]))
    outcome, _ = call(sim, request("+13125550161", 4))
    assert outcome.call_status == "busy"


def test_busy_then_answer_in_the_packaged_world(sim: SimulatedProvider) -> None:
    first, first_messages = call(sim, request(PRAIRIE, 1, key="prairie"))
    assert first.call_status == "busy"
    assert first.call_duration is None and first.conversation_id is None
    assert first_messages == []
    assert first.ended_at - T0 < timedelta(seconds=10)  # a busy signal takes seconds
    second, messages = call(sim, request(PRAIRIE, 2, key="prairie"))
    assert second.call_status == "completed"
    assert "Prairie Table Events" in said(messages)


def test_an_unknown_number_rings_out(sim: SimulatedProvider) -> None:
    outcome, messages = call(sim, request(NOBODY))
    assert outcome.call_status == "no-answer"
    assert outcome.conversation_id is None and messages == []
    assert outcome.cost == 0
    assert timedelta(seconds=25) <= outcome.ended_at - T0 <= timedelta(seconds=35)
    # Said, so that rehearsing one's own numbers does not just look like nobody answered.
    (reason,) = outcome.errors
    assert f"{NOBODY} is not a business in the simulated world" in reason
    assert "--world" in reason


def test_a_business_that_does_not_answer_gives_no_reason() -> None:
    sim = SimulatedProvider(world(businesses=[business(answers="no-answer")]))
    outcome, _ = call(sim, request("+13125550161"))
    assert outcome.call_status == "no-answer" and outcome.errors == ()


def test_voicemail_is_a_completed_call_with_greeting_and_message(sim: SimulatedProvider) -> None:
    outcome, messages = call(sim, request("+13125550105"))
    assert outcome.call_status == "completed" and outcome.voicemail
    assert outcome.conversation_name == "Loop Feast Caterers — voicemail"
    assert messages[0].role == "user" and "You've reached Loop Feast Caterers" in messages[0].text
    assert messages[1].role == "assistant" and messages[1].text.startswith(GREETING)
    assert "$" not in said(messages)


# -- the conversation ------------------------------------------------------------------------


def test_the_assistant_opens_with_the_rendered_greeting_and_states_the_request(
    sim: SimulatedProvider,
) -> None:
    outcome, messages = call(sim, request(LAKEFRONT, greeting="Hello from Acme, re: March 20!"))
    assert messages[0].role == "assistant" and messages[0].text == "Hello from Acme, re: March 20!"
    assert messages[1].role == "user"
    assert "a 50-person corporate event on March 20" in said(messages, "assistant")
    assert "your per-person price" in said(messages, "assistant")
    assert "$65 per person" in said(messages, "user")
    assert outcome.conversation_name == "Lakefront Catering — baseline quote"


def test_messages_are_spread_over_the_call(sim: SimulatedProvider) -> None:
    outcome, messages = call(sim, request(GRILL, instructions=leverage()))
    times = [m.sent_at for m in messages]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] > T0 and times[-1] < outcome.ended_at
    assert outcome.call_duration is not None and outcome.call_duration >= 60
    assert outcome.cost == pytest.approx(math.ceil(outcome.call_duration / 60) * 0.05)


def test_without_a_price_in_the_instructions_no_competitor_is_mentioned(
    sim: SimulatedProvider,
) -> None:
    # The best quote sits in the variables but the instructions never say it: the callee must
    # not learn it, and nobody may speak it.
    outcome, messages = call(sim, request(GRILL, variables={"best_quote": "$65"}))
    transcript = said(messages)
    assert "$65" not in transcript and "Lakefront" not in transcript
    assert "do better" not in transcript
    assert "$68 per person" in said(messages, "user")
    assert outcome.conversation_name == "Chicago Grill Co — baseline quote"


def test_the_catering_guide_negotiation_from_rendered_instructions(sim: SimulatedProvider) -> None:
    # Instructions as examples/catering.yaml renders them for the second call.
    instructions = (
        "You are calling Chicago Grill Co to get a catering quote for a 50-person corporate "
        "lunch on Friday March 20.\n"
        "Ask for their price per person, including dessert and delivery.\n"
        "We already have a quote of $65 per person from Lakefront Catering; ask whether they "
        "can beat it.\n"
        "Be polite and brief, and confirm the final price before you hang up."
    )
    _, messages = call(sim, request(GRILL, instructions=instructions))
    assistant = said(messages, "assistant")
    assert "a 50-person corporate lunch on Friday March 20" in assistant
    assert "your price per person, including dessert and delivery?" in assistant
    assert "We have a quote of $65 per person from Lakefront Catering." in assistant
    assert "We can do $62 per person." in said(messages, "user")
    assert "hang up" not in assistant  # an instruction about conduct, not a question


def test_a_business_that_beats_goes_below_the_competitor(sim: SimulatedProvider) -> None:
    outcome, messages = call(sim, request(GRILL, instructions=leverage()))
    lines = [m.text for m in messages]
    ask = "We have a quote of $65 per person from Lakefront Catering. Can you do better?"
    assert ask in lines
    reply = lines[lines.index(ask) + 1]
    assert "$62 per person" in reply
    assert "that's $62 per person" in said(messages, "assistant")
    assert outcome.conversation_name == "Chicago Grill Co — negotiation"


def test_beating_never_goes_below_the_floor(sim: SimulatedProvider) -> None:
    # Lakefront: 65, floor 60, beats by 3.
    _, near = call(sim, request(LAKEFRONT, instructions=leverage("$64", "Chicago Grill Co")))
    assert "We can do $61 per person" in said(near, "user")
    _, far = call(sim, request(LAKEFRONT, instructions=leverage("$55", "Chicago Grill Co")))
    assert "come down to $60 per person" in said(far, "user")
    assert "$57" not in said(far)


def test_a_business_already_cheaper_keeps_its_price(sim: SimulatedProvider) -> None:
    _, messages = call(sim, request(GRILL, instructions=leverage("$80", "Someone Else")))
    assert "already below that at $68 per person" in said(messages, "user")


def test_a_business_that_matches_matches_down_to_its_floor(sim: SimulatedProvider) -> None:
    _, matched = call(sim, request(PRAIRIE, 2, instructions=leverage("$65")))
    assert "match it at $65 per person" in said(matched, "user")
    _, floored = call(sim, request(PRAIRIE, 2, instructions=leverage("$62", "Chicago Grill Co")))
    reply = said(floored, "user")
    assert "$65 per person" in reply and "$62 per person" not in reply


def test_a_business_that_refuses_keeps_its_price() -> None:
    sim = SimulatedProvider(
        world(businesses=[business(quote={"price": 70, "floor": 50, "on_competitor": "refuse"})])
    )
    _, messages = call(sim, request("+13125550161", instructions=leverage("$60")))
    assert "Can you do better?" in said(messages, "assistant")
    reply = said(messages, "user")
    assert "$70 per person" in reply and "$50" not in reply and "$60" not in reply


def test_the_competitor_price_is_read_from_the_spoken_line_not_the_variables(
    sim: SimulatedProvider,
) -> None:
    req = request(LAKEFRONT, instructions=leverage("$64"), variables={"best_quote": "$50"})
    _, messages = call(sim, req)
    assert "$61 per person" in said(messages, "user")


def test_extras_are_spoken(sim: SimulatedProvider) -> None:
    _, messages = call(sim, request(GRILL))
    assert "without dessert it would be $58 per person" in said(messages, "user")


def test_conversation_name_from_the_request_wins(sim: SimulatedProvider) -> None:
    outcome, _ = call(sim, request(LAKEFRONT, name="Baseline: Lakefront"))
    assert outcome.conversation_name == "Baseline: Lakefront"


def test_availability_survey(sim: SimulatedProvider) -> None:
    ask = "Ask whether they have availability for a 60-person reception on March 20."
    outcome, open_venue = call(sim, request("+13125550111", instructions=ask))
    assert outcome.conversation_name == "The Riverside Loft — availability check"
    asked = said(open_venue, "assistant")
    assert "whether you have availability for a 60-person reception" in asked
    assert "Thursday March 19 at 6pm or Friday March 20 at noon" in said(open_venue, "user")
    _, booked = call(sim, request("+13125550112", instructions=ask))
    assert "fully booked" in said(booked, "user")


def test_appointment_reminders(sim: SimulatedProvider) -> None:
    ask = "Remind them of their appointment with Dr. Lee on Thursday at 10am."
    outcome, dana = call(sim, request("+17735550121", instructions=ask, greeting="Hi, it's Ava."))
    assert outcome.conversation_name == "Dana Whitfield — appointment reminder"
    assert "remind you of your appointment with Dr. Lee on Thursday at 10am" in said(dana)
    assert "I'll be there" in said(dana, "user")
    _, marcus = call(sim, request("+17735550122", instructions=ask, greeting="Hi, it's Ava."))
    assert "reschedule" in said(marcus, "user") and "next Tuesday morning" in said(marcus, "user")


def test_sms_is_delivered_with_the_business_reply(sim: SimulatedProvider) -> None:
    outcome, messages = call(sim, request(LAKEFRONT, channel="sms_chat", text="Menu please?"))
    assert outcome.call_status == "completed" and outcome.call_duration is None
    assert [m.role for m in messages] == ["assistant", "user"]
    assert messages[0].text == "Menu please?"
    assert outcome.conversation_name == "Lakefront Catering — SMS"
    _, unanswered = call(sim, request(NOBODY, channel="sms_chat", text="Hello?"))
    assert [m.text for m in unanswered] == ["Hello?"]


def test_numbers_in_any_format_reach_the_business() -> None:
    sim = SimulatedProvider(world(businesses=[business(phone="(312) 555-0161")]))
    assert sim.world.businesses[0].phone == "+13125550161"
    outcome, _ = call(sim, request("312-555-0161"))
    assert outcome.call_status == "completed"


# -- requests the provider refuses -----------------------------------------------------------


def test_calling_from_a_number_not_on_the_account_is_refused(sim: SimulatedProvider) -> None:
    with pytest.raises(ProviderError, match="from_number"):
        sim.place_call(request(LAKEFRONT, from_number="+13125550142"))
    assert sim.placements == []


def test_sms_without_text_is_refused(sim: SimulatedProvider) -> None:
    with pytest.raises(ProviderError, match="text is required"):
        sim.place_call(request(LAKEFRONT, channel="sms_chat", text=" "))


def test_unknown_placement_and_conversation_are_not_found(sim: SimulatedProvider) -> None:
    placement = SimulatedProvider.from_path(PACKAGED).place_call(request(LAKEFRONT))
    with pytest.raises(ProviderError) as error:
        sim.get_outcome(placement, T0 + timedelta(hours=1))
    assert error.value.status_code == 404
    with pytest.raises(ProviderError):
        sim.get_messages("no-such-conversation")
    assert sim.find_attempt("no-such-key") is None


# -- numbers and assistants ------------------------------------------------------------------


def test_number_pool_and_assignment(sim: SimulatedProvider) -> None:
    numbers = sim.list_phone_numbers()
    assert [n.phone_number for n in numbers] == [FROM, "+13125550198", "+13125550199"]
    assert [n.hd_voice for n in numbers] == [True, False, False]
    assert all(n.assistant_ref is None for n in numbers)
    ref = sim.create_assistant(AssistantSpec(name="Catering Quote Negotiator", instructions="x"))
    sim.assign_phone_number(numbers[1], ref)
    assert [n.assistant_ref for n in sim.list_phone_numbers()] == [None, ref, None]
    with pytest.raises(ProviderError):
        sim.assign_phone_number(numbers[0], "sim-assistant-404")
    stranger = type(numbers[0])(phone_number="+13125550142", number_id="x")
    with pytest.raises(ProviderError):
        sim.assign_phone_number(stranger, ref)


def test_updating_an_unknown_assistant_is_refused(sim: SimulatedProvider) -> None:
    spec = AssistantSpec(name="A", instructions="x")
    ref = sim.create_assistant(spec)
    sim.update_assistant(ref, AssistantSpec(name="B", instructions="y"))
    with pytest.raises(ProviderError):
        sim.update_assistant("sim-assistant-99", spec)


# -- determinism -----------------------------------------------------------------------------


def _mission(sim: SimulatedProvider, run: str) -> list[tuple[Any, ...]]:
    results = []
    for to, attempt, instructions in [
        (LAKEFRONT, 1, BASELINE),
        (GRILL, 1, leverage()),
        (PRAIRIE, 1, leverage("$62")),
        (PRAIRIE, 2, leverage("$62")),
        ("+13125550104", 1, BASELINE),
    ]:
        # Each run has its own scheduled-event ids, as two real runs would.
        outcome, messages = call(
            sim, request(to, attempt, instructions=instructions, key=f"{run}-{to}")
        )
        results.append(
            (
                outcome.call_status,
                outcome.ended_at,
                outcome.call_duration,
                outcome.cost,
                outcome.conversation_name,
                [(m.role, m.text, m.sent_at) for m in messages],
            )
        )
    return results


def test_the_same_seed_replays_the_same_mission() -> None:
    first = _mission(SimulatedProvider.from_path(PACKAGED), "run-a")
    second = _mission(SimulatedProvider.from_path(PACKAGED), "run-b")
    assert first == second


def test_a_different_seed_changes_the_conversation_but_not_the_facts() -> None:
    first = _mission(SimulatedProvider.from_path(PACKAGED), "run-a")
    other = _mission(SimulatedProvider.from_path(PACKAGED, seed=8), "run-a")
    assert first != other
    assert [r[0] for r in first] == [r[0] for r in other]
    assert [r[4] for r in first] == [r[4] for r in other]


# -- the ledger ------------------------------------------------------------------------------


def test_a_new_instance_finds_the_attempt_in_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "state" / "ledger.jsonl"
    first = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    req = request(GRILL, instructions=leverage(), key="ev-42")
    placement = first.place_call(req)
    assert req.idempotency_key in ledger.read_text()  # durable before place_call returned

    # The process "crashes"; a new one reconciles from the ledger instead of calling again.
    second = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    assert second.find_attempt(req.idempotency_key) == placement
    assert placement.outcome is not None
    assert second.get_outcome(placement, placement.outcome.ended_at) == placement.outcome
    assert placement.conversation_id is not None
    assert second.get_messages(placement.conversation_id) == first.get_messages(
        placement.conversation_id
    )
    assert second.place_call(req) == placement
    assert second.placements == [req.idempotency_key]


def test_the_facts_each_utterance_states_survive_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    asks = (
        AskedField("initial_price_per_person", "number", "The first price per person"),
        AskedField("final_price_per_person", "number", "The final price per person"),
    )
    req = replace(request(GRILL, instructions=leverage(), key="ev-43"), asks=asks)
    placement = first.place_call(req)
    assert placement.conversation_id is not None
    said = first.get_messages(placement.conversation_id)
    stated = [dict(m.facts) for m in said if m.facts]
    # Chicago Grill Co opens at $68 and beats the $65 it is told by 3 (its floor is 62).
    assert stated == [
        {"initial_price_per_person": 68, "final_price_per_person": 68},
        {"final_price_per_person": 62},
    ]
    second = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    assert second.get_messages(placement.conversation_id) == said


def test_reusing_a_key_for_another_target_is_a_conflict(sim: SimulatedProvider) -> None:
    sim.place_call(request(LAKEFRONT, key="ev-7"))
    with pytest.raises(ProviderError) as error:
        sim.place_call(request(GRILL, key="ev-7"))
    assert error.value.status_code == 409
    assert sim.placements == ["ev-7:1"]


def test_instances_sharing_a_ledger_see_each_others_placements(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    second = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    placed_by_second = second.place_call(request(LAKEFRONT, key="ev-1"))
    assert first.find_attempt("ev-1:1") == placed_by_second
    assert first.place_call(request(LAKEFRONT, key="ev-1")) == placed_by_second
    first.place_call(request(GRILL, key="ev-2"))
    assert second.placements == first.placements == ["ev-1:1", "ev-2:1"]


def test_assistants_and_assignments_survive_in_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    ref = first.create_assistant(AssistantSpec(name="Negotiator", instructions="x"))
    first.assign_phone_number(first.list_phone_numbers()[2], ref)
    second = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    assert second.list_phone_numbers()[2].assistant_ref == ref
    assert second.create_assistant(AssistantSpec(name="Other", instructions="y")) != ref


def test_a_torn_last_line_from_a_crash_is_skipped(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    crashed = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    crashed.place_call(request(LAKEFRONT, key="a"))
    with ledger.open("ab") as handle:
        handle.write(b'{"v": 1, "kind": "placement", "key": "b:1", "call_')
    survivor = SimulatedProvider.from_path(PACKAGED, ledger_path=ledger)
    assert survivor.find_attempt("b:1") is None
    survivor.place_call(request(GRILL, key="c"))
    assert SimulatedProvider.from_path(PACKAGED, ledger_path=ledger).placements == ["a:1", "c:1"]


# -- world validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        (
            {"businesses": [business(quote={"price": 65, "floor": 70})]},
            "businesses[0].quote.floor",
            "must be at most the price (65)",
        ),
        (
            {"businesses": [business(quote={"price": 65, "florr": 60})]},
            "businesses[0].quote.florr",
            "is not a known field",
        ),
        (
            {"businesses": [business(quote={"price": 65, "on_competitor": "undercut"})]},
            "businesses[0].quote.on_competitor",
            "must be one of",
        ),
        (
            {"businesses": [business(answers=["busy", "hang-up"])]},
            "businesses[0].answers[1]",
            "must be one of",
        ),
        ({"businesses": [business(phone="12")]}, "businesses[0].phone", "phone number"),
        (
            {"businesses": [business(timezone="Mars/Olympus")]},
            "businesses[0].timezone",
            "IANA timezone",
        ),
        ({"businesses": [{"phone": "+13125550161"}]}, "businesses[0].name", "is required"),
        (
            {"businesses": [business(), business(phone="(312) 555-0161")]},
            "businesses[1].phone",
            "must be unique",
        ),
        (
            {"businesses": [business(availability={"available": False, "slots": ["Mon"]})]},
            "businesses[0].availability.slots",
            "must be empty when available is false",
        ),
        (
            {"businesses": [business(reminder={"confirms": True, "reschedule_to": "Fri"})]},
            "businesses[0].reminder.reschedule_to",
            "must be omitted",
        ),
        ({"numbers": []}, "numbers", "at least 1"),
        (
            {"numbers": [FROM, {"number": FROM, "hd_voice": True}]},
            "numbers[1].number",
            "must be unique",
        ),
        ({"start_time": "2026-03-10T09:00:00"}, "start_time", "timezone offset"),
        ({"cost_per_minute": -1}, "cost_per_minute", "greater than or equal to 0"),
    ],
)
def test_world_errors_name_the_field(data: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as error:
        world(**data)
    assert error.value.field == field
    assert rule in error.value.rule
    assert str(error.value).startswith(f"{field} ")


def test_load_world_reports_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "world.yaml"
    broken.write_text("numbers: [\n  businesses: {\n")
    with pytest.raises(ValidationError) as error:
        load_world(broken)
    assert error.value.field == "world" and "valid YAML" in error.value.rule
    with pytest.raises(ConfigurationError):
        load_world(tmp_path / "missing.yaml")
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        "numbers: ['+13125550100']\n"
        "businesses:\n"
        "  - {name: X, phone: '+13125550161', quote: {price: 65, floor: 80}}\n"
    )
    with pytest.raises(ValidationError, match=r"^businesses\[0\]\.quote\.floor must be"):
        load_world(nested)
