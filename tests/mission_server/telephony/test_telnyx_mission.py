"""A whole catering mission (examples/catering.yaml) through ``TelnyxProvider`` against a fake
Telnyx account on ``httpx.MockTransport``: the insight templates and group are created at
Telnyx and assigned, the assistant names the Telnyx group, Telnyx's results are read back by
the templates' Telnyx ids, and the leverage reaches the later calls. Every request and answer
passes the SDK oracle (``FakeTelnyx``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from mission_server.clock import VirtualClock
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.insights.telnyx import TelnyxInsightsExtractor
from mission_server.services import missions
from mission_server.services.context import Context
from mission_server.services.insight_sync import remote_insight_id
from mission_server.settings import Settings
from mission_server.telephony.telnyx.provider import TelnyxProvider
from state import models as m
from state.db import create_schema, make_engine
from tests.support.missionkit import catering
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount

CALLER = "+13125550001"
LAKEFRONT, GRILL, PRAIRIE = "+13125550101", "+13125550102", "+13125550103"
#: Thursday 10:00 in Chicago: inside calling hours.
T0 = datetime(2026, 5, 7, 15, 0, tzinfo=UTC)
QUOTES = {
    LAKEFRONT: {"initial_price_per_person": 70, "final_price_per_person": 65},
    GRILL: {"initial_price_per_person": 66, "final_price_per_person": 62},
    PRAIRIE: {"initial_price_per_person": 68, "final_price_per_person": 64},
}


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock(T0)
        self.account = TelnyxAccount(
            [CALLER], clock=self.clock.now, auto_finish=True, insight_answers=QUOTES
        )
        self.api = FakeTelnyx(fallback=self.account)
        self.provider = TelnyxProvider(
            API_KEY,
            transport=httpx.MockTransport(self.api),
            clock=self.clock.now,
            sleep=lambda _: None,
        )
        self.engine = make_engine(f"sqlite:///{tmp_path / 'telnyx.db'}")
        create_schema(self.engine)
        extractor = TelnyxInsightsExtractor(
            self.provider.get_conversation_insights,
            remote_id=lambda insight_id: remote_insight_id(self.engine, insight_id),
            sleep=lambda _: None,
        )
        self.ctx = Context(
            engine=self.engine,
            clock=self.clock,
            provider=self.provider,
            settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
            extractor=extractor,
        )
        self.runner = MissionRunner(self.ctx, mode="inline")

    def close(self) -> None:
        self.runner.close()
        self.provider.close()
        self.engine.dispose()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(tmp_path)
    yield built
    built.close()


def events_to(account: TelnyxAccount, target: str) -> list[dict[str, Any]]:
    return [e for e in account.events.values() if e["telnyx_end_user_target"] == target]


def test_a_catering_mission_runs_through_telnyx_with_telnyx_insights(world: World) -> None:
    run_id = world.runner.start(catering())
    drive_virtual(world.ctx, world.runner, [run_id])
    detail = missions.get_run(world.ctx, run_id)

    assert detail.status == "succeeded", detail.error
    account = world.account
    # Our insight is an insight template at Telnyx, its typed parameters as the JSON schema,
    # in a Telnyx insight group; the assistant names that group (not our local id).
    with Session(world.engine) as session:
        (insight,) = [
            i for i in session.exec(select(m.Insight)) if i.parameters
        ]  # the mission's structured insight
        mapped = {(r.kind, r.local_id): r.telnyx_id for r in session.exec(select(m.TelnyxId))}
        (assistant,) = session.exec(select(m.Assistant)).all()
    template_id = mapped[("insight", insight.insight_id)]
    template = account.templates[template_id]
    assert template["name"] == f"{insight.name} [{insight.insight_id}]"
    schema = template["json_schema"]
    assert schema["properties"]["final_price_per_person"]["type"] == "number"
    assert schema["required"] == ["final_price_per_person"]
    group_id = mapped[("insight_group", assistant.insight_group_id)]
    assert account.groups[group_id]["insight_ids"] == [template_id]
    remote_assistant = account.assistants[assistant.provider_ref]
    assert remote_assistant["insight_settings"] == {"insight_group_id": group_id}
    assert len(account.templates) == 1 and len(account.groups) == 1

    # Telnyx's results came back by the template's id and carried the leverage forward.
    (grill,) = events_to(account, GRILL)
    (prairie,) = events_to(account, PRAIRIE)
    (baseline,) = events_to(account, LAKEFRONT)
    assert "best_quote" not in baseline["dynamic_variables"]
    assert grill["dynamic_variables"]["best_quote"] == "65"
    assert grill["dynamic_variables"]["best_company"] == "Lakefront Catering"
    assert prairie["dynamic_variables"]["best_quote"] == "62"
    payload = detail.result_payload or {}
    finals = {t["name"]: t["final_value"] for t in payload["targets"]}
    assert finals == {"Lakefront Catering": 65, "Chicago Grill Co": 62, "Prairie Table Events": 64}
    assert payload["recommendation"]["name"] == "Chicago Grill Co"
    results = [
        json.loads(r["conversation_insights"][0]["result"])
        for rs in account.insight_runs.values()
        for r in rs
    ]
    assert len(results) == 3
