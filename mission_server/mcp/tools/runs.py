"""Mission and run tools: missions, runs, their status changes and run variables."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import Field

from mission_server.mcp.models import (
    RunList,
    RunVariables,
)
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.services import missions as mission_service
from mission_server.services import plans
from mission_server.services.context import Context
from mission_server.services.missions import MissionPage, RunDetail
from mission_server.services.schemas import (
    MissionOut,
    RunOut,
)
from state.transitions import RunStatus

log = logging.getLogger(__name__)

#: The statuses update_run may move a run to (every status but pending).
RunStatusChange = Literal["running", "paused", "succeeded", "failed", "cancelled"]


def register(tools: ToolRegistrar, ctx: Context) -> None:
    def create_mission(
        name: Annotated[str, Field(description="Short name, e.g. 'Corporate catering quotes'.")],
        instructions: Annotated[
            str | None, Field(description="What the mission must achieve, in full.")
        ] = None,
        description: Annotated[str | None, Field(description="One-line summary.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Free-form key/values.")
        ] = None,
    ) -> MissionOut:
        """Create a mission: the reusable definition of a task (e.g. 'get catering quotes').

        Use once per kind of task, then start_run for each execution. Returns the mission with
        its mission_id.
        """
        return mission_service.create_mission(
            ctx, name=name, instructions=instructions, description=description, metadata=metadata
        )

    def list_missions(limit: LimitArg = None, cursor: CursorArg = None) -> MissionPage:
        """List missions, newest first, one page at a time.

        Pass next_cursor back as cursor for the next page. New missions
        are not seen (read page one again).
        """
        return mission_service.list_missions(ctx, limit=limit, cursor=cursor)

    def get_mission(
        mission_id: Annotated[str, Field(description="The mission's id.")],
    ) -> MissionOut:
        """Get one mission by id."""
        return mission_service.get_mission(ctx, mission_id)

    def start_run(
        mission_id: Annotated[str, Field(description="The mission to run.")],
        input: Annotated[
            dict[str, Any] | None,
            Field(description="The request's parameters, e.g. {'guests': 50, 'city': 'Chicago'}."),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Free-form key/values.")
        ] = None,
    ) -> RunOut:
        """Start a run (one execution) of a mission; it is 'running' at once.

        Next: create_plan for the run, then create the assistant with run_id so it is linked.
        Returns the run with its run_id.
        """
        return mission_service.start_run(ctx, mission_id, input=input, metadata=metadata)

    def get_run(run_id: Annotated[str, Field(description="The run's id.")]) -> RunDetail:
        """Get a run with everything it touched: status (and awaiting_approval), input,
        variables, result, its plan steps, linked assistants (with their numbers), scheduled
        calls in time order and named by target (with call_attempts and calling-hours
        deferrals), conversations (with transcripts and insight results) and its events.

        Use it to see where a mission stands.
        """
        return mission_service.get_run(ctx, run_id)

    def list_runs(
        mission_id: Annotated[str | None, Field(description="Only runs of this mission.")] = None,
        status: Annotated[
            RunStatus | None,
            Field(
                description="Only runs with this status: pending, running, paused, "
                "succeeded, failed or cancelled."
            ),
        ] = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> RunList:
        """List runs, newest first, optionally of one mission and/or one status, one page at
        a time.

        Pass next_cursor back as cursor for the next page. New runs are
        not seen (read page one again).
        """
        page = mission_service.list_runs(
            ctx, mission_id=mission_id, status=status, limit=limit, cursor=cursor
        )
        return RunList(runs=page, next_cursor=page.next_cursor)

    def update_run(
        run_id: Annotated[str, Field(description="The run's id.")],
        status: Annotated[
            RunStatusChange | None,
            Field(
                description="New status: running, paused, succeeded, failed or cancelled. "
                "Finished runs (succeeded, failed, cancelled) cannot change status."
            ),
        ] = None,
        result_summary: Annotated[
            str | None,
            Field(description="The outcome for a human, markdown (tables welcome)."),
        ] = None,
        result_payload: Annotated[
            dict[str, Any] | None,
            Field(
                description="The outcome as data, e.g. quotes per business, the "
                "recommendation, conversation_ids."
            ),
        ] = None,
        error: Annotated[str | None, Field(description="Why the run failed.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Merged into the run's metadata.")
        ] = None,
    ) -> RunOut:
        """Change a run's status and/or record its result.

        Finish a mission with status='succeeded', result_summary and result_payload. Moving to
        cancelled, failed or succeeded cancels the run's pending calls; paused holds them.
        """
        return mission_service.update_run(
            ctx,
            run_id,
            status=status,
            result_summary=result_summary,
            result_payload=result_payload,
            error=error,
            metadata=metadata,
        )

    def cancel_run(
        run_id: Annotated[str, Field(description="The run's id.")],
        reason: Annotated[
            str | None, Field(description="Why, recorded as the run's error.")
        ] = None,
    ) -> RunOut:
        """Cancel a run and every pending call of it (calls already finished stay recorded).
        Cannot be undone."""
        return mission_service.cancel_run(ctx, run_id, reason=reason)

    def pause_run(run_id: Annotated[str, Field(description="The run's id.")]) -> RunOut:
        """Pause a run: its pending calls are held (not placed) until resume_run."""
        return mission_service.pause_run(ctx, run_id)

    def resume_run(run_id: Annotated[str, Field(description="The run's id.")]) -> RunOut:
        """Resume a paused run: its held calls become due again."""
        return mission_service.resume_run(ctx, run_id)

    tools.add(create_mission, title="Create mission")
    tools.add(list_missions, title="List missions", read_only=True)
    tools.add(get_mission, title="Get mission", read_only=True)
    tools.add(start_run, title="Start run")
    tools.add(get_run, title="Get run", read_only=True)
    tools.add(list_runs, title="List runs", read_only=True)
    tools.add(update_run, title="Update run", destructive=True, idempotent=True)
    tools.add(cancel_run, title="Cancel run", destructive=True, idempotent=True)
    tools.add(pause_run, title="Pause run", idempotent=True)
    tools.add(resume_run, title="Resume run", idempotent=True)

    def set_run_variables(
        run_id: Annotated[str, Field(description="The run's id.")],
        variables: Annotated[
            dict[str, Any],
            Field(
                description="Name → string, number or boolean, e.g. {'best_quote': '$65 per "
                "person from Lakefront Catering'}. null removes a variable."
            ),
        ],
    ) -> RunVariables:
        """Set interim values (e.g. best_quote) that every later call of the run receives as
        dynamic variables — the assistant's {{best_quote}} placeholders and
        {{#best_quote}}…{{/best_quote}} sections. Merged into the existing variables.

        Use after each call's insights, before the next call is placed.
        """
        merged = plans.set_run_variables(ctx, run_id, variables)
        return RunVariables(run_id=run_id, variables=merged)

    def get_run_variables(
        run_id: Annotated[str, Field(description="The run's id.")],
    ) -> RunVariables:
        """Get the run's interim variables (see set_run_variables)."""
        return RunVariables(run_id=run_id, variables=plans.get_run_variables(ctx, run_id))

    tools.add(set_run_variables, title="Set run variables", destructive=True, idempotent=True)
    tools.add(get_run_variables, title="Get run variables", read_only=True)
