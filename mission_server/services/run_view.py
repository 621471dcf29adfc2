"""What an agent reads about a run while it waits: ``get_run``'s compact view, and the full one.

The compact view (the default) is what a poll needs and stays small whatever the run did:
status, timing, the interim variables (the best value so far), counts of steps, calls, attempts
and answered calls, one line per plan step and per call (the first ``BRIEF_LIMIT`` of each),
and the result summary once there is one. It is read with a handful of aggregate selects: no
transcript, insight or event row is loaded. ``detail="full"`` adds every field of
``missions.get_run`` (the input, result payload, assistants, calls with their attempts and
deferrals, conversations with transcripts and insights, the event log).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select

from mission_server.domain.validation import require_choice
from mission_server.services.context import Context
from mission_server.services.missions import (
    RunCallOut,
    RunConversationOut,
    RunDetail,
    _call_target_name,
    _target_names,
    get_run,
)
from mission_server.services.schemas import (
    AssistantOut,
    EventOut,
    OutModel,
    PlanStepOut,
    awaiting_approval,
)
from state import models as m
from state.db import reader
from state.errors import NotFound

#: How many plan steps and calls the compact view names one by one (the counts cover all).
BRIEF_LIMIT = 25

RunDetailLevel = Literal["compact", "full"]
DETAIL_LEVELS = ("compact", "full")


class RunProgress(OutModel):
    """Counts over the whole run."""

    steps: dict[str, int] = Field(description="Plan steps per status.")
    calls: dict[str, int] = Field(description="Calls and SMS per status.")
    attempts: int = Field(description="Call attempts placed, retries included.")
    answered: int  # calls answered


class StepBrief(OutModel):
    step_id: str
    status: str


class CallBrief(OutModel):
    scheduled_event_id: str
    target_name: str | None = None
    to: str  # telnyx_end_user_target
    status: str
    call_status: str | None = None
    attempts: int
    next_at: datetime | None = Field(default=None, description="Due time (pending calls only).")
    conversation_id: str | None = None


class RunBrief(OutModel):
    """A run in brief: what a poll or a wait needs."""

    run_id: str
    mission_id: str
    mission_name: str
    status: str
    awaiting_approval: bool  # no call is placed until approve_run (that tool says so)
    error: str | None = None
    created_at: datetime  # service clock, like every time but recorded_at
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime
    variables: dict[str, Any]  # interim values, e.g. best_quote (the tool says it)
    result_summary: str | None = None
    progress: RunProgress
    # compact only
    steps: list[StepBrief] | None = Field(
        default=None, description=f"Compact view: the first {BRIEF_LIMIT}."
    )
    calls: list[CallBrief] | None = Field(
        default=None, description=f"Compact view: the first {BRIEF_LIMIT}, in time order."
    )


class RunView(RunBrief):
    """A run: the compact fields always, the full ones with ``detail='full'``."""

    detail: RunDetailLevel  # which view this is
    # full only: every field of the run detail
    input: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    result_payload: dict[str, Any] | None = None
    call_budget: int | None = None
    calls_placed: int | None = None
    approval_required: bool | None = None
    approved_at: datetime | None = None
    recorded_at: datetime | None = Field(default=None, description="Wall clock.")
    plan: list[PlanStepOut] | None = None
    assistants: list[AssistantOut] | None = None
    scheduled_calls: list[RunCallOut] | None = None
    conversations: list[RunConversationOut] | None = None
    events: list[EventOut] | None = None


def get_run_view(ctx: Context, run_id: str, detail: str = "compact") -> RunView:
    """The run as ``get_run`` shows it: compact by default, or ``detail='full'``.

    Raises:
        NotFound: unknown run.
        ValidationError: ``detail`` is neither 'compact' nor 'full'.
    """
    require_choice(detail, "detail", DETAIL_LEVELS)
    if detail == "full":
        full = get_run(ctx, run_id)
        return RunView(detail="full", progress=progress_of(full), **dict(full))
    return compact_view(ctx, run_id)


def progress_of(run: RunDetail) -> RunProgress:
    """The counts of a full detail (the same numbers the compact view selects)."""
    steps: dict[str, int] = {}
    for step in run.plan:
        steps[step.status] = steps.get(step.status, 0) + 1
    calls: dict[str, int] = {}
    for call in run.scheduled_calls:
        calls[call.status] = calls.get(call.status, 0) + 1
    return RunProgress(
        steps=steps,
        calls=calls,
        attempts=sum(len(c.call_attempts) for c in run.scheduled_calls),
        answered=len(run.conversations),
    )


_runs, _missions = m.Run.__table__, m.Mission.__table__  # type: ignore[attr-defined]
_steps, _events = m.PlanStep.__table__, m.ScheduledEvent.__table__  # type: ignore[attr-defined]
_attempts, _talks = m.CallAttempt.__table__, m.Conversation.__table__  # type: ignore[attr-defined]


def compact_view(ctx: Context, run_id: str) -> RunView:
    """The compact view (``brief`` as a ``RunView``).

    Raises:
        NotFound: unknown run.
    """
    return RunView(detail="compact", **dict(brief(ctx, run_id)))


def _brief_statements() -> tuple[Any, ...]:
    """The compact view's statements, built once (a statement built per call costs more than
    running it)."""
    run_id = bindparam("run_id")

    def has(table: Any) -> Any:
        return sa_select(table.c.run_id).where(table.c.run_id == _runs.c.run_id).exists()

    run = (
        sa_select(
            _runs,
            _missions.c.name.label("mission_name"),
            has(_events).label("has_calls"),
            has(_talks).label("has_conversations"),
        )
        .select_from(_runs.outerjoin(_missions, _missions.c.mission_id == _runs.c.mission_id))
        .where(_runs.c.run_id == run_id)
    )
    steps = (
        sa_select(_steps.c.step_id, _steps.c.status)
        .where(_steps.c.run_id == run_id)
        .order_by(_steps.c.sequence, _steps.c.id)
    )
    tried = (
        sa_select(_attempts.c.scheduled_event_id, func.count().label("n"))
        .join(_events, _events.c.scheduled_event_id == _attempts.c.scheduled_event_id)
        .where(_events.c.run_id == run_id)
        .group_by(_attempts.c.scheduled_event_id)
        .subquery()
    )
    joined = _events.outerjoin(tried, tried.c.scheduled_event_id == _events.c.scheduled_event_id)
    counts = (
        sa_select(
            _events.c.status,
            func.count().label("calls"),
            func.coalesce(func.sum(tried.c.n), 0).label("tries"),
        )
        .select_from(joined)
        .where(_events.c.run_id == run_id)
        .group_by(_events.c.status)
    )
    calls = (
        sa_select(
            _events.c.scheduled_event_id,
            _events.c.status,
            _events.c.call_status,
            _events.c.telnyx_end_user_target,
            _events.c.conversation_metadata,
            _events.c.dynamic_variables,
            _events.c.scheduled_at_fixed_datetime,
            _events.c.conversation_id,
            func.coalesce(tried.c.n, 0).label("attempts"),
        )
        .select_from(joined)
        .where(_events.c.run_id == run_id)
        .order_by(
            _events.c.scheduled_at_fixed_datetime,
            _events.c.created_at,
            _events.c.scheduled_event_id,
        )
        .limit(BRIEF_LIMIT)
    )
    answered = sa_select(func.count()).select_from(_talks).where(_talks.c.run_id == run_id)
    return run, steps, counts, calls, answered


_BRIEF_RUN, _BRIEF_STEPS, _BRIEF_COUNTS, _BRIEF_CALLS, _BRIEF_ANSWERED = _brief_statements()


def brief(ctx: Context, run_id: str) -> RunBrief:
    """The compact view, read with aggregate selects (no transcript, insight or event rows;
    two selects for a run without calls).

    Raises:
        NotFound: unknown run.
    """
    params = {"run_id": run_id}
    by_status: dict[str, int] = {}
    attempts = answered = 0
    calls: list[Any] = []
    with reader(ctx.engine).connect() as conn:
        run = conn.execute(_BRIEF_RUN, params).first()
        if run is None:
            raise NotFound("run", run_id)
        if run.mission_name is None:
            raise NotFound("mission", run.mission_id)
        steps = conn.execute(_BRIEF_STEPS, params).all()
        if run.has_calls:
            for row in conn.execute(_BRIEF_COUNTS, params):
                by_status[row.status] = row.calls
                attempts += row.tries
            calls = list(conn.execute(_BRIEF_CALLS, params).all())
        if run.has_conversations:
            answered = conn.execute(_BRIEF_ANSWERED, params).scalar_one()
        conn.rollback()  # read only
    named = _target_names(run.input or {})
    step_counts: dict[str, int] = {}
    for step in steps:
        step_counts[step.status] = step_counts.get(step.status, 0) + 1
    return RunBrief(
        run_id=run.run_id,
        mission_id=run.mission_id,
        mission_name=run.mission_name,
        status=run.status,
        awaiting_approval=awaiting_approval(run),
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        updated_at=run.updated_at,
        variables=run.variables or {},
        result_summary=run.result_summary,
        progress=RunProgress(
            steps=step_counts, calls=by_status, attempts=attempts, answered=answered
        ),
        steps=[StepBrief(step_id=s.step_id, status=s.status) for s in steps[:BRIEF_LIMIT]],
        calls=[
            CallBrief(
                scheduled_event_id=c.scheduled_event_id,
                target_name=_call_target_name(c, named),
                to=c.telnyx_end_user_target,
                status=c.status,
                call_status=c.call_status,
                attempts=c.attempts,
                next_at=c.scheduled_at_fixed_datetime if c.status == "pending" else None,
                conversation_id=c.conversation_id,
            )
            for c in calls
        ],
    )
