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
        run_id: str,
        steps: Annotated[
            list[PlanStepSpec],
            Field(
                description="In order, e.g. [{'step_id': 'create-assistant', 'description': "
                "'Create the negotiator assistant'}, …]."
            ),
        ],
    ) -> PlanOut:
        """Write the run's plan: all steps in one go (all or nothing), each 'pending'.

        Plan before acting: a typical negotiation plan is create-assistant → baseline call →
        one leverage call per remaining business → compare-and-recommend.
        """
        created = plans.create_plan(ctx, run_id, [s.model_dump(exclude_none=True) for s in steps])
        return PlanOut(run_id=run_id, steps=created)

    def add_plan_step(
        run_id: str,
        step_id: Annotated[str, Field(description="Slug unique in the run.")],
        description: Annotated[str, Field(description="One line.")],
        sequence: Annotated[
            int | None, Field(strict=True, description="Order; omitted: after the last step.")
        ] = None,
        parent_step_id: str | None = None,
        metadata: dict[str, Any] | None = None,
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
        run_id: str,
        step_id: str,
        status: StepStatus,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Merged into the step's.")
        ] = None,
    ) -> PlanStepOut:
        """Move a plan step to a new status: in_progress when you start it, completed or
        failed when done. The matching event (step_started, …) is logged for you: do not log
        it again."""
        return plans.update_plan_step(ctx, run_id, step_id, status, metadata=metadata)

    def log_event(
        run_id: str,
        type: EventType,
        summary: Annotated[str, Field(description="One line.")],
        step_id: str | None = None,
        agent_id: str | None = None,
        payload: dict[str, Any] | None = None,
        idempotency_key: Annotated[
            str | None,
            Field(description="A repeated key returns the first event and writes nothing."),
        ] = None,
    ) -> EventOut:
        """Append an event to the run's audit trail (decisions, findings, errors)."""
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
        run_id: str,
        type: EventType | None = None,
        step_id: str | None = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> EventList:
        """List the run's events (its audit trail), oldest first.

        Pass next_cursor back as cursor; events logged meanwhile appear on later pages.
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
