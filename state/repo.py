"""Record access shared by every use case: get-or-raise loaders and the event log.

These functions work inside a caller's session and never commit; the caller's transaction
decides. Inputs are trusted (the service validated them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, col, select

from state import models as m
from state.errors import NotFound

Row = TypeVar("Row", bound=SQLModel)


def get_or_raise(session: Session, model: type[Row], key: str, kind: str) -> Row:
    """The row of ``model`` with primary key ``key``. Raises: NotFound naming ``kind``."""
    row = session.get(model, key)
    if row is None:
        raise NotFound(kind, key)
    return row


def load_run(session: Session, run_id: str) -> m.Run:
    return get_or_raise(session, m.Run, run_id, "run")


def load_mission(session: Session, mission_id: str) -> m.Mission:
    return get_or_raise(session, m.Mission, mission_id, "mission")


def load_assistant(session: Session, assistant_id: str) -> m.Assistant:
    return get_or_raise(session, m.Assistant, assistant_id, "assistant")


def load_event(session: Session, scheduled_event_id: str) -> m.ScheduledEvent:
    return get_or_raise(session, m.ScheduledEvent, scheduled_event_id, "scheduled event")


def append_event(
    session: Session,
    run_id: str,
    type: str,
    summary: str,
    now: datetime,
    *,
    step_id: str | None = None,
    agent_id: str | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> m.Event:
    """Add an event to the run's log in the session (the caller commits)."""
    event = m.Event(
        run_id=run_id,
        type=type,
        summary=summary,
        step_id=step_id,
        agent_id=agent_id,
        payload=payload or {},
        idempotency_key=idempotency_key,
        created_at=now,
    )
    session.add(event)
    return event


def attempts_by_event(session: Session, event_ids: list[str]) -> dict[str, list[m.CallAttempt]]:
    """Each scheduled event's call attempts, in attempt order."""
    if not event_ids:
        return {}
    grouped: dict[str, list[m.CallAttempt]] = {}
    for attempt in session.exec(
        select(m.CallAttempt)
        .where(col(m.CallAttempt.scheduled_event_id).in_(event_ids))
        .order_by(col(m.CallAttempt.attempt_number))
    ):
        grouped.setdefault(attempt.scheduled_event_id, []).append(attempt)
    return grouped


def telnyx_id(session: Session, kind: str, local_id: str) -> m.TelnyxId | None:
    """The Telnyx id recorded for our ``kind`` record ``local_id``, if any."""
    return session.get(m.TelnyxId, (kind, local_id))


def record_telnyx_id(
    session: Session,
    kind: str,
    local_id: str,
    remote_id: str,
    now: datetime,
    fingerprint: str | None = None,
) -> m.TelnyxId:
    """Record (or replace) the Telnyx id of our ``kind`` record ``local_id``."""
    row = session.get(m.TelnyxId, (kind, local_id))
    if row is None:
        row = m.TelnyxId(kind=kind, local_id=local_id, telnyx_id=remote_id, created_at=now)
    row.telnyx_id = remote_id
    row.fingerprint = fingerprint
    row.updated_at = now
    session.add(row)
    session.flush()
    return row
