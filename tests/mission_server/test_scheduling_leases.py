"""Cancelling while a dispatcher holds the call: a single cancel is refused (the outcome
would be lost), a run's cancellation leaves the claimed call to the dispatcher, and an expired
lease (a dead worker) does not block either."""

from __future__ import annotations

import pytest

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.errors import ConflictError
from mission_server.services import assistants, missions, plans, scheduling
from mission_server.services.context import CallFinished
from state.errors import IllegalTransition

SIP = "sip:desk@example.com"
# A SIP URI needs an explicit zone; Chicago, like T0 (Tue 10:00 there): inside calling hours.
SIP_ZONE = "America/Chicago"


@pytest.fixture
def assistant(ctx):
    a = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hello!")
    assistants.assign_phone_number(ctx, a.assistant_id)
    return a


def call(ctx, assistant, to=SIP, **kw):
    kw.setdefault("timezone", SIP_ZONE)
    return scheduling.create_scheduled_event(
        ctx, assistant_id=assistant.assistant_id, channel="phone_call", to=to, **kw
    )


def test_cancel_is_refused_while_a_dispatcher_holds_the_call_and_its_outcome_is_kept(
    ctx, provider, clock, assistant
):
    event = call(ctx, assistant)
    holder = Dispatcher(ctx, worker_id="holder", lease_secs=60)
    claimed = holder._claim(clock.now())
    assert [r["scheduled_event_id"] for r in claimed] == [event.scheduled_event_id]

    with pytest.raises(ConflictError, match="being dispatched right now") as info:
        scheduling.cancel_scheduled_event(ctx, event.scheduled_event_id)
    assert event.scheduled_event_id in str(info.value) and "try again" in str(info.value)
    held = scheduling.get_scheduled_event(ctx, event.scheduled_event_id)
    assert held.status == "pending"  # nothing was written, the lease is intact

    other = Dispatcher(ctx, worker_id="other", lease_secs=60)
    assert other.sweep(clock.now()).claimed == 0  # the lease still keeps everyone else out
    holder._process(claimed, clock.now())  # the holder places the call and records it
    placed = scheduling.get_scheduled_event(ctx, event.scheduled_event_id)
    assert placed.status == "in_progress" and provider.placed == [f"{event.scheduled_event_id}:1"]
    run_until_idle(other, clock)
    done = scheduling.get_scheduled_event(ctx, event.scheduled_event_id)
    assert done.status == "completed" and len(done.call_attempts) == 1
    assert len(provider.placed) == 1
    with pytest.raises(IllegalTransition, match="'completed' to 'cancelled'"):
        scheduling.cancel_scheduled_event(ctx, event.scheduled_event_id)


def test_cancel_after_the_holder_let_go_cancels_before_the_next_attempt(
    ctx, provider, clock, assistant
):
    provider.outcomes[SIP] = ["busy"]
    event = call(ctx, assistant, max_retries_client_errors=3, retry_interval_secs=600)
    holder = Dispatcher(ctx, worker_id="holder", lease_secs=60)
    holder.sweep(clock.now())
    clock.advance(300)
    holder.sweep(clock.now())  # busy: back to pending, lease released
    cancelled = scheduling.cancel_scheduled_event(ctx, event.scheduled_event_id)
    assert cancelled.status == "cancelled"
    run_until_idle(holder, clock)
    done = scheduling.get_scheduled_event(ctx, event.scheduled_event_id)
    assert done.status == "cancelled" and [a.call_status for a in done.call_attempts] == ["busy"]


def test_an_expired_lease_does_not_block_the_cancel(ctx, provider, clock, assistant):
    event = call(ctx, assistant)
    crashed = Dispatcher(ctx, worker_id="crashed", lease_secs=60)
    assert len(crashed._claim(clock.now())) == 1
    clock.advance(61)  # the worker died; its lease ran out
    assert scheduling.cancel_scheduled_event(ctx, event.scheduled_event_id).status == ("cancelled")
    run_until_idle(Dispatcher(ctx, worker_id="survivor"), clock)
    assert provider.placed == []
    assert scheduling.get_scheduled_event(ctx, event.scheduled_event_id).status == "cancelled"


def test_cancelling_a_run_leaves_a_claimed_call_to_its_dispatcher_which_does_not_place_it(
    ctx, provider, clock, assistant
):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    first = call(ctx, assistant, run_id=run.run_id)
    second = call(ctx, assistant, to="sip:other@example.com", run_id=run.run_id)
    heard: list[CallFinished] = []
    ctx.call_listeners.append(heard.append)
    holder = Dispatcher(ctx, worker_id="holder", lease_secs=60, batch_size=1)
    claimed = holder._claim(clock.now())
    assert len(claimed) == 1
    held_id = claimed[0]["scheduled_event_id"]
    free_id = ({first.scheduled_event_id, second.scheduled_event_id} - {held_id}).pop()

    missions.cancel_run(ctx, run.run_id, reason="changed our mind")
    # The free call is cancelled at once; the claimed one is left pending under its lease.
    assert [(h.scheduled_event_id, h.status) for h in heard] == [(free_id, "cancelled")]
    assert scheduling.get_scheduled_event(ctx, held_id).status == "pending"
    logged = [e.summary for e in plans.list_events(ctx, run.run_id)]
    assert any("1 pending call(s) cancelled" in s for s in logged)
    assert any("left to the dispatcher" in s for s in logged)

    # The holder reads the run when it acts, sees it cancelled and does not place the call.
    holder._process(claimed, clock.now())
    done = scheduling.get_scheduled_event(ctx, held_id)
    assert done.status == "cancelled" and done.errors[-1]["code"] == "run_finished"
    assert provider.placed == [] and done.call_attempts == []
    assert [(h.scheduled_event_id, h.status) for h in heard] == [
        (free_id, "cancelled"),
        (held_id, "cancelled"),
    ]
    run_until_idle(holder, clock)
    assert provider.placed == []


def test_cancelling_a_run_after_a_lease_expired_cancels_the_call(ctx, provider, clock, assistant):
    mission = missions.create_mission(ctx, "M")
    run = missions.start_run(ctx, mission.mission_id)
    event = call(ctx, assistant, run_id=run.run_id)
    assert len(Dispatcher(ctx, worker_id="crashed", lease_secs=60)._claim(clock.now())) == 1
    clock.advance(61)
    missions.cancel_run(ctx, run.run_id)
    assert scheduling.get_scheduled_event(ctx, event.scheduled_event_id).status == "cancelled"
    run_until_idle(Dispatcher(ctx, worker_id="survivor"), clock)
    assert provider.placed == []


def test_a_row_that_outlives_its_lease_is_placed_once_and_the_batch_starts_no_more(
    ctx, provider, clock, assistant
):
    """A slow provider: the first create takes 20 s, the second stalls for 100 s, longer than
    the 60 s lease. Meanwhile a second worker sweeps and claims what the first one's lease no
    longer covers. Counted at the provider, by idempotency key, every call is created once."""
    events = [call(ctx, assistant, to=f"sip:desk{i}@example.com") for i in range(4)]
    slow = Dispatcher(ctx, worker_id="slow", lease_secs=60)
    other = Dispatcher(ctx, worker_id="other", lease_secs=60)
    creates: dict[str, int] = {}
    real_place_call = provider.place_call
    state = {"slow_creates": 0, "other_swept": None}

    def place_call(request):  # type: ignore[no-untyped-def]
        creates[request.idempotency_key] = creates.get(request.idempotency_key, 0) + 1
        placement = real_place_call(request)
        if state["other_swept"] is None:  # a create by the slow worker
            state["slow_creates"] += 1
            clock.advance(100 if state["slow_creates"] == 2 else 20)
            if state["slow_creates"] == 2:
                state["other_swept"] = "sweeping"
                state["other_swept"] = other.sweep(clock.now())
        return placement

    provider.place_call = place_call
    report = slow.sweep(clock.now(), max_batches=1)

    swept = state["other_swept"]
    assert swept is not None and swept.claimed == 4  # the slow worker's leases had expired
    assert swept.reconciled == 2  # the two it had placed were found, not placed again
    assert report.released == 2  # past half its lease, the slow batch started no more rows
    run_until_idle(other, clock)  # the calls end
    assert creates == {f"{e.scheduled_event_id}:1": 1 for e in events}
    assert {scheduling.get_scheduled_event(ctx, e.scheduled_event_id).status for e in events} == {
        "completed"
    }


def test_a_slow_provider_shrinks_the_batch_to_what_fits_in_half_the_lease(
    ctx, provider, clock, assistant
):
    for i in range(30):
        call(ctx, assistant, to=f"sip:line{i}@example.com")
    worker = Dispatcher(ctx, worker_id="w", lease_secs=60)
    real_place_call = provider.place_call

    def place_call(request):  # type: ignore[no-untyped-def]
        clock.advance(10)  # every create takes 10 s
        return real_place_call(request)

    provider.place_call = place_call
    assert worker.claim_size() == 20  # nothing measured yet: a small first claim
    first = worker.sweep(clock.now(), max_batches=1)

    assert first.claimed == 20
    assert first.placed == 3  # the fourth would start at 30 s, half the lease: released
    assert first.released == 17
    assert worker.claim_size() == 3  # 10 s a row: 3 rows fill half of the 60 s lease
