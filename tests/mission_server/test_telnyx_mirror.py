"""The mirror of our missions to the Telnyx Missions API (the Telnyx Portal): a whole catering
mission reaches a fake Missions API (``httpx.MockTransport``) — mission, run, plan, events in
order, result — through the durable outbox; an outage and lost answers lose and duplicate
nothing; ``MISSION_TELNYX_SYNC=off`` sends nothing; ``mission sync status`` shows the outbox."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from mission_server.app import MissionApp, build_context, mirror_enabled
from mission_server.clock import VirtualClock
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.services import missions, plans
from mission_server.services.context import Context
from mission_server.services.mirror import (
    MAX_ATTEMPTS,
    backoff,
    deliver_due,
    requeue_failed,
    sync_status,
)
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from mission_server.telephony.telnyx.missions import TelnyxMissions
from state import models as m
from state.outbox import capture_outbox
from tests.conftest import T0
from tests.support.missionkit import catering, make_ctx
from tests.support.telnyx_missions import (
    API_KEY,
    BASE_URL,
    OUTBOX,
    FakeMissionsApi,
    assert_drained,
    assert_mirrored,
    outbox,
    rows_by_kind,
)

SETTINGS = Settings(TELNYX_API_KEY=API_KEY, TELNYX_BASE_URL=BASE_URL)


def telnyx_missions(fake: FakeMissionsApi, clock: Any) -> TelnyxMissions:
    return TelnyxMissions.from_settings(
        SETTINGS, transport=httpx.MockTransport(fake), clock=clock.now
    )


@pytest.fixture
def mirrored(sim: tuple[Context, MissionRunner]) -> tuple[Context, MissionRunner, FakeMissionsApi]:
    ctx, runner = sim
    capture_outbox(ctx.engine)
    return ctx, runner, FakeMissionsApi()


def test_a_catering_mission_reaches_the_telnyx_portal_in_order(mirrored) -> None:
    ctx, runner, fake = mirrored
    api = telnyx_missions(fake, ctx.clock)
    run_id = runner.start(catering())
    # The mirror delivers while the mission runs, as the background loop does.
    drive_virtual(ctx, runner, [run_id], on_sweep=lambda: deliver_due(ctx.engine, api, ctx.clock))
    report = deliver_due(ctx.engine, api, ctx.clock)
    assert report.failed == report.retried == 0
    assert_mirrored(ctx, fake, run_id)
    assert_drained(ctx, run_id)
    assert all(e["timestamp"] for e in fake.events_of(run_id))
    sent = len(fake.requests)
    assert deliver_due(ctx.engine, api, ctx.clock).delivered == 0
    assert len(fake.requests) == sent  # nothing is sent twice
    status = sync_status(ctx.engine)
    assert (status.pending, status.failed, status.last_error) == (0, 0, None)


def test_an_outage_then_lost_answers_lose_and_duplicate_nothing(mirrored) -> None:
    ctx, runner, fake = mirrored
    api = telnyx_missions(fake, ctx.clock)
    fake.outage = True
    run_id = runner.start(catering())
    drive_virtual(ctx, runner, [run_id], on_sweep=lambda: deliver_due(ctx.engine, api, ctx.clock))
    assert missions.get_run(ctx, run_id).status == "succeeded"  # the outage held up no call
    assert fake.failed_requests > 0 and not fake.runs
    status = sync_status(ctx.engine)
    assert status.delivered == 0 and status.pending == sum(rows_by_kind(ctx).values())
    assert rows_by_kind(ctx, "pending")["event"] == len(missions.get_run(ctx, run_id).events)
    assert status.last_error is not None and "503" in status.last_error
    assert API_KEY not in status.last_error
    # Telnyx comes back, but the first answers are lost after the writes were made.
    fake.outage = False
    fake.lose_answers = 4
    for _ in range(MAX_ATTEMPTS):
        ctx.clock.advance(backoff(MAX_ATTEMPTS))
        deliver_due(ctx.engine, api, ctx.clock)
    assert_mirrored(ctx, fake, run_id)
    assert_drained(ctx, run_id)
    with ctx.engine.connect() as conn:
        errors = [e for (e,) in conn.execute(select(OUTBOX.c.last_error)) if e]
    assert errors and all(API_KEY not in e for e in errors)


def test_two_runs_interleaved_each_arrive_in_their_own_order(ctx: Context) -> None:
    capture_outbox(ctx.engine)
    fake = FakeMissionsApi()
    api = telnyx_missions(fake, ctx.clock)
    mission = missions.create_mission(ctx, "Quotes", instructions="Ask for quotes")
    first = missions.start_run(ctx, mission.mission_id)
    second = missions.start_run(ctx, mission.mission_id)
    for step in ("a", "b"):
        for run in (first, second):
            plans.create_plan(ctx, run.run_id, [{"step_id": step, "description": f"Step {step}"}])
            plans.update_plan_step(ctx, run.run_id, step, status="in_progress")
            plans.update_plan_step(ctx, run.run_id, step, status="completed")
    missions.update_run(ctx, first.run_id, status="succeeded", result_summary="done")
    missions.update_run(ctx, second.run_id, status="failed", error="nobody answered")
    deliver_due(ctx.engine, api, ctx.clock)
    for run, status in ((first, "succeeded"), (second, "failed")):
        ours = [e.summary for e in missions.get_run(ctx, run.run_id).events]
        assert [e["summary"] for e in fake.events_of(run.run_id)] == ours
        assert fake.run_of(run.run_id)["status"] == status
        assert [(s["step_id"], s["status"]) for s in fake.plan_of(run.run_id)] == [
            ("a", "completed"),
            ("b", "completed"),
        ]
    assert fake.run_of(second.run_id)["error"] == "nobody answered"
    assert len(fake.missions) == 1


def test_a_refusal_fails_its_record_at_once_and_the_run_goes_on(ctx: Context) -> None:
    capture_outbox(ctx.engine)
    fake = FakeMissionsApi()
    api = telnyx_missions(fake, ctx.clock)
    mission = missions.create_mission(ctx, "Quotes")
    run = missions.start_run(ctx, mission.mission_id)
    refused = {"left": 1}
    inner = fake._route

    def refuse_first_event(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events") and refused["left"]:
            refused["left"] -= 1
            return httpx.Response(422, json={"errors": [{"detail": f"bad event (key {API_KEY})"}]})
        return inner(request)

    fake._route = refuse_first_event  # type: ignore[method-assign]
    missions.update_run(ctx, run.run_id, status="succeeded")
    deliver_due(ctx.engine, api, ctx.clock)
    assert outbox(ctx) == {"failed": 1, "delivered": 3}  # mission, run change, second event
    status = sync_status(ctx.engine)
    assert status.last_error is not None and "422" in status.last_error
    assert API_KEY not in status.last_error
    ours = [e.summary for e in missions.get_run(ctx, run.run_id).events]
    # The refused event is kept (failed, with its error); the run's next event still went.
    assert [e["summary"] for e in fake.events_of(run.run_id)] == ours[1:]
    assert requeue_failed(ctx.engine, ctx.now()) == 1
    deliver_due(ctx.engine, api, ctx.clock)
    assert outbox(ctx) == {"delivered": 4}
    assert sorted(e["summary"] for e in fake.events_of(run.run_id)) == sorted(ours)


def test_a_late_result_with_no_event_still_reaches_telnyx(ctx: Context) -> None:
    capture_outbox(ctx.engine)
    fake = FakeMissionsApi()
    api = telnyx_missions(fake, ctx.clock)
    run = missions.start_run(ctx, missions.create_mission(ctx, "Quotes").mission_id)
    missions.update_run(ctx, run.run_id, status="succeeded")
    deliver_due(ctx.engine, api, ctx.clock)
    events = len(fake.events_of(run.run_id))
    missions.update_run(
        ctx, run.run_id, result_summary="Lowest quote: $62", result_payload={"v": 62}
    )
    assert len(missions.get_run(ctx, run.run_id).events) == events  # no event of its own
    deliver_due(ctx.engine, api, ctx.clock)
    mirrored = fake.run_of(run.run_id)
    assert (mirrored["result_summary"], mirrored["result_payload"]) == (
        "Lowest quote: $62",
        {"v": 62},
    )
    assert len(fake.events_of(run.run_id)) == events


def test_linked_assistants_that_telnyx_knows_are_linked_to_the_run(ctx: Context) -> None:
    capture_outbox(ctx.engine)
    fake = FakeMissionsApi()
    api = telnyx_missions(fake, ctx.clock)
    run = missions.start_run(ctx, missions.create_mission(ctx, "Quotes").mission_id)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        for aid, provider, ref in (("a1", "telnyx", "assistant-9f1"), ("a2", "simulated", None)):
            conn.execute(
                m.Assistant.__table__.insert().values(
                    assistant_id=aid,
                    name=aid,
                    instructions="x",
                    provider=provider,
                    provider_ref=ref,
                    keep_number=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                m.RunAgent.__table__.insert().values(
                    run_id=run.run_id, assistant_id=aid, created_at=now
                )
            )
    missions.update_run(ctx, run.run_id, status="succeeded")
    deliver_due(ctx.engine, api, ctx.clock)
    remote = fake.run_of(run.run_id)
    [link] = fake.agents[remote["run_id"]]
    assert link["telnyx_agent_id"] == "assistant-9f1"
    # Linked already (Telnyx answers 409): that is what was asked, not an error.
    api.link_agent(remote["mission_id"], remote["run_id"], "assistant-9f1")
    assert len(fake.agents[remote["run_id"]]) == 1


def test_sync_off_writes_no_outbox_and_sends_nothing(tmp_path) -> None:
    def context(**env: Any) -> Context:
        settings = Settings(TELNYX_API_KEY=API_KEY, TELNYX_BASE_URL=BASE_URL, **env)
        return build_context(
            settings,
            db_url=str(tmp_path / f"{len(env)}.db"),
            provider=ScriptedProvider(numbers=[]),
            clock=VirtualClock(T0),
        )

    off = context(MISSION_TELNYX_SYNC="off")
    on = context()
    try:
        assert not mirror_enabled(off.settings, off.provider)
        assert mirror_enabled(on.settings, on.provider)
        for ctx in (off, on):
            missions.start_run(ctx, missions.create_mission(ctx, "Quotes").mission_id)
        assert outbox(off) == {}
        assert outbox(on) == {"pending": 2}
        app = MissionApp(off, runner_mode="inline")
        assert app.start_mirroring() is None  # no loop, so no request can go out
    finally:
        off.engine.dispose()
        on.engine.dispose()


def test_a_simulated_world_is_never_mirrored(sim) -> None:
    ctx, _ = sim
    assert not mirror_enabled(SETTINGS, ctx.provider)


def test_mission_sync_status_shows_the_outbox(ctx: Context, tmp_path) -> None:
    db = str(tmp_path / "sync.db")
    records = build_context(
        Settings(TELNYX_API_KEY=API_KEY, TELNYX_BASE_URL=BASE_URL),
        db_url=db,
        provider=ScriptedProvider(numbers=[]),
        clock=VirtualClock(T0),
    )
    fake = FakeMissionsApi()
    fake.outage = True
    try:
        missions.start_run(records, missions.create_mission(records, "Quotes").mission_id)
        deliver_due(records.engine, telnyx_missions(fake, records.clock), records.clock)
        with records.engine.begin() as conn:
            conn.execute(
                update(OUTBOX).where(OUTBOX.c.kind == "mission").values(status="delivered")
            )
    finally:
        records.engine.dispose()
    env = {"TELNYX_API_KEY": API_KEY, "MISSION_TELNYX_SYNC": None, "MISSION_DB_URL": None}
    from mission_server.cli.main import app

    shown = CliRunner(env=env).invoke(app, ["sync", "status", "--db", db], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    lines = dict(line.split(":", 1) for line in shown.stdout.splitlines())
    assert lines["mirror"].strip().startswith("on")
    assert (lines["pending"].strip(), lines["delivered"].strip(), lines["failed"].strip()) == (
        "1",
        "1",
        "0",
    )
    assert lines["oldest pending"].strip() == T0.isoformat(timespec="seconds")
    assert "503" in lines["last error"] and API_KEY not in shown.stdout
    as_json = CliRunner(env=env | {"MISSION_TELNYX_SYNC": "off"}).invoke(
        app, ["sync", "status", "--db", db, "--json"], catch_exceptions=False
    )
    found = json.loads(as_json.stdout)
    assert found["mirror"] == "off (MISSION_TELNYX_SYNC=off)"
    assert (found["pending"], found["delivered"], found["failed"]) == (1, 1, 0)
    assert found["next_attempt_at"] == (T0 + timedelta(seconds=backoff(1))).isoformat(
        timespec="seconds"
    )


def test_the_background_loop_of_a_serving_app_delivers_and_stops(tmp_path) -> None:
    ctx = build_context(
        SETTINGS,
        db_url=str(tmp_path / "loop.db"),
        provider=ScriptedProvider(numbers=[]),
        clock=VirtualClock(T0),
    )
    fake = FakeMissionsApi()
    app = MissionApp(ctx, runner_mode="inline")
    try:
        loop = app.start_mirroring(telnyx_missions(fake, ctx.clock))
        assert loop is not None and loop.running
        loop.poll_secs = 0.05
        run = missions.start_run(ctx, missions.create_mission(ctx, "Quotes").mission_id)
        missions.update_run(ctx, run.run_id, status="succeeded", result_summary="done")
        deadline = time.monotonic() + 20
        while set(outbox(ctx)) != {"delivered"} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(outbox(ctx)) == {"delivered"}
        assert fake.run_of(run.run_id)["result_summary"] == "done"
    finally:
        app.close()
    assert app.mirror is None and not loop.running


def test_every_mirror_request_and_fake_answer_matches_the_official_sdk(mirrored) -> None:
    """The SDK (``telnyx`` 4.189, in the test extras) is the oracle: the method, path, query and
    body of every request of a whole mission — lost answers and look-ups included — fit its
    params, and the fake's answers fit its response models."""
    pytest.importorskip("telnyx")
    from tests.support.telnyx_missions import check_against_sdk

    ctx, runner, fake = mirrored
    api = telnyx_missions(fake, ctx.clock)
    run_id = runner.start(catering())

    def telnyx_assistants_then_deliver() -> None:
        # The run's assistants as if Telnyx had made them, so their links are checked too.
        with ctx.engine.begin() as conn:
            conn.execute(
                update(m.Assistant.__table__).values(
                    provider="telnyx", provider_ref="assistant-9f1"
                )
            )
        deliver_due(ctx.engine, api, ctx.clock)

    fake.lose_answers = 6  # creates whose answers are lost: looked up, then re-sent
    drive_virtual(ctx, runner, [run_id], on_sweep=telnyx_assistants_then_deliver)
    for _ in range(MAX_ATTEMPTS):
        ctx.clock.advance(backoff(MAX_ATTEMPTS))
        deliver_due(ctx.engine, api, ctx.clock)
    assert_mirrored(ctx, fake, run_id)
    assert fake.agents[fake.run_of(run_id)["run_id"]]
    methods = {
        (request.method, request.url.path.rsplit("/", 1)[-1]) for request, _ in fake.exchanges
    }
    assert ("GET", "missions") in methods and ("POST", "telnyx-agents") in methods
    assert check_against_sdk(fake.exchanges) == len(fake.exchanges) > 20


@pytest.mark.postgres
def test_the_catering_mission_is_mirrored_from_postgresql_through_an_outage(pg_url, tmp_path):
    ctx = make_ctx(pg_url, tmp_path)
    runner = MissionRunner(ctx, mode="inline")
    capture_outbox(ctx.engine)
    fake = FakeMissionsApi()
    api = telnyx_missions(fake, ctx.clock)
    try:
        fake.lose_answers = 3
        run_id = runner.start(catering())
        drive_virtual(
            ctx, runner, [run_id], on_sweep=lambda: deliver_due(ctx.engine, api, ctx.clock)
        )
        for _ in range(MAX_ATTEMPTS):
            ctx.clock.advance(backoff(MAX_ATTEMPTS))
            deliver_due(ctx.engine, api, ctx.clock)
        assert_mirrored(ctx, fake, run_id)
        assert_drained(ctx, run_id)
    finally:
        runner.close()
        ctx.engine.dispose()


def test_a_pass_cut_short_gives_back_the_rows_it_did_not_get_to(ctx: Context) -> None:
    capture_outbox(ctx.engine)
    fake = FakeMissionsApi()
    api = telnyx_missions(fake, ctx.clock)
    mission = missions.create_mission(ctx, "Quotes")
    for _ in range(3):
        missions.start_run(ctx, mission.mission_id)  # three lanes, claimed together
    assert deliver_due(ctx.engine, api, ctx.clock, limit=1).delivered == 1
    with ctx.engine.connect() as conn:
        leased = conn.execute(
            select(func.count()).where(OUTBOX.c.lease_until.is_not(None))
        ).scalar()
    assert leased == 0  # another process (or the next pass) may take them at once
    assert deliver_due(ctx.engine, api, ctx.clock).delivered == 3
    assert set(outbox(ctx)) == {"delivered"} and len(fake.runs) == 3
