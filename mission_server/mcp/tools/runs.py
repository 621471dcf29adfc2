"""Mission and run tools: missions, runs, their status changes and run variables."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context as MCPContext
from pydantic import Field

from mission_server.mcp.models import (
    RunList,
    RunVariables,
    RunWaitResult,
)
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.mcp.tools.calls import (
    DEFAULT_WAIT_SECS,
    MAX_WAIT_SECS,
    progress_reporter,
    wait_secs,
)
from mission_server.services import missions as mission_service
from mission_server.services import plans, run_view
from mission_server.services.context import Context
from mission_server.services.missions import MissionPage
from mission_server.services.run_view import RunBrief, RunDetailLevel, RunView
from mission_server.services.schemas import (
    MissionOut,
    RunOut,
)
from state.transitions import TERMINAL_EVENT, TERMINAL_RUN, RunStatus

log = logging.getLogger(__name__)

#: The statuses update_run may move a run to (every status but pending).
RunStatusChange = Literal["running", "paused", "succeeded", "failed", "cancelled"]


def register(tools: ToolRegistrar, ctx: Context, poll_secs: float = 0.2) -> None:
    def create_mission(
        name: Annotated[str, Field(description="e.g. 'Corporate catering quotes'.")],
        instructions: Annotated[
            str | None, Field(description="What the mission must achieve, in full.")
        ] = None,
        description: Annotated[str | None, Field(description="One-line summary.")] = None,
        metadata: dict[str, Any] | None = None,
    ) -> MissionOut:
        """Create a mission: the reusable definition of a task (e.g. 'get catering quotes'),
        once per kind of task; then start_run for each execution."""
        return mission_service.create_mission(
            ctx, name=name, instructions=instructions, description=description, metadata=metadata
        )

    def list_missions(limit: LimitArg = None, cursor: CursorArg = None) -> MissionPage:
        """List missions, newest first.

        Pass next_cursor back as cursor (new missions: read page one again).
        """
        return mission_service.list_missions(ctx, limit=limit, cursor=cursor)

    def get_mission(mission_id: str) -> MissionOut:
        """Get one mission by id."""
        return mission_service.get_mission(ctx, mission_id)

    def start_run(
        mission_id: str,
        input: Annotated[
            dict[str, Any] | None,
            Field(description="The request's parameters, e.g. {'guests': 50}."),
        ] = None,
        metadata: dict[str, Any] | None = None,
    ) -> RunOut:
        """Start a run (one execution) of a mission; it is 'running' at once. Next:
        create_plan, then create_assistant with run_id so it is linked."""
        return mission_service.start_run(ctx, mission_id, input=input, metadata=metadata)

    def get_run(
        run_id: str,
        detail: RunDetailLevel = "compact",
    ) -> RunView:
        """Get a run. Compact (default, a few KB): status, awaiting_approval, variables (the
        best value so far), progress counts, each step's and call's status, result_summary
        once finished.

        detail='full' adds the input, result_payload, assistants, scheduled calls named by
        target (with attempts and calling-hours deferrals), conversations (transcripts,
        insight results) and events. To wait, use wait_for_run rather than polling this.
        """
        return run_view.get_run_view(ctx, run_id, detail)

    def list_runs(
        mission_id: Annotated[str | None, Field(description="Only runs of this mission.")] = None,
        status: RunStatus | None = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> RunList:
        """List runs, newest first, optionally of one mission and/or status.

        Pass next_cursor back as cursor (new runs: read page one again).
        """
        page = mission_service.list_runs(
            ctx, mission_id=mission_id, status=status, limit=limit, cursor=cursor
        )
        return RunList(runs=page, next_cursor=page.next_cursor)

    def update_run(
        run_id: str,
        status: Annotated[
            RunStatusChange | None,
            Field(description="A finished run's status cannot change."),
        ] = None,
        result_summary: Annotated[
            str | None, Field(description="For a human, markdown (tables welcome).")
        ] = None,
        result_payload: Annotated[
            dict[str, Any] | None,
            Field(
                description="The outcome as data, e.g. quotes, recommendation, conversation_ids."
            ),
        ] = None,
        error: str | None = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Merged into the run's metadata.")
        ] = None,
    ) -> RunOut:
        """Change a run's status and/or record its result. Finish a mission with
        status='succeeded', result_summary and result_payload. Cancelled, failed or succeeded
        cancels the run's pending calls; paused holds them."""
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
        run_id: str,
        reason: Annotated[
            str | None, Field(description="Why, recorded as the run's error.")
        ] = None,
    ) -> RunOut:
        """Cancel a run and its pending calls (finished calls stay recorded). Cannot be
        undone."""
        return mission_service.cancel_run(ctx, run_id, reason=reason)

    def pause_run(run_id: str) -> RunOut:
        """Pause a run: its pending calls are held (not placed) until resume_run."""
        return mission_service.pause_run(ctx, run_id)

    def resume_run(run_id: str) -> RunOut:
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
        run_id: str,
        variables: Annotated[
            dict[str, Any],
            Field(
                description="Name → string, number or boolean, e.g. {'best_quote': '$65 per "
                "person'}; null removes one."
            ),
        ],
    ) -> RunVariables:
        """Set interim values (e.g. best_quote), merged into the run's: every later call of
        the run gets them as dynamic variables (its own dynamic_variables win) for the
        assistant's {{best_quote}} placeholders and {{#best_quote}}…{{/best_quote}} sections.
        Use after each call's insights, before the next call.
        """
        merged = plans.set_run_variables(ctx, run_id, variables)
        return RunVariables(run_id=run_id, variables=merged)

    def get_run_variables(run_id: str) -> RunVariables:
        """Get the run's interim variables (see set_run_variables)."""
        return RunVariables(run_id=run_id, variables=plans.get_run_variables(ctx, run_id))

    async def wait_for_run(
        run_id: str,
        mcp_ctx: MCPContext,
        timeout_secs: Annotated[
            float | None,
            Field(
                description="Most wall-clock seconds to wait.",
                json_schema_extra={"minimum": 0, "maximum": MAX_WAIT_SECS},
            ),
        ] = DEFAULT_WAIT_SECS,
    ) -> RunWaitResult:
        """Wait until a run is finished (succeeded, failed or cancelled) or waits for
        approve_run, then return its compact view and result_payload.

        Sends progress notifications (calls placed and answered, the best value so far). If
        timeout_secs passes first it returns with timed_out=true: call again to keep waiting.
        Use after run_mission instead of polling get_run.
        """
        wait = wait_secs(timeout_secs)
        return await _wait_for_run(ctx, mcp_ctx, run_id, wait, poll_secs)

    tools.add(wait_for_run, title="Wait for run", read_only=True)
    tools.add(set_run_variables, title="Set run variables", destructive=True, idempotent=True)
    tools.add(get_run_variables, title="Get run variables", read_only=True)


def _progress_message(run: RunBrief) -> str:
    """One line on where a run stands: status, calls, and the best value so far."""
    calls = run.progress.calls
    finished = sum(calls.get(s, 0) for s in TERMINAL_EVENT)
    text = f"{run.status}"
    if run.awaiting_approval:
        text += " (awaiting approval)"
    text += (
        f"; calls: {finished} of {sum(calls.values())} finished, "
        f"{run.progress.attempts} attempts placed, {run.progress.answered} answered"
    )
    if run.variables:
        shown_vars = ", ".join(f"{k}={v}" for k, v in list(run.variables.items())[:4])
        text += f"; so far: {shown_vars}"
    return text


async def _wait_for_run(
    ctx: Context, mcp_ctx: MCPContext, run_id: str, wait: float, poll_secs: float
) -> RunWaitResult:
    started = time.monotonic()
    deadline = started + wait
    progress = progress_reporter(mcp_ctx, started, wait)

    def done(run: RunBrief) -> bool:
        return run.status in TERMINAL_RUN or run.awaiting_approval

    run = await anyio.to_thread.run_sync(run_view.brief, ctx, run_id)
    while True:
        await progress(_progress_message(run))
        now = time.monotonic()
        if done(run) or now >= deadline:
            break
        await anyio.sleep(min(poll_secs, max(0.0, deadline - now)))
        run = await anyio.to_thread.run_sync(run_view.brief, ctx, run_id)
    payload = None
    if run.status in TERMINAL_RUN:
        payload = (
            await anyio.to_thread.run_sync(mission_service.get_run_record, ctx, run_id)
        ).result_payload
    return RunWaitResult(
        **dict(run),
        result_payload=payload,
        terminal=run.status in TERMINAL_RUN,
        awaiting_approval_stop=run.awaiting_approval and run.status not in TERMINAL_RUN,
        timed_out=not done(run),
        waited_secs=round(time.monotonic() - started, 3),
        server_time=ctx.now(),
    )
