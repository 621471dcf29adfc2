"""Missions end to end in the simulated world: the planner graph on the real service,
dispatcher and offline insight extraction, on the virtual clock."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from mission_server.app import MissionApp
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.runner import (
    MissionRunner,
    drive_virtual,
)
from mission_server.errors import ConflictError, ValidationError
from mission_server.services import assistants, missions, scheduling
from mission_server.services.context import Context
from mission_server.services.paging import every
from planner.spec import load_spec
from state import models as m
from state.db import session_scope
from tests.support.missionkit import EXAMPLES, catering, make_ctx


def all_calls(ctx: Context, run_id: str) -> list[Any]:
    """Every scheduled call of the run, page after page."""
    return every(
        lambda cursor: scheduling.list_scheduled_events(
            ctx, run_id=run_id, limit=500, cursor=cursor
        )
    )


LAKEFRONT, GRILL, PRAIRIE, WINDY = (
    "+13125550101",
    "+13125550102",
    "+13125550103",
    "+13125550104",
)


def run_to_end(ctx: Context, runner: MissionRunner, run_id: str) -> missions.RunDetail:
    drive_virtual(ctx, runner, [run_id])
    return missions.get_run(ctx, run_id)


def by_target(detail: missions.RunDetail) -> dict[str, Any]:
    return {c.end_user_target: c for c in detail.conversations}


def variables_of(ctx: Context, conversation_id: str) -> dict[str, Any]:
    """The variables the conversation was rendered with (as the dispatcher recorded them)."""
    with session_scope(ctx.engine) as session:
        row = session.get(m.Conversation, conversation_id)
        assert row is not None
        return dict(row.dynamic_variables or {})


def transcript(ctx: Context, conversation_id: str) -> str:
    return "\n".join(f"{m.role}: {m.text}" for m in ctx.provider.get_messages(conversation_id))


def test_catering_mission_negotiates_with_leverage_and_recommends_the_lowest_quote(sim):
    ctx, runner = sim
    run_id = runner.start(catering())
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "succeeded", detail.error
    conversations = by_target(detail)

    baseline = conversations[LAKEFRONT]
    assert "best_quote" not in variables_of(ctx, baseline.conversation_id)
    assert "$" not in (baseline.instructions or "")
    assert "We have a quote of" not in transcript(ctx, baseline.conversation_id)

    grill = conversations[GRILL]
    assert variables_of(ctx, grill.conversation_id)["best_quote"] == "65"
    assert variables_of(ctx, grill.conversation_id)["best_company"] == "Lakefront Catering"
    assert "We have a quote of $65 per person from Lakefront Catering" in transcript(
        ctx, grill.conversation_id
    )
    prairie = conversations[PRAIRIE]
    assert variables_of(ctx, prairie.conversation_id)["best_quote"] == "62"
    assert "We have a quote of $62 per person from Chicago Grill Co" in transcript(
        ctx, prairie.conversation_id
    )

    payload = detail.result_payload or {}
    finals = {t["name"]: t["final_value"] for t in payload["targets"]}
    assert finals == {"Lakefront Catering": 65, "Chicago Grill Co": 62, "Prairie Table Events": 65}
    rec = payload["recommendation"]
    assert rec["name"] == "Chicago Grill Co" and rec["value"] == min(finals.values())
    assert rec["baseline"] == {"name": "Lakefront Catering", "value": 65}
    assert rec["saving"] == 150
    assert "$150 savings over the baseline for 50 guests" in (detail.result_summary or "")
    assert [s.status for s in detail.plan] == ["completed"] * 6
    assert payload["totals"]["calls_placed"] == 4  # Prairie was busy once
    assert len(ctx.provider.placements) == 4


def test_a_target_that_never_answers_fails_after_its_retry_budget_and_is_reported(sim):
    ctx, runner = sim
    spec = catering()
    spec["targets"].insert(1, {"name": "Windy City Bites", "phone": WINDY})
    detail = run_to_end(ctx, runner, runner.start(spec))
    assert detail.status == "succeeded"
    windy = next(t for t in (detail.result_payload or {})["targets"] if t["phone"] == WINDY)
    assert windy["status"] == "unreachable"
    assert windy["attempts"] == 3  # 1 + max_retries_client_errors
    assert windy["attempt_statuses"] == ["no-answer"] * 3
    call = next(c for c in detail.scheduled_calls if c.telnyx_end_user_target == WINDY)
    assert call.status == "failed"
    assert call.errors[-1]["code"] == "client_error_retry_budget_exhausted"
    assert windy["outcome"] == "unreachable"
    assert (
        "**Unreachable:** Windy City Bites (+13125550104): not reached in 3 attempts "
        "(no-answer, no-answer, no-answer)" in (detail.result_summary or "")
    )
    step = next(s for s in detail.plan if s.step_id == "call-windy-city-bites")
    assert step.status == "failed"
    # The unreachable caterer does not change the leverage chain.
    assert variables_of(ctx, by_target(detail)[GRILL].conversation_id)["best_quote"] == "65"


def test_nothing_is_dispatched_before_approval(sim):
    ctx, runner = sim
    run_id = runner.start(catering(), require_approval=True)
    drive_virtual(ctx, runner, [run_id])
    assert missions.get_run(ctx, run_id).status == "running"
    assert runner.waiting_for(run_id) == "approval"
    assert scheduling.list_scheduled_events(ctx, run_id=run_id) == []
    assert ctx.provider.placements == []
    runner.approve(run_id, True, "go ahead")
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "succeeded"
    assert detail.approved_at is not None
    assert len(ctx.provider.placements) == 4


def test_rejection_cancels_the_run_and_places_nothing(sim):
    ctx, runner = sim
    run_id = runner.start(catering(), require_approval=True)
    drive_virtual(ctx, runner, [run_id])
    runner.approve(run_id, False, "over budget")
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "cancelled"
    assert detail.error == "over budget"
    assert detail.scheduled_calls == [] and ctx.provider.placements == []
    assert {s.step_id: s.status for s in detail.plan}["call-chicago-grill-co"] == "skipped"
    with pytest.raises(ConflictError):
        runner.approve(run_id, True)


def test_a_run_cancelled_while_its_call_is_queued_stops_waiting(sim):
    ctx, runner = sim
    run_id = runner.start(catering())
    runner.drain()  # plans and schedules the baseline call; nothing dispatched yet
    assert runner.waiting_for(run_id) == "calls"
    runner.cancel(run_id, "changed our minds")
    drive_virtual(ctx, runner, [run_id])
    assert runner.waiting_for(run_id) is None
    detail = missions.get_run(ctx, run_id)
    assert detail.status == "cancelled"
    assert {s.step_id: s.status for s in detail.plan}["call-chicago-grill-co"] == "skipped"
    assert ctx.provider.placements == []
    free = [n.phone_number for n in assistants.list_phone_numbers(ctx, available_only=True)]
    assert "+13125550100" in free  # the cancelled run gave its caller ID back


def test_a_run_paused_while_its_last_calls_are_in_flight_still_finishes(sim):
    ctx, runner = sim
    spec = catering(strategy="parallel")
    spec["targets"] = spec["targets"][:2]  # both answer the first time
    run_id = runner.start(spec)
    runner.drain()
    Dispatcher(ctx).sweep(ctx.clock.now())  # both calls placed, still talking
    missions.pause_run(ctx, run_id)
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "succeeded"
    # A survey without leverage: Lakefront's $65 beats Chicago Grill's opening $68.
    assert (detail.result_payload or {})["recommendation"]["name"] == "Lakefront Catering"


def test_a_request_goes_through_the_configured_llm(tmp_path):
    class FakeLLM:
        def __init__(self) -> None:
            self.requests: list[str] = []

        def complete_json(self, *, system: str, user: str, schema: dict, name: str) -> Any:
            self.requests.append(user)
            return catering()

    ctx = make_ctx(str(tmp_path / "llm.db"), tmp_path)
    llm = FakeLLM()
    runner = MissionRunner(ctx, mode="inline", llm=llm)
    try:
        run_id = runner.start(request="Get me the best catering deal for 50 people")
        detail = run_to_end(ctx, runner, run_id)
        assert llm.requests == ["Get me the best catering deal for 50 people"]
        assert detail.status == "succeeded"
        assert detail.input["request"] == "Get me the best catering deal for 50 people"
        assert (detail.result_payload or {})["recommendation"]["name"] == "Chicago Grill Co"
    finally:
        runner.close()
        ctx.engine.dispose()


def test_approving_a_run_outside_the_planner_opens_its_dispatcher_gate(sim):
    ctx, runner = sim
    mission = missions.create_mission(ctx, "By hand")
    run = missions.start_run(ctx, mission.mission_id, require_approval=True)
    assert runner.approve(run.run_id, True).approved_at is not None


def test_invalid_spec_names_the_field_and_creates_nothing(sim):
    ctx, runner = sim
    spec = catering()
    spec["targets"][1]["phone"] = "12"
    with pytest.raises(ValidationError) as err:
        runner.start(spec)
    assert err.value.field == "targets[1].phone"
    # A SIP target tells no local time: without a timezone it is refused before any call.
    spec = catering()
    spec["targets"][1]["phone"] = "sip:desk@example.com"
    spec["targets"][1].pop("timezone", None)
    with pytest.raises(ValidationError) as err:
        runner.start(spec)
    assert err.value.field == "targets[1].timezone"
    spec = catering(retry={"retry_interval_secs": 300})
    with pytest.raises(ValidationError) as err:
        runner.start(spec)
    assert err.value.field == "retry.retry_interval_secs"
    assert "max_retries_client_errors > 0" in str(err.value)
    spec = catering()
    spec["targets"][2]["phone"] = "(312) 555-0101"
    with pytest.raises(ValidationError) as err:
        runner.start(spec)
    assert err.value.field == "targets[2].phone" and "unique" in err.value.rule
    assert missions.list_runs(ctx) == []


def test_a_request_without_an_llm_must_list_targets_with_numbers(sim):
    _ctx, runner = sim
    with pytest.raises(ValidationError) as err:
        runner.start(request="Find caterers in Chicago and negotiate the best price")
    assert "spec file or an LLM" in str(err.value)
    with pytest.raises(ValidationError):
        runner.start()


def test_a_request_listing_targets_runs_without_an_llm(sim):
    ctx, runner = sim
    run_id = runner.start(
        request="Find catering for a corporate lunch with 50 people. Call Lakefront Catering "
        "at 312-555-0101, Chicago Grill Co at 312-555-0102 and Prairie Table Events at "
        "312-555-0103. Get a baseline quote from the first and negotiate with the others."
    )
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "succeeded", detail.error
    assert (detail.result_payload or {})["recommendation"]["name"] == "Chicago Grill Co"


def test_parallel_survey_and_reminder_round_examples_succeed(sim):
    ctx, runner = sim
    survey = runner.start(load_spec(EXAMPLES / "venue-availability.yaml").model_dump())
    reminders = runner.start(load_spec(EXAMPLES / "appointment-reminders.yaml").model_dump())
    statuses = drive_virtual(ctx, runner, [survey, reminders])
    assert statuses == {survey: "succeeded", reminders: "succeeded"}
    venues = {t["name"]: t for t in (missions.get_run(ctx, survey).result_payload or {})["targets"]}
    assert venues["Wicker Park Hall"]["extracted"]["availability"] == "fully booked"
    assert venues["Harbor View Terrace"]["attempts"] == 2
    patients = {
        t["name"]: t for t in (missions.get_run(ctx, reminders).result_payload or {})["targets"]
    }
    assert patients["Marcus Bell"]["extracted"]["answer"] == "reschedule"
    assert patients["Theo Novak"]["status"] == "voicemail"


def test_a_server_can_approve_right_after_starting(tmp_path):
    ctx = make_ctx(str(tmp_path / "approve.db"), tmp_path)
    runner = MissionRunner(ctx, mode="thread", workers=1)
    busy = threading.Event()
    assert runner._executor is not None
    runner._executor.submit(busy.wait, 30)  # the only worker is busy elsewhere for now
    try:
        run_id = runner.start(catering(), require_approval=True)
        assert runner.waiting_for(run_id) is None  # not even planned yet
        threading.Timer(0.2, busy.set).start()
        assert runner.approve(run_id, True).approved_at is not None
        serve_until_finished(ctx, runner, run_id)
        assert missions.get_run(ctx, run_id).status == "succeeded"
    finally:
        runner.close()
        ctx.engine.dispose()


def test_a_restarted_service_recovers_unfinished_runs(sim, tmp_path):
    ctx, first = sim
    run_id = first.start(catering())
    first.drain()
    first.close()  # the process "stops" with the baseline call queued
    second = MissionRunner(ctx, mode="inline")
    try:
        assert second.recover() == [run_id]
        assert run_to_end(ctx, second, run_id).status == "succeeded"
    finally:
        second.close()


def serve_until_finished(ctx: Context, runner: MissionRunner, run_id: str) -> None:
    """What a server does, in virtual time: sweep, let the planner's worker threads catch
    up, move to the next due time."""
    dispatcher = Dispatcher(ctx)
    deadline = time.monotonic() + 60
    while missions.get_run(ctx, run_id).status == "running":
        assert time.monotonic() < deadline, "the run did not finish"
        assert runner.wait_idle(30)
        dispatcher.sweep(ctx.clock.now())
        assert runner.wait_idle(30)
        upcoming = dispatcher.next_due()
        if upcoming is not None:
            ctx.clock.advance_to(upcoming)


def test_a_server_restart_extracts_what_the_outage_missed_and_carries_on(sim):
    ctx, first = sim
    run_id = first.start(catering())
    first.drain()
    first.close()
    ctx.call_listeners.clear()  # the process died: nobody hears the call end
    dispatcher = Dispatcher(ctx)
    while scheduling.list_scheduled_events(ctx, run_id=run_id)[0].status != "completed":
        dispatcher.sweep(ctx.clock.now())
        ctx.clock.advance_to(dispatcher.next_due() or ctx.clock.now())
    server = MissionRunner(ctx, mode="thread")
    try:
        assert server.recover() == [run_id]
        serve_until_finished(ctx, server, run_id)
        detail = missions.get_run(ctx, run_id)
        assert detail.status == "succeeded"
        assert (detail.result_payload or {})["targets"][0]["final_value"] == 65
    finally:
        server.close()


def test_in_a_server_the_dispatcher_resumes_runs_through_worker_threads(tmp_path):
    ctx = make_ctx(str(tmp_path / "server.db"), tmp_path)
    with MissionApp(ctx) as app:
        run_id = app.runner.start(catering())
        assert missions.get_run(ctx, run_id).status == "running"
        assert app.runner.mode == "thread"
        serve_until_finished(ctx, app.runner, run_id)
        detail = missions.get_run(ctx, run_id)
        assert detail.status == "succeeded"
        assert (detail.result_payload or {})["recommendation"]["saving"] == 150


@pytest.mark.postgres
def test_catering_on_postgresql_checkpoints_in_postgresql(pg_url, tmp_path):
    ctx = make_ctx(pg_url, tmp_path)
    runner = MissionRunner(ctx, mode="inline")
    try:
        assert runner.checkpointer.location.startswith("postgresql")
        detail = run_to_end(ctx, runner, runner.start(catering()))
        assert detail.status == "succeeded"
        assert (detail.result_payload or {})["recommendation"]["name"] == "Chicago Grill Co"
    finally:
        runner.close()
        ctx.engine.dispose()


def test_a_call_leased_by_a_dead_worker_is_taken_over_after_its_lease(sim):
    from sqlalchemy import update

    from mission_server.engine.queue import EVENTS

    ctx, runner = sim
    run_id = runner.start(catering())
    runner.drain()  # the baseline call is scheduled
    # A process claimed it and was killed before recording anything.
    with ctx.engine.begin() as conn:
        conn.execute(
            update(EVENTS).values(
                lease_owner="killed-worker",
                lease_expires_at=ctx.clock.now() + Dispatcher(ctx).lease,
            )
        )
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "succeeded"
    assert len(ctx.provider.placements) == 4


def test_a_mission_of_600_targets_keeps_them_in_the_records_and_dispatches_in_batches(sim):
    """Above the old 500-target limit: the run's input and the planner's state stay small,
    every target is stored, planned and scheduled (batches of 200, none twice)."""
    ctx, runner = sim
    spec = load_spec(EXAMPLES / "venue-availability.yaml").model_dump(mode="json")
    codes = ("630", "708", "847", "224", "331", "779")  # Chicago area: calling hours open
    spec["targets"] = [
        {"name": f"Venue {i:03d}", "phone": f"+1{codes[i // 100]}55501{i % 100:02d}"}
        for i in range(600)
    ]
    run_id = runner.start(spec)
    runner.drain()
    detail = missions.get_run_record(ctx, run_id)
    assert "targets" not in detail.input["spec"] and detail.input["targets"] == 600
    assert runner.ops.count_targets(run_id) == 600
    assert len(all_calls(ctx, run_id)) == 600
    state = runner.graph.get_state({"configurable": {"thread_id": run_id}}).values
    assert state["target_count"] == 600 and state["cursor"] == 600
    assert not any(isinstance(v, list | dict) and len(v) > 50 for v in state.values())
    runner.drain()  # woken again: nothing is scheduled twice
    assert len(all_calls(ctx, run_id)) == 600


def test_ready_calls_reads_a_batch_at_a_time_and_pages_past_calls_still_being_extracted(
    tmp_path,
):
    """A wake-up reads as many finished calls as it records, not every outstanding target;
    calls whose insights are still pending are passed over, not waited on, and the calls
    after them are still found."""
    import yaml

    from mission_server.engine.drivers import run_until_idle
    from planner.graph import RECORD_BATCH

    codes = ("630", "708", "847")
    venues = [
        {"name": f"Venue {i:03d}", "phone": f"+1{codes[i // 100]}55501{i % 100:02d}"}
        for i in range(300)
    ]
    world = yaml.safe_load((EXAMPLES / "world.yaml").read_text(encoding="utf-8"))
    world["businesses"] = [{**v, "facts": {"availability": "we have availability"}} for v in venues]
    world_path = tmp_path / "world.yaml"
    world_path.write_text(yaml.safe_dump(world), encoding="utf-8")
    ctx = make_ctx(str(tmp_path / "missions.db"), tmp_path, world=world_path)
    runner = MissionRunner(ctx, mode="inline")
    spec = load_spec(EXAMPLES / "venue-availability.yaml").model_dump(mode="json")
    spec["targets"] = venues
    run_id = runner.start(spec)
    runner.drain()  # every call scheduled; the runner is not woken while they are placed
    run_until_idle(Dispatcher(ctx), ctx.clock)
    targets = m.RunTarget.__table__
    results = m.InsightResult.__table__
    conversations = m.Conversation.__table__
    with ctx.engine.begin() as conn:
        # The first 150 targets' insights back to pending, as if still being extracted.
        held = {
            row.position: row.conversation_id
            for row in conn.execute(
                sa.select(targets.c.position, conversations.c.conversation_id)
                .join(
                    conversations,
                    conversations.c.scheduled_event_id == targets.c.scheduled_event_id,
                )
                .where(targets.c.run_id == run_id, targets.c.position < 150)
            )
        }
        assert len(held) == 150
        conn.execute(
            results.update()
            .where(results.c.conversation_id.in_(list(held.values())))
            .values(status="pending")
        )

    on_demand, runner.ops.extract_on_demand = runner.ops.extract_on_demand, False
    progress = runner.ops.ready_calls(run_id, RECORD_BATCH)  # another worker extracts them
    runner.ops.extract_on_demand = on_demand
    assert progress.outstanding == 300
    assert len(progress.ready) == RECORD_BATCH
    assert min(t.position for t in progress.ready) >= 150
    assert [t.position for t in progress.ready] == sorted(t.position for t in progress.ready)

    with ctx.engine.begin() as conn:
        conn.execute(
            results.update()
            .where(results.c.conversation_id.in_(list(held.values())))
            .values(status="completed")
        )
    detail = run_to_end(ctx, runner, run_id)
    assert detail.status == "succeeded", detail.error
    assert runner.ops.ready_calls(run_id, RECORD_BATCH).outstanding == 0
    assert len(runner.ops.load_outcomes(run_id)) == 300
    payload = missions.get_run(ctx, run_id).result_payload or {}
    assert payload["listed"]["of"] == 300 and payload["extraction_accuracy"]["wrong"] == 0

    # A reader that got every conversation wrong, at length: the rehearsal's accuracy lists
    # what fits beside the targets, and the run's result is still recorded.
    with ctx.engine.begin() as conn:
        conn.execute(
            results.update().values(
                result={"availability": "fully booked", "offered_times": "Thursday " * 60}
            )
        )
    runner.ops.complete_run(
        run_id, status="succeeded", summary="again", payload=payload, error=None
    )
    again = missions.get_run(ctx, run_id).result_payload or {}
    accuracy = again["extraction_accuracy"]
    assert accuracy["mismatches_total"] == 600
    assert 0 < len(accuracy["mismatches"]) < 20
    assert again["targets"] == payload["targets"]
    runner.close()
    ctx.engine.dispose()
