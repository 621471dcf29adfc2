"""The ``Provider`` conformance suite: one set of tests, run against every implementation of
``mission_server.telephony.base.Provider`` (as LangGraph's checkpoint-conformance serves every
checkpoint saver).

Each test takes ``kit``, a provider on a small platform of its own built by the factories in
``tests.support.provider_kits``; the test bodies only use the protocol, plus what the kit does
to the platform (end a call, restart the provider, cause an outage). A new provider passes
when it gets a kit and every test here is green for it.

Where a provider cannot do what a test needs, its parameter is skipped with the reason; where
it can but gets it wrong, the parameter is ``xfail(strict=True)`` naming the bug, so that the
fix turns the suite red until the mark is removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from mission_server.errors import ProviderError
from mission_server.telephony.base import CALL_STATUSES, AssistantSpec, Provider
from tests.support.provider_kits import ANSWERS, BUSY, FROM, INVALID, KITS, ProviderKit

E164 = re.compile(r"^\+[1-9]\d{1,14}$")

NO_RESTART = pytest.mark.skip(
    reason="ScriptedProvider keeps its placements in the instance only (no ledger, no remote "
    "platform): a fresh instance has nothing to reconcile from"
)
NO_FAILURES = pytest.mark.skip(
    reason="ScriptedProvider accepts every request: no code path raises ProviderError"
)
TELNYX_RESTART_DUPLICATES = pytest.mark.xfail(
    strict=True,
    reason="a fresh TelnyxProvider does not know the keys an earlier one placed, and the "
    "reference documents no Idempotency-Key, so its place_call sends the create again; the "
    "dispatcher keeps exactly-once across processes instead (a row that may have been sent is "
    "looked up with find_attempt first: tests/mission_server/test_faults.py)",
)


def providers(**marks: pytest.MarkDecorator) -> pytest.MarkDecorator:
    """Run the test once per provider; ``marks`` by provider name (skip, xfail)."""
    unknown = set(marks) - set(KITS)
    assert not unknown, f"no such provider kit: {unknown}"
    return pytest.mark.parametrize(
        "kit",
        [pytest.param(name, marks=marks.get(name, ()), id=name) for name in KITS],
        indirect=True,
    )


@pytest.fixture
def kit(request: pytest.FixtureRequest, tmp_path) -> Iterator[ProviderKit]:
    built = KITS[request.param](tmp_path)
    yield built
    built.close()


# -- the protocol ---------------------------------------------------------------------------------


@providers()
def test_satisfies_the_protocol_and_names_itself(kit: ProviderKit) -> None:
    assert isinstance(kit.provider, Provider)
    assert kit.provider.name == kit.name


# -- idempotent placement ---------------------------------------------------------------------


@providers()
def test_placing_the_same_key_twice_places_one_call(kit: ProviderKit) -> None:
    request = kit.request("ev-1:1")

    first = kit.provider.place_call(request)
    again = kit.provider.place_call(request)

    assert again.call_control_id == first.call_control_id
    assert again.conversation_id == first.conversation_id
    assert kit.placements_of("ev-1:1") == 1


@providers()
def test_each_key_is_a_call_of_its_own(kit: ProviderKit) -> None:
    request = kit.request("ev-1:1")

    first = kit.provider.place_call(request)
    second = kit.provider.place_call(kit.request("ev-2:1"))

    # Placed at the moment the provider dials: its schedule lead after the request, at most.
    assert request.placed_at <= first.placed_at <= request.placed_at + kit.provider.schedule_lead
    assert first.call_control_id and second.call_control_id
    assert second.call_control_id != first.call_control_id
    assert kit.placements_of("ev-1:1") == kit.placements_of("ev-2:1") == 1


@providers(scripted=NO_RESTART, telnyx=TELNYX_RESTART_DUPLICATES)
def test_placing_a_key_again_after_a_restart_places_no_second_call(kit: ProviderKit) -> None:
    request = kit.request("ev-1:1")
    first = kit.provider.place_call(request)

    again = kit.restart().place_call(request)

    assert again.call_control_id == first.call_control_id
    assert kit.placements_of("ev-1:1") == 1


# -- reconciliation -----------------------------------------------------------------------------


@providers()
def test_find_attempt_finds_a_placement_by_its_key(kit: ProviderKit) -> None:
    assert kit.provider.find_attempt("ev-1:1") is None  # not placed yet

    placement = kit.provider.place_call(kit.request("ev-1:1"))

    found = kit.provider.find_attempt("ev-1:1")
    assert found is not None
    assert found.call_control_id == placement.call_control_id
    assert kit.provider.find_attempt("ev-1:2") is None  # the next attempt was never placed
    assert kit.provider.find_attempt("ev-unknown:1") is None


@providers(scripted=NO_RESTART)
def test_find_attempt_after_a_crash_finds_the_placement_and_follows_it(kit: ProviderKit) -> None:
    placement = kit.provider.place_call(kit.request("ev-1:1"))

    fresh = kit.restart()

    found = fresh.find_attempt("ev-1:1")
    assert found is not None
    assert found.call_control_id == placement.call_control_id
    assert fresh.find_attempt("ev-unknown:1") is None
    # The new instance can follow the call it found to its end, as the dispatcher does.
    outcome = fresh.get_outcome(found, kit.moment_after(found))
    assert outcome is not None and outcome.call_status == "completed"
    assert kit.placements_of("ev-1:1") == 1


# -- outcomes -----------------------------------------------------------------------------------


@providers()
@pytest.mark.parametrize(("to", "status"), [(ANSWERS, "completed"), (BUSY, "busy")])
def test_the_outcome_is_none_while_the_call_goes_on_then_final(
    kit: ProviderKit, to: str, status: str
) -> None:
    request = kit.request("ev-1:1", to=to)
    placement = kit.provider.place_call(request)

    assert kit.provider.get_outcome(placement, request.placed_at) is None
    assert kit.provider.get_outcome(placement, kit.moment_during(placement)) is None

    after = kit.moment_after(placement)
    outcome = kit.provider.get_outcome(placement, after)

    assert outcome is not None
    assert outcome.call_status == status and outcome.call_status in CALL_STATUSES
    assert placement.placed_at < outcome.ended_at <= after  # a call takes time
    if status == "completed":
        assert outcome.call_duration is not None and outcome.call_duration > 0
    else:
        assert outcome.call_duration is None  # nobody answered
        assert outcome.conversation_id is None and placement.conversation_id is None
    # Final: asked again, the same answer; and what the placement already knew, if anything.
    assert kit.provider.get_outcome(placement, after) == outcome
    if placement.outcome is not None:
        assert outcome == placement.outcome


@providers()
def test_a_completed_call_has_its_transcript_in_order(kit: ProviderKit) -> None:
    placement = kit.provider.place_call(kit.request("ev-1:1"))
    outcome = kit.provider.get_outcome(placement, kit.moment_after(placement))
    assert outcome is not None and outcome.call_status == "completed"
    conversation_id = outcome.conversation_id or placement.conversation_id
    assert conversation_id is not None

    messages = kit.provider.get_messages(conversation_id)

    assert messages
    assert all(m.role in ("assistant", "user", "system") and m.text for m in messages)
    times = [m.sent_at for m in messages]
    assert times == sorted(times)


# -- failures -----------------------------------------------------------------------------------


@providers(scripted=NO_FAILURES)
def test_an_outage_is_a_retryable_error_and_the_retry_places_one_call(kit: ProviderKit) -> None:
    request = kit.request("ev-1:1")

    with kit.outage(), pytest.raises(ProviderError) as info:
        kit.provider.place_call(request)

    assert info.value.retryable is True
    placement = kit.provider.place_call(request)  # the dispatcher's later retry, same key
    found = kit.provider.find_attempt("ev-1:1")
    assert found is not None and found.call_control_id == placement.call_control_id
    assert kit.placements_of("ev-1:1") == 1


@providers(scripted=NO_FAILURES)
def test_a_refused_request_is_a_permanent_error_and_places_nothing(kit: ProviderKit) -> None:
    with pytest.raises(ProviderError) as info:
        kit.provider.place_call(kit.request("ev-1:1", to=INVALID))

    assert info.value.retryable is False
    assert kit.provider.find_attempt("ev-1:1") is None
    assert kit.placements_of("ev-1:1") == 0


# -- assistants and numbers ---------------------------------------------------------------------


@providers()
def test_create_assistant_returns_a_new_reference_each_time(kit: ProviderKit) -> None:
    spec = AssistantSpec(name="Second", instructions="Ask for availability.")

    ref = kit.provider.create_assistant(spec)

    assert isinstance(ref, str) and ref
    assert ref != kit.assistant_ref
    assert kit.provider.create_assistant(spec) not in (ref, kit.assistant_ref)
    kit.provider.update_assistant(ref, AssistantSpec(name="Second v2", instructions="Ask."))


@providers()
def test_list_phone_numbers_lists_the_account(kit: ProviderKit) -> None:
    numbers = kit.provider.list_phone_numbers()

    assert FROM in [n.phone_number for n in numbers]
    assert all(E164.match(n.phone_number) for n in numbers)
    ids = [n.number_id for n in numbers]
    assert all(ids) and len(set(ids)) == len(ids)
    assert all(n.assistant_ref is None for n in numbers)  # nothing is assigned yet


@providers()
def test_an_assigned_number_reports_its_assistant(kit: ProviderKit) -> None:
    first, *others = kit.provider.list_phone_numbers()

    kit.provider.assign_phone_number(first, kit.assistant_ref)

    listed = {n.phone_number: n.assistant_ref for n in kit.provider.list_phone_numbers()}
    assert listed[first.phone_number] == kit.assistant_ref
    assert all(listed[n.phone_number] is None for n in others)


@providers()
def test_a_released_number_is_free_again_and_can_be_given_to_another_assistant(
    kit: ProviderKit,
) -> None:
    first, *_ = kit.provider.list_phone_numbers()
    kit.provider.assign_phone_number(first, kit.assistant_ref)

    kit.provider.release_phone_number(first, kit.assistant_ref)

    listed = {n.phone_number: n.assistant_ref for n in kit.provider.list_phone_numbers()}
    assert listed[first.phone_number] is None
    other = kit.provider.create_assistant(AssistantSpec(name="Next", instructions="Ask."))
    kit.provider.assign_phone_number(first, other)
    listed = {n.phone_number: n.assistant_ref for n in kit.provider.list_phone_numbers()}
    assert listed[first.phone_number] == other
