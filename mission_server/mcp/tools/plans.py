"""Plan and event tools: a run's plan steps and its event log."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import Field

from mission_server.mcp.models import (
    EventList,
    PlanOut,
    PlanStepSpec,
)
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.services import plans
from mission_server.services.context import Context
from mission_server.services.schemas import (
    EventOut,
    PlanStepOut,
)
from state.transitions import EventType, StepStatus

log = logging.getLogger(__name__)


def register(tools: ToolRegistrar, ctx: Context) -> None:
    def create_plan(
        run_id: Annotated[str, Field(description="The run's id.")],
        steps: Annotated[
            list[PlanStepSpec],
            Field(
                description="The steps in order, e.g. [{'step_id': 'create-assistant', "
                "'description': 'Create the negotiator assistant', 'sequence': 1}, …]."
            ),
        ],
    ) -> PlanOut:
        """Write the run's plan: all steps in one go (all or nothing). Every step starts
        'pending'.

        Plan before acting: a typical negotiation plan is create-assistant → baseline call →
        one leverage call per remaining business → compare-and-recommend. Returns the steps.
        """
        created = plans.create_plan(ctx, run_id, [s.model_dump(exclude_none=True) for s in steps])
        return PlanOut(run_id=run_id, steps=created)

    def add_plan_step(
        run_id: Annotated[str, Field(description="The run's id.")],
        step_id: Annotated[str, Field(description="Slug unique within the run.")],
        description: Annotated[str, Field(description="What the step does.")],
        sequence: Annotated[
            int | None, Field(strict=True, description="Order; omitted: after the last step.")
        ] = None,
        parent_step_id: Annotated[str | None, Field(description="Parent step, if any.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Key/values.")] = None,
    ) -> PlanStepOut:
        """Add one step to an existing plan (e.g. a follow-up call you decided on later)."""
        return plans.add_plan_step(
            ctx,
            run_id,
            step_id=step_id,
            description=description,
            sequence=sequence,
            parent_step_id=parent_step_id,
            metadata=metadata,
        )

    def update_plan_step(
        run_id: Annotated[str, Field(description="The run's id.")],
        step_id: Annotated[str, Field(description="The step to change.")],
        status: Annotated[
            StepStatus,
            Field(description="pending, in_progress, completed, skipped or failed."),
        ],
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Merged into the step's metadata.")
        ] = None,
    ) -> PlanStepOut:
        """Move a plan step to a new status. The matching event (step_started,
        step_completed, step_failed) is logged for you — do not log it again.

        Mark a step in_progress when you start it and completed/failed when done.
        """
        return plans.update_plan_step(ctx, run_id, step_id, status, metadata=metadata)

    def log_event(
        run_id: Annotated[str, Field(description="The run's id.")],
        type: Annotated[
            EventType,
            Field(
                description="status_change, step_started, step_completed, step_failed, "
                "tool_call, tool_result, message, error or custom."
            ),
        ],
        summary: Annotated[str, Field(description="One line for the audit trail.")],
        step_id: Annotated[str | None, Field(description="The step it belongs to.")] = None,
        agent_id: Annotated[str | None, Field(description="Who logged it.")] = None,
        payload: Annotated[dict[str, Any] | None, Field(description="Details as data.")] = None,
        idempotency_key: Annotated[
            str | None,
            Field(
                description="Makes retries safe: a repeated key returns the first event and "
                "writes nothing."
            ),
        ] = None,
    ) -> EventOut:
        """Append an event to the run's audit trail (decisions, findings, errors).

        Returns the event; with a repeated idempotency_key, the event first logged with it.
        """
        return plans.log_event(
            ctx,
            run_id,
            type,
            summary,
            step_id=step_id,
            agent_id=agent_id,
            payload=payload,
            idempotency_key=idempotency_key,
        )

    def list_events(
        run_id: Annotated[str, Field(description="The run's id.")],
        type: Annotated[EventType | None, Field(description="Only events of this type.")] = None,
        step_id: Annotated[str | None, Field(description="Only events of this step.")] = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> EventList:
        """List the run's events, oldest first: the audit trail of what happened, one page
        at a time.

        Pass next_cursor back as cursor for the next page. Events logged while you page appear on
        later pages, each exactly once.
        """
        page = plans.list_events(
            ctx, run_id, type=type, step_id=step_id, limit=limit, cursor=cursor
        )
        return EventList(run_id=run_id, events=page, next_cursor=page.next_cursor)

    tools.add(create_plan, title="Create plan")
    tools.add(add_plan_step, title="Add plan step")
    tools.add(update_plan_step, title="Update plan step", idempotent=True)
    tools.add(log_event, title="Log event")
    tools.add(list_events, title="List events", read_only=True)
