"""build_context: the simulated real-time clock never starts behind what is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mission_server.app import build_context, world_start_time
from mission_server.clock import AcceleratedClock
from mission_server.services import missions


@pytest.fixture(autouse=True)
def _simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELNYX_API_KEY", raising=False)
    monkeypatch.delenv("MISSION_DB_URL", raising=False)


def test_a_fresh_database_starts_at_the_worlds_start(tmp_path) -> None:
    ctx = build_context(db_url=str(tmp_path / "m.db"), simulate=True, sim_speed=1)
    start = world_start_time(ctx.provider)
    assert isinstance(ctx.clock, AcceleratedClock) and start is not None
    assert start <= ctx.now() < start + timedelta(minutes=1)


def test_a_restart_carries_on_from_the_latest_record(tmp_path) -> None:
    db = str(tmp_path / "m.db")
    first = build_context(db_url=db, simulate=True, clock="virtual")
    start = world_start_time(first.provider)
    assert start is not None
    first.clock.advance(3 * 3600)  # type: ignore[attr-defined]
    mission = missions.create_mission(first, "Quotes")
    missions.start_run(first, mission.mission_id)
    first.engine.dispose()

    again = build_context(db_url=db, simulate=True, sim_speed=1)
    assert again.now() >= start + timedelta(hours=3)
    assert again.now() < start + timedelta(hours=3, minutes=1)
