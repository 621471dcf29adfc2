"""Fixtures of the mission_server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mission_server.engine.runner import MissionRunner
from mission_server.services.context import Context
from tests.support.missionkit import make_ctx


@pytest.fixture
def sim(tmp_path) -> Iterator[tuple[Context, MissionRunner]]:
    """The example world on a virtual clock with an inline runner (``drive_virtual`` moves
    it)."""
    ctx = make_ctx(str(tmp_path / "missions.db"), tmp_path)
    runner = MissionRunner(ctx, mode="inline")
    yield ctx, runner
    runner.close()
    ctx.engine.dispose()
