"""Never stuck: an outcome the provider cannot give is handled per row, within a bound."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.errors import ProviderError
from mission_server.services import assistants, missions, scheduling
from mission_server.telephony.base import Placement

SIP = "sip:desk@example.com"
#: T0 is Tuesday 10:00 in Chicago: every call and retry here stays inside its calling hours.
SIP_ZONE = "America/Chicago"


def _assistant(ctx):
    a = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hello!")
    assistants.assign_phone_number(ctx, a.assistant_id)
    return a


def _two_phase(provider, get_outcome):
    """The provider reports outcomes only through ``get_outcome`` (like Telnyx)."""
    place = provider.place_call

    def place_call(request):  # type: ignore[no-untyped-def]
        return dataclasses.replace(place(request), outcome=None)

    provider.place_call = place_call
    provider.get_outcome = get_outcome


def _call(ctx, retries=0):
    return scheduling.create_scheduled_event(
        ctx,
        assistant_id=_assistant(ctx).assistant_id,
        channel="phone_call",
        to=SIP,
        timezone=SIP_ZONE,
        max_retries_client_errors=retries,
        retry_interval_secs=60 if retries else None,
    )


def test_a_404_on_the_outcome_fails_the_attempt_and_the_retry_rules_apply(ctx, provider):
    def not_found(placement: Placement, now):  # type: ignore[no-untyped-def]
        raise ProviderError("no such call", status_code=404, code="call_not_found")

    _two_phase(provider, not_found)
    call = _call(ctx, retries=1)
    start = ctx.now()
    run_until_idle(Dispatcher(ctx), ctx.clock)  # raises nothing; the loop ends
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "failed"
    assert [a.call_status for a in done.call_attempts] == ["failed", "failed"]  # retried once
    codes = [e["code"] for e in done.errors]
    assert codes.count("call_not_found") == 2
    assert codes[-1] == "client_error_retry_budget_exhausted"
    assert ctx.now() - start < timedelta(minutes=5)


def test_a_transient_failure_backs_off_and_ends_at_the_deadline(ctx, provider):
    asked = []

    def unavailable(placement: Placement, now):  # type: ignore[no-untyped-def]
        asked.append(now)
        raise ProviderError("503", status_code=503, retryable=True)

    _two_phase(provider, unavailable)
    provider.max_call_secs = 600.0
    call = _call(ctx)
    start = ctx.now()
    dispatcher = Dispatcher(ctx, lease_secs=60)
    run_until_idle(dispatcher, ctx.clock)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "failed"
    assert done.errors[0]["code"] == "outcome_unavailable"
    # Bounded: it ends by placement + lease + longest call, after a growing back-off.
    assert ctx.now() - start <= timedelta(seconds=660)
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert len(asked) < 20 and gaps == sorted(gaps[:-1]) + gaps[-1:]


def test_a_call_never_reported_ends_after_lease_plus_longest_call(ctx, provider):
    _two_phase(provider, lambda placement, now: None)
    provider.max_call_secs = 600.0
    call = _call(ctx)
    start = ctx.now()
    run_until_idle(Dispatcher(ctx, lease_secs=60), ctx.clock)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "failed" and done.errors[0]["code"] == "outcome_timeout"
    assert ctx.now() - start <= timedelta(seconds=660)


def test_cancel_run_reconciles_its_calls_in_flight_without_retry(ctx, provider):
    run = missions.start_run(ctx, missions.create_mission(ctx, "m").mission_id)
    calls_in_flight = {"on": True}
    stored = provider.get_outcome

    def outcome(placement, now):  # type: ignore[no-untyped-def]
        return None if calls_in_flight["on"] else stored(placement, now)

    provider.outcomes[SIP] = ["busy"]
    _two_phase(provider, outcome)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=_assistant(ctx).assistant_id,
        channel="phone_call",
        to=SIP,
        timezone=SIP_ZONE,
        run_id=run.run_id,
        max_retries_client_errors=3,
        retry_interval_secs=60,
    )
    Dispatcher(ctx).sweep()
    assert scheduling.get_scheduled_event(ctx, call.scheduled_event_id).status == "in_progress"
    missions.cancel_run(ctx, run.run_id, "stop")
    calls_in_flight["on"] = False
    ctx.clock.advance(60)
    run_until_idle(Dispatcher(ctx), ctx.clock)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status == "cancelled"
    assert len(done.call_attempts) == 1 and done.call_attempts[0].call_status == "busy"
    assert done.errors[-1]["code"] == "run_finished"
