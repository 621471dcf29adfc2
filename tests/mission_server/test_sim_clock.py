"""The simulated time of a rehearsal database: every accelerated clock on it follows one row,
and it jumps to the next due time when nothing is due before it (``engine.simtime``).

Wall time is a fake here (``Wall``): the accelerated clock is what is under test, and nothing
waits for real seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest
from sqlalchemy import select, update

from mission_server.clock import AcceleratedClock
from mission_server.engine.simtime import SimTime
from mission_server.services import assistants, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.simulated.provider import SimulatedProvider
from state import models as m
from state.db import make_engine
from state.types import utc_iso
from tests.support.missionkit import WORLD

MISSION = str(Path(sys.executable).with_name("mission"))

CHICAGO = ZoneInfo("America/Chicago")
#: Friday 13 March 2026, 16:55 in Chicago.
FRIDAY_1655 = datetime(2026, 3, 13, 16, 55, tzinfo=CHICAGO).astimezone(UTC)
MONDAY_0900 = datetime(2026, 3, 16, 9, 0, tzinfo=CHICAGO).astimezone(UTC)
EVENTS = m.ScheduledEvent.__table__


class Wall:
    """A wall clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def clock_on(engine, wall: Wall, start: datetime = FRIDAY_1655, speed: float = 60.0):
    clock = AcceleratedClock(start, speed, wall=wall)
    SimTime(engine, clock).attach(start)
    return clock


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request):
    """The SQLite file engine, or (marked postgres) a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return request.getfixturevalue("engine")
    return request.getfixturevalue("pg_engine")


def test_clocks_on_one_database_agree_and_see_each_others_jumps(any_engine):
    engine = any_engine
    wall = Wall()
    server = clock_on(engine, wall)
    worker = clock_on(engine, wall, start=FRIDAY_1655 - timedelta(hours=2))  # joins, no rewind
    assert server.now() == worker.now() == FRIDAY_1655

    wall.now += 1
    assert server.now() == worker.now() == FRIDAY_1655 + timedelta(seconds=60)

    assert SimTime(engine, server).jump(MONDAY_0900)
    assert server.now() == MONDAY_0900
    wall.now += 0.5  # the worker reads the shared row again within its refresh interval
    assert worker.now() == server.now() == MONDAY_0900 + timedelta(seconds=30)


def test_time_stands_still_while_no_process_runs_on_it(engine):
    wall = Wall()
    first = clock_on(engine, wall)
    wall.now += 3  # three simulated minutes, then every process stops
    SimTime(engine, first).heartbeat()  # what a dispatching process does every few seconds
    assert first.now() == FRIDAY_1655 + timedelta(minutes=3)
    wall.now += 3600  # an hour later a new process starts: not 60 simulated hours later
    later = clock_on(engine, wall)
    assert later.now() == FRIDAY_1655 + timedelta(minutes=3)


def _context(engine, clock) -> Context:
    provider = SimulatedProvider.from_path(WORLD)
    return Context(engine=engine, clock=clock, provider=provider, settings=Settings())


def _call(ctx: Context, **options) -> str:
    assistant = assistants.create_assistant(ctx, "Caller", "Ask for a quote.")
    assistants.assign_phone_number(ctx, assistant.assistant_id)
    call = scheduling.create_scheduled_event(
        ctx, assistant_id=assistant.assistant_id, channel="phone_call", to="+13125550101", **options
    )
    return call.scheduled_event_id


def test_no_jump_past_a_call_that_is_due_or_leased(any_engine):
    engine = any_engine
    wall = Wall()
    clock = clock_on(engine, wall)
    ctx = _context(engine, clock)
    event_id = _call(ctx, scheduled_at=FRIDAY_1655 + timedelta(minutes=2))
    time = SimTime(engine, clock)

    assert not time.jump(MONDAY_0900)  # a call is due before then
    assert clock.now() == FRIDAY_1655
    assert time.jump(FRIDAY_1655 + timedelta(minutes=2))  # to it, exactly
    assert clock.now() == FRIDAY_1655 + timedelta(minutes=2)

    # A process claimed it (it may be about to place it): no jump while the lease holds.
    with engine.begin() as conn:
        conn.execute(
            update(EVENTS)
            .where(EVENTS.c.scheduled_event_id == event_id)
            .values(due_at=MONDAY_0900, lease_expires_at=clock.now() + timedelta(minutes=5))
        )
    assert not time.jump(MONDAY_0900)
    with engine.begin() as conn:
        conn.execute(update(EVENTS).values(lease_expires_at=None))
    assert time.jump(MONDAY_0900)
    assert not time.jump(MONDAY_0900 - timedelta(hours=1))  # never backwards


def test_a_call_scheduled_after_hours_waits_for_monday_and_the_jump_gets_there(engine):
    wall = Wall()
    clock = clock_on(engine, wall, start=FRIDAY_1655 + timedelta(minutes=10))  # 17:05
    ctx = _context(engine, clock)
    event_id = _call(ctx)
    with engine.connect() as conn:
        due = conn.execute(
            select(EVENTS.c.due_at).where(EVENTS.c.scheduled_event_id == event_id)
        ).scalar_one()
    assert due.astimezone(UTC) == MONDAY_0900
    assert SimTime(engine, clock).jump(MONDAY_0900)
    assert clock.now() == MONDAY_0900


# -- through `mission serve --simulate` and `mission worker`, real processes -----------------


def _friday_world(tmp_path: Path) -> Path:
    text = WORLD.read_text()
    assert 'start_time: "2026-03-10T15:00:00Z"' in text
    world = tmp_path / "world.yaml"
    world.write_text(text.replace("2026-03-10T15:00:00Z", utc_iso(FRIDAY_1655)))
    return world


def _inside_hours(moment: datetime) -> bool:
    local = moment.astimezone(CHICAGO)
    return local.weekday() < 5 and dtime(9) <= local.time() < dtime(17)


@pytest.mark.slow
@pytest.mark.anyio
async def test_serve_rehearsal_started_friday_1655_finishes_in_seconds_calling_monday(tmp_path):
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    from tests.mission_server.test_server_transports import ROOT, server_env

    db = tmp_path / "m.db"
    params = StdioServerParameters(
        command=MISSION,
        args=["serve", "--db", str(db), "--simulate", "--world", str(_friday_world(tmp_path))],
        env=server_env(),
    )
    spec = (ROOT / "examples" / "catering.yaml").read_text()
    async with Client(params) as client:
        started_wall = time.monotonic()
        started = await client.call_tool("run_mission", {"spec": spec})
        assert not started.is_error, started.content[0].text
        run_id = started.structured_content["run_id"]
        while True:
            run = (
                await client.call_tool("get_run", {"run_id": run_id, "detail": "full"})
            ).structured_content
            if run["status"] in {"succeeded", "failed", "cancelled"}:
                break
            took = time.monotonic() - started_wall
            assert took < 20, f"run still {run['status']} after {took:.0f} wall seconds"
            await anyio.sleep(0.2)
        took = time.monotonic() - started_wall

    engine = make_engine(str(db))
    try:
        with engine.connect() as conn:
            attempts = conn.execute(select(m.CallAttempt.__table__)).all()
            events = conn.execute(
                select(m.Event.__table__).where(m.Event.__table__.c.run_id == run_id)
            ).all()
    finally:
        engine.dispose()
    assert run["status"] == "succeeded", run["error"]
    assert took < 20
    placed = sorted(a.attempted_at.astimezone(UTC) for a in attempts)
    assert placed and all(_inside_hours(at) for at in placed), placed
    # The call that missed Friday went out at Monday's opening (within the sweep it was due).
    monday = [at for at in placed if at >= MONDAY_0900]
    assert monday and monday[0] < MONDAY_0900 + timedelta(minutes=1), placed
    jumps = [e for e in events if (e.payload or {}).get("kind") == "clock_jump"]
    assert any(e.payload["to"] == utc_iso(MONDAY_0900) for e in jumps), [e.summary for e in events]


@pytest.mark.slow
def test_worker_once_then_another_worker_completes_the_call_without_an_error_loop(tmp_path):
    from mission_server.app import build_context
    from mission_server.cli.common import ledger_path_for
    from tests.mission_server.test_faults import (
        Worker,
        assert_no_repeated_sweep_error,
        rows,
        wait_until,
        worker_env,
    )

    db = str(tmp_path / "m.db")
    ctx = build_context(Settings(), db_url=db, simulate=True, ledger_path=ledger_path_for(db))
    try:
        _call(ctx)
        once = subprocess.run(
            [MISSION, "worker", "--once", "--simulate", "--db", db],
            capture_output=True,
            text=True,
            env=worker_env(),
            timeout=120,
        )
        assert once.returncode == 0, once.stderr
        assert [r["status"] for r in rows(ctx.engine)] == ["in_progress"]  # it placed the call

        later = Worker(db, worker_env(), tmp_path / "later.log", "--simulate")
        try:
            wait_until(
                "the next worker to finish the call",
                lambda: rows(ctx.engine)[0]["status"] == "completed",
                30,
            )
        finally:
            later.stop()
        final = rows(ctx.engine)[0]
    finally:
        ctx.engine.dispose()
    assert final["call_status"] == "completed"
    assert "was not placed by the simulator" not in later.text()
    assert_no_repeated_sweep_error(once.stderr, later.text())
