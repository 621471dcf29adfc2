"""The do-not-call list: targets that are never called or texted. A call already scheduled
to a listed target fails with error code ``do_not_call`` when it comes due.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mission_server.domain.targets import normalise_target
from mission_server.domain.validation import (
    optional_text,
)
from mission_server.services.context import Context
from mission_server.services.paging import MAX_LIMIT, Keyset, Page, every, page_limit
from mission_server.services.schemas import OutModel
from state import models as m
from state.db import session_scope


def is_do_not_call(session: Session, target: str) -> bool:
    return session.get(m.DoNotCall, target) is not None


class DoNotCallEntry(OutModel):
    """One entry of the do-not-call list."""

    target: str = Field(description="E.164 or SIP URI.")
    reason: str | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: m.DoNotCall) -> DoNotCallEntry:
        return cls(target=row.target, reason=row.reason, created_at=row.created_at)


def put_do_not_call(
    ctx: Context, target: str, reason: str | None = None
) -> tuple[DoNotCallEntry, bool]:
    """Put a number or SIP URI on the do-not-call list; return the entry and whether it was
    already there (then its first reason stays). Scheduling refuses the target from now on
    and the dispatcher checks the list before every placement, so calls already scheduled to
    it are not placed either.

    Raises:
        ValidationError: not a phone number or SIP URI; a reason that is not text.
    """
    normalised = normalise_target(target, "target")
    reason = optional_text(reason, "reason")
    with session_scope(ctx.engine) as session:
        row = session.get(m.DoNotCall, normalised)
        if row is not None:
            return DoNotCallEntry.of(row), True
        row = m.DoNotCall(target=normalised, reason=reason, created_at=ctx.now())
        session.add(row)
        try:
            session.flush()
        except IntegrityError:  # added concurrently: the other request's entry stands
            session.rollback()
            row = session.get(m.DoNotCall, normalised)
            if row is None:
                raise
            return DoNotCallEntry.of(row), True
        return DoNotCallEntry.of(row), False


def add_do_not_call(ctx: Context, target: str, reason: str | None = None) -> str:
    """Put a number or SIP URI on the do-not-call list (see ``put_do_not_call``); return it
    normalised.

    Raises:
        ValidationError.
    """
    entry, _already = put_do_not_call(ctx, target, reason)
    return entry.target


def remove_do_not_call(ctx: Context, target: str) -> bool:
    """Take a target off the list; False when it was not on it.

    Raises:
        ValidationError: not a phone number or SIP URI.
    """
    normalised = normalise_target(target, "target")
    with session_scope(ctx.engine) as session:
        row = session.get(m.DoNotCall, normalised)
        if row is None:
            return False
        session.delete(row)
        return True


def list_do_not_call(ctx: Context) -> list[str]:
    """Every listed target, in order."""
    return [entry.target for entry in do_not_call_entries(ctx)]


DO_NOT_CALL = Keyset("list_do_not_call", (col(m.DoNotCall.target), str))


def do_not_call_page(
    ctx: Context, limit: int | None = None, cursor: str | None = None
) -> Page[DoNotCallEntry]:
    """The do-not-call list in target order, ``limit`` per page (see ``services.paging``).

    Raises:
        ValidationError: limit out of range or a cursor not of this list.
    """
    limit = page_limit(limit)
    with session_scope(ctx.engine) as session:
        query = DO_NOT_CALL.apply(select(m.DoNotCall), cursor)
        rows = list(session.exec(query.limit(limit + 1)).all())
        return DO_NOT_CALL.page(rows, limit, lambda r: (r.target,)).map(DoNotCallEntry.of)


def do_not_call_entries(ctx: Context) -> list[DoNotCallEntry]:
    """The whole do-not-call list, in target order (all pages)."""
    return every(lambda cursor: do_not_call_page(ctx, limit=MAX_LIMIT, cursor=cursor))


def open_calls_to(ctx: Context, target: str) -> int:
    """How many scheduled events to ``target`` (already normalised) are pending or in
    progress."""
    with session_scope(ctx.engine) as session:
        return len(
            session.exec(
                select(m.ScheduledEvent.scheduled_event_id).where(
                    m.ScheduledEvent.telnyx_end_user_target == target,
                    col(m.ScheduledEvent.status).in_(("pending", "in_progress")),
                )
            ).all()
        )
