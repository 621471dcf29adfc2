"""The read-only ``mission://`` resources.

The list resources (missions, a run's events and calls) are read one page at a time, like the
list tools: ``?cursor=…&limit=…`` query parameters (RFC 6570 ``{?cursor,limit}``), and the
JSON carries ``next_cursor``. ``mission://missions`` itself is the first page.
"""

from __future__ import annotations

import logging

from mcp.server.mcpserver import MCPServer

from mission_server.errors import ValidationError
from mission_server.mcp.errors import as_resource
from mission_server.mcp.models import (
    EventList,
    MissionDetail,
    PlanOut,
    ScheduledCallList,
)
from mission_server.mcp.views import (
    as_json,
    conversation_detail,
    run_result_markdown,
)
from mission_server.services import missions as mission_service
from mission_server.services import plans
from mission_server.services import scheduling as scheduling_service
from mission_server.services.context import Context
from mission_server.services.paging import DEFAULT_LIMIT, MAX_LIMIT

log = logging.getLogger(__name__)

PAGE_RANGE = f"1..{MAX_LIMIT} (default {DEFAULT_LIMIT})"


def _limit(value: str | None) -> int | None:
    """A ``limit`` query parameter as a number (the service checks its range).

    Raises:
        ValidationError: naming ``limit``, when it is not a whole number.
    """
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise ValidationError("limit", "must be an integer", value)
    if len(value) > 6:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}", value)
    return int(value)


def register_resources(server: MCPServer, ctx: Context) -> None:
    json_type = "application/json"

    @server.resource(
        "mission://missions",
        name="missions",
        title="Missions",
        description="The newest missions, one page (JSON, like list_missions); its "
        "next_cursor names the next page: mission://missions?cursor=….",
        mime_type=json_type,
    )
    @as_resource
    def missions_resource() -> str:
        return as_json(mission_service.list_missions(ctx))

    @server.resource(
        "mission://missions{?cursor,limit}",
        name="missions-page",
        title="Missions (a page)",
        description="One page of missions, newest first (JSON, like list_missions): cursor is "
        f"the previous page's next_cursor, limit {PAGE_RANGE}.",
        mime_type=json_type,
    )
    @as_resource
    def missions_page_resource(cursor: str | None = None, limit: str | None = None) -> str:
        return as_json(mission_service.list_missions(ctx, limit=_limit(limit), cursor=cursor))

    @server.resource(
        "mission://missions/{mission_id}",
        name="mission",
        title="Mission",
        description="One mission with its 50 newest runs (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def mission_resource(mission_id: str) -> str:
        mission = mission_service.get_mission(ctx, mission_id)
        runs = mission_service.list_runs(ctx, mission_id=mission_id, limit=50)
        return as_json(MissionDetail(**mission.model_dump(), runs=runs))

    @server.resource(
        "mission://runs/{run_id}",
        name="run",
        title="Run",
        description="A run with its plan, assistants, scheduled calls (attempts, deferrals), "
        "conversations (transcripts, insight results) and events (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def run_resource(run_id: str) -> str:
        return as_json(mission_service.get_run(ctx, run_id))

    @server.resource(
        "mission://runs/{run_id}/plan",
        name="run-plan",
        title="Run plan",
        description="The run's plan steps in order, with status (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def plan_resource(run_id: str) -> str:
        return as_json(PlanOut(run_id=run_id, steps=plans.get_plan(ctx, run_id)))

    @server.resource(
        "mission://runs/{run_id}/events{?cursor,limit}",
        name="run-events",
        title="Run events",
        description="The run's audit trail, oldest first, one page (JSON, like list_events): "
        f"cursor is the previous page's next_cursor, limit {PAGE_RANGE}.",
        mime_type=json_type,
    )
    @as_resource
    def events_resource(run_id: str, cursor: str | None = None, limit: str | None = None) -> str:
        events = plans.list_events(ctx, run_id, limit=_limit(limit), cursor=cursor)
        return as_json(EventList(run_id=run_id, events=events, next_cursor=events.next_cursor))

    @server.resource(
        "mission://runs/{run_id}/calls{?cursor,limit}",
        name="run-calls",
        title="Run calls",
        description="The run's scheduled calls with call_attempts and deferrals, in the order "
        "they were scheduled, one page (JSON, like list_scheduled_calls): cursor is the "
        f"previous page's next_cursor, limit {PAGE_RANGE}.",
        mime_type=json_type,
    )
    @as_resource
    def calls_resource(run_id: str, cursor: str | None = None, limit: str | None = None) -> str:
        plans.get_run_variables(ctx, run_id)  # unknown run → not found, not []
        calls = scheduling_service.list_scheduled_events(
            ctx, run_id=run_id, limit=_limit(limit), cursor=cursor
        )
        return as_json(ScheduledCallList(scheduled_calls=calls, next_cursor=calls.next_cursor))

    @server.resource(
        "mission://runs/{run_id}/result",
        name="run-result",
        title="Run result",
        description="The run's result_summary (markdown) followed by its result_payload.",
        mime_type="text/markdown",
    )
    @as_resource
    def result_resource(run_id: str) -> str:
        return run_result_markdown(mission_service.get_run(ctx, run_id))

    @server.resource(
        "mission://conversations/{conversation_id}",
        name="conversation",
        title="Conversation",
        description="A conversation's transcript and insight results (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def conversation_resource(conversation_id: str) -> str:
        return as_json(conversation_detail(ctx, conversation_id))
