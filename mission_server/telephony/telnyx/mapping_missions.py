"""Our mission records → the Telnyx Missions API (``/ai/missions``, runs, plan, events,
linked agents; shapes from the official SDK ``telnyx`` 4.189, ``resources/ai/missions/``).

The whole field mapping is ``FIELDS`` below (same names on both sides, mostly); what else
differs:

- mission: ``execution_mode`` is always ``"external"`` (we run it, Telnyx shows it);
  ``metadata`` gains ``local_mission_id`` (finds a create that went unanswered).
- run: created with ``input`` and ``metadata`` (+ ``local_run_id``, and ``local_created_at``:
  Telnyx runs have no ``created_at``); status, result summary, payload, error and metadata
  follow by ``PATCH``, the status only when it changed. Telnyx sets ``started_at`` and
  ``finished_at`` itself.
- step: keeps our ``step_id``; created pending, status (when it changed) and metadata follow
  by ``PATCH``;
  Telnyx sets ``completed_at`` itself (ours is ``finished_at``).
- event: Telnyx stamps ``timestamp`` on receipt, so ours goes in
  ``payload.local.created_at`` with ``payload.local.event_id``; the event id is the
  ``idempotency_key`` (a re-sent event is not logged twice).
- linked assistant: ``telnyx_agent_id`` is the assistant's Telnyx id (``provider_ref``).

Responses are wrapped in ``{"data": …}``; ``data`` unwraps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

#: Our field → Telnyx field, per record (the table above, for code).
FIELDS: dict[str, dict[str, str]] = {
    "mission": {
        "name": "name",
        "description": "description",
        "instructions": "instructions",
        "metadata": "metadata",
    },
    "run": {
        "status": "status",
        "result_summary": "result_summary",
        "result_payload": "result_payload",
        "error": "error",
        "metadata": "metadata",
    },
    "step": {
        "step_id": "step_id",
        "description": "description",
        "sequence": "sequence",
        "parent_step_id": "parent_step_id",
        "metadata": "metadata",
    },
    "event": {
        "type": "type",
        "summary": "summary",
        "step_id": "step_id",
        "agent_id": "agent_id",
        "payload": "payload",
    },
}
EXECUTION_MODE = "external"


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _mapped(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's fields under their Telnyx names, leaving out what is not set."""
    return {
        theirs: record[ours]
        for ours, theirs in FIELDS[kind].items()
        if record.get(ours) is not None
    }


def mission_body(mission: Mapping[str, Any]) -> dict[str, Any]:
    body = _mapped("mission", mission)
    body["metadata"] = {
        **(mission.get("metadata") or {}),
        "local_mission_id": mission["mission_id"],
    }
    body["execution_mode"] = EXECUTION_MODE
    return body


def run_create_body(run: Mapping[str, Any]) -> dict[str, Any]:
    return {"input": dict(run.get("input") or {}), "metadata": run_metadata(run)}


def run_metadata(run: Mapping[str, Any]) -> dict[str, Any]:
    local = {"local_run_id": run["run_id"], "local_created_at": _iso(run.get("created_at"))}
    return {**(run.get("metadata") or {}), **{k: v for k, v in local.items() if v is not None}}


def run_update_body(run: Mapping[str, Any], *, with_status: bool = True) -> dict[str, Any]:
    """The run's ``PATCH``; without ``status`` when Telnyx has it already (a finished run's
    status is not sent again with a late result)."""
    body = _mapped("run", run)
    body["metadata"] = run_metadata(run)
    if not with_status:
        body.pop("status", None)
    return body


def step_create_body(step: Mapping[str, Any]) -> dict[str, Any]:
    body = _mapped("step", step)
    body["sequence"] = int(step.get("sequence") or 0)
    return body


def step_update_body(step: Mapping[str, Any], *, with_status: bool = True) -> dict[str, Any]:
    body = {"status": step["status"], "metadata": dict(step.get("metadata") or {})}
    if not with_status:
        del body["status"]
    return body


def event_body(event: Mapping[str, Any]) -> dict[str, Any]:
    body = _mapped("event", event)
    local = {"event_id": event["event_id"], "created_at": _iso(event.get("created_at"))}
    body["payload"] = {**(event.get("payload") or {}), "local": local}
    body["idempotency_key"] = event["event_id"]
    return body


def data(body: Any) -> Any:
    """The ``data`` of a Telnyx response (``{"data": …}``); the body itself otherwise."""
    return body.get("data") if isinstance(body, dict) and "data" in body else body
