"""Shared by the mission tests: the example specs and a simulated, virtual-clock context.

Imported as ``tests.support.missionkit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mission_server.clock import VirtualClock
from mission_server.insights.offline import OfflineExtractor
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.simulated.provider import SimulatedProvider
from planner.spec import load_spec
from state.db import create_schema, make_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORLD = EXAMPLES / "world.yaml"


def catering(**changes: Any) -> dict[str, Any]:
    """The catering example spec as a mapping, with top-level fields replaced."""
    spec = load_spec(EXAMPLES / "catering.yaml").model_dump(mode="json")
    spec.update(changes)
    return spec


def make_ctx(url: str, tmp_path: Path, world: Path = WORLD) -> Context:
    """A context on ``url`` over the example world (or ``world``), its virtual clock at the
    world's start."""
    engine = make_engine(url)
    create_schema(engine)
    provider = SimulatedProvider.from_path(world, ledger_path=tmp_path / "ledger.jsonl")
    assert provider.world.start_time is not None
    return Context(
        engine=engine,
        clock=VirtualClock(provider.world.start_time),
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        extractor=OfflineExtractor(),
    )
