"""Scheduled events: every validation rule of the reference, idempotent creation,
cancellation, and that a refused request writes nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, func, select

from mission_server.errors import ConflictError, GuardrailError, ValidationError
from mission_server.services import assistants, missions, plans, scheduling
from mission_server.services import do_not_call as do_not_call_service
from mission_server.services.context import CallFinished
from mission_server.services.schemas import ScheduledEventOut
from state import models as m
from state.errors import NotFound

CHICAGO = "+13125550101"


@pytest.fixture
def assistant(ctx):
    a = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hello!")
    assistants.assign_phone_number(ctx, a.assistant_id)
    return a


def schedule(ctx, assistant, **overrides):
    args = {"assistant_id": assistant.assistant_id, "channel": "phone_call", "to": CHICAGO}
    args.update(overrides)
    return scheduling.create_scheduled_event(ctx, **args)


def event_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(m.ScheduledEvent)).one()


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        (
            {"max_retries_client_errors": -1, "retry_interval_secs": 60},
            "max_retries_client_errors",
            "between 0 and 10, got -1",
        ),
        (
            {"max_retries_client_errors": 11, "retry_interval_secs": 60},
            "max_retries_client_errors",
            "between 0 and 10, got 11",
        ),
        (
            {"max_retries_client_errors": 3, "retry_interval_secs": 59},
            "retry_interval_secs",
            "between 60 and 86400, got 59",
        ),
        (
            {"max_retries_client_errors": 3, "retry_interval_secs": 86401},
            "retry_interval_secs",
            "between 60 and 86400, got 86401",
        ),
        (
            {"max_retries_client_errors": 3},
            "retry_interval_secs",
            "is required when max_retries_client_errors > 0",
        ),
        (
            {"retry_interval_secs": 300},
            "retry_interval_secs",
            "only allowed when max_retries_client_errors > 0",
        ),
        (
            {"max_retries_client_errors": 0, "retry_interval_secs": 300},
            "retry_interval_secs",
            "only allowed when max_retries_client_errors > 0",
        ),
        (
            {"max_retries_client_errors": "3", "retry_interval_secs": 300},
            "max_retries_client_errors",
            "must be an integer",
        ),
        (
            {
                "channel": "sms_chat",
                "text": "hi",
                "max_retries_client_errors": 2,
                "retry_interval_secs": 60,
            },
            "max_retries_client_errors",
            "phone-call only",
        ),
        (
            {"channel": "sms_chat", "text": "hi", "retry_interval_secs": 60},
            "retry_interval_secs",
            "phone-call only",
        ),
        ({"channel": "sms_chat"}, "text", "must be a string"),
        ({"channel": "sms_chat", "text": "   "}, "text", "must not be empty"),
        ({"text": "hello"}, "text", "applies to sms_chat events only"),
        ({"channel": "fax"}, "telnyx_conversation_channel", "must be one of"),
        ({"to": "not a number"}, "to", "E.164"),
        ({"to": "+1555"}, "to", "valid, dialable phone number"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA timezone"),
        (
            {"calling_window": {"start": "18:00", "end": "09:00"}},
            "calling_window.end",
            "must be after start",
        ),
        ({"calling_window": {"days": ["funday"]}}, "calling_window.days", "must name days"),
        ({"dynamic_variables": ["x"]}, "dynamic_variables", "must be an object"),
    ],
)
def test_invalid_requests_name_field_rule_and_value_and_write_nothing(
    ctx, assistant, overrides, field, fragment
):
    with pytest.raises(ValidationError) as info:
        schedule(ctx, assistant, **overrides)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert str(info.value).startswith(field)
    assert event_count(ctx.engine) == 0


def test_scheduled_time_must_be_in_the_future(ctx, assistant, clock):
    for moment in (clock.now(), clock.now() - timedelta(minutes=5)):
        with pytest.raises(ValidationError, match="scheduled_at must be in the future"):
            schedule(ctx, assistant, scheduled_at=moment)
    with pytest.raises(ValidationError, match="timezone offset"):
        schedule(ctx, assistant, scheduled_at=datetime(2030, 1, 1, 12, 0))
    with pytest.raises(ValidationError, match="ISO-8601"):
        schedule(ctx, assistant, scheduled_at="next tuesday")
    assert event_count(ctx.engine) == 0


def test_valid_call_and_sms_are_stored_with_reference_fields(ctx, assistant, clock):
    later = clock.now() + timedelta(hours=1)
    call = schedule(
        ctx,
        assistant,
        scheduled_at=later.isoformat(),
        max_retries_client_errors=3,
        retry_interval_secs=300,
        conversation_metadata={"campaign": "q2"},
    )
    assert call.status == "pending"
    assert call.scheduled_at_fixed_datetime == later
    assert call.max_retries_client_errors == 3 and call.retry_interval_secs == 300
    assert call.telnyx_agent_target == "+13125550100"
    assert call.call_attempts == [] and call.errors == []
    sms = schedule(
        ctx, assistant, channel="sms_chat", text="Reminder: tomorrow at 10", to="(312) 555-0102"
    )
    assert sms.telnyx_end_user_target == "+13125550102"
    assert sms.max_retries_client_errors == 0 and sms.retry_interval_secs is None
    sip = schedule(ctx, assistant, to="sip:frontdesk@example.com", timezone="America/Chicago")
    assert sip.telnyx_end_user_target == "sip:frontdesk@example.com"
    assert sip.timezones == ["America/Chicago"]


def test_a_sip_target_without_a_timezone_is_refused(ctx, assistant):
    # Its local time cannot be known, so no calling hours could be kept.
    with pytest.raises(ValidationError, match="timezone is required") as info:
        schedule(ctx, assistant, to="sip:frontdesk@example.com")
    assert info.value.field == "timezone"
    assert event_count(ctx.engine) == 0


def test_explicit_zero_retries_without_interval_is_one_attempt(ctx, assistant):
    call = schedule(ctx, assistant, max_retries_client_errors=0)
    assert call.max_retries_client_errors == 0 and call.retry_interval_secs is None


def test_unknown_assistant_and_missing_number(ctx):
    with pytest.raises(NotFound, match="assistant 'nope' not found"):
        scheduling.create_scheduled_event(
            ctx, assistant_id="nope", channel="phone_call", to=CHICAGO
        )
    lonely = assistants.create_assistant(ctx, "No number", "x")
    with pytest.raises(ValidationError, match="assign_phone_number first"):
        scheduling.create_scheduled_event(
            ctx, assistant_id=lonely.assistant_id, channel="phone_call", to=CHICAGO
        )
    with pytest.raises(ValidationError, match="must be a number assigned to this assistant"):
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=lonely.assistant_id,
            channel="phone_call",
            to=CHICAGO,
            from_number="+13125550199",
        )


def test_do_not_call_target_is_refused_at_creation(ctx, assistant):
    do_not_call_service.add_do_not_call(ctx, "312-555-0101", reason="asked us not to call")
    with pytest.raises(GuardrailError, match="do-not-call"):
        schedule(ctx, assistant)
    assert event_count(ctx.engine) == 0


def test_idempotent_creation(ctx, assistant):
    first = schedule(ctx, assistant, idempotency_key="k-1", dynamic_variables={"a": "1"})
    again = schedule(ctx, assistant, idempotency_key="k-1", dynamic_variables={"a": "1"})
    assert again.scheduled_event_id == first.scheduled_event_id
    assert event_count(ctx.engine) == 1
    with pytest.raises(ConflictError, match="different parameters"):
        schedule(ctx, assistant, idempotency_key="k-1", dynamic_variables={"a": "2"})
    assert event_count(ctx.engine) == 1


def test_cancel_pending_is_idempotent(ctx, assistant):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    call = schedule(ctx, assistant, run_id=run.run_id)
    heard: list[CallFinished] = []
    ctx.call_listeners.append(heard.append)
    cancelled = scheduling.cancel_scheduled_event(ctx, call.scheduled_event_id)
    assert cancelled.status == "cancelled"
    assert scheduling.cancel_scheduled_event(ctx, call.scheduled_event_id).status == "cancelled"
    with pytest.raises(NotFound):
        scheduling.cancel_scheduled_event(ctx, "missing")
    # One notice (whoever waits for the call stops waiting) and one logged event.
    assert [(h.scheduled_event_id, h.status, h.run_id) for h in heard] == [
        (call.scheduled_event_id, "cancelled", run.run_id)
    ]
    logged = [e for e in plans.list_events(ctx, run.run_id) if "cancelled" in e.summary]
    assert len(logged) == 1


def test_cancelling_a_run_tells_listeners_about_each_pending_call(ctx, assistant):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    first = schedule(ctx, assistant, run_id=run.run_id)
    second = schedule(ctx, assistant, run_id=run.run_id, to="+13125550102")
    heard: list[CallFinished] = []
    ctx.call_listeners.append(heard.append)
    missions.cancel_run(ctx, run.run_id, reason="user changed their mind")
    assert sorted((h.scheduled_event_id, h.status) for h in heard) == sorted(
        [(first.scheduled_event_id, "cancelled"), (second.scheduled_event_id, "cancelled")]
    )
    statuses = {c.status for c in scheduling.list_scheduled_events(ctx, run_id=run.run_id)}
    assert statuses == {"cancelled"}


def test_finished_run_cannot_schedule(ctx, assistant):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    missions.cancel_run(ctx, run.run_id)
    with pytest.raises(GuardrailError, match="cancelled"):
        schedule(ctx, assistant, run_id=run.run_id)
    with pytest.raises(ValidationError, match="step_id must name a step"):
        other = missions.start_run(ctx, mission.mission_id)
        schedule(ctx, assistant, run_id=other.run_id, step_id="call-1")


def test_repeated_key_returns_the_first_event_after_its_time_has_passed(ctx, assistant, clock):
    later = clock.now() + timedelta(minutes=10)
    first = schedule(ctx, assistant, idempotency_key="k-time", scheduled_at=later.isoformat())
    clock.advance(3600)  # the retry arrives an hour later: its time is in the past now
    again = schedule(ctx, assistant, idempotency_key="k-time", scheduled_at=later.isoformat())
    assert again == first
    # Omitting the time (or the caller ID) asks for whatever the first request got.
    assert schedule(ctx, assistant, idempotency_key="k-time") == first
    assert event_count(ctx.engine) == 1


def test_repeated_key_returns_the_first_event_after_the_run_finished_or_a_dnc_entry(ctx, assistant):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    first = schedule(ctx, assistant, run_id=run.run_id, idempotency_key="k-run")
    missions.cancel_run(ctx, run.run_id)
    do_not_call_service.add_do_not_call(ctx, CHICAGO)
    again = schedule(ctx, assistant, run_id=run.run_id, idempotency_key="k-run")
    assert again.scheduled_event_id == first.scheduled_event_id
    assert again.status == "cancelled"  # the first event as it is now, not re-created
    assert event_count(ctx.engine) == 1
    # Without the key the same request is still refused.
    with pytest.raises(GuardrailError, match="cancelled"):
        schedule(ctx, assistant, run_id=run.run_id)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "+13125550102"}, "to"),
        ({"from_number": "+13125550199"}, "from_number"),
        ({"scheduled_at": "2026-03-10T16:00:00Z"}, "scheduled_at"),
        ({"dynamic_variables": {"a": "2"}}, "dynamic_variables"),
        ({"conversation_metadata": {"campaign": "q3"}}, "conversation_metadata"),
        ({"max_retries_client_errors": 2, "retry_interval_secs": 300}, "max_retries_client_errors"),
        ({"max_retries_client_errors": 3, "retry_interval_secs": 600}, "retry_interval_secs"),
        ({"timezone": "America/New_York"}, "timezone"),
        ({"calling_window": {"start": "10:00", "end": "16:00"}}, "calling_window"),
        ({"channel": "sms_chat", "text": "hi", "max_retries_client_errors": 0}, "text"),
    ],
)
def test_repeated_key_with_a_different_request_is_a_conflict_naming_the_field(
    ctx, assistant, change, field
):
    assistants.assign_phone_number(ctx, assistant.assistant_id, "+13125550199")
    base = {
        "idempotency_key": "k-diff",
        "from_number": "+13125550100",
        "scheduled_at": "2026-03-10T15:30:00Z",
        "dynamic_variables": {"a": "1"},
        "conversation_metadata": {"campaign": "q2"},
        "max_retries_client_errors": 3,
        "retry_interval_secs": 300,
    }
    first = schedule(ctx, assistant, **base)
    # The same request, spelt differently, is the same request.
    same = schedule(
        ctx, assistant, **{**base, "to": "(312) 555-0101", "timezone": "America/Chicago"}
    )
    assert same.scheduled_event_id == first.scheduled_event_id
    request = {**base, **change}
    if request.get("max_retries_client_errors") == 0:
        request.pop("retry_interval_secs")
    with pytest.raises(ConflictError, match="different parameters") as info:
        schedule(ctx, assistant, **request)
    assert f"{field} was " in str(info.value)
    assert first.scheduled_event_id in str(info.value)
    assert event_count(ctx.engine) == 1


def test_repeated_key_for_another_run_or_step_is_a_conflict(ctx, assistant):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    other = missions.start_run(ctx, mission.mission_id)
    schedule(ctx, assistant, run_id=run.run_id, idempotency_key="k-owner")
    with pytest.raises(ConflictError, match="run_id was "):
        schedule(ctx, assistant, run_id=other.run_id, idempotency_key="k-owner")
    with pytest.raises(ConflictError, match="run_id was "):
        schedule(ctx, assistant, idempotency_key="k-owner")
    assert event_count(ctx.engine) == 1


@pytest.mark.parametrize(
    "variant",
    [
        "sip:desk@example.com",
        "SIP:desk@example.com",
        "sips:desk@example.com",
        "Sips:desk@EXAMPLE.com",
        "sip:desk@Example.COM",
        "sip:desk@example.com;transport=tcp",
        "sip:desk@example.com;transport=tls;lr?subject=hello",
        "  sip:desk@example.com  ",
    ],
)
def test_every_spelling_of_a_listed_sip_uri_is_refused(ctx, assistant, variant):
    do_not_call_service.add_do_not_call(ctx, "sip:desk@example.com")
    before = event_count(ctx.engine)

    with pytest.raises(
        GuardrailError, match=re.escape("sip:desk@example.com is on the do-not-call list")
    ):
        schedule(ctx, assistant, to=variant, timezone="America/Chicago")
    assert event_count(ctx.engine) == before


def test_a_sip_entry_written_in_another_spelling_covers_the_plain_one(ctx, assistant):
    do_not_call_service.add_do_not_call(ctx, "SIPS:desk@EXAMPLE.com;transport=tls")

    assert do_not_call_service.list_do_not_call(ctx) == ["sip:desk@example.com"]
    with pytest.raises(GuardrailError):
        schedule(ctx, assistant, to="sip:desk@example.com", timezone="America/Chicago")
    # The user part is case-sensitive (RFC 3261): another user is another endpoint.
    other = schedule(ctx, assistant, to="sip:Desk@example.com", timezone="America/Chicago")
    assert other.telnyx_end_user_target == "sip:Desk@example.com"


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"scheduled_at": "9999-12-31T23:59:59Z"}, "scheduled_at", "366 days"),
        ({"scheduled_at": "9999-12-31T20:00:00-05:00"}, "scheduled_at", "range"),
        ({"scheduled_at": "2030-01-01T15:00:00Z"}, "scheduled_at", "366 days"),
        ({"text": "a\x00b", "channel": "sms_chat"}, "text", "NUL"),
        ({"conversation_metadata": {"k": "a\x00b"}}, "conversation_metadata", "NUL"),
        ({"dynamic_variables": {"k": "v" * 20_000}}, "dynamic_variables", "at most 16384 bytes"),
        ({"conversation_metadata": {"k": float("nan")}}, "conversation_metadata", "JSON values"),
    ],
)
def test_out_of_range_dates_nul_characters_and_oversized_fields_are_refused(
    ctx, assistant, overrides, field, rule
):
    before = event_count(ctx.engine)
    with pytest.raises(ValidationError) as refused:
        schedule(ctx, assistant, **overrides)
    assert refused.value.field == field and rule in str(refused.value)
    assert len(str(refused.value)) < 300
    assert event_count(ctx.engine) == before


def test_a_batch_schedules_each_call_as_alone_refusing_only_the_bad_ones(ctx, assistant):
    """``create_scheduled_events`` (a campaign's calls): each request gets what scheduling it
    alone gets — the event, or the error that refused it, in order — and only the refused ones
    are missing; a key repeated in the batch or used before it returns the first event."""
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    plans.create_plan(ctx, run.run_id, [{"step_id": "call-1", "description": "call"}])
    earlier = schedule(ctx, assistant, to="+13125550120", idempotency_key="k-before")
    do_not_call_service.add_do_not_call(ctx, "+13125550107")
    base = {"assistant_id": assistant.assistant_id, "channel": "phone_call"}
    in_run = {**base, "run_id": run.run_id, "step_id": "call-1"}
    requests = [
        {**in_run, "to": "312-555-0101", "idempotency_key": "k-1", "dynamic_variables": {"a": 1}},
        {**in_run, "to": "+13125550101", "idempotency_key": "k-1", "dynamic_variables": {"a": 1}},
        {**in_run, "to": "+13125550101", "idempotency_key": "k-1", "dynamic_variables": {"a": 2}},
        {**base, "to": "+13125550107"},
        {**in_run, "to": "+13125550102", "step_id": "call-9"},
        {**base, "to": "+13125550103", "channel": "fax"},
        {**base, "to": "+13125550120", "idempotency_key": "k-before"},
        {**in_run, "to": "+13125550104", "scheduled_at": "2026-03-11T01:00:00Z"},
    ]
    results = scheduling.create_scheduled_events(ctx, requests)

    first, again, conflict, listed, no_step, fax, before, evening = results
    assert isinstance(first, ScheduledEventOut) and first.telnyx_end_user_target == CHICAGO
    assert again == first
    assert isinstance(conflict, ConflictError) and "dynamic_variables" in str(conflict)
    assert isinstance(listed, GuardrailError) and "do-not-call" in str(listed)
    assert isinstance(no_step, ValidationError) and no_step.field == "step_id"
    assert isinstance(fax, ValidationError) and fax.field == "telnyx_conversation_channel"
    assert before == earlier
    # Moved into calling hours, as alone.
    assert isinstance(evening, ScheduledEventOut)
    assert evening.scheduled_at_fixed_datetime == datetime.fromisoformat("2026-03-11T14:00:00Z")
    assert evening.deferrals and "outside calling hours" in evening.deferrals[0].reason
    assert event_count(ctx.engine) == 3
    stored = {e.scheduled_event_id: e for e in scheduling.all_scheduled_events(ctx, run.run_id)}
    assert stored == {first.scheduled_event_id: first, evening.scheduled_event_id: evening}
    logged = [e.summary for e in plans.list_events(ctx, run.run_id) if "scheduled" in e.summary]
    assert logged == [
        f"Call to {CHICAGO} scheduled for 2026-03-10T15:00:00+00:00",
        "Call to +13125550104 scheduled for 2026-03-11T14:00:00+00:00 (moved from "
        "2026-03-11T01:00:00+00:00: outside calling hours (mon–fri 09:00–17:00 local "
        "(America/Chicago)); it would be Tue 20:00 in America/Chicago)",
    ]
