"""A whole catering mission (examples/catering.yaml) through ``TelnyxProvider`` against a fake
Telnyx account on ``httpx.MockTransport``, assembled by ``build_context`` as ``mission serve``
assembles it: the insight templates and group are created at Telnyx and assigned, the
assistant names the Telnyx group, Telnyx's results are read back by the templates' Telnyx ids,
the leverage reaches the later calls, and the mission, run, plan, events, result and linked
assistant reach the same fake's Missions API (the Telnyx Portal) through the outbox — also
when the Missions API fails for a while and then recovers. Every request and answer passes the
SDK oracle (``FakeTelnyx`` for the calls and insights, ``check_against_sdk`` for the Missions
API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from mission_server.app import build_context
from mission_server.clock import VirtualClock
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.services import missions
from mission_server.services.mirror import MAX_ATTEMPTS, backoff, deliver_due, sync_status
from mission_server.settings import Settings
from mission_server.telephony.telnyx.missions import TelnyxMissions
from mission_server.telephony.telnyx.provider import TelnyxProvider
from state import models as m
from tests.support.missionkit import catering
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount
from tests.support.telnyx_missions import (
    FakeMissionsApi,
    assert_drained,
    assert_mirrored,
    check_against_sdk,
)

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
    """One fake Telnyx (calls, insights and the Missions API behind one transport) and the
    service context ``build_context`` makes for a Telnyx key, on a virtual clock."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock(T0)
        self.account = TelnyxAccount(
            [CALLER], clock=self.clock.now, auto_finish=True, insight_answers=QUOTES
        )
        self.api = FakeTelnyx(fallback=self.account)
        self.portal = FakeMissionsApi(api_key=API_KEY)
        transport = httpx.MockTransport(self._route)
        self.provider = TelnyxProvider(
            API_KEY, transport=transport, clock=self.clock.now, sleep=lambda _: None
        )
        settings = Settings(
            TELNYX_API_KEY=API_KEY, MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None
        )
        self.ctx = build_context(
            settings,
            db_url=f"sqlite:///{tmp_path / 'telnyx.db'}",
            provider=self.provider,
            clock=self.clock,
        )
        self.engine = self.ctx.engine
        self.missions_api = TelnyxMissions.from_settings(
            settings, transport=transport, clock=self.clock.now, sleep=lambda _: None
        )
        self.runner = MissionRunner(self.ctx, mode="inline")

    def _route(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v2/ai/missions"):
            return self.portal(request)
        return self.api(request)

    def deliver(self) -> None:
        """What the mirror's background loop does between dispatcher sweeps."""
        deliver_due(self.engine, self.missions_api, self.clock)

    def close(self) -> None:
        self.runner.close()
        self.missions_api.close()
        self.provider.close()
        self.engine.dispose()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(tmp_path)
    yield built
    built.close()


def events_to(account: TelnyxAccount, target: str) -> list[dict[str, Any]]:
    return [e for e in account.events.values() if e["telnyx_end_user_target"] == target]


def test_a_catering_mission_runs_through_telnyx_and_reaches_the_portal(world: World) -> None:
    run_id = world.runner.start(catering())
    drive_virtual(world.ctx, world.runner, [run_id], on_sweep=world.deliver)
    world.deliver()
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

    # The Telnyx Portal has the run: mission (external), run, plan, every event once in our
    # order, the result, and the Telnyx assistant linked to the run.
    assert_mirrored(world.ctx, world.portal, run_id)
    assert_drained(world.ctx, run_id)
    [link] = world.portal.agents[world.portal.run_of(run_id)["run_id"]]
    assert link["telnyx_agent_id"] == assistant.provider_ref
    assert check_against_sdk(world.portal.exchanges) == len(world.portal.exchanges)


def test_a_missions_api_outage_then_recovery_loses_nothing(world: World) -> None:
    """The Missions API answers 503 for the whole mission; the calls go on regardless. When it
    recovers, its first answers are lost (504 after the write): everything still arrives, once."""
    world.portal.outage = True
    run_id = world.runner.start(catering())
    drive_virtual(world.ctx, world.runner, [run_id], on_sweep=world.deliver)
    detail = missions.get_run(world.ctx, run_id)
    assert detail.status == "succeeded", detail.error
    assert len(world.account.events) == 3  # every call placed at Telnyx during the outage
    assert world.portal.failed_requests > 0 and not world.portal.runs
    status = sync_status(world.engine)
    assert status.delivered == 0 and status.pending > len(detail.events)
    assert status.last_error is not None and "503" in status.last_error
    assert API_KEY not in status.last_error

    world.portal.outage = False
    world.portal.lose_answers = 3
    for _ in range(MAX_ATTEMPTS):
        world.clock.advance(backoff(MAX_ATTEMPTS))
        world.deliver()
    assert_mirrored(world.ctx, world.portal, run_id)
    assert_drained(world.ctx, run_id)
    assert sync_status(world.engine).failed == 0
    assert check_against_sdk(world.portal.exchanges) == len(world.portal.exchanges)
