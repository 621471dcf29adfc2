"""The dispatcher end to end under the virtual clock: retry arithmetic, calling hours,
guardrails, lease recovery and what gets recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from mission_server.clock import VirtualClock
from mission_server.domain.calling_hours import CallingWindow, is_inside, next_allowed
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.engine.lookups import Lookups
from mission_server.errors import ValidationError
from mission_server.services import assistants, missions, plans, scheduling
from mission_server.services import do_not_call as do_not_call_service
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.base import CallRequest
from mission_server.telephony.scripted import ScriptedProvider
from state import models as m
from state.db import create_schema, make_engine
from state.errors import IllegalTransition

SIP = "sip:desk@example.com"
# A SIP URI tells no local time, so it needs an explicit zone; Chicago, like T0 (Tue 10:00
# there), so these calls and their retries fall inside the default Mon-Fri 09-17 window.
SIP_ZONE = "America/Chicago"
CHICAGO = "+13125550101"
ALWAYS = {
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "00:00",
    "end": "23:59",
}


def make_assistant(ctx, instructions="Ask for a quote.", **kw):
    a = assistants.create_assistant(ctx, "Caller", instructions, greeting="Hello!", **kw)
    assistants.assign_phone_number(ctx, a.assistant_id)
    return a


def run_all(ctx):
    return run_until_idle(Dispatcher(ctx), ctx.clock)


@pytest.mark.parametrize("retries", [0, 1, 3, 10])
def test_retry_arithmetic_one_plus_retries_attempts_at_terminal_time_plus_interval(
    ctx, provider, retries
):
    provider.outcomes[SIP] = ["busy"]
    a = make_assistant(ctx)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=SIP,
        timezone=SIP_ZONE,
        max_retries_client_errors=retries,
        retry_interval_secs=300 if retries else None,
    )
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "failed"
    assert [x.attempt_number for x in done.call_attempts] == list(range(1, retries + 2))
    for before, after in zip(done.call_attempts, done.call_attempts[1:], strict=False):
        assert after.attempted_at == before.ended_at + timedelta(seconds=300)
    assert done.errors[-1]["code"] == "client_error_retry_budget_exhausted"
    assert f"{retries + 1} attempt(s)" in done.errors[-1]["detail"]


def test_each_retryable_status_retries_and_completed_stops(ctx, provider):
    provider.outcomes[SIP] = ["busy", "no-answer", "failed", "canceled", "completed"]
    a = make_assistant(ctx)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=SIP,
        timezone=SIP_ZONE,
        max_retries_client_errors=10,
        retry_interval_secs=60,
    )
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "completed" and done.call_status == "completed"
    assert [x.call_status for x in done.call_attempts] == [
        "busy",
        "no-answer",
        "failed",
        "canceled",
        "completed",
    ]
    assert done.conversation_id and done.errors == []
    with pytest.raises(IllegalTransition, match="'completed' to 'cancelled'"):
        scheduling.cancel_scheduled_event(ctx, call.scheduled_event_id)


def test_cancel_between_retries_keeps_finished_attempts(ctx, provider, clock):
    provider.outcomes[SIP] = ["busy"]
    a = make_assistant(ctx)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=SIP,
        timezone=SIP_ZONE,
        max_retries_client_errors=5,
        retry_interval_secs=600,
    )
    dispatcher = Dispatcher(ctx)
    dispatcher.sweep(clock.now())
    clock.advance(60)
    dispatcher.sweep(clock.now())  # first attempt ends busy, re-queued
    assert scheduling.get_scheduled_event(ctx, call.scheduled_event_id).status == "pending"
    scheduling.cancel_scheduled_event(ctx, call.scheduled_event_id)
    run_until_idle(dispatcher, clock)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "cancelled"
    assert [x.call_status for x in done.call_attempts] == ["busy"]
    assert len(provider.placed) == 1


def test_transcript_records_rendered_instructions_with_run_variables(ctx, provider):
    mission = missions.create_mission(ctx, "Quotes")
    run = missions.start_run(ctx, mission.mission_id)
    a = make_assistant(
        ctx,
        "Get a quote.{{#best_quote}} Best so far: ${{best_quote}} from {{best_company}}."
        "{{/best_quote}}",
        run_id=run.run_id,
    )
    first = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        run_id=run.run_id,
    )
    run_all(ctx)
    plans.set_run_variables(ctx, run.run_id, {"best_quote": 65, "best_company": "Lakefront"})
    second = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to="+13125550102",
        run_id=run.run_id,
    )
    run_all(ctx)
    detail = missions.get_run(ctx, run.run_id)
    by_event = {c.scheduled_event_id: c for c in detail.conversations}
    assert by_event[first.scheduled_event_id].instructions == "Get a quote."
    assert by_event[second.scheduled_event_id].instructions == (
        "Get a quote. Best so far: $65 from Lakefront."
    )
    kinds = [e.type for e in plans.list_events(ctx, run.run_id)]
    assert kinds.count("tool_call") == 2 and "status_change" in kinds


def test_calls_outside_business_hours_are_deferred_without_using_an_attempt(ctx, provider, clock):
    a = make_assistant(ctx)
    # Friday 2026-03-13 22:30 UTC = 17:30 in Chicago: after hours; next opening Monday 09:00.
    clock.advance_to(datetime(2026, 3, 13, 22, 30, tzinfo=UTC))
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
    )
    assert call.scheduled_at_fixed_datetime == datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
    assert call.deferrals and "outside calling hours" in call.deferrals[0].reason
    assert call.deferrals[0].requested == datetime(2026, 3, 13, 22, 30, tzinfo=UTC)
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert [x.attempt_number for x in done.call_attempts] == [1]
    assert done.call_attempts[0].attempted_at == datetime(2026, 3, 16, 14, 0, tzinfo=UTC)


def test_retry_that_lands_after_hours_moves_to_next_opening(ctx, provider, clock):
    provider.outcomes[CHICAGO] = ["no-answer", "completed"]
    a = make_assistant(ctx)
    # 16:50 Chicago; the retry would be due at 16:50 + 30 s ringing + 1 h = 17:50.
    clock.advance_to(datetime(2026, 3, 10, 21, 50, tzinfo=UTC))
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        max_retries_client_errors=1,
        retry_interval_secs=3600,
    )
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "completed"
    assert done.call_attempts[1].attempted_at == datetime(2026, 3, 11, 14, 0, tzinfo=UTC)
    assert done.deferrals[-1].requested == datetime(2026, 3, 10, 22, 50, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        # Friday before the March 2026 DST switch: 08:30 CST -> 09:00 CST = 15:00 UTC.
        (datetime(2026, 3, 6, 14, 30, tzinfo=UTC), datetime(2026, 3, 6, 15, 0, tzinfo=UTC)),
        # Sunday of the switch -> Monday 09:00 CDT = 14:00 UTC.
        (datetime(2026, 3, 8, 16, 0, tzinfo=UTC), datetime(2026, 3, 9, 14, 0, tzinfo=UTC)),
        # Sunday 2026-11-01 (fall back) -> Monday 09:00 CST = 15:00 UTC.
        (datetime(2026, 11, 1, 13, 0, tzinfo=UTC), datetime(2026, 11, 2, 15, 0, tzinfo=UTC)),
        # Saturday 2026-10-31 09:00 CDT -> Monday 09:00 CST: the UTC opening moves an hour.
        (datetime(2026, 10, 31, 14, 0, tzinfo=UTC), datetime(2026, 11, 2, 15, 0, tzinfo=UTC)),
    ],
)
def test_deferral_across_dst_changes(ctx, requested, expected):
    ctx.clock = VirtualClock(requested - timedelta(minutes=1))
    a = make_assistant(ctx)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        scheduled_at=requested,
    )
    assert call.scheduled_at_fixed_datetime == expected


def test_multi_zone_number_uses_the_intersection_of_windows(ctx, clock):
    a = make_assistant(ctx)
    # +1 208 (Idaho) spans America/Boise and America/Los_Angeles. At 15:30 UTC it is 09:30 in
    # Boise but 08:30 in Los Angeles: wait for 09:00 Pacific = 16:00 UTC.
    clock.advance_to(datetime(2026, 3, 10, 15, 30, tzinfo=UTC))
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to="+12085551234",
    )
    assert call.timezones == ["America/Boise", "America/Los_Angeles"]
    assert call.scheduled_at_fixed_datetime == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    # An explicit timezone narrows the window, never widens it: naming Boise alone still
    # waits for Los Angeles.
    explicit = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to="+12085551234",
        timezone="America/Boise",
    )
    assert explicit.timezones == ["America/Boise", "America/Los_Angeles"]
    assert explicit.scheduled_at_fixed_datetime == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    # A zone the number does not span is added to its zones: Tokyo has no hour in common.
    with pytest.raises(ValidationError, match="no calling hours in common"):
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to="+12085551234",
            timezone="Asia/Tokyo",
        )


def test_zones_with_no_common_hours_are_refused(ctx):
    a = make_assistant(ctx)
    # Toll-free numbers span Guam to Honolulu: no hour is business hours everywhere.
    with pytest.raises(ValidationError, match="no calling hours in common"):
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to="+18005550100",
        )


ZONE_SETS = [
    ["America/Chicago"],
    ["America/New_York", "America/Chicago"],
    ["America/Boise", "America/Los_Angeles"],
    ["Europe/London"],
    ["Australia/Sydney"],
    ["Australia/Sydney", "Australia/Perth"],
    ["Asia/Kolkata"],
    ["Pacific/Chatham"],
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zones=st.sampled_from(ZONE_SETS),
    days=st.sets(st.integers(0, 6), min_size=1),
    start_hour=st.integers(0, 20),
    length=st.integers(1, 14),
    outcomes=st.lists(st.sampled_from(["busy", "no-answer", "completed"]), min_size=1, max_size=4),
    interval=st.integers(60, 86_400),
)
def test_no_placement_ever_falls_outside_the_window(
    tmp_path_factory, start, zones, days, start_hour, length, outcomes, interval
):
    end_hour = min(23, start_hour + length)
    window = {
        "days": [["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d] for d in days],
        "start": f"{start_hour:02d}:00",
        "end": f"{end_hour:02d}:00",
    }
    policy = CallingWindow.from_dict(window)
    eff_start, eff_end = policy.effective()
    if eff_start >= eff_end:
        return  # the window lies entirely outside the 08:00–21:00 hard bound
    try:
        next_allowed(start, zones, policy)
    except ValidationError:
        return  # these zones share no hours of this window: refused at creation
    engine = make_engine(str(tmp_path_factory.mktemp("db") / "p.db"))
    create_schema(engine)
    clock = VirtualClock(start)
    provider = ScriptedProvider(outcomes={CHICAGO: outcomes}, duration_secs=90)
    ctx = Context(engine=engine, clock=clock, provider=provider, settings=Settings())
    a = make_assistant(ctx)
    try:
        call = scheduling.create_scheduled_event(
            ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to=CHICAGO,
            calling_window=window,
            max_retries_client_errors=3,
            retry_interval_secs=interval,
        )
    except ValidationError:
        return
    # Re-target the event at the sampled zones to exercise multi-zone intersections.
    from sqlalchemy import update

    from state import models as m

    with engine.begin() as conn:
        conn.execute(update(m.ScheduledEvent).values(timezones=zones))
    run_until_idle(Dispatcher(ctx), clock, max_sweeps=100)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status in {"completed", "failed"}, done
    for attempt in done.call_attempts:
        assert is_inside(attempt.attempted_at, zones, policy), (attempt.attempted_at, zones)
        for zone in zones:
            local = attempt.attempted_at.astimezone(ZoneInfo(zone))
            assert 8 <= local.hour < 21
    engine.dispose()


def test_do_not_call_added_after_scheduling_stops_the_dispatch(ctx, provider):
    a = make_assistant(ctx)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
    )
    do_not_call_service.add_do_not_call(ctx, CHICAGO)
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "failed" and done.errors[0]["code"] == "do_not_call"
    assert provider.placed == [] and done.call_attempts == []


def test_run_call_budget_limits_placements(ctx, provider):
    mission = missions.create_mission(ctx, "Budgeted")
    run = missions.start_run(ctx, mission.mission_id, call_budget=2)
    provider.outcomes[SIP] = ["busy"]
    a = make_assistant(ctx, run_id=run.run_id)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=SIP,
        timezone=SIP_ZONE,
        run_id=run.run_id,
        max_retries_client_errors=5,
        retry_interval_secs=60,
    )
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert len(provider.placed) == 2
    assert done.status == "failed" and done.errors[-1]["code"] == "call_budget_exhausted"
    assert missions.get_run(ctx, run.run_id).calls_placed == 2


def test_approval_gate_holds_calls_until_approved(ctx, provider):
    mission = missions.create_mission(ctx, "Gated")
    run = missions.start_run(ctx, mission.mission_id, require_approval=True)
    a = make_assistant(ctx, run_id=run.run_id)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        run_id=run.run_id,
    )
    assert call.hold_reason == "awaiting_approval"
    run_all(ctx)
    assert provider.placed == []
    missions.approve_calls(ctx, run.run_id, approved=True, note="go ahead")
    run_all(ctx)
    assert scheduling.get_scheduled_event(ctx, call.scheduled_event_id).status == "completed"
    assert len(provider.placed) == 1


def test_rejection_and_cancel_cancel_pending_calls(ctx, provider):
    mission = missions.create_mission(ctx, "Gated")
    run = missions.start_run(ctx, mission.mission_id, require_approval=True)
    a = make_assistant(ctx, run_id=run.run_id)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        run_id=run.run_id,
    )
    rejected = missions.approve_calls(ctx, run.run_id, approved=False, note="too expensive")
    assert rejected.status == "cancelled" and rejected.error == "too expensive"
    run_all(ctx)
    assert scheduling.get_scheduled_event(ctx, call.scheduled_event_id).status == "cancelled"
    assert provider.placed == []


def test_paused_run_holds_calls_and_resume_releases_them(ctx, provider):
    mission = missions.create_mission(ctx, "Pausable")
    run = missions.start_run(ctx, mission.mission_id)
    a = make_assistant(ctx, run_id=run.run_id)
    missions.pause_run(ctx, run.run_id)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        run_id=run.run_id,
    )
    run_all(ctx)
    assert provider.placed == []
    missions.resume_run(ctx, run.run_id)
    run_all(ctx)
    assert scheduling.get_scheduled_event(ctx, call.scheduled_event_id).status == "completed"


def test_lease_recovery_after_a_worker_crash_places_each_call_once(ctx, provider, clock):
    a = make_assistant(ctx)
    calls = [
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to=f"+1312555010{i}",
        )
        for i in range(1, 5)
    ]
    crashed = Dispatcher(ctx, worker_id="crashed", lease_secs=60)
    claimed = crashed._claim(clock.now())
    assert len(claimed) == 4
    # The crashed worker had placed the first call but died before recording anything.
    first = claimed[0]
    provider.place_call(
        crashed._request(
            first,
            1,
            f"{first['scheduled_event_id']}:1",
            clock.now(),
            Lookups.load(ctx.engine, claimed),
        )
    )
    survivor = Dispatcher(ctx, worker_id="survivor", lease_secs=60)
    assert survivor.sweep(clock.now()).claimed == 0  # leases still held
    # The rows are past due but leased: the next moment they need attention is the lease's
    # end, so a virtual-time loop jumps there instead of sweeping in place.
    assert survivor.next_due() == clock.now() + timedelta(seconds=60)
    report = run_until_idle(survivor, clock)
    assert report.reconciled == 1
    keys = provider.placed
    assert len(keys) == len(set(keys)) == 4
    for call in calls:
        done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
        assert done.status == "completed" and len(done.call_attempts) == 1


def test_sms_is_sent_once_without_retries(ctx, provider):
    a = make_assistant(ctx)
    sms = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="sms_chat",
        to=CHICAGO,
        text="Hi {{name}}, see you at 10.",
        dynamic_variables={"name": "Dana"},
    )
    run_all(ctx)
    done = scheduling.get_scheduled_event(ctx, sms.scheduled_event_id)
    assert done.status == "completed" and len(done.call_attempts) == 1


def test_a_call_carries_the_rendered_text_and_the_templates_it_came_from(
    ctx, provider, monkeypatch
):
    template = "Call {{business_name}}.{{#best_quote}} Beat {{best_quote}}.{{/best_quote}}"
    a = make_assistant(ctx, instructions=template)
    sent: list[CallRequest] = []
    place = provider.place_call

    def recording_place_call(request: CallRequest):  # type: ignore[no-untyped-def]
        sent.append(request)
        return place(request)

    monkeypatch.setattr(provider, "place_call", recording_place_call)
    scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to=CHICAGO,
        dynamic_variables={"business_name": "Lakefront", "best_quote": "$62"},
    )
    run_all(ctx)
    (request,) = sent
    # Rendered for providers that take text (the simulator); the templates for one that
    # renders itself (Telnyx).
    assert request.instructions == "Call Lakefront. Beat $62."
    assert request.instructions_template == template
    assert request.greeting == request.greeting_template == "Hello!"


@pytest.mark.parametrize(
    ("change", "expected_status", "expected_hold"),
    [("cancel", "cancelled", None), ("pause", "pending", "paused")],
)
def test_a_run_changed_while_its_batch_is_being_placed_stops_the_rest_of_the_batch(
    ctx, provider, monkeypatch, change, expected_status, expected_hold
):
    mission = missions.create_mission(ctx, "Quotes")
    run = missions.start_run(ctx, mission.mission_id)
    a = make_assistant(ctx, run_id=run.run_id)
    first, second = (
        scheduling.create_scheduled_event(
            ctx, assistant_id=a.assistant_id, channel="phone_call", to=to, run_id=run.run_id
        )
        for to in (CHICAGO, "+13125550102")
    )
    place = provider.place_call

    def place_then_change_the_run(request: CallRequest):  # type: ignore[no-untyped-def]
        placement = place(request)
        if request.scheduled_event_id == first.scheduled_event_id:
            # Someone cancels (or pauses) the run while the batch is still being placed.
            getattr(missions, f"{change}_run")(ctx, run.run_id)
        return placement

    monkeypatch.setattr(provider, "place_call", place_then_change_the_run)
    Dispatcher(ctx).sweep()

    assert provider.placed == [f"{first.scheduled_event_id}:1"]
    later = scheduling.get_scheduled_event(ctx, second.scheduled_event_id)
    assert later.status == expected_status and later.hold_reason == expected_hold
    assert later.call_attempts == []


def test_a_run_resumed_while_its_batch_is_processed_is_not_left_holding_its_calls(
    ctx, provider, clock, monkeypatch
):
    a = make_assistant(ctx)
    mission = missions.create_mission(ctx, "Quotes")
    other, paused = (missions.start_run(ctx, mission.mission_id) for _ in range(2))
    first = scheduling.create_scheduled_event(
        ctx, assistant_id=a.assistant_id, channel="phone_call", to=CHICAGO, run_id=other.run_id
    )
    clock.advance(1)
    held = scheduling.create_scheduled_event(
        ctx,
        assistant_id=a.assistant_id,
        channel="phone_call",
        to="+13125550102",
        run_id=paused.run_id,
    )
    missions.pause_run(ctx, paused.run_id)
    # As if the pause landed just after the claim: the batch claims both rows and reads the
    # run as paused.
    with Session(ctx.engine) as session:
        row = session.get(m.ScheduledEvent, held.scheduled_event_id)
        assert row is not None and row.hold_reason == "paused"
        row.hold_reason = None
        session.add(row)
        session.commit()
    place = provider.place_call

    def place_then_resume(request: CallRequest):  # type: ignore[no-untyped-def]
        if request.scheduled_event_id == first.scheduled_event_id:
            missions.resume_run(ctx, paused.run_id)  # while the batch still thinks it paused
        return place(request)

    monkeypatch.setattr(provider, "place_call", place_then_resume)
    report = Dispatcher(ctx).sweep()
    assert report.held == 1
    assert scheduling.get_scheduled_event(ctx, held.scheduled_event_id).hold_reason is None
    run_all(ctx)
    assert scheduling.get_scheduled_event(ctx, held.scheduled_event_id).status == "completed"


_MOMENT = st.integers(min_value=0, max_value=600)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["pending", "in_progress", "completed"]),
            _MOMENT,  # due, seconds after T0
            st.one_of(st.none(), _MOMENT),  # lease end
            st.booleans(),  # held
        ),
        min_size=1,
        max_size=40,
    )
)
@example(  # more leases held past their due time than the walk looks at
    rows=[("in_progress", n, 500, False) for n in range(20)] + [("in_progress", 100, None, False)]
)
def test_next_due_is_the_earliest_attention_of_any_unheld_unfinished_row(ctx, rows):
    """next_due walks only the first rows in due order; it must agree with reading them all,
    leases held past their due time (more than the walk looks at) included."""
    from sqlalchemy import delete, update

    from mission_server.engine.queue import next_due

    events = m.ScheduledEvent.__table__
    with ctx.engine.begin() as conn:
        conn.execute(delete(events))
    with Session(ctx.engine) as session:
        known = session.exec(select(m.Assistant.assistant_id)).first()
    assistant_id = known or make_assistant(ctx).assistant_id  # one for every example
    made = scheduling.create_scheduled_events(
        ctx,
        [
            {"assistant_id": assistant_id, "channel": "phone_call", "to": f"+1312555{n:04d}"}
            for n in range(len(rows))
        ],
    )
    assert not [e for e in made if isinstance(e, Exception)]
    base = ctx.clock.now()
    expected = []
    with ctx.engine.begin() as conn:
        for event, (status, due, lease, held) in zip(made, rows, strict=True):
            due_at = base + timedelta(seconds=due)
            lease_at = None if lease is None else base + timedelta(seconds=lease)
            conn.execute(
                update(events)
                .where(events.c.scheduled_event_id == event.scheduled_event_id)
                .values(
                    status=status,
                    due_at=due_at,
                    lease_expires_at=lease_at,
                    lease_owner=None if lease is None else "w",
                    hold_reason="paused" if held else None,
                )
            )
            if status != "completed" and not held:
                expected.append(lease_at if lease_at and lease_at > due_at else due_at)
    assert next_due(ctx.engine) == (min(expected) if expected else None)
