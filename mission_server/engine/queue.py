"""The lease queue over ``scheduled_events``: every statement that claims, records or releases a
due call under a lease, and the next time any call needs attention.

The ``scheduled_events`` table is the outbox and the source of truth:

- ``claim`` takes due rows atomically under a lease — one ``UPDATE … WHERE id IN (SELECT … FOR
  UPDATE SKIP LOCKED) RETURNING`` on PostgreSQL, the same under SQLite's single writer
  (``BEGIN IMMEDIATE``). The claim is the durable mark that the attempt may go out: a row
  whose previous lease expired unreleased is marked ``recovered`` (its holder may have placed
  the attempt before dying), and stays so through every release until the provider has been
  asked (``find_attempt``); a row released after a create that may have reached the provider
  is written ``recovered`` too.
- ``record`` writes every result of a batch in one transaction (the event rows, attempts,
  conversations, transcripts and run events) and releases the leases in the same ``UPDATE``;
  it releases holds that a run resumed or approved meanwhile no longer justifies.
- ``next_due`` is the earliest due time (or lease end) of any unheld, unfinished row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    String,
    bindparam,
    case,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine

from mission_server.domain.guardrails import HOLD_AWAITING_APPROVAL, HOLD_PAUSED, PAUSED_RUN
from state import models as m
from state.db import reader
from state.types import UTCDateTime

EVENTS = m.ScheduledEvent.__table__
ATTEMPTS = m.CallAttempt.__table__
RUNS = m.Run.__table__
CONVERSATIONS = m.Conversation.__table__
MESSAGES = m.Message.__table__
RUN_EVENTS = m.Event.__table__
PACING = m.DialPacing.__table__


class Recordable(Protocol):
    """What the act phase decided for one claimed row (``dispatcher._Work``)."""

    @property
    def row(self) -> Mapping[str, Any]: ...
    @property
    def claimed(self) -> Mapping[str, Any]: ...
    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def attempt(self) -> dict[str, Any] | None: ...
    @property
    def conversation(self) -> dict[str, Any] | None: ...
    @property
    def messages(self) -> Sequence[dict[str, Any]]: ...
    @property
    def run_events(self) -> Sequence[tuple[str, str, dict[str, Any]]]: ...


def claim(
    engine: Engine,
    *,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    batch_size: int,
    postgres: bool,
    limits: DialLimits | None = None,
) -> list[dict[str, Any]]:
    """Lease up to ``batch_size`` rows due at ``now`` to ``worker_id`` until ``lease_until``
    (reckoned from the clock's time at the claim, not from when a long sweep began: a lease
    already expired when it is written would let a second worker place the row too); the
    rows, by due time.

    With ``limits`` (the account's concurrent calls and dial pace), a call still to be dialled
    is claimed only while a line is free and its dial slot has come: the claim locks the one
    ``dial_pacing`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
    already excludes every other writer), counts the calls in progress and the calls leased
    for dialling, and takes the pace slots in the same transaction. Rows left behind stay
    pending, untouched: no attempt is charged."""
    with engine.begin() as conn:
        if limits is None or not limits.active:
            rows = _take(conn, worker_id, now, lease_until, batch_size, postgres)
        else:
            rows = _claim_limited(conn, worker_id, now, lease_until, batch_size, postgres, limits)
    rows.sort(key=lambda r: r["due_at"])
    return rows


@dataclass(frozen=True)
class DialLimits:
    """The account's limits on calls (``Settings``): at most ``max_calls`` in progress at
    once, and one dial every ``interval_secs``; None is no limit."""

    max_calls: int | None = None
    interval_secs: float | None = None

    @property
    def active(self) -> bool:
        return self.max_calls is not None or self.interval_secs is not None


_PHONE = EVENTS.c.telnyx_conversation_channel == "phone_call"
#: A phone call still to be dialled: the rows the limits hold back.
_TO_DIAL = (EVENTS.c.status == "pending") & _PHONE
#: Rows not finished and not held.
_UNFINISHED = (
    EVENTS.c.status.in_(("pending", "in_progress")),
    EVENTS.c.hold_reason.is_(None),
)


# The claimed rows are read with the driver's own values for the JSON, timestamp and boolean
# columns (SQLAlchemy's result processors cost more than the rest of a claim), then decoded
# here: JSON text, SQLite's timestamp text and 0/1, or what PostgreSQL's driver already made.
_JSON = {c.name for c in EVENTS.c if isinstance(c.type, JSON)}
_BOOLS = {c.name for c in EVENTS.c if isinstance(c.type, Boolean)}
_STAMPS = {c.name for c in EVENTS.c if isinstance(c.type, UTCDateTime)}
_RETURNED = [
    type_coerce(c, String()).label(c.name) if c.name in _JSON | _BOOLS | _STAMPS else c
    for c in EVENTS.c
]
_NAMES = [c.name for c in EVENTS.c]
#: JSON text most rows hold, decoded without the parser (a fresh object each time).
_EMPTY: dict[str, Any] = {"{}": dict, "[]": list, "null": lambda: None}


#: Columns the act phase only reads, which a campaign's rows share: decoded once per distinct
#: text, and handed out shared (the zones as a tuple). Never change them in place.
_SHARED = {"timezones", "calling_window"}
_decoded_shared: dict[str, Any] = {}


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for name in _JSON:
        value = row[name]
        if not isinstance(value, str):
            continue
        if name in _SHARED:
            found = _decoded_shared.get(value)
            if found is None:
                found = json.loads(value)
                if isinstance(found, list):
                    found = tuple(found)
                if len(_decoded_shared) < 10_000:
                    _decoded_shared[value] = found
            row[name] = found
            continue
        empty = _EMPTY.get(value)
        row[name] = empty() if empty is not None else json.loads(value)
    for name in _STAMPS:
        value = row[name]
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        row[name] = as_utc(value)
    for name in _BOOLS:
        value = row[name]
        if value is not None:
            row[name] = bool(value)
    return row


@lru_cache(maxsize=16)
def _claim_statement(postgres: bool, to_dial: bool | None) -> Any:
    """The claim of ``_take``: lease to ``:claim_owner`` until ``:claim_until`` the ids of up
    to ``:claim_limit`` unheld, unleased rows due at ``:claim_now``, by due time; ``to_dial``
    narrows it to the calls still to be dialled (True) or to every other row (False).

    Built once per shape, so that SQLAlchemy computes its cache key once too."""
    narrow = () if to_dial is None else ((_TO_DIAL,) if to_dial else (~_TO_DIAL,))
    now = bindparam("claim_now", type_=UTCDateTime())
    due = (
        select(EVENTS.c.scheduled_event_id)
        .where(
            *_UNFINISHED,
            EVENTS.c.due_at <= now,
            (EVENTS.c.lease_expires_at.is_(None)) | (EVENTS.c.lease_expires_at <= now),
            *narrow,
        )
        .order_by(EVENTS.c.due_at)
        .limit(bindparam("claim_limit", type_=Integer()))
    )
    if postgres:
        due = due.with_for_update(skip_locked=True)
    return (
        update(EVENTS)
        .where(EVENTS.c.scheduled_event_id.in_(due.scalar_subquery()))
        .values(
            # SET expressions see the old row: an unreleased lease means its holder died,
            # perhaps after placing; a row released as recovered had a create go unanswered.
            recovered=EVENTS.c.lease_owner.is_not(None) | EVENTS.c.recovered,
            lease_owner=bindparam("claim_owner", type_=String()),
            lease_expires_at=bindparam("claim_until", type_=UTCDateTime()),
        )
        .returning(*_RETURNED)
    )


def _take(
    conn: Any,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    postgres: bool,
    to_dial: bool | None = None,
) -> list[dict[str, Any]]:
    """Lease to ``worker_id`` until ``lease_until`` up to ``limit`` rows due at ``now``, by
    due time (``_claim_statement``); the rows as they now are."""
    result = conn.execute(
        _claim_statement(postgres, to_dial),
        {
            "claim_now": now,
            "claim_limit": limit,
            "claim_owner": worker_id,
            "claim_until": lease_until,
        },
    )
    return [_decoded(dict(zip(_NAMES, row, strict=True))) for row in result]


def _claim_limited(
    conn: Any,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    batch_size: int,
    postgres: bool,
    limits: DialLimits,
) -> list[dict[str, Any]]:
    next_dial = _lock_pacing(conn)
    # Calls in progress and texts are never held back.
    rows = _take(conn, worker_id, now, lease_until, batch_size, postgres, to_dial=False)
    room = batch_size - len(rows)
    if limits.max_calls is not None:
        room = min(room, limits.max_calls - _lines_in_use(conn, now))
    if limits.interval_secs is not None and next_dial is not None and next_dial > now:
        room = 0
    if limits.interval_secs is not None:
        # One dial per slot, and slots do not pile up while nothing is dialled: a paced
        # claim takes at most one call to dial.
        room = min(room, 1)
    if room <= 0:
        return rows
    dialled = _take(conn, worker_id, now, lease_until, room, postgres, to_dial=True)
    if dialled and limits.interval_secs is not None:
        start = now if next_dial is None else max(as_utc(next_dial) or now, now)
        slot = start + timedelta(seconds=limits.interval_secs * len(dialled))
        conn.execute(update(PACING).where(PACING.c.pacing_id == 1).values(next_dial_at=slot))
    return rows + dialled


_PACING_LOCK = select(PACING.c.next_dial_at).where(PACING.c.pacing_id == 1).with_for_update()


def _lock_pacing(conn: Any) -> datetime | None:
    """Lock the ``dial_pacing`` row (creating it the first time) for this transaction; the
    next dial slot it holds."""
    found = conn.execute(_PACING_LOCK).first()
    if found is None:
        conn.execute(_insert_missing_pacing(conn))
        found = conn.execute(_PACING_LOCK).first()
    return as_utc(found[0]) if found is not None else None


def _insert_missing_pacing(conn: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(PACING).values(pacing_id=1).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(PACING).values(pacing_id=1).on_conflict_do_nothing()


#: Phone calls in progress, and calls leased for dialling at ``:lines_now`` (a claim may be
#: placing them). The statements of this module are built once (their cache keys too).
_LINES_IN_USE = (
    select(func.count())
    .select_from(EVENTS)
    .where(
        _PHONE
        & (
            (EVENTS.c.status == "in_progress")
            | (
                (EVENTS.c.status == "pending")
                & EVENTS.c.lease_owner.is_not(None)
                & (EVENTS.c.lease_expires_at > bindparam("lines_now", type_=UTCDateTime()))
            )
        )
    )
)


def _lines_in_use(conn: Any, now: datetime) -> int:
    """Phone calls in progress, and calls leased for dialling (a claim may be placing them)."""
    return int(conn.execute(_LINES_IN_USE, {"lines_now": now}).scalar_one())


_lease_end = EVENTS.c.lease_expires_at
#: When a row needs attention: its due time, or the end of a lease held past it.
_ATTENTION = case(
    (_lease_end.is_not(None) & (_lease_end > EVENTS.c.due_at), _lease_end),
    else_=EVENTS.c.due_at,
)
_NEXT_LEASE_TO_DIAL = select(func.min(_lease_end)).where(
    *_UNFINISHED, _TO_DIAL, EVENTS.c.lease_owner.is_not(None)
)
_NEXT_SLOT = select(PACING.c.next_dial_at).where(PACING.c.pacing_id == 1)
#: Rows looked at in due order before the exact aggregate is asked instead (see ``_earliest``).
_WALK = 16


@cache
def _walk_and_min(status: str, channel: bool | None) -> tuple[Any, Any]:
    where = [EVENTS.c.status == status, EVENTS.c.hold_reason.is_(None)]
    if channel is not None:
        where.append(_PHONE if channel else ~_PHONE)
    walk = select(EVENTS.c.due_at, _lease_end).where(*where).order_by(EVENTS.c.due_at)
    return walk.limit(_WALK), select(func.min(_ATTENTION)).where(*where)


def _earliest(conn: Connection, status: str, phone: bool | None = None) -> datetime | None:
    """The earliest attention time (``_ATTENTION``) of the unheld rows in ``status`` (only
    phone calls, or only the others, with ``phone``), without reading them all: the rows are
    walked in due order on the claim index (status, due_at), and since a row needs attention
    at its due time or later, the walk ends at the first row due no earlier than the best
    found. A walk that does not end within ``_WALK`` rows (many leases held past their due
    time, or rows of the other channel) asks the exact aggregate."""
    walk, exact = _walk_and_min(status, phone)
    rows: list[tuple[datetime, datetime | None]] = [tuple(r) for r in conn.execute(walk)]
    best: datetime | None = None
    for due_value, lease_value in rows:
        due = as_utc(due_value)
        assert due is not None  # due_at is NOT NULL
        if best is not None and due >= best:
            return best
        lease = as_utc(lease_value)
        attention = lease if lease is not None and lease > due else due
        if best is None or attention < best:
            best = attention
    if len(rows) < _WALK:
        return best
    return as_utc(conn.execute(exact).scalar())


def _earliest_of(*moments: datetime | None) -> datetime | None:
    found = [t for t in moments if t is not None]
    return min(found) if found else None


def next_due(
    engine: Engine, limits: DialLimits | None = None, now: datetime | None = None
) -> datetime | None:
    """The earliest time any unheld, unfinished row needs attention: its due time, or the end
    of its lease when another worker holds it past that (a row leased by a live or dead worker
    cannot be claimed before the lease ends).

    With ``limits``, a call waiting to be dialled needs attention at its dial slot at the
    earliest, and while every line is in use (at ``now``) only when a lease held for dialling
    ends; the calls in progress, which free the lines, are looked at as ever.

    Its cost does not grow with the rows waiting (``_earliest``)."""
    with reader(engine).connect() as conn:
        in_progress = _earliest(conn, "in_progress")
        if limits is None or not limits.active:
            return _earliest_of(in_progress, _earliest(conn, "pending"))
        now = now or datetime.now(UTC)
        found = [in_progress, _earliest(conn, "pending", phone=False)]
        if limits.max_calls is not None and _lines_in_use(conn, now) >= limits.max_calls:
            found.append(as_utc(conn.execute(_NEXT_LEASE_TO_DIAL).scalar()))
        else:
            waiting = _earliest(conn, "pending", phone=True)
            if waiting is not None and limits.interval_secs is not None:
                slot = as_utc(conn.execute(_NEXT_SLOT).scalar())
                if slot is not None and slot > waiting:
                    waiting = slot
            found.append(waiting)
    return _earliest_of(*found)


_INSERT_ATTEMPTS = insert(ATTEMPTS)
_INSERT_CONVERSATIONS = insert(CONVERSATIONS)
_INSERT_MESSAGES = insert(MESSAGES)
_INSERT_RUN_EVENTS = insert(RUN_EVENTS)
#: Which of the conversations ``:ids`` are already recorded.
_CONVERSATIONS_FOUND = select(CONVERSATIONS.c.conversation_id).where(
    CONVERSATIONS.c.conversation_id.in_(bindparam("ids", expanding=True))
)


def record(engine: Engine, worker_id: str, work: Sequence[Recordable], now: datetime) -> None:
    """Write the batch's results in one transaction and release ``worker_id``'s leases."""
    updates = [_event_values(item, now) for item in work]
    if not updates:
        return
    attempts = [i.attempt for i in work if i.attempt]
    conversations = [i.conversation for i in work if i.conversation]
    messages = [msg for i in work for msg in i.messages]
    run_events = [
        {
            "event_id": str(uuid.uuid4()),
            "run_id": i.row["run_id"],
            "type": kind,
            "summary": summary,
            "step_id": i.row["step_id"],
            "agent_id": None,
            "payload": payload,
            "idempotency_key": None,
            "created_at": now,
        }
        for i in work
        if i.row["run_id"]
        for kind, summary, payload in i.run_events
    ]
    held = [u["b_id"] for u in updates if u.get("hold_reason")]
    # One executemany per set of changed columns (a batch has a few): only what changed is
    # written, and every row's lease is released.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in updates:
        groups.setdefault(tuple(sorted(values)), []).append(values)
    with engine.begin() as conn:
        for columns, group in groups.items():
            conn.execute(_release(worker_id, columns), group)
        if held:
            # A run resumed or approved after this batch read it has already released its
            # calls; the holds just written must not outlive that (nothing would ever
            # release them again).
            conn.execute(_RELEASE_STALE_HOLDS, {"held": held})
        if attempts:
            conn.execute(_INSERT_ATTEMPTS, attempts)
        if conversations:
            ids = [c["conversation_id"] for c in conversations]
            existing = set(conn.execute(_CONVERSATIONS_FOUND, {"ids": ids}).scalars())
            fresh = [c for c in conversations if c["conversation_id"] not in existing]
            if fresh:
                conn.execute(_INSERT_CONVERSATIONS, fresh)
                fresh_ids = {c["conversation_id"] for c in fresh}
                fresh_messages = [x for x in messages if x["conversation_id"] in fresh_ids]
                if fresh_messages:
                    conn.execute(_INSERT_MESSAGES, fresh_messages)
        if run_events:
            conn.execute(_INSERT_RUN_EVENTS, run_events)


#: The columns the act phase may change.
_WRITTEN = (
    "status",
    "telnyx_agent_target",
    "due_at",
    "scheduled_at_fixed_datetime",
    "current_attempt",
    "in_flight_call_control_id",
    "in_flight_placed_at",
    "in_flight_context",
    "conversation_id",
    "call_status",
    "errors",
    "deferrals",
    "hold_reason",
    "recovered",
)


def _event_values(item: Recordable, now: datetime) -> dict[str, Any]:
    """The parameter set of one row's ``_release`` update: the columns of ``_WRITTEN`` in
    which the act phase's row differs from the row as claimed."""
    row, claimed = item.row, item.claimed
    values = {name: row[name] for name in _WRITTEN}
    values.update(item.values)
    changed = {
        name: value
        for name, value in values.items()
        if name not in claimed or claimed[name] != value
    }
    changed.update({"b_id": row["scheduled_event_id"], "updated_at": now})
    return changed


@lru_cache(maxsize=64)
def _release(worker_id: str, columns: tuple[str, ...]) -> Any:
    """Write one row's ``columns`` and release its lease, where ``worker_id`` still holds
    it."""
    del columns  # part of the cache key: the SET columns come from the parameter sets' keys
    return (
        update(EVENTS)
        .where(EVENTS.c.scheduled_event_id == bindparam("b_id"))
        .where(EVENTS.c.lease_owner == worker_id)
        .values(lease_owner=None, lease_expires_at=None)
    )


def _release_stale_holds() -> Any:
    """Clear the hold of each of the events ``:held`` whose run no longer holds its calls.

    The hold rule of ``domain.guardrails.hold_reason`` in SQL, per written hold: a ``paused``
    hold stands while the run is paused, an ``awaiting_approval`` hold while the run requires
    an approval it does not have. Change both together.
    """
    still_held = (
        select(RUNS.c.run_id)
        .where(RUNS.c.run_id == EVENTS.c.run_id)
        .where(
            ((EVENTS.c.hold_reason == HOLD_PAUSED) & (RUNS.c.status == PAUSED_RUN))
            | (
                (EVENTS.c.hold_reason == HOLD_AWAITING_APPROVAL)
                & RUNS.c.approval_required.is_(True)
                & RUNS.c.approved_at.is_(None)
            )
        )
        .exists()
    )
    return (
        update(EVENTS)
        .where(
            EVENTS.c.scheduled_event_id.in_(bindparam("held", expanding=True)),
            EVENTS.c.hold_reason.is_not(None),
        )
        .where(~still_held)
        .values(hold_reason=None)
    )


_RELEASE_STALE_HOLDS = _release_stale_holds()


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC (a naive value is taken to be UTC already)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
