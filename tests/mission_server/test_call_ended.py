"""The database marks a planner target ``ended`` when its call ends (``state.triggers``),
whichever path ends it, on a schema made from the models, one made by the migrations, and
PostgreSQL; the planner reads the calls to record from those marks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.services import missions, scheduling
from state import models as m
from state import triggers
from state.db import make_engine, upgrade
from state.transitions import TERMINAL_EVENT
from tests.support.missionkit import catering, make_ctx


@pytest.fixture(params=["sqlite-models", "sqlite-migrated", "postgresql"])
def world(request, tmp_path) -> Iterator[tuple[Any, MissionRunner]]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = str(tmp_path / "missions.db")
    if request.param != "sqlite-models":
        engine = make_engine(url)
        upgrade(engine)  # the migrations make the trigger; create_schema then adds nothing
        engine.dispose()
    ctx = make_ctx(url, tmp_path)
    runner = MissionRunner(ctx, mode="inline")
    yield ctx, runner
    runner.close()
    ctx.engine.dispose()


def states(ctx: Any, run_id: str) -> dict[str, str]:
    targets = m.RunTarget.__table__
    with ctx.engine.connect() as conn:
        return {
            row.name: row.state
            for row in conn.execute(
                sa.select(targets.c.name, targets.c.state).where(targets.c.run_id == run_id)
            )
        }


def test_the_trigger_knows_every_terminal_status() -> None:
    assert set(triggers.TERMINAL) == set(TERMINAL_EVENT)


def test_a_target_is_marked_ended_when_its_call_ends_or_is_cancelled(world) -> None:
    ctx, runner = world
    spec = catering(strategy="parallel")  # Lakefront, Chicago Grill, Prairie (busy at first)
    run_id = runner.start(spec)
    runner.drain()
    assert set(states(ctx, run_id).values()) == {"scheduled"}

    prairie = next(
        e
        for e in scheduling.list_scheduled_events(ctx, run_id=run_id)
        if e.telnyx_end_user_target == "+13125550103"
    )
    scheduling.cancel_scheduled_event(ctx, prairie.scheduled_event_id)
    assert states(ctx, run_id)["Prairie Table Events"] == "ended"
    assert states(ctx, run_id)["Lakefront Catering"] == "scheduled"

    Dispatcher(ctx).sweep(ctx.clock.now())  # the two others placed, still talking
    assert states(ctx, run_id)["Lakefront Catering"] == "scheduled"
    drive_virtual(ctx, runner, [run_id])
    assert missions.get_run(ctx, run_id).status == "succeeded"
    assert set(states(ctx, run_id).values()) == {"recorded"}


def test_a_call_that_ended_before_its_target_was_noted_is_found(world) -> None:
    """The planner notes a call on its target after scheduling it; a call that has already
    ended by then (a node run again after a crash) is noted ended, not left for a scan."""
    ctx, runner = world
    run_id = runner.start(catering(strategy="parallel"))
    runner.drain()
    drive_virtual(ctx, runner, [run_id])
    targets = m.RunTarget.__table__
    with ctx.engine.begin() as conn:  # as if the targets had not been noted yet
        conn.execute(
            targets.update()
            .where(targets.c.run_id == run_id)
            .values(state="new", scheduled_event_id=None, outcome=None)
        )
    graph_ops = runner.ops
    from planner.graph import _call_request
    from planner.spec import parse_header

    spec = parse_header({**catering(strategy="parallel"), "targets": []})
    entries = graph_ops.load_targets(run_id, 0, 3)
    again = graph_ops.schedule_calls(
        run_id,
        assistant_id=scheduling.list_scheduled_events(ctx, run_id=run_id)[0].assistant_id,
        calls=[_call_request(spec, run_id, e, None) for e in entries],
    )
    assert all(isinstance(r, str) for r in again)  # the same calls, by their keys
    assert set(states(ctx, run_id).values()) == {"ended"}
    progress = graph_ops.ready_calls(run_id, 100)
    assert progress.outstanding == 3 and len(progress.ready) == 3


def test_the_migration_marks_the_calls_that_ended_before_it(tmp_path) -> None:
    from alembic import command

    from state.migrate import alembic_config

    url = str(tmp_path / "old.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0009")  # before the trigger
    ctx = make_ctx(url, tmp_path)
    runner = MissionRunner(ctx, mode="inline")
    run_id = runner.start(catering(strategy="parallel"))
    runner.drain()
    first = scheduling.list_scheduled_events(ctx, run_id=run_id)[0]
    scheduling.cancel_scheduled_event(ctx, first.scheduled_event_id)
    assert set(states(ctx, run_id).values()) == {"scheduled"}  # no trigger yet
    upgrade(engine)
    assert sorted(states(ctx, run_id).values()) == ["ended", "scheduled", "scheduled"]
    drive_virtual(ctx, runner, [run_id])
    assert missions.get_run(ctx, run_id).status == "succeeded"
    runner.close()
    ctx.engine.dispose()
    engine.dispose()


def test_after_a_race_on_a_key_the_calls_are_still_noted_on_their_targets(
    world, monkeypatch
) -> None:
    """Two writers racing on an idempotency key make the batch go one call at a time; the
    targets are then noted in a transaction of their own, the calls' rows locked first."""
    from sqlalchemy.exc import IntegrityError

    ctx, runner = world
    write = scheduling._Reads.write
    raced = []

    def write_once(self):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(True)
            raise IntegrityError("INSERT", {}, Exception("another writer took the key"))
        write(self)

    monkeypatch.setattr(scheduling._Reads, "write", write_once)
    run_id = runner.start(catering(strategy="parallel"))
    runner.drain()
    assert raced
    assert set(states(ctx, run_id).values()) == {"scheduled"}
    drive_virtual(ctx, runner, [run_id])
    assert missions.get_run(ctx, run_id).status == "succeeded"
