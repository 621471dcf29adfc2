"""The account's limits on calls, under the virtual clock: at most MISSION_MAX_CONCURRENT_CALLS
calls in progress at once, one dial per 1/MISSION_CALLS_PER_SECOND seconds, calls waiting for a
line stay pending with no attempt charged, and a campaign spreads over the assistant's numbers.

The same limit across worker processes on PostgreSQL: ``test_dial_limits_workers.py``.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.services import assistants, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from tests.conftest import T0

ALWAYS = {
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "00:00",
    "end": "23:59",
}
FIRST, SECOND = "+13125550100", "+13125550199"


def limited(ctx: Context, **settings: object) -> Context:
    return Context(
        engine=ctx.engine,
        clock=ctx.clock,
        provider=ctx.provider,
        settings=Settings(**settings),  # type: ignore[arg-type]
    )


def schedule(ctx: Context, count: int, *, numbers: tuple[str, ...] = (FIRST,), **kw) -> list[str]:
    assistant = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hi!")
    for number in numbers:
        assistants.assign_phone_number(ctx, assistant.assistant_id, number)
    return [
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant.assistant_id,
            channel="phone_call",
            to=f"sip:desk-{i}@example.com",
            timezone="America/Chicago",
            calling_window=ALWAYS,
            **kw,
        ).scheduled_event_id
        for i in range(count)
    ]


def most_at_once(attempts: list[tuple[object, object]]) -> int:
    """The largest number of [start, end) intervals that overlap."""
    edges = sorted([(end, -1) for _, end in attempts] + [(start, 1) for start, _ in attempts])
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_no_more_calls_in_progress_than_the_limit_and_the_rest_wait_uncharged(ctx, provider):
    # Calls of 120 s; at most 2 at once: 7 calls go out in 4 waves.
    ctx = limited(ctx, MISSION_MAX_CONCURRENT_CALLS=2)
    ids = schedule(ctx, 7)
    dispatcher = Dispatcher(ctx)

    first = dispatcher.sweep()
    assert first.placed == 2
    waiting = [scheduling.get_scheduled_event(ctx, i) for i in ids]
    assert sorted(e.status for e in waiting) == ["in_progress"] * 2 + ["pending"] * 5
    assert all(e.call_attempts == [] and not e.errors for e in waiting if e.status == "pending")
    # Nothing more is placed while both lines are busy, however often it sweeps.
    assert dispatcher.sweep().placed == 0
    assert dispatcher.next_due() == T0 + timedelta(seconds=120)

    run_until_idle(dispatcher, ctx.clock)
    done = [scheduling.get_scheduled_event(ctx, i) for i in ids]
    assert [e.status for e in done] == ["completed"] * 7
    assert all([a.attempt_number for a in e.call_attempts] == [1] for e in done)
    spans = [(a.attempted_at, a.ended_at) for e in done for a in e.call_attempts]
    assert most_at_once(spans) == 2
    assert max(a.ended_at for e in done for a in e.call_attempts) == T0 + timedelta(seconds=480)


def test_without_a_limit_every_due_call_goes_out_at_once(ctx):
    ids = schedule(ctx, 7)
    assert Dispatcher(ctx).sweep().placed == 7
    assert {scheduling.get_scheduled_event(ctx, i).status for i in ids} == {"in_progress"}


def test_telnyx_defaults_to_two_lines_and_the_setting_overrides_it():
    assert Settings().concurrent_calls_limit("telnyx") == 2
    assert Settings().concurrent_calls_limit("simulated") is None
    assert Settings(MISSION_MAX_CONCURRENT_CALLS=10).concurrent_calls_limit("telnyx") == 10  # type: ignore[call-arg]


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_a_bad_limit_is_refused_naming_the_setting(monkeypatch, bad):
    from pydantic import ValidationError

    monkeypatch.setenv("MISSION_MAX_CONCURRENT_CALLS", bad)
    with pytest.raises(ValidationError, match="MISSION_MAX_CONCURRENT_CALLS"):
        Settings()


def test_calls_are_dialled_at_the_pace_one_every_interval(ctx, provider):
    provider.duration_secs = 0  # instant calls: only the pace spaces them
    ctx = limited(ctx, MISSION_CALLS_PER_SECOND=0.5)
    ids = schedule(ctx, 5)
    dispatcher = Dispatcher(ctx)
    assert dispatcher.sweep().placed == 1
    # The next dial slot is 2 s later: that is when the dispatcher looks again.
    assert dispatcher.next_due() == T0 + timedelta(seconds=2)
    assert dispatcher.sweep().placed == 0

    run_until_idle(dispatcher, ctx.clock)
    done = [scheduling.get_scheduled_event(ctx, i) for i in ids]
    assert [e.status for e in done] == ["completed"] * 5
    dialled = sorted(a.attempted_at for e in done for a in e.call_attempts)
    assert dialled == [T0 + timedelta(seconds=2 * n) for n in range(5)]


def test_pace_and_limit_together(ctx, provider):
    provider.duration_secs = 10
    ctx = limited(ctx, MISSION_CALLS_PER_SECOND=1, MISSION_MAX_CONCURRENT_CALLS=3)
    ids = schedule(ctx, 9)
    run_until_idle(Dispatcher(ctx), ctx.clock)
    done = [scheduling.get_scheduled_event(ctx, i) for i in ids]
    assert [e.status for e in done] == ["completed"] * 9
    spans = sorted((a.attempted_at, a.ended_at) for e in done for a in e.call_attempts)
    assert most_at_once(spans) == 3
    starts = [start for start, _ in spans]
    assert all(b - a >= timedelta(seconds=1) for a, b in pairwise(starts))


def test_a_campaign_spreads_over_the_assistants_numbers(ctx):
    ids = schedule(ctx, 6, numbers=(FIRST, SECOND))
    Dispatcher(ctx).sweep()
    callers = [scheduling.get_scheduled_event(ctx, i).telnyx_agent_target for i in ids]
    assert sorted(callers) == [FIRST] * 3 + [SECOND] * 3


def test_a_caller_number_asked_for_is_kept(ctx):
    ids = schedule(ctx, 4, numbers=(FIRST, SECOND), from_number=SECOND)
    Dispatcher(ctx).sweep()
    assert {scheduling.get_scheduled_event(ctx, i).telnyx_agent_target for i in ids} == {SECOND}
