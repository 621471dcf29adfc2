"""The mirror of our missions to the Telnyx Missions API (the Telnyx Portal shows them).

Every mission, run event, change of a run's status, result or metadata, and assistant linked
to a run, written while the mirror is on, has a row in ``telnyx_outbox``
(``state.outbox.capture_outbox``, same transaction). ``deliver_due`` sends them:

- each lane in order: a run's rows in the order they were written, each row only once the one
  before it is delivered (or has failed for good);
- a run's row (an event or a change of the run) first brings the run's mirror up to date (the
  mission, the run with its status, result summary, payload and error, its plan steps, its
  linked assistants), then logs the event, so Telnyx never shows an event ahead of its run;
- every Telnyx id is kept in ``telnyx_mirror_ids`` as soon as Telnyx answers; a create that
  went unanswered is looked up before it is sent again, and events carry an idempotency key;
- a failure Telnyx may get over (5xx, 429, timeouts) is retried with exponential backoff
  through the service clock, ``MAX_ATTEMPTS`` times in all; a refusal (4xx) fails the row at
  once. A failed row is kept, with its error, and ``requeue_failed`` sends it again.

Nothing here runs on a caller's path: a Telnyx outage delays the mirror, never a call or a
record. Errors are scrubbed of secrets before they are stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from mission_server.clock import Clock
from mission_server.errors import ProviderError
from mission_server.secrets import scrub
from mission_server.telephony.telnyx import mapping_missions as mm
from state import models as m
from state.db import reader

log = logging.getLogger(__name__)

OUTBOX = m.MirrorOutbox.__table__
IDS = m.MirrorId.__table__
MISSIONS = m.Mission.__table__
RUNS = m.Run.__table__
STEPS = m.PlanStep.__table__
EVENTS = m.Event.__table__
RUN_AGENTS = m.RunAgent.__table__
ASSISTANTS = m.Assistant.__table__

MAX_ATTEMPTS = 12
BACKOFF_BASE_SECS = 5.0
BACKOFF_MAX_SECS = 900.0
#: How long claimed rows stay leased to one process (a batch is claimed at once).
LEASE_SECS = 300.0
#: Lane heads claimed at once (each the head of its own lane, so their order is free).
CLAIM_BATCH = 10
_ERROR_CHARS = 500


class MissionsMirror(Protocol):
    """The Missions API as the mirror uses it (``telephony.telnyx.missions.TelnyxMissions``).
    Records are passed with our field names; every method raises ``ProviderError``."""

    def create_mission(self, mission: Mapping[str, Any]) -> str: ...
    def update_mission(self, remote_id: str, mission: Mapping[str, Any]) -> None: ...
    def find_mission(self, mission: Mapping[str, Any]) -> str | None: ...
    def create_run(self, mission_remote: str, run: Mapping[str, Any]) -> str: ...
    def find_run(self, mission_remote: str, run: Mapping[str, Any]) -> str | None: ...
    def update_run(
        self,
        mission_remote: str,
        run_remote: str,
        run: Mapping[str, Any],
        *,
        with_status: bool = True,
    ) -> None: ...
    def plan_step_ids(self, mission_remote: str, run_remote: str) -> set[str]: ...
    def add_steps(
        self,
        mission_remote: str,
        run_remote: str,
        steps: Sequence[Mapping[str, Any]],
        *,
        first: bool,
    ) -> None: ...
    def update_step(
        self,
        mission_remote: str,
        run_remote: str,
        step: Mapping[str, Any],
        *,
        with_status: bool = True,
    ) -> None: ...
    def linked_agents(self, mission_remote: str, run_remote: str) -> set[str]: ...
    def link_agent(self, mission_remote: str, run_remote: str, telnyx_agent_id: str) -> None: ...
    def log_event(self, mission_remote: str, run_remote: str, event: Mapping[str, Any]) -> str: ...


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class _Gone(Exception):
    """The record an outbox row names no longer exists."""


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (5 s doubling, 15 min cap)."""
    return min(BACKOFF_MAX_SECS, BACKOFF_BASE_SECS * 2 ** max(0, attempts - 1))


def _digest(body: Any) -> str:
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- the id map


class _Ids:
    """Our id → Telnyx id, each change committed at once (a crash keeps what Telnyx made)."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine = engine
        self.now = now

    def get(self, kind: str, local: str) -> Mapping[str, Any] | None:
        with reader(self.engine).connect() as conn:
            row = conn.execute(
                select(IDS).where(IDS.c.kind == kind, IDS.c.local_id == local)
            ).first()
            conn.rollback()
        return dict(row._mapping) if row is not None else None

    def put(self, kind: str, local: str, remote: str | None, sent: str | None) -> None:
        values = {"remote_id": remote, "sent": sent, "updated_at": self.now}
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(IDS).where(IDS.c.kind == kind, IDS.c.local_id == local).values(**values)
            ).rowcount
            if not changed:
                conn.execute(IDS.insert().values(kind=kind, local_id=local, **values))

    def ensure(
        self,
        kind: str,
        local: str,
        *,
        create: Callable[[], str],
        find: Callable[[], str | None],
        created_state: Any = None,
        state: Any = None,
        send_update: Callable[[str], None] | None = None,
        idempotent: bool = False,
    ) -> str:
        """The Telnyx id of ``local``, created if need be (looked up first when an earlier
        create went unanswered; an ``idempotent`` create is simply sent again); then ``state``
        is sent with ``send_update`` unless it is what was sent last."""
        entry = self.get(kind, local)
        remote = entry["remote_id"] if entry is not None else None
        sent = entry["sent"] if entry is not None else None
        if remote is None:
            found = find() if entry is not None else None
            if found is None:
                if not idempotent:
                    self.put(kind, local, None, None)  # under way: look it up if unanswered
                found = create()
                sent = _digest(created_state) if created_state is not None else None
            remote = found
            self.put(kind, local, remote, sent)
        if send_update is not None and state is not None and _digest(state) != sent:
            send_update(remote)
            self.put(kind, local, remote, _digest(state))
        return remote


# --------------------------------------------------------------------------- records


def _one(conn: Connection, table: Any, where: Any, what: str) -> dict[str, Any]:
    row = conn.execute(select(table).where(where)).first()
    if row is None:
        raise _Gone(what)
    return dict(row._mapping)


def _mission(conn: Connection, mission_id: str) -> dict[str, Any]:
    row = _one(conn, MISSIONS, MISSIONS.c.mission_id == mission_id, f"mission {mission_id}")
    return {**row, "metadata": row.get("metadata") or {}}


def _run(conn: Connection, run_id: str) -> dict[str, Any]:
    row = _one(conn, RUNS, RUNS.c.run_id == run_id, f"run {run_id}")
    return {**row, "metadata": row.get("metadata") or {}}


def _steps(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    query = select(STEPS).where(STEPS.c.run_id == run_id).order_by(STEPS.c.sequence, STEPS.c.id)
    return [{**r._mapping, "metadata": r._mapping["metadata"] or {}} for r in conn.execute(query)]


def _agents(conn: Connection, run_id: str) -> list[tuple[str, str]]:
    """(our assistant id, its Telnyx id) of the run's assistants that Telnyx knows."""
    query = (
        select(ASSISTANTS.c.assistant_id, ASSISTANTS.c.provider_ref)
        .join(RUN_AGENTS, RUN_AGENTS.c.assistant_id == ASSISTANTS.c.assistant_id)
        .where(RUN_AGENTS.c.run_id == run_id)
        .where(ASSISTANTS.c.provider == "telnyx", ASSISTANTS.c.provider_ref.is_not(None))
        .order_by(RUN_AGENTS.c.created_at, ASSISTANTS.c.assistant_id)
    )
    return [(r.assistant_id, r.provider_ref) for r in conn.execute(query)]


# --------------------------------------------------------------------------- delivery


def _ensure_mission(ids: _Ids, mirror: MissionsMirror, mission: dict[str, Any]) -> str:
    body = mm.mission_body(mission)
    return ids.ensure(
        "mission",
        mission["mission_id"],
        create=lambda: mirror.create_mission(mission),
        find=lambda: mirror.find_mission(mission),
        created_state=body,
        state=body,
        send_update=lambda remote: mirror.update_mission(remote, mission),
    )


@dataclass(frozen=True)
class _RunState:
    """What the mirror shows of one run, read in one transaction."""

    run: dict[str, Any]
    mission: dict[str, Any]
    steps: list[dict[str, Any]]
    agents: list[tuple[str, str]]


def _read_run(conn: Connection, run_id: str) -> _RunState:
    run = _run(conn, run_id)
    return _RunState(
        run, _mission(conn, run["mission_id"]), _steps(conn, run_id), _agents(conn, run_id)
    )


def _sync_run(ids: _Ids, mirror: MissionsMirror, state: _RunState) -> tuple[str, str]:
    """Bring the run's mirror up to date; its (Telnyx mission id, Telnyx run id)."""
    run, mission, steps, agents = state.run, state.mission, state.steps, state.agents
    run_id = run["run_id"]
    mrem = _ensure_mission(ids, mirror, mission)
    # A status is sent only when it changed: Telnyx's is not set again to what it is.
    status_sent = (ids.get("run_status", run_id) or {}).get("sent")

    def send_run(remote: str) -> None:
        changed = run["status"] != status_sent
        mirror.update_run(mrem, remote, run, with_status=changed)
        if changed:
            ids.put("run_status", run_id, None, run["status"])

    rrem = ids.ensure(
        "run",
        run_id,
        create=lambda: mirror.create_run(mrem, run),
        find=lambda: mirror.find_run(mrem, run),
        state=mm.run_update_body(run),
        send_update=lambda remote: send_run(remote),
    )

    # The plan: new steps in one request (the plan itself, the first time), then each step
    # whose status or metadata is not what Telnyx was last told.
    def known() -> dict[str, Mapping[str, Any] | None]:
        return {s["step_id"]: ids.get("step", f"{run_id}/{s['step_id']}") for s in steps}

    def as_created(step: Mapping[str, Any]) -> str:
        return _digest(mm.step_update_body({**step, "status": "pending"}))

    entries = known()
    unanswered = {k for k, e in entries.items() if e is not None and e["remote_id"] is None}
    if unanswered:  # an earlier add went unanswered: see what Telnyx has
        there = mirror.plan_step_ids(mrem, rrem)
        for s in steps:
            if s["step_id"] in unanswered and s["step_id"] in there:
                ids.put("step", f"{run_id}/{s['step_id']}", s["step_id"], as_created(s))
        entries = known()
    new = [s for s in steps if not (entries[s["step_id"]] or {}).get("remote_id")]
    if new:
        first = not any((e or {}).get("remote_id") for e in entries.values())
        for s in new:
            ids.put("step", f"{run_id}/{s['step_id']}", None, None)
        mirror.add_steps(mrem, rrem, new, first=first)
        for s in new:
            ids.put("step", f"{run_id}/{s['step_id']}", s["step_id"], as_created(s))
            ids.put("step_status", f"{run_id}/{s['step_id']}", None, "pending")
    for s in steps:
        local = f"{run_id}/{s['step_id']}"
        body = _digest(mm.step_update_body(s))
        if body != (ids.get("step", local) or {}).get("sent"):
            changed = s["status"] != (ids.get("step_status", local) or {}).get("sent")
            mirror.update_step(mrem, rrem, s, with_status=changed)
            ids.put("step", local, s["step_id"], body)
            if changed:
                ids.put("step_status", local, None, s["status"])
    # Linked assistants.
    pending = [
        (a, t) for a, t in agents if not (ids.get("agent", f"{run_id}/{a}") or {}).get("remote_id")
    ]
    if pending:
        unanswered = [a for a, _ in pending if ids.get("agent", f"{run_id}/{a}") is not None]
        linked = mirror.linked_agents(mrem, rrem) if unanswered else set()
        for assistant_id, telnyx_id in pending:
            local = f"{run_id}/{assistant_id}"
            if telnyx_id not in linked:
                ids.put("agent", local, None, None)
                mirror.link_agent(mrem, rrem, telnyx_id)
            ids.put("agent", local, telnyx_id, None)
    return mrem, rrem


def _deliver(engine: Engine, mirror: MissionsMirror, row: Mapping[str, Any], now: datetime) -> str:
    """Send one outbox row; the Telnyx id it maps to. Raises: ProviderError, _Gone."""
    ids = _Ids(engine, now)
    # Everything sent is read first, in one read transaction closed before any request.
    event: dict[str, Any] | None = None
    mission: dict[str, Any] | None = None
    state: _RunState | None = None
    with reader(engine).connect() as conn:
        if row["kind"] == "mission":
            mission = _mission(conn, row["ref"])
        else:
            if row["kind"] == "event":
                event = _one(conn, EVENTS, EVENTS.c.event_id == row["ref"], f"event {row['ref']}")
                event["payload"] = event.get("payload") or {}
            state = _read_run(conn, event["run_id"] if event is not None else row["ref"])
        conn.rollback()
    if mission is not None:
        return _ensure_mission(ids, mirror, mission)
    assert state is not None
    mrem, rrem = _sync_run(ids, mirror, state)
    if event is None:  # a run row: its state is what was to be sent
        return rrem
    entry = ids.get("event", event["event_id"])
    if entry is not None and entry["remote_id"]:
        return entry["remote_id"]
    # Re-sent with the same idempotency key, so never logged twice; its id map row is written
    # with the outbox row's delivery (``_finish``).
    return mirror.log_event(mrem, rrem, event)


def _claim(engine: Engine, now: datetime, owner: str, batch: int) -> list[dict[str, Any]]:
    """Up to ``batch`` due rows that head their lanes, oldest first, leased to ``owner`` (a
    row another process leased first is left to it); none when none is due."""
    heads = (
        select(func.min(OUTBOX.c.id))
        .where(OUTBOX.c.status == "pending")
        .group_by(OUTBOX.c.lane)
        .scalar_subquery()
    )
    free = or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now)
    with engine.begin() as conn:
        candidates = conn.execute(
            select(OUTBOX)
            .where(OUTBOX.c.id.in_(heads), OUTBOX.c.next_attempt_at <= now, free)
            .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
            .limit(batch)
        ).all()
        taken = []
        for row in candidates:
            leased = conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == row.id, OUTBOX.c.status == "pending", free)
                .values(lease_until=now + timedelta(seconds=LEASE_SECS))
            ).rowcount
            if leased == 1:
                taken.append(dict(row._mapping))
    return taken


def _finish(
    engine: Engine, row_id: int, *, mapped: dict[str, Any] | None = None, **values: Any
) -> None:
    """Record the row's outcome (and, for a delivered event, its id map row), leaseless."""
    with engine.begin() as conn:
        conn.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(lease_until=None, **values))
        if mapped is not None:
            conn.execute(
                IDS.delete().where(
                    IDS.c.kind == mapped["kind"], IDS.c.local_id == mapped["local_id"]
                )
            )
            conn.execute(IDS.insert().values(**mapped))


def _release(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Give back the leases of claimed rows this pass did not get to."""
    if rows:
        with engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([r["id"] for r in rows]), OUTBOX.c.status == "pending")
                .values(lease_until=None)
            )


def deliver_due(
    engine: Engine,
    mirror: MissionsMirror,
    clock: Clock,
    *,
    owner: str = "mirror",
    limit: int = 500,
) -> DeliveryReport:
    """Deliver due outbox rows, lane heads first, until none is due (or ``limit`` rows)."""
    report = DeliveryReport()
    claimed: list[dict[str, Any]] = []
    for _ in range(limit):
        now = clock.now()
        if not claimed:
            claimed = _claim(engine, now, owner, min(CLAIM_BATCH, limit))
            if not claimed:
                break
        row = claimed.pop(0)
        try:
            remote = _deliver(engine, mirror, row, now)
        except _Gone as gone:
            _finish(engine, row["id"], status="failed", last_error=f"{gone} no longer exists")
            report.failed += 1
            continue
        except Exception as exc:  # every failure is recorded on the row, none is lost
            retryable = not isinstance(exc, ProviderError) or exc.retryable
            if not isinstance(exc, ProviderError):
                log.exception("mirroring outbox row %s failed", row["id"])
            attempts = row["attempts"] + 1
            error = scrub(str(exc) or type(exc).__name__)[:_ERROR_CHARS]
            report.errors.append(error)
            if retryable and attempts < MAX_ATTEMPTS:
                wait = timedelta(seconds=backoff(attempts))
                _finish(
                    engine,
                    row["id"],
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=now + wait,
                )
                report.retried += 1
            else:
                _finish(engine, row["id"], attempts=attempts, last_error=error, status="failed")
                report.failed += 1
            continue
        mapped = (
            {"kind": "event", "local_id": row["ref"], "remote_id": remote, "sent": None}
            | {"updated_at": now}
            if row["kind"] == "event"
            else None
        )
        _finish(
            engine,
            row["id"],
            mapped=mapped,
            status="delivered",
            attempts=row["attempts"] + 1,
            remote_id=remote,
            delivered_at=now,
        )
        report.delivered += 1
    _release(engine, claimed)
    return report


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending lane head may next be tried."""
    heads = (
        select(func.min(OUTBOX.c.id))
        .where(OUTBOX.c.status == "pending")
        .group_by(OUTBOX.c.lane)
        .scalar_subquery()
    )
    with reader(engine).connect() as conn:
        value = conn.execute(
            select(func.min(OUTBOX.c.next_attempt_at)).where(OUTBOX.c.id.in_(heads))
        ).scalar()
        conn.rollback()
    return value


def requeue_failed(engine: Engine, now: datetime) -> int:
    """Send the failed rows again (from their first try); how many."""
    with engine.begin() as conn:
        return conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
        ).rowcount


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class SyncStatus:
    pending: int
    delivered: int
    failed: int
    oldest_pending_at: datetime | None
    next_attempt_at: datetime | None
    last_delivered_at: datetime | None
    last_error: str | None


def sync_status(engine: Engine) -> SyncStatus:
    """Counts by status, the oldest pending record, and the latest error (scrubbed)."""
    with reader(engine).connect() as conn:
        counts = dict(
            conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status)).all()  # type: ignore[arg-type]
        )
        oldest = conn.execute(
            select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending")
        ).scalar()
        last_delivered = conn.execute(select(func.max(OUTBOX.c.delivered_at))).scalar()
        error = conn.execute(
            select(OUTBOX.c.last_error)
            .where(OUTBOX.c.last_error.is_not(None), OUTBOX.c.status != "delivered")
            .order_by(OUTBOX.c.id.desc())
            .limit(1)
        ).scalar()
        conn.rollback()
    return SyncStatus(
        pending=int(counts.get("pending", 0)),
        delivered=int(counts.get("delivered", 0)),
        failed=int(counts.get("failed", 0)),
        oldest_pending_at=oldest,
        next_attempt_at=next_due(engine),
        last_delivered_at=last_delivered,
        last_error=scrub(error) if error else None,
    )
