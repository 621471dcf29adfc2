"""The planner's MCP tools: ``run_mission`` hands a whole mission to the planner graph and
``approve_run`` answers a run that waits for approval. Both call the same service functions
as ``mission run`` and ``mission approve``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from mission_server.engine.runner import MissionRunner
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.services.context import Context
from mission_server.services.missions import get_run_record
from mission_server.services.schemas import RunOut


def register(tools: ToolRegistrar, ctx: Context, runner: Callable[[], MissionRunner]) -> None:
    """Add ``run_mission`` and ``approve_run``, which drive the mission runner ``runner()``
    gives (created on first use)."""

    def run_mission(
        spec: Annotated[
            dict[str, Any] | str | None,
            Field(
                description="A mission spec, object or YAML/JSON text: name, objective, "
                "strategy (sequential_leverage or parallel), assistant {name, instructions, "
                "greeting}, targets [{name, phone, timezone?, notes?}], extract [{name, type, "
                "required?, description?, enum?}], leverage {field, variable, better: lower|"
                "higher}, retry {max_retries_client_errors, retry_interval_secs}, "
                "calling_window, require_approval. This or request."
            ),
        ] = None,
        request: Annotated[
            str | None,
            Field(
                description="The mission in plain language, e.g. 'Call Lakefront Catering "
                "+13125550101 for a lunch quote for 50'. Without an LLM it must list targets "
                "with phone numbers."
            ),
        ] = None,
        require_approval: Annotated[
            bool | None,
            Field(
                description="Hold every call until approve_run (overrides the spec's "
                "require_approval)."
            ),
        ] = None,
    ) -> RunOut:
        """Run a whole mission autonomously: the planner creates the mission, run, plan,
        assistant and number, schedules each target's call (in calling hours, with retries),
        carries the best result so far into later calls, extracts insights and writes a
        result summary and payload.

        Returns the run at once ('running'): follow it with wait_for_run or get_run. With
        require_approval, nothing is dispatched until approve_run.
        """
        run_id = runner().start(spec, request, require_approval)
        return get_run_record(ctx, run_id)

    def approve_run(
        run_id: str,
        approved: bool,
        note: Annotated[str | None, Field(description="Why, recorded in the run's events.")] = None,
    ) -> RunOut:
        """Approve or reject a run started with require_approval, which places no call until
        approved (awaiting_approval; its status stays, e.g. running). Rejection cancels it."""
        return runner().approve(run_id, approved, note)

    tools.add(run_mission, title="Run mission", open_world=True)
    tools.add(approve_run, title="Approve run", destructive=True)
