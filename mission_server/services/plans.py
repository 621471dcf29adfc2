"""A run's plan steps, its event log and its variables (the Missions API semantics).

Every function takes the service ``Context`` first, validates its input before writing
anything, and writes in one transaction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mission_server.domain.guardrails import refuse_finished_run
from mission_server.domain.validation import (
    require_choice,
    require_int,
    require_mapping,
    require_slug,
    require_text,
)
from mission_server.errors import ValidationError
from mission_server.services.context import Context
from mission_server.services.paging import MAX_LIMIT, Keyset, Page, every, page_limit
from mission_server.services.schemas import (
    EventOut,
    PlanStepOut,
)
from state import models as m
from state.db import session_scope
from state.errors import NotFound
from state.repo import append_event, load_run
from state.transitions import (
    EVENT_TYPES,
    STEP_STATUSES,
    STEP_TRANSITIONS,
    check_transition,
)
from state.types import new_id

# --------------------------------------------------------------------------- plan steps


class StepInput(BaseModel):
    step_id: str
    description: str
    sequence: int | None = None
    parent_step_id: str | None = None
    metadata: dict[str, Any] | None = None


def _validate_step(step: StepInput | dict[str, Any], index: int | None) -> StepInput:
    prefix = f"steps[{index}]." if index is not None else ""
    if isinstance(step, dict):
        unknown = set(step) - set(StepInput.model_fields)
        if unknown:
            raise ValidationError(f"{prefix}{sorted(unknown)[0]}", "is not a plan step field", step)
        if "step_id" not in step:
            raise ValidationError(f"{prefix}step_id", "is required", show_value=False)
        if "description" not in step:
            raise ValidationError(f"{prefix}description", "is required", show_value=False)
        step = StepInput(**step)
    require_slug(step.step_id, f"{prefix}step_id")
    require_text(step.description, f"{prefix}description", max_length=2000)
    if step.sequence is not None:
        require_int(step.sequence, f"{prefix}sequence", minimum=0, maximum=100_000)
    if step.parent_step_id is not None:
        require_slug(step.parent_step_id, f"{prefix}parent_step_id")
    require_mapping(step.metadata, f"{prefix}metadata")
    return step


def create_plan(
    ctx: Context, run_id: str, steps: list[dict[str, Any]] | list[StepInput]
) -> list[PlanStepOut]:
    """Add the run's plan steps in one go (all or nothing).

    Raises:
        NotFound: unknown run. ValidationError: bad step, duplicate step_id, unknown parent.
    """
    if not isinstance(steps, list) or not steps:
        raise ValidationError("steps", "must be a non-empty list of steps", steps)
    parsed = [_validate_step(s, i) for i, s in enumerate(steps)]
    ids = [s.step_id for s in parsed]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ValidationError("steps", "must have unique step_id values", duplicates)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        run = conn.execute(sa_select(_RUNS.c.status).where(_RUNS.c.run_id == run_id)).first()
        if run is None:
            raise NotFound("run", run_id)
        refuse_finished_run(run_id, run.status, "change its plan")
        existing: dict[str, int] = {
            step_id: sequence
            for step_id, sequence in conn.execute(
                sa_select(_STEPS.c.step_id, _STEPS.c.sequence).where(_STEPS.c.run_id == run_id)
            )
        }
        clash = sorted(set(ids) & set(existing))
        if clash:
            raise ValidationError("steps", "must not repeat step_ids already in the plan", clash)
        known = set(existing) | set(ids)
        start = max(existing.values(), default=0)
        rows: list[dict[str, Any]] = []
        for index, step in enumerate(parsed):
            if step.parent_step_id and step.parent_step_id not in known:
                raise ValidationError(
                    f"steps[{index}].parent_step_id",
                    "must name a step of this plan",
                    step.parent_step_id,
                )
            rows.append(
                {
                    "run_id": run_id,
                    "step_id": step.step_id,
                    "description": step.description.strip(),
                    "sequence": step.sequence if step.sequence is not None else start + index + 1,
                    "parent_step_id": step.parent_step_id,
                    "status": "pending",
                    "metadata": step.metadata or {},
                    "created_at": now,
                    "updated_at": now,
                    "started_at": None,
                    "finished_at": None,
                }
            )
        # Core inserts: a plan of 10,000 steps is one statement, not 10,000 ORM objects.
        conn.execute(insert(_STEPS), rows)
        conn.execute(
            _INSERT_EVENTS,
            [
                _event_row(
                    run_id,
                    "custom",
                    f"Plan created with {len(rows)} steps",
                    now,
                    payload={"steps": ids},
                )
            ],
        )
    return [
        PlanStepOut(
            step_id=r["step_id"],
            description=r["description"],
            sequence=r["sequence"],
            parent_step_id=r["parent_step_id"],
            status="pending",
            metadata=r["metadata"],
            updated_at=now,
        )
        for r in sorted(rows, key=lambda r: r["sequence"])
    ]


def add_plan_step(
    ctx: Context,
    run_id: str,
    step_id: str,
    description: str,
    sequence: int | None = None,
    parent_step_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> PlanStepOut:
    """Append one step to a run's plan. Raises: NotFound, ValidationError."""
    step = StepInput(
        step_id=step_id,
        description=description,
        sequence=sequence,
        parent_step_id=parent_step_id,
        metadata=metadata,
    )
    return create_plan(ctx, run_id, [step])[0]


_STEP_EVENT = {
    "in_progress": "step_started",
    "completed": "step_completed",
    "failed": "step_failed",
}


def update_plan_step(
    ctx: Context,
    run_id: str,
    step_id: str,
    status: str,
    metadata: dict[str, Any] | None = None,
) -> PlanStepOut:
    """Move a plan step to ``status`` and log the matching step event
    (step_started, step_completed, step_failed; custom for skipped/pending).

    Raises:
        NotFound, IllegalTransition, ValidationError.
    """
    checked = check_step_moves([(step_id, status, metadata)])
    with ctx.engine.begin() as conn:
        move_steps(conn, run_id, checked, ctx.now())
        row = conn.execute(_STEP_ROW, {"m_run": run_id, "m_step": step_id}).one()._mapping
    return PlanStepOut(
        step_id=row["step_id"],
        description=row["description"],
        sequence=row["sequence"],
        parent_step_id=row["parent_step_id"],
        status=row["status"],
        metadata=row["metadata"] or {},
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        updated_at=row["updated_at"],
    )


def update_plan_steps(
    ctx: Context,
    run_id: str,
    moves: list[tuple[str, str, dict[str, Any] | None]],
    *,
    keep_finished: bool = False,
) -> None:
    """``update_plan_step`` for each ``(step_id, status, metadata)``, in one transaction (all
    or nothing). ``keep_finished``: a step already completed, skipped or failed is left as it
    is instead of being an illegal move.

    Raises:
        NotFound, IllegalTransition, ValidationError.
    """
    checked = check_step_moves(moves)
    if not checked:
        return
    with ctx.engine.begin() as conn:
        move_steps(conn, run_id, checked, ctx.now(), keep_finished=keep_finished)


def check_step_moves(
    moves: list[tuple[str, str, dict[str, Any] | None]],
) -> list[tuple[str, str, dict[str, Any] | None]]:
    """The moves validated (status, metadata), before anything is written.

    Raises:
        ValidationError.
    """
    checked = []
    for step_id, status, metadata in moves:
        require_choice(status, "status", STEP_STATUSES)
        meta = require_mapping(metadata, "metadata") if metadata is not None else None
        checked.append((step_id, status, meta))
    return checked


def move_steps(
    session: Session | Connection,
    run_id: str,
    checked: list[tuple[str, str, dict[str, Any] | None]],
    now: Any,
    *,
    keep_finished: bool = False,
) -> None:
    """Apply moves checked by ``check_step_moves`` in the caller's session (its transaction),
    in order: each checked against the step transitions, its times and metadata set, and a
    step event logged when its status changes; the rows are read and written with a few
    statements whatever the number of moves.

    Raises:
        NotFound, IllegalTransition.
    """
    if not checked:
        return
    conn = _connection(session)
    ids = sorted({step_id for step_id, _, _ in checked})
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        for row in conn.execute(_STEPS_OF, {"m_run": run_id, "m_steps": ids[start : start + 500]}):
            rows[row.step_id] = dict(row._mapping)
    changed_rows: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for step_id, status, meta in checked:
        step = rows.get(step_id)
        if step is None:
            require_run(conn, run_id)
            raise NotFound("plan step", f"{run_id}/{step_id}")
        if keep_finished and step["status"] in _FINISHED:
            continue
        check_transition("plan step", step_id, STEP_TRANSITIONS, step["status"], status)
        changed = step["status"] != status
        step["status"] = status
        if status == "in_progress" and step["started_at"] is None:
            step["started_at"] = now
        if status in _FINISHED:
            step["finished_at"] = now
        if meta is not None:
            step["metadata"] = {**(step["metadata"] or {}), **meta}
        changed_rows[step_id] = step
        if changed:
            events.append(
                _event_row(
                    run_id,
                    _STEP_EVENT.get(status, "custom"),
                    f"Step {step_id} {status.replace('_', ' ')}: {step['description']}",
                    now,
                    step_id=step_id,
                    payload={"status": status, **({"metadata": meta} if meta else {})},
                )
            )
    if changed_rows:
        conn.execute(
            _MOVE_STEP,
            [
                {
                    "b_id": r["id"],
                    "b_status": r["status"],
                    "b_metadata": r["metadata"],
                    "b_started_at": r["started_at"],
                    "b_finished_at": r["finished_at"],
                    "b_updated_at": now,
                }
                for r in changed_rows.values()
            ],
        )
    if events:
        conn.execute(_INSERT_EVENTS, events)


_FINISHED = frozenset({"completed", "skipped", "failed"})
_STEPS = m.PlanStep.__table__  # type: ignore[attr-defined]
_EVENTS = m.Event.__table__  # type: ignore[attr-defined]
# ``move_steps``' statements, built once (a planner step moves steps several times a second,
# and building a statement and its cache key costs about as much as running it).
_STEPS_OF = sa_select(
    _STEPS.c.id,
    _STEPS.c.step_id,
    _STEPS.c.description,
    _STEPS.c.status,
    _STEPS.c["metadata"],
    _STEPS.c.started_at,
    _STEPS.c.finished_at,
).where(
    _STEPS.c.run_id == bindparam("m_run"),
    _STEPS.c.step_id.in_(bindparam("m_steps", expanding=True)),
)
_MOVE_STEP = (
    update(_STEPS)
    .where(_STEPS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        metadata=bindparam("b_metadata"),
        started_at=bindparam("b_started_at"),
        finished_at=bindparam("b_finished_at"),
        updated_at=bindparam("b_updated_at"),
    )
)
_INSERT_EVENTS = insert(_EVENTS)
_STEP_ROW = sa_select(_STEPS).where(
    _STEPS.c.run_id == bindparam("m_run"), _STEPS.c.step_id == bindparam("m_step")
)


def _connection(session: Session | Connection) -> Connection:
    return session if isinstance(session, Connection) else session.connection()


def require_run(conn: Any, run_id: str) -> None:
    """Raises: NotFound unless the run exists (one column read on ``conn``)."""
    if conn.execute(_RUN_EXISTS, {"r_run": run_id}).first() is None:
        raise NotFound("run", run_id)


_RUNS = m.Run.__table__  # type: ignore[attr-defined]
_RUN_EXISTS = sa_select(_RUNS.c.run_id).where(_RUNS.c.run_id == bindparam("r_run"))
_KEYS_LOGGED = sa_select(_EVENTS.c.idempotency_key).where(
    _EVENTS.c.run_id == bindparam("k_run"),
    _EVENTS.c.idempotency_key.in_(bindparam("k_keys", expanding=True)),
)


def _event_row(
    run_id: str,
    type: str,
    summary: str,
    now: Any,
    *,
    step_id: str | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """One row of the event log, as ``state.repo.append_event`` writes it."""
    return {
        "event_id": new_id(),
        "run_id": run_id,
        "type": type,
        "summary": summary,
        "step_id": step_id,
        "agent_id": None,
        "payload": payload or {},
        "idempotency_key": idempotency_key,
        "created_at": now,
    }


def get_plan(ctx: Context, run_id: str) -> list[PlanStepOut]:
    """Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        load_run(session, run_id)
        steps = session.exec(
            select(m.PlanStep)
            .where(m.PlanStep.run_id == run_id)
            .order_by(col(m.PlanStep.sequence), col(m.PlanStep.id))
        ).all()
        return [PlanStepOut.of(s) for s in steps]


# --------------------------------------------------------------------------- events


def log_event(
    ctx: Context,
    run_id: str,
    type: str,
    summary: str,
    step_id: str | None = None,
    agent_id: str | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> EventOut:
    """Append an event to the run's log. A repeated ``idempotency_key`` returns the first
    event and writes nothing.

    Raises:
        NotFound, ValidationError.
    """
    require_choice(type, "type", EVENT_TYPES)
    summary = require_text(summary, "summary", max_length=5000)
    payload = require_mapping(payload, "payload")
    if idempotency_key is not None:
        idempotency_key = require_text(idempotency_key, "idempotency_key")
    now = ctx.now()
    try:
        with session_scope(ctx.engine) as session:
            load_run(session, run_id)
            if idempotency_key is not None:
                existing = _event_by_key(session, run_id, idempotency_key)
                if existing is not None:
                    return EventOut.of(existing)
            event = append_event(
                session,
                run_id,
                type,
                summary,
                now,
                step_id=step_id,
                agent_id=agent_id,
                payload=payload,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # Another writer logged the same key between our check and insert.
        with session_scope(ctx.engine) as session:
            existing = _event_by_key(session, run_id, idempotency_key or "")
            if existing is None:
                raise
            return EventOut.of(existing)
    return EventOut.of(event)


def log_events(ctx: Context, run_id: str, events: list[dict[str, Any]]) -> int:
    """``log_event`` for each event (``type``, ``summary``, optionally ``step_id``,
    ``payload``, ``idempotency_key``), in one transaction; an idempotency key already in the
    log (or earlier in the batch) writes nothing. Returns how many were written.

    Raises:
        NotFound, ValidationError.
    """
    checked = check_events(events)
    if not checked:
        return 0
    with ctx.engine.begin() as conn:
        require_run(conn, run_id)
        return append_events(conn, run_id, checked, ctx.now())


def check_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events validated, before anything is written. Raises: ValidationError."""
    checked: list[dict[str, Any]] = []
    for event in events:
        require_choice(event["type"], "type", EVENT_TYPES)
        key = event.get("idempotency_key")
        checked.append(
            {
                "type": event["type"],
                "summary": require_text(event["summary"], "summary", max_length=5000),
                "step_id": event.get("step_id"),
                "payload": require_mapping(event.get("payload"), "payload"),
                "idempotency_key": None if key is None else require_text(key, "idempotency_key"),
            }
        )
    return checked


def append_events(
    session: Session | Connection, run_id: str, checked: list[dict[str, Any]], now: Any
) -> int:
    """Append events checked by ``check_events`` in the caller's session (its transaction),
    skipping the idempotency keys already logged; return how many were written."""
    conn = _connection(session)
    keys = [e["idempotency_key"] for e in checked if e["idempotency_key"] is not None]
    seen: set[str] = set()
    for start in range(0, len(keys), 500):
        seen.update(
            k
            for (k,) in conn.execute(
                _KEYS_LOGGED, {"k_run": run_id, "k_keys": keys[start : start + 500]}
            )
            if k is not None
        )
    rows: list[dict[str, Any]] = []
    for event in checked:
        key = event["idempotency_key"]
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        rows.append(
            _event_row(
                run_id,
                event["type"],
                event["summary"],
                now,
                step_id=event["step_id"],
                payload=event["payload"],
                idempotency_key=key,
            )
        )
    if rows:
        conn.execute(_INSERT_EVENTS, rows)
    return len(rows)


def _event_by_key(session: Session, run_id: str, key: str) -> m.Event | None:
    return session.exec(
        select(m.Event).where(m.Event.run_id == run_id, m.Event.idempotency_key == key)
    ).first()


EVENTS = Keyset("list_events", (col(m.Event.seq), int))


def list_events(
    ctx: Context,
    run_id: str,
    type: str | None = None,
    step_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[EventOut]:
    """The run's events, oldest first (in the order they were logged), ``limit`` per page;
    events logged while a client pages appear on later pages (see ``services.paging``).

    Raises: NotFound, ValidationError.
    """
    limit = page_limit(limit)
    if type is not None:
        require_choice(type, "type", EVENT_TYPES)
    scope = (run_id, type, step_id)
    with session_scope(ctx.engine) as session:
        load_run(session, run_id)
        query = select(m.Event).where(m.Event.run_id == run_id)
        if type:
            query = query.where(m.Event.type == type)
        if step_id:
            query = query.where(m.Event.step_id == step_id)
        rows = list(session.exec(EVENTS.apply(query, cursor, scope).limit(limit + 1)))
        return EVENTS.page(rows, limit, lambda e: (e.seq,), scope).map(EventOut.of)


def all_events(ctx: Context, run_id: str) -> list[EventOut]:
    """Every event of the run, oldest first (all pages). Raises: NotFound."""
    return every(lambda cursor: list_events(ctx, run_id, limit=MAX_LIMIT, cursor=cursor))


# --------------------------------------------------------------------------- variables


def set_run_variables(ctx: Context, run_id: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Merge interim values (e.g. ``best_quote``) into the run's variables; every later
    dispatch of the run's calls receives them. A value of null removes the variable.

    Raises:
        NotFound, ValidationError.
    """
    variables = require_mapping(variables, "variables")
    for key, value in variables.items():
        if not key or "{" in key or "}" in key or " " in key:
            raise ValidationError("variables", "keys must be names without spaces or braces", key)
        if isinstance(value, dict | list):
            raise ValidationError(f"variables.{key}", "must be a string, number or boolean", value)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        run = conn.execute(RUN_VARIABLES, {"r_run": run_id}).first()
        if run is None:
            raise NotFound("run", run_id)
        refuse_finished_run(run_id, run.status, "set run variables")
        merged = dict(run.variables or {})
        for key, value in variables.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        conn.execute(_SET_VARIABLES, {"r_run": run_id, "r_variables": merged, "r_now": now})
        conn.execute(
            _INSERT_EVENTS,
            [
                _event_row(
                    run_id,
                    "custom",
                    "Run variables set: " + ", ".join(sorted(variables)),
                    now,
                    payload={"variables": variables},
                )
            ],
        )
    return merged


#: A run's status and variables (``r_run``).
RUN_VARIABLES = sa_select(_RUNS.c.status, _RUNS.c.variables).where(
    _RUNS.c.run_id == bindparam("r_run")
)
_SET_VARIABLES = (
    update(_RUNS)
    .where(_RUNS.c.run_id == bindparam("r_run"))
    .values(variables=bindparam("r_variables"), updated_at=bindparam("r_now"))
)


def get_run_variables(ctx: Context, run_id: str) -> dict[str, Any]:
    """Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        return dict(load_run(session, run_id).variables or {})
