"""The APScheduler-driven trigger places calls in real and accelerated time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from mission_server.clock import AcceleratedClock, SystemClock
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import RealtimeTrigger
from mission_server.services import assistants, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider

SIP = "sip:desk@example.com"
#: Every day, inside the 08:00-21:00 hard bound.
ALL_WEEK = {
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "08:00",
    "end": "21:00",
}


def zone_near_noon(now: datetime) -> str:
    """A fixed-offset IANA zone where ``now`` is between 12:00 and 13:00, so a call due in a
    moment on the system clock is inside calling hours whenever the test runs."""
    offset = 12 - now.hour
    if offset < -12:
        offset += 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def setup(engine, clock, provider):
    ctx = Context(engine=engine, clock=clock, provider=provider, settings=Settings())
    a = assistants.create_assistant(ctx, "Caller", "Hi")
    assistants.assign_phone_number(ctx, a.assistant_id)
    return ctx, a


def test_trigger_places_a_call_when_it_falls_due_and_records_the_outcome(engine):
    provider = ScriptedProvider(duration_secs=0.2, outcomes={SIP: ["busy", "completed"]})
    ctx, a = setup(engine, SystemClock(), provider)
    trigger = RealtimeTrigger(Dispatcher(ctx), ctx.clock, poll_secs=0.5)
    trigger.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        call = scheduling.create_scheduled_event(
            ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to=SIP,
            timezone=zone_near_noon(datetime.now(UTC)),
            calling_window=ALL_WEEK,
            scheduled_at=due,
        )
        assert wait_for(
            lambda: scheduling.get_scheduled_event(ctx, call.scheduled_event_id).call_attempts
        )
        first = scheduling.get_scheduled_event(ctx, call.scheduled_event_id).call_attempts[0]
        assert first.attempted_at >= due and first.call_status == "busy"
    finally:
        trigger.stop()
    assert not trigger.running


def test_accelerated_clock_runs_five_minute_retries_in_seconds(engine):
    clock = AcceleratedClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC), speed=600)
    provider = ScriptedProvider(duration_secs=30, outcomes={SIP: ["no-answer", "completed"]})
    ctx, a = setup(engine, clock, provider)
    trigger = RealtimeTrigger(Dispatcher(ctx), clock, poll_secs=0.2)
    trigger.start()
    try:
        call = scheduling.create_scheduled_event(
            ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to=SIP,
            timezone="America/Chicago",  # the clock starts Tue 10:00 there
            max_retries_client_errors=2,
            retry_interval_secs=300,
        )
        assert wait_for(
            lambda: (
                scheduling.get_scheduled_event(ctx, call.scheduled_event_id).status == "completed"
            )
        )
    finally:
        trigger.stop()
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    gap = done.call_attempts[1].attempted_at - done.call_attempts[0].ended_at
    assert gap >= timedelta(seconds=300)
