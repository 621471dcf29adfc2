"""The simulated time of a rehearsal database, shared by every process on it, and the jump
that keeps a rehearsal from stalling.

One row (``sim_clock``) holds the ``Anchor`` of the accelerated time: every process's
``AcceleratedClock`` follows it (``SimTime.attach``), so a server and its workers agree on the
time. A process that starts while another one is running on the row (seen within
``LIVE_SECS``) joins its time; one that starts after every process stopped carries on from
where the time stood when it was last seen running, so time does not pass between sessions.

``SimTime.jump(target)``: when nothing is due before ``target`` (calling hours, a retry
interval), the time jumps there at once instead of the rehearsal waiting for it in wall time.
It is decided in one transaction that holds the row (and, on SQLite, the write lock): no jump
while any row is due before ``target`` or leased (a process may be about to place it), so a
call is placed only at a time the clock shows, and the dispatcher checks calling hours at that
time. Every jump is logged and recorded as an event of each run that has work waiting.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from mission_server.clock import AcceleratedClock, Anchor
from mission_server.engine.queue import as_utc
from state import models as m
from state.db import reader
from state.types import utc_iso

log = logging.getLogger(__name__)

CLOCKS = m.SimClock.__table__
EVENTS = m.ScheduledEvent.__table__
RUN_EVENTS = m.Event.__table__
ROW = 1
#: A shared clock seen by a process this recently (wall seconds) is still running.
LIVE_SECS = 10.0
#: How often (wall seconds) a dispatching process says it is running on the shared clock.
HEARTBEAT_SECS = 2.0
_UNFINISHED = ("pending", "in_progress")


def _anchor(row: Any) -> Anchor:
    sim_at = as_utc(row.sim_at)
    assert sim_at is not None
    return Anchor(sim_at, float(row.wall_at), float(row.speed))


class SimTime:
    """The accelerated ``clock`` of a context on ``engine``.

    ``shared``: the time lives in the database (a file or server database); otherwise (an
    in-memory database, one process) in the clock alone.
    """

    def __init__(self, engine: Engine, clock: AcceleratedClock, *, shared: bool = True) -> None:
        self.engine = engine
        self.clock = clock
        self.shared = shared
        self._beaten = 0.0

    # ------------------------------------------------------------------ sharing

    def attach(self, start: datetime) -> Anchor:
        """Join the database's time (at least ``start``), or start it at ``start``; from then
        on the clock follows the row."""
        wall = self.clock.wall()
        speed = self.clock.speed
        with self.engine.begin() as conn:
            row = self._locked(conn)
            if row is None:
                anchor = Anchor(start, wall, speed)
                conn.execute(
                    insert(CLOCKS).values(
                        clock_id=ROW,
                        sim_at=anchor.sim_at,
                        wall_at=wall,
                        speed=speed,
                        seen_at=wall,
                    )
                )
            else:
                old = _anchor(row)
                live = wall - float(row.seen_at) <= LIVE_SECS
                # Nobody ran on it since it was last seen: the time stood still since then.
                current = old.at(wall if live else float(row.seen_at))
                if live and current >= start and speed == old.speed:
                    anchor = old
                else:
                    anchor = Anchor(max(current, start), wall, speed)
                conn.execute(
                    update(CLOCKS)
                    .where(CLOCKS.c.clock_id == ROW)
                    .values(sim_at=anchor.sim_at, wall_at=anchor.wall_at, speed=speed, seen_at=wall)
                )
        self.clock.adopt(anchor)
        self.clock.follow(self.read)
        return anchor

    def read(self) -> Anchor | None:
        """The shared anchor (None before ``attach``)."""
        with reader(self.engine).connect() as conn:
            row = conn.execute(select(CLOCKS).where(CLOCKS.c.clock_id == ROW)).first()
        return None if row is None else _anchor(row)

    def heartbeat(self, *, force: bool = False) -> None:
        """Say that this process runs on the shared time (at most every ``HEARTBEAT_SECS``,
        unless ``force``: a process that stops says so last, so the next one carries on from
        there)."""
        wall = self.clock.wall()
        if not self.shared or (not force and wall - self._beaten < HEARTBEAT_SECS):
            return
        self._beaten = wall
        with self.engine.begin() as conn:
            conn.execute(update(CLOCKS).where(CLOCKS.c.clock_id == ROW).values(seen_at=wall))

    # ------------------------------------------------------------------ jumping

    def jump(self, target: datetime) -> bool:
        """Jump the time to ``target`` when nothing is due before it and no row is leased;
        log it and record it in each waiting run. True if the time jumped."""
        target = as_utc(target) or target
        with self.engine.begin() as conn:
            wall = self.clock.wall()
            if self.shared:
                row = self._locked(conn)
                if row is None:
                    return False
                now = _anchor(row).at(wall)
            else:
                now = self.clock.now()
            if target <= now or self._busy(conn, target, now):
                return False
            reason, waiting = self._waiting(conn, target)
            if self.shared:
                conn.execute(
                    update(CLOCKS)
                    .where(CLOCKS.c.clock_id == ROW)
                    .values(sim_at=target, wall_at=wall, seen_at=wall)
                )
            saved = (target - now).total_seconds() / self.clock.speed
            summary = (
                f"Simulated clock jumped from {utc_iso(now)} to {utc_iso(target)}: nothing was "
                f"due before then ({reason}); {saved:.0f} wall seconds not waited"
            )
            payload = {
                "kind": "clock_jump",
                "from": utc_iso(now),
                "to": utc_iso(target),
                "reason": reason,
                "wall_secs_saved": round(saved, 1),
            }
            if waiting:
                conn.execute(
                    insert(RUN_EVENTS),
                    [
                        {
                            "event_id": str(uuid.uuid4()),
                            "run_id": run_id,
                            "type": "custom",
                            "summary": summary,
                            "step_id": None,
                            "agent_id": None,
                            "payload": payload,
                            "idempotency_key": None,
                            "created_at": now,
                        }
                        for run_id in waiting
                    ],
                )
        if self.shared:
            self.clock.adopt(Anchor(target, wall, self.clock.speed))
        else:
            self.clock.jump_to(target)
        log.info("%s", summary)
        return True

    def _locked(self, conn: Connection) -> Any:
        query = select(CLOCKS).where(CLOCKS.c.clock_id == ROW).with_for_update()
        return conn.execute(query).first()

    def _busy(self, conn: Connection, target: datetime, now: datetime) -> bool:
        """A row is due before ``target`` (ready, or about to be) or held under a lease."""
        unfinished = EVENTS.c.status.in_(_UNFINISHED)
        due = unfinished & EVENTS.c.hold_reason.is_(None) & (EVENTS.c.due_at < target)
        leased = unfinished & EVENTS.c.lease_expires_at.is_not(None)
        leased = leased & (EVENTS.c.lease_expires_at > now)
        query = select(EVENTS.c.scheduled_event_id).where(due | leased).limit(1)
        return conn.execute(query).first() is not None

    def _waiting(self, conn: Connection, target: datetime) -> tuple[str, list[str]]:
        """Why ``target`` is the next due time, and the runs with work waiting."""
        query = select(EVENTS.c.run_id, EVENTS.c.status, EVENTS.c.due_at, EVENTS.c.deferrals).where(
            EVENTS.c.status.in_(_UNFINISHED), EVENTS.c.hold_reason.is_(None)
        )
        rows = conn.execute(query).all()
        reason = "scheduled time"
        for row in rows:
            if as_utc(row.due_at) != target:
                continue
            deferrals = row.deferrals or []
            if row.status == "in_progress":
                reason = "a call in flight ends"
            elif deferrals and deferrals[-1].get("moved_to") == utc_iso(target):
                reason = str(deferrals[-1].get("reason") or "calling hours")
            else:
                reason = "a retry or scheduled time"
            break
        runs = sorted({row.run_id for row in rows if row.run_id})
        return reason, runs
