"""A fake Telnyx Missions API (``/v2/ai/missions`` …) served through ``httpx.MockTransport``:
missions, runs, plans, events and linked agents kept in memory, answered in the SDK's shapes
(``{"data": …}``; Telnyx stamps ``timestamp``, ``started_at``, ``completed_at``).

``outage`` answers every request 503 while it is set; ``lose_answers`` applies that many
writes and then answers them 504 (the request reached Telnyx, the answer did not).

Imported as ``tests.support.telnyx_missions``.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from mission_server.services import missions as missions_service
from mission_server.services.context import Context
from state import models as m

API_KEY = "KEY0187A1B2C3D4E5F6_m1rr0rS3cr3tValue"
BASE_URL = "https://api.telnyx.test/v2"
OUTBOX = m.MirrorOutbox.__table__


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _error(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"code": str(status), "detail": detail}]})


class FakeMissionsApi:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.missions: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.agents: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[httpx.Request] = []
        #: Every request with the answer it got, for ``check_against_sdk``.
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []
        self.outage = False
        self.lose_answers = 0
        self.failed_requests = 0

    # ---------------------------------------------------------------- helpers for tests

    def run_of(self, local_run_id: str) -> dict[str, Any]:
        [run] = [r for r in self.runs.values() if r["metadata"].get("local_run_id") == local_run_id]
        return run

    def events_of(self, local_run_id: str) -> list[dict[str, Any]]:
        return self.events.get(self.run_of(local_run_id)["run_id"], [])

    def plan_of(self, local_run_id: str) -> list[dict[str, Any]]:
        return self.plans.get(self.run_of(local_run_id)["run_id"], [])

    # ---------------------------------------------------------------- the API

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["authorization"] == f"Bearer {self.api_key}"
        if self.outage:
            self.failed_requests += 1
            return _error(503, "service unavailable")
        response = self._route(request)
        self.exchanges.append((request, response))
        if self.lose_answers and request.method != "GET" and response.status_code < 400:
            self.lose_answers -= 1
            self.failed_requests += 1
            return _error(504, "gateway timeout")
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v2")
        body = json.loads(request.content) if request.content else {}
        method = request.method
        if path == "/ai/missions":
            return self._create_mission(body) if method == "POST" else self._page(self.missions)
        if match := re.fullmatch(r"/ai/missions/([^/]+)", path):
            mission = self.missions.get(match[1])
            if mission is None:
                return _error(404, "mission not found")
            if method == "PUT":
                mission.update(body, updated_at=_now())
            return httpx.Response(200, json={"data": mission})
        if match := re.fullmatch(r"/ai/missions/([^/]+)/runs", path):
            if match[1] not in self.missions:
                return _error(404, "mission not found")
            if method == "POST":
                return self._create_run(match[1], body)
            runs = {k: r for k, r in self.runs.items() if r["mission_id"] == match[1]}
            return self._page(runs)
        match = re.fullmatch(r"/ai/missions/([^/]+)/runs/([^/]+)(/.*)?", path)
        if match is None:
            return _error(404, f"no route {method} {path}")
        run = self.runs.get(match[2])
        if run is None or run["mission_id"] != match[1]:
            return _error(404, "run not found")
        rest = match[3] or ""
        rid = run["run_id"]
        if rest == "" and method == "PATCH":
            if "status" in body and run["status"] in {"succeeded", "failed", "cancelled"}:
                return _error(422, f"the run is {run['status']}: its status cannot change")
            run.update(body, updated_at=_now())
            if body.get("status") in {"succeeded", "failed", "cancelled"}:
                run["finished_at"] = _now()
            return httpx.Response(200, json={"data": run})
        if rest == "/plan" and method == "GET":
            return httpx.Response(200, json={"data": self.plans.get(rid, [])})
        if rest in ("/plan", "/plan/steps") and method == "POST":
            if rest == "/plan" and self.plans.get(rid):
                return _error(409, "the run already has a plan")
            steps = self.plans.setdefault(rid, [])
            made = []
            for step in body["steps"]:
                if any(s["step_id"] == step["step_id"] for s in steps):
                    return _error(409, f"step {step['step_id']} exists")
                made.append({"run_id": rid, "status": "pending", **step})
            steps += made
            return httpx.Response(201, json={"data": made})
        if match := re.fullmatch(r"/plan/steps/([^/]+)", rest):
            step = next((s for s in self.plans.get(rid, []) if s["step_id"] == match[1]), None)
            if step is None:
                return _error(404, "step not found")
            if "status" in body and step["status"] == body["status"]:
                return _error(422, f"the step is {step['status']} already")
            step.update(body)
            if body.get("status") == "in_progress":
                step.setdefault("started_at", _now())
            if body.get("status") in {"completed", "failed", "skipped"}:
                step["completed_at"] = _now()
            return httpx.Response(200, json={"data": step})
        if rest == "/events" and method == "POST":
            log = self.events.setdefault(rid, [])
            key = body.get("idempotency_key")
            same = next((e for e in log if key and e.get("idempotency_key") == key), None)
            if same is not None:
                return httpx.Response(200, json={"data": same})
            event = {"event_id": str(uuid.uuid4()), "run_id": rid, "timestamp": _now(), **body}
            log.append(event)
            return httpx.Response(201, json={"data": event})
        if rest == "/telnyx-agents":
            linked = self.agents.setdefault(rid, [])
            if method == "POST":
                if any(a["telnyx_agent_id"] == body["telnyx_agent_id"] for a in linked):
                    return _error(409, "agent already linked")
                link = {"run_id": rid, "telnyx_agent_id": body["telnyx_agent_id"]}
                linked.append(link | {"created_at": _now()})
                return httpx.Response(201, json={"data": linked[-1]})
            return httpx.Response(200, json={"data": linked})
        return _error(404, f"no route {method} {path}")

    def _page(self, items: dict[str, dict[str, Any]]) -> httpx.Response:
        data = list(items.values())
        meta = {
            "page_number": 1,
            "page_size": len(data),
            "total_pages": 1,
            "total_results": len(data),
        }
        return httpx.Response(200, json={"data": data, "meta": meta})

    def _create_mission(self, body: dict[str, Any]) -> httpx.Response:
        mid = str(uuid.uuid4())
        self.missions[mid] = {"mission_id": mid, "created_at": _now(), "updated_at": _now(), **body}
        return httpx.Response(201, json={"data": self.missions[mid]})

    def _create_run(self, mission_id: str, body: dict[str, Any]) -> httpx.Response:
        rid = str(uuid.uuid4())
        self.runs[rid] = {
            "run_id": rid,
            "mission_id": mission_id,
            "status": "pending",
            "started_at": _now(),
            "updated_at": _now(),
            **body,
        }
        return httpx.Response(201, json={"data": self.runs[rid]})


# ---------------------------------------------------------------- the SDK as the oracle


def _routes() -> list[tuple[str, str, Any, Any, tuple[str, ...]]]:
    """(method, path pattern, the SDK's params TypedDict, its response model, path params the
    TypedDict declares) for every Missions call the mirror makes."""
    from telnyx.types.ai import (
        mission_create_params,
        mission_list_params,
        mission_response,
        mission_update_mission_params,
    )
    from telnyx.types.ai.mission_data import MissionData
    from telnyx.types.ai.missions import (
        mission_run_data,
        mission_run_response,
        run_create_params,
        run_list_params,
        run_update_params,
    )
    from telnyx.types.ai.missions.runs import (
        event_log_params,
        event_response,
        plan_add_steps_to_plan_params,
        plan_create_params,
        plan_retrieve_response,
        plan_step_response,
        plan_steps_created_response,
        plan_update_step_params,
        telnyx_agent_link_params,
        telnyx_agent_link_response,
        telnyx_agent_list_response,
    )

    runs = r"/ai/missions/[^/]+/runs"
    run = runs + r"/[^/]+"
    return [
        (
            "POST",
            r"/ai/missions",
            mission_create_params.MissionCreateParams,
            mission_response.MissionResponse,
            (),
        ),
        ("GET", r"/ai/missions", mission_list_params.MissionListParams, MissionData, ()),
        (
            "PUT",
            r"/ai/missions/[^/]+",
            mission_update_mission_params.MissionUpdateMissionParams,
            mission_response.MissionResponse,
            (),
        ),
        (
            "POST",
            runs,
            run_create_params.RunCreateParams,
            mission_run_response.MissionRunResponse,
            (),
        ),
        ("GET", runs, run_list_params.RunListParams, mission_run_data.MissionRunData, ()),
        (
            "PATCH",
            run,
            run_update_params.RunUpdateParams,
            mission_run_response.MissionRunResponse,
            ("mission_id",),
        ),
        ("GET", run + "/plan", None, plan_retrieve_response.PlanRetrieveResponse, ()),
        (
            "POST",
            run + "/plan",
            plan_create_params.PlanCreateParams,
            plan_steps_created_response.PlanStepsCreatedResponse,
            ("mission_id",),
        ),
        (
            "POST",
            run + "/plan/steps",
            plan_add_steps_to_plan_params.PlanAddStepsToPlanParams,
            plan_steps_created_response.PlanStepsCreatedResponse,
            ("mission_id",),
        ),
        (
            "PATCH",
            run + "/plan/steps/[^/]+",
            plan_update_step_params.PlanUpdateStepParams,
            plan_step_response.PlanStepResponse,
            ("mission_id", "run_id"),
        ),
        (
            "POST",
            run + "/events",
            event_log_params.EventLogParams,
            event_response.EventResponse,
            ("mission_id",),
        ),
        (
            "POST",
            run + "/telnyx-agents",
            telnyx_agent_link_params.TelnyxAgentLinkParams,
            telnyx_agent_link_response.TelnyxAgentLinkResponse,
            ("mission_id",),
        ),
        (
            "GET",
            run + "/telnyx-agents",
            None,
            telnyx_agent_list_response.TelnyxAgentListResponse,
            (),
        ),
    ]


# ---------------------------------------------------------------- assertions on a mirrored run


def outbox(ctx: Context) -> dict[str, int]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
        return {status: count for status, count in rows}


def rows_by_kind(ctx: Context, status: str | None = None) -> dict[str, int]:
    query = select(OUTBOX.c.kind, func.count()).group_by(OUTBOX.c.kind)
    if status is not None:
        query = query.where(OUTBOX.c.status == status)
    with ctx.engine.connect() as conn:
        return {kind: count for kind, count in conn.execute(query)}


def assert_drained(ctx: Context, run_id: str) -> None:
    """Every outbox row delivered: the mission's, one per event, and the run's own changes."""
    assert set(outbox(ctx)) == {"delivered"}
    kinds = rows_by_kind(ctx)
    assert kinds["mission"] == 1
    assert kinds["event"] == len(missions_service.get_run(ctx, run_id).events)
    assert kinds["run"] >= 1  # its result and status changes, its linked assistants


def assert_mirrored(ctx: Context, fake: FakeMissionsApi, run_id: str) -> None:
    """Everything of the run is at the fake, once, in our order."""
    detail = missions_service.get_run(ctx, run_id)
    [mission] = fake.missions.values()
    assert mission["execution_mode"] == "external"
    assert mission["name"] == detail.mission_name
    assert mission["metadata"]["local_mission_id"] == detail.mission_id
    run = fake.run_of(run_id)
    assert run["mission_id"] == mission["mission_id"]
    assert run["status"] == detail.status == "succeeded"
    assert run["result_summary"] == detail.result_summary
    assert run["result_payload"] == json.loads(json.dumps(detail.result_payload))
    assert [(s["step_id"], s["status"]) for s in fake.plan_of(run_id)] == [
        (s.step_id, s.status) for s in detail.plan
    ]
    ours = [(e.type, e.summary, e.event_id) for e in detail.events]
    theirs = [
        (e["type"], e["summary"], e["payload"]["local"]["event_id"]) for e in fake.events_of(run_id)
    ]
    assert theirs == ours  # every event, once, in the order we wrote them
    assert len(fake.runs) == 1


def _wire_names(params: Any) -> dict[str, str]:
    """Python name → wire name (``PropertyInfo(alias=…)``) of a params TypedDict's keys."""
    import typing

    names = {}
    for key, hint in typing.get_type_hints(params, include_extras=True).items():
        alias = next((getattr(x, "alias", None) for x in getattr(hint, "__metadata__", ())), None)
        names[key] = alias or key
    return names


def check_against_sdk(exchanges: list[tuple[httpx.Request, httpx.Response]]) -> int:
    """Every request the mirror sent (method, path, query, body) fits the official SDK's
    params, and every answer of the fake its response models; how many were checked.
    Raises AssertionError (or pydantic's ValidationError) naming the request."""
    from pydantic import TypeAdapter

    routes = _routes()
    for request, response in exchanges:
        path = request.url.path.removeprefix("/v2")
        where = f"{request.method} {path}"
        route = next(
            (r for r in routes if r[0] == request.method and re.fullmatch(r[1], path)), None
        )
        assert route is not None, f"the SDK has no {where}"
        _, _, params, model, path_params = route
        body = json.loads(request.content) if request.content else None
        query = dict(request.url.params)
        if request.method == "GET":
            wire = set(_wire_names(params).values()) if params is not None else set()
            assert set(query) <= wire, f"{where}: query {sorted(set(query) - wire)} not in the SDK"
        else:
            assert not query, f"{where}: the SDK sends no query"
            assert isinstance(body, dict), f"{where}: no JSON object body"
            names = _wire_names(params)
            unknown = set(body) - (set(names.values()) - set(path_params))
            assert not unknown, f"{where}: body fields {sorted(unknown)} not in the SDK"
            TypeAdapter(params).validate_python({**body, **{p: "x" for p in path_params}})
        if response.status_code < 400:
            answer = response.json()
            if request.method == "GET" and "meta" in answer:  # a page: each item
                for item in answer["data"]:
                    model.model_validate(item)
            else:
                model.model_validate(answer)
    return len(exchanges)
