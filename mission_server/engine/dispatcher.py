"""The dispatcher: claims due scheduled events, places them through the provider, records
outcomes, re-queues retries and recovers abandoned leases.

The ``scheduled_events`` table is the outbox and the source of truth. ``sweep(now)`` works in
batches of three steps:

1. **Claim** due rows atomically under a lease — one ``UPDATE … WHERE id IN (SELECT … FOR
   UPDATE SKIP LOCKED) RETURNING`` on PostgreSQL, the same under SQLite's single writer
   (``BEGIN IMMEDIATE``). A row whose previous lease expired unreleased is marked
   ``recovered``: its holder may have placed the attempt before dying.
2. **Act** outside any transaction: guardrails (do-not-call, run state, approval, calling
   hours, call budget), then ``provider.place_call`` with the idempotency key
   ``<scheduled_event_id>:<attempt_number>`` — or, for a recovered row, first
   ``provider.find_attempt`` so a crash between placing and recording never places twice.
   In-flight rows are asked for their outcome.
3. **Record** every result of the batch in one transaction and release the leases; listeners
   hear about events that reached a terminal status.

Real time: ``RealtimeTrigger`` (APScheduler) runs the sweep at the next due time. Virtual time:
``run_until_idle`` jumps a ``VirtualClock`` from one due time to the next.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.engine import Engine

from mission_server.clock import Clock, VirtualClock
from mission_server.domain.calling_hours import CallingWindow, is_inside
from mission_server.errors import MissionError, ProviderError
from mission_server.services.context import CallFinished, Context
from mission_server.services.scheduling import defer_for_calling_hours, deferral_record
from mission_server.telephony.base import (
    RETRYABLE_CALL_STATUSES,
    CallOutcome,
    CallRequest,
    Placement,
)
from state import models as m
from state.db import is_postgres, reader
from state.transitions import TERMINAL_RUN
from state.types import utc_iso

log = logging.getLogger(__name__)

EVENTS = m.ScheduledEvent.__table__
ATTEMPTS = m.CallAttempt.__table__
RUNS = m.Run.__table__

#: How long to wait before asking a provider again about a call still in progress.
DEFAULT_POLL_SECS = 15.0
#: Back-off after a transient provider failure to place a call (no attempt is used up).
PROVIDER_RETRY_SECS = 60.0


@dataclass
class SweepReport:
    claimed: int = 0
    placed: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    held: int = 0
    reconciled: int = 0
    in_flight: int = 0

    def add(self, other: SweepReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Work:
    """What the act phase decided for one claimed row; the record phase writes it."""

    row: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    attempt: dict[str, Any] | None = None
    conversation: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    run_events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    finished: CallFinished | None = None


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Sweeps due scheduled events. Safe to run in any number of processes at once."""

    def __init__(
        self,
        ctx: Context,
        *,
        worker_id: str | None = None,
        batch_size: int = 200,
        lease_secs: float | None = None,
        poll_secs: float = DEFAULT_POLL_SECS,
    ) -> None:
        self.ctx = ctx
        self.worker_id = worker_id or ctx.settings.worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_secs or ctx.settings.lease_secs)
        self.poll = timedelta(seconds=poll_secs)
        self._postgres = is_postgres(ctx.engine)

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    # ------------------------------------------------------------------ public

    def sweep(self, now: datetime | None = None, *, max_batches: int | None = None) -> SweepReport:
        """Process every row due at ``now`` (default: the clock's time), batch by batch."""
        now = now or self.ctx.now()
        report = SweepReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            rows = self._claim(now)
            if not rows:
                break
            batches += 1
            report.add(self._process(rows, now))
            if len(rows) < self.batch_size:
                break
        return report

    def next_due(self) -> datetime | None:
        """The earliest time any unheld, unfinished row needs attention: its due time, or the
        end of its lease when another worker holds it past that (a row leased by a live or
        dead worker cannot be claimed before the lease ends)."""
        lease_end = EVENTS.c.lease_expires_at
        attention = case(
            (lease_end.is_not(None) & (lease_end > EVENTS.c.due_at), lease_end),
            else_=EVENTS.c.due_at,
        )
        query = select(func.min(attention)).where(
            EVENTS.c.status.in_(("pending", "in_progress")), EVENTS.c.hold_reason.is_(None)
        )
        with reader(self.engine).connect() as conn:
            value = conn.execute(query).scalar()
        if value is None:
            return None
        return _as_utc(value)

    # ------------------------------------------------------------------ claim

    def _claim(self, now: datetime) -> list[dict[str, Any]]:
        due = (
            select(EVENTS.c.scheduled_event_id)
            .where(
                EVENTS.c.status.in_(("pending", "in_progress")),
                EVENTS.c.hold_reason.is_(None),
                EVENTS.c.due_at <= now,
                (EVENTS.c.lease_expires_at.is_(None)) | (EVENTS.c.lease_expires_at <= now),
            )
            .order_by(EVENTS.c.due_at)
            .limit(self.batch_size)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(EVENTS)
            .where(EVENTS.c.scheduled_event_id.in_(due.scalar_subquery()))
            .values(
                # SET expressions see the old row: an unreleased lease means its holder died.
                recovered=EVENTS.c.lease_owner.is_not(None),
                lease_owner=self.worker_id,
                lease_expires_at=now + self.lease,
            )
            .returning(*EVENTS.c)
        )
        with self.engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(claim)]
        for row in rows:
            for key in (
                "due_at",
                "scheduled_at_fixed_datetime",
                "in_flight_placed_at",
                "requested_at",
                "created_at",
            ):
                if row.get(key) is not None:
                    row[key] = _as_utc(row[key])
        rows.sort(key=lambda r: r["due_at"])
        return rows

    # ------------------------------------------------------------------ act

    def _process(self, rows: list[dict[str, Any]], now: datetime) -> SweepReport:
        report = SweepReport(claimed=len(rows))
        lookups = _Lookups.load(self.engine, rows)
        work: list[_Work] = []
        for row in rows:
            try:
                if row["status"] == "pending":
                    item = self._dispatch(row, now, lookups, report)
                else:
                    item = self._check(row, now, report)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                # The provider is briefly unavailable (polling an outcome, reconciling):
                # look again later; nothing was decided.
                log.warning("provider unavailable for %s: %s", row["scheduled_event_id"], exc)
                item = _Work(row)
                item.values = {"due_at": now + self.poll}
            except Exception as exc:
                # One bad row must not stall the batch, nor be retried forever: it fails
                # visibly with the reason.
                if not isinstance(exc, MissionError):
                    log.exception("dispatch of %s failed", row["scheduled_event_id"])
                report.failed += 1
                item = self._finish(
                    _Work(row),
                    now,
                    "failed",
                    row.get("call_status"),
                    error={"code": "dispatch_error", "detail": str(exc)},
                )
            work.append(item)
        self._record(work, now)
        for item in work:
            if item.finished is not None:
                self.ctx.notify_call_finished(item.finished)
        return report

    def _dispatch(
        self, row: dict[str, Any], now: datetime, lookups: _Lookups, report: SweepReport
    ) -> _Work:
        item = _Work(row)
        event_id = row["scheduled_event_id"]
        target = row["telnyx_end_user_target"]
        run = lookups.runs.get(row["run_id"]) if row["run_id"] else None

        if target in lookups.do_not_call:
            report.failed += 1
            return self._finish(
                item,
                now,
                "failed",
                None,
                error={
                    "code": "do_not_call",
                    "detail": f"{target} is on the do-not-call list; the call was not placed",
                },
            )
        if run is not None:
            stopped = self._run_gate(item, run, now, report)
            if stopped is not None:
                return stopped

        zones = list(row["timezones"] or [])
        window = CallingWindow.from_dict(row["calling_window"])
        if zones and not is_inside(now, zones, window):
            moved, reason = defer_for_calling_hours(now, zones, window)
            report.deferred += 1
            item.values = {
                "due_at": moved,
                "scheduled_at_fixed_datetime": moved,
                "deferrals": [
                    *(row["deferrals"] or []),
                    deferral_record(now, moved, reason or "calling hours", now),
                ],
            }
            if row["run_id"]:
                item.run_events.append(
                    (
                        "custom",
                        f"Call to {target} deferred to {utc_iso(moved)}: {reason}",
                        {"scheduled_event_id": event_id, "moved_to": utc_iso(moved)},
                    )
                )
            return item

        attempt_number = row["current_attempt"] + 1
        key = f"{event_id}:{attempt_number}"
        placement: Placement | None = None
        if row["recovered"]:
            placement = self.ctx.provider.find_attempt(key)
            if placement is not None:
                report.reconciled += 1
        request = self._request(row, attempt_number, key, now, lookups)
        if placement is None:
            if run is not None and not lookups.take_budget(self.engine, run):
                # The run may have changed since the batch read it (cancelled, paused): the
                # budget update only counts a call for a run that may still place it.
                stopped = self._run_gate(item, lookups.reload_run(self.engine, run), now, report)
                if stopped is not None:
                    return stopped
                report.failed += 1
                return self._finish(
                    item,
                    now,
                    "failed",
                    None,
                    error={
                        "code": "call_budget_exhausted",
                        "detail": f"the run's call budget of {run['call_budget']} calls is used up",
                    },
                )
            try:
                placement = self.ctx.provider.place_call(request)
            except ProviderError as exc:
                return self._placement_failed(item, now, exc, report)
            report.placed += 1
        item.values = {
            "status": "in_progress",
            "current_attempt": attempt_number,
            "in_flight_call_control_id": placement.call_control_id,
            "in_flight_placed_at": placement.placed_at,
            "conversation_id": placement.conversation_id,
            "in_flight_context": {
                "instructions": request.instructions,
                "greeting": request.greeting,
                "dynamic_variables": request.dynamic_variables,
                "conversation_name": request.conversation_name,
            },
        }
        if row["run_id"]:
            what = "Call" if row["telnyx_conversation_channel"] == "phone_call" else "SMS"
            item.run_events.append(
                (
                    "tool_call",
                    f"{what} to {target} placed (attempt {attempt_number} of "
                    f"{1 + row['max_retries_client_errors']})",
                    {
                        "scheduled_event_id": event_id,
                        "attempt_number": attempt_number,
                        "idempotency_key": key,
                        "call_control_id": placement.call_control_id,
                    },
                )
            )
        row = {**row, **item.values}
        item.row = row
        return self._settle(item, placement, now, report)

    def _check(self, row: dict[str, Any], now: datetime, report: SweepReport) -> _Work:
        item = _Work(row)
        attempt_number = row["current_attempt"]
        key = f"{row['scheduled_event_id']}:{attempt_number}"
        if row["in_flight_call_control_id"] is None:
            # Claimed as in progress but never recorded as placed: reconcile.
            placement = self.ctx.provider.find_attempt(key)
            if placement is None:
                item.values = {
                    "status": "pending",
                    "current_attempt": attempt_number - 1,
                    "due_at": now,
                }
                return item
            report.reconciled += 1
        else:
            placement = Placement(
                call_control_id=row["in_flight_call_control_id"],
                placed_at=_as_utc(row["in_flight_placed_at"]) or now,
                conversation_id=row["conversation_id"],
            )
        return self._settle(item, placement, now, report)

    def _settle(
        self, item: _Work, placement: Placement, now: datetime, report: SweepReport
    ) -> _Work:
        outcome = placement.outcome
        if outcome is None or outcome.ended_at > now:
            if outcome is None:
                outcome = self.ctx.provider.get_outcome(placement, now)
            if outcome is None or outcome.ended_at > now:
                report.in_flight += 1
                item.values.setdefault("status", "in_progress")
                item.values["due_at"] = outcome.ended_at if outcome else now + self.poll
                return item
        return self._terminal(item, placement, outcome, now, report)

    def _terminal(
        self,
        item: _Work,
        placement: Placement,
        outcome: CallOutcome,
        now: datetime,
        report: SweepReport,
    ) -> _Work:
        row = item.row
        attempt_number = item.values.get("current_attempt", row["current_attempt"])
        ended = min(outcome.ended_at, now)
        conversation_id = outcome.conversation_id or placement.conversation_id
        item.attempt = {
            "scheduled_event_id": row["scheduled_event_id"],
            "attempt_number": attempt_number,
            "attempted_at": placement.placed_at,
            "ended_at": ended,
            "call_status": outcome.call_status,
            "call_duration": outcome.call_duration,
            "telnyx_call_control_id": outcome.call_control_id or placement.call_control_id,
            "conversation_id": conversation_id,
            "cost": outcome.cost,
            "voicemail": outcome.voicemail,
        }
        context = item.values.get("in_flight_context") or row.get("in_flight_context") or {}
        if conversation_id:
            self._collect_conversation(item, conversation_id, placement, outcome, context, ended)
        target = row["telnyx_end_user_target"]
        budget = 1 + row["max_retries_client_errors"]
        status_text = outcome.call_status + (" (voicemail)" if outcome.voicemail else "")
        common = {
            "call_status": outcome.call_status,
            "conversation_id": conversation_id,
            "in_flight_call_control_id": None,
            "in_flight_placed_at": None,
            "in_flight_context": None,
        }
        if outcome.call_status == "completed":
            report.completed += 1
            item.values.update(common)
            return self._finish(
                item,
                ended,
                "completed",
                outcome.call_status,
                note=(
                    f"Call to {target} {status_text} after attempt {attempt_number}"
                    + (f" ({outcome.call_duration:.0f} s)" if outcome.call_duration else "")
                ),
            )
        retryable = outcome.call_status in RETRYABLE_CALL_STATUSES
        if (
            retryable
            and row["telnyx_conversation_channel"] == "phone_call"
            and attempt_number < budget
        ):
            interval = timedelta(seconds=row["retry_interval_secs"] or 0)
            retry_at = ended + interval
            zones = list(row["timezones"] or [])
            window = CallingWindow.from_dict(row["calling_window"])
            moved, reason = defer_for_calling_hours(retry_at, zones, window)
            deferrals = list(row["deferrals"] or [])
            if reason:
                deferrals.append(deferral_record(retry_at, moved, reason, now))
            report.retried += 1
            item.values.update(common)
            item.values.update(
                {
                    "status": "pending",
                    "due_at": moved,
                    "scheduled_at_fixed_datetime": moved,
                    "deferrals": deferrals,
                }
            )
            if row["run_id"]:
                text = (
                    f"Call to {target}: {status_text} on attempt {attempt_number} of {budget}; "
                    f"retry at {utc_iso(moved)}"
                )
                if reason:
                    text += f" (moved from {utc_iso(retry_at)}: {reason})"
                item.run_events.append(
                    (
                        "custom",
                        text,
                        {
                            "scheduled_event_id": row["scheduled_event_id"],
                            "attempt_number": attempt_number,
                            "call_status": outcome.call_status,
                            "retry_at": utc_iso(moved),
                        },
                    )
                )
            return item
        report.failed += 1
        item.values.update(common)
        if retryable and row["telnyx_conversation_channel"] == "phone_call":
            error = {
                "code": "client_error_retry_budget_exhausted",
                "detail": (
                    f"client-error retry budget exhausted: {attempt_number} attempt(s) "
                    f"(max_retries_client_errors={row['max_retries_client_errors']}), last "
                    f"call_status {outcome.call_status}"
                ),
            }
        else:
            error = {"code": "call_failed", "detail": f"call_status {outcome.call_status}"}
        return self._finish(item, ended, "failed", outcome.call_status, error=error)

    def _collect_conversation(
        self,
        item: _Work,
        conversation_id: str,
        placement: Placement,
        outcome: CallOutcome,
        context: dict[str, Any],
        ended: datetime,
    ) -> None:
        row = item.row
        try:
            messages = self.ctx.provider.get_messages(conversation_id)
        except ProviderError as exc:
            log.warning("could not fetch transcript of %s: %s", conversation_id, exc)
            messages = []
        item.conversation = {
            "conversation_id": conversation_id,
            "name": outcome.conversation_name or context.get("conversation_name"),
            "run_id": row["run_id"],
            "assistant_id": row["assistant_id"],
            "scheduled_event_id": row["scheduled_event_id"],
            "attempt_number": item.attempt["attempt_number"] if item.attempt else None,
            "channel": row["telnyx_conversation_channel"],
            "end_user_target": row["telnyx_end_user_target"],
            "agent_target": row["telnyx_agent_target"],
            "instructions": context.get("instructions"),
            "greeting": context.get("greeting"),
            "dynamic_variables": context.get("dynamic_variables") or {},
            "meta": row["conversation_metadata"] or {},
            "call_status": outcome.call_status,
            "duration_secs": outcome.call_duration,
            "cost": outcome.cost,
            "started_at": placement.placed_at,
            "ended_at": ended,
            "created_at": ended,
        }
        item.messages = [
            {
                "conversation_id": conversation_id,
                "seq": index,
                "role": msg.role,
                "text": msg.text,
                "sent_at": msg.sent_at,
            }
            for index, msg in enumerate(messages)
        ]

    def _finish(
        self,
        item: _Work,
        when: datetime,
        status: str,
        call_status: str | None,
        *,
        error: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> _Work:
        row = item.row
        item.values["status"] = status
        if error is not None:
            item.values["errors"] = [*(row["errors"] or []), {**error, "at": utc_iso(when)}]
        if row["run_id"]:
            summary = note or (
                f"Call to {row['telnyx_end_user_target']} {status}: "
                + (error["detail"] if error else "")
            )
            item.run_events.append(
                (
                    "error" if status == "failed" else "tool_result",
                    summary,
                    {
                        "scheduled_event_id": row["scheduled_event_id"],
                        "status": status,
                        "call_status": call_status,
                        "conversation_id": item.values.get(
                            "conversation_id", row.get("conversation_id")
                        ),
                    },
                )
            )
        attempts = item.attempt["attempt_number"] if item.attempt else row["current_attempt"]
        item.finished = CallFinished(
            scheduled_event_id=row["scheduled_event_id"],
            run_id=row["run_id"],
            step_id=row["step_id"],
            assistant_id=row["assistant_id"],
            status=status,
            call_status=call_status,
            conversation_id=item.values.get("conversation_id", row.get("conversation_id")),
            attempts=attempts,
            finished_at=when,
            end_user_target=row["telnyx_end_user_target"],
        )
        return item

    def _placement_failed(
        self, item: _Work, now: datetime, exc: ProviderError, report: SweepReport
    ) -> _Work:
        target = item.row["telnyx_end_user_target"]
        if exc.retryable:
            # The provider could not take the call right now: try again later without using
            # up an attempt.
            item.values = {"due_at": now + timedelta(seconds=PROVIDER_RETRY_SECS)}
            if item.row["run_id"]:
                item.run_events.append(
                    (
                        "error",
                        f"Provider could not place the call to {target} yet: {exc}",
                        {"scheduled_event_id": item.row["scheduled_event_id"]},
                    )
                )
            return item
        report.failed += 1
        return self._finish(
            item,
            now,
            "failed",
            None,
            error={
                "code": exc.code or "provider_rejected",
                "detail": str(exc),
            },
        )

    def _run_gate(
        self, item: _Work, run: dict[str, Any], now: datetime, report: SweepReport
    ) -> _Work | None:
        """The work item when the run's state stops this call (finished: cancel it; paused or
        awaiting approval: hold it), else None."""
        if run["status"] in TERMINAL_RUN:
            report.failed += 1
            return self._finish(
                item,
                now,
                "cancelled",
                None,
                error={"code": "run_finished", "detail": f"run is {run['status']}"},
            )
        hold = None
        if run["status"] == "paused":
            hold = "paused"
        elif run["approval_required"] and run["approved_at"] is None:
            hold = "awaiting_approval"
        if hold:
            report.held += 1
            item.values = {"hold_reason": hold}
            return item
        return None

    def _request(
        self,
        row: dict[str, Any],
        attempt_number: int,
        key: str,
        now: datetime,
        lookups: _Lookups,
    ) -> CallRequest:
        from mission_server.domain.templating import render, resolve_variables

        assistant = lookups.assistants[row["assistant_id"]]
        run = lookups.runs.get(row["run_id"]) if row["run_id"] else None
        variables = resolve_variables(
            assistant_defaults=assistant["dynamic_variables"] or {},
            run_variables=(run["variables"] or {}) if run else {},
            call_variables=row["dynamic_variables"] or {},
            system={
                "telnyx_conversation_channel": row["telnyx_conversation_channel"],
                "telnyx_agent_target": row["telnyx_agent_target"],
                "telnyx_end_user_target": row["telnyx_end_user_target"],
            },
        )
        greeting = assistant["greeting"]
        metadata = dict(row["conversation_metadata"] or {})
        return CallRequest(
            idempotency_key=key,
            scheduled_event_id=row["scheduled_event_id"],
            attempt_number=attempt_number,
            channel=row["telnyx_conversation_channel"],
            from_number=row["telnyx_agent_target"],
            to=row["telnyx_end_user_target"],
            assistant_ref=assistant["provider_ref"] or assistant["assistant_id"],
            placed_at=now,
            instructions=render(assistant["instructions"], variables, now),
            greeting=render(greeting, variables, now) if greeting else None,
            text=render(row["text"], variables, now) if row["text"] else None,
            dynamic_variables=variables,
            conversation_metadata=metadata,
            conversation_name=metadata.get("conversation_name"),
            instructions_template=assistant["instructions"],
            greeting_template=greeting,
        )

    # ------------------------------------------------------------------ record

    def _record(self, work: list[_Work], now: datetime) -> None:
        updates = []
        for item in work:
            values = {
                "status": item.row["status"],
                "due_at": item.row["due_at"],
                "scheduled_at_fixed_datetime": item.row["scheduled_at_fixed_datetime"],
                "current_attempt": item.row["current_attempt"],
                "in_flight_call_control_id": item.row["in_flight_call_control_id"],
                "in_flight_placed_at": item.row["in_flight_placed_at"],
                "in_flight_context": item.row["in_flight_context"],
                "conversation_id": item.row["conversation_id"],
                "call_status": item.row["call_status"],
                "errors": item.row["errors"],
                "deferrals": item.row["deferrals"],
                "hold_reason": item.row["hold_reason"],
            }
            values.update(item.values)
            values.update({"b_id": item.row["scheduled_event_id"], "updated_at": now})
            updates.append(values)
        if not updates:
            return
        statement = (
            update(EVENTS)
            .where(EVENTS.c.scheduled_event_id == bindparam("b_id"))
            .where(EVENTS.c.lease_owner == self.worker_id)
            # The other SET columns come from the keys of the parameter sets.
            .values(lease_owner=None, lease_expires_at=None, recovered=False)
        )
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
        held = [u["b_id"] for u in updates if u["hold_reason"]]
        with self.engine.begin() as conn:
            conn.execute(statement, updates)
            if held:
                # A run resumed or approved after this batch read it has already released its
                # calls; the holds just written must not outlive that (nothing would ever
                # release them again).
                conn.execute(_release_stale_holds(held))
            if attempts:
                conn.execute(insert(ATTEMPTS), attempts)
            if conversations:
                existing = set(
                    conn.execute(
                        select(m.Conversation.__table__.c.conversation_id).where(
                            m.Conversation.__table__.c.conversation_id.in_(
                                [c["conversation_id"] for c in conversations]
                            )
                        )
                    ).scalars()
                )
                fresh = [c for c in conversations if c["conversation_id"] not in existing]
                if fresh:
                    conn.execute(insert(m.Conversation.__table__), fresh)
                    ids = {c["conversation_id"] for c in fresh}
                    fresh_messages = [x for x in messages if x["conversation_id"] in ids]
                    if fresh_messages:
                        conn.execute(insert(m.Message.__table__), fresh_messages)
            if run_events:
                conn.execute(insert(m.Event.__table__), run_events)


def _release_stale_holds(event_ids: list[str]) -> Any:
    """Clear the hold of each of these events whose run no longer holds its calls."""
    still_held = (
        select(RUNS.c.run_id)
        .where(RUNS.c.run_id == EVENTS.c.run_id)
        .where(
            ((EVENTS.c.hold_reason == "paused") & (RUNS.c.status == "paused"))
            | (
                (EVENTS.c.hold_reason == "awaiting_approval")
                & RUNS.c.approval_required.is_(True)
                & RUNS.c.approved_at.is_(None)
            )
        )
        .exists()
    )
    return (
        update(EVENTS)
        .where(EVENTS.c.scheduled_event_id.in_(event_ids), EVENTS.c.hold_reason.is_not(None))
        .where(~still_held)
        .values(hold_reason=None)
    )


@dataclass
class _Lookups:
    """Everything the act phase needs about a batch, loaded in a few queries."""

    assistants: dict[str, dict[str, Any]]
    runs: dict[str, dict[str, Any]]
    do_not_call: set[str]

    @classmethod
    def load(cls, engine: Engine, rows: list[dict[str, Any]]) -> _Lookups:
        assistant_ids = {r["assistant_id"] for r in rows}
        run_ids = {r["run_id"] for r in rows if r["run_id"]}
        targets = {r["telnyx_end_user_target"] for r in rows}
        a_table = m.Assistant.__table__
        dnc = m.DoNotCall.__table__
        with engine.connect() as conn:
            assistants = {
                r.assistant_id: dict(r._mapping)
                for r in conn.execute(
                    select(a_table).where(a_table.c.assistant_id.in_(assistant_ids))
                )
            }
            runs = (
                {
                    r.run_id: dict(r._mapping)
                    for r in conn.execute(select(RUNS).where(RUNS.c.run_id.in_(run_ids)))
                }
                if run_ids
                else {}
            )
            blocked = set(
                conn.execute(select(dnc.c.target).where(dnc.c.target.in_(targets))).scalars()
            )
        return cls(assistants=assistants, runs=runs, do_not_call=blocked)

    def take_budget(self, engine: Engine, run: dict[str, Any]) -> bool:
        """Count one call against the run's budget; False when it is used up, or when the run
        can no longer place calls (it changed since the batch was loaded: see
        ``reload_run``)."""
        statement = (
            update(RUNS)
            .where(RUNS.c.run_id == run["run_id"])
            .where(RUNS.c.status == "running")
            .where(RUNS.c.approval_required.is_(False) | RUNS.c.approved_at.is_not(None))
            .where(RUNS.c.call_budget.is_(None) | (RUNS.c.calls_placed < RUNS.c.call_budget))
            .values(calls_placed=RUNS.c.calls_placed + 1)
        )
        with engine.begin() as conn:
            taken = conn.execute(statement).rowcount == 1
        if taken:
            run["calls_placed"] = run["calls_placed"] + 1
        return taken

    def reload_run(self, engine: Engine, run: dict[str, Any]) -> dict[str, Any]:
        """Read the run again (for this batch's later calls too) and return it."""
        with engine.connect() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.run_id == run["run_id"])).one()
        fresh = dict(row._mapping)
        self.runs[run["run_id"]] = fresh
        return fresh


def _as_utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# ---------------------------------------------------------------------- drivers


def run_until_idle(
    dispatcher: Dispatcher,
    clock: VirtualClock,
    *,
    until: datetime | None = None,
    stop: Callable[[], bool] | None = None,
    after_sweep: Callable[[], None] | None = None,
    max_sweeps: int = 1_000_000,
) -> SweepReport:
    """Discrete-event loop: sweep, then jump the virtual clock to the next due time, until
    nothing is left (or ``until`` is reached, or ``stop()`` says so).

    ``after_sweep`` runs after every sweep (e.g. to let a planner schedule follow-up calls),
    so the loop only ends when neither the dispatcher nor the caller has more to do.
    """
    total = SweepReport()
    for _ in range(max_sweeps):
        total.add(dispatcher.sweep(clock.now()))
        if after_sweep is not None:
            after_sweep()
        if stop is not None and stop():
            break
        upcoming = dispatcher.next_due()
        if upcoming is None:
            break
        if until is not None and upcoming > until:
            clock.advance_to(until)
            break
        clock.advance_to(upcoming)
    return total


class RealtimeTrigger:
    """Runs the sweep in real (or accelerated) time with APScheduler.

    A sweep job keeps going while work falls due within ``poll_secs`` (sleeping exactly until
    the next due time, or until ``wake`` pokes it), and otherwise leaves a one-off APScheduler
    job for the next due time. A periodic safety job picks up rows written by other processes.
    ``wake(due_at)`` (wired to ``Context.wakeups``) brings the next sweep forward when new work
    is scheduled in this process.
    """

    JOB_ID = "mission-sweep"

    def __init__(self, dispatcher: Dispatcher, clock: Clock, *, poll_secs: float = 1.0) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.dispatcher = dispatcher
        self.clock = clock
        self.poll_secs = poll_secs
        self._scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._sweeping = threading.Lock()
        self._state = threading.Lock()
        self._poke = threading.Event()
        self._next_wake: datetime | None = None
        self._stopping = False
        self.sweeps = 0
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._stopping = False
        self.dispatcher.ctx.wakeups.append(self.wake)
        self._scheduler.start()
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.poll_secs,
            id="mission-poll",
            replace_existing=True,
        )
        self.wake(self.clock.now())

    def stop(self) -> None:
        self._stopping = True
        self._poke.set()
        if self.wake in self.dispatcher.ctx.wakeups:
            self.dispatcher.ctx.wakeups.remove(self.wake)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake(self, due_at: datetime) -> None:
        """Make sure a sweep runs no later than ``due_at`` (clock time)."""
        if not self._scheduler.running or self._stopping:
            return
        if self._sweeping.locked():
            self._poke.set()  # the running sweep loop re-reads the next due time
            return
        with self._state:
            if self._next_wake is not None and self._next_wake <= due_at:
                return
            self._next_wake = due_at
        self._schedule(due_at)

    def _schedule(self, due_at: datetime) -> None:
        delay = max(0.0, self.clock.wall_seconds_until(due_at))
        run_at = datetime.now().astimezone() + timedelta(seconds=delay)
        self._scheduler.add_job(
            self._tick, "date", run_date=run_at, id=self.JOB_ID, replace_existing=True
        )

    def _tick(self) -> None:
        if not self._sweeping.acquire(blocking=False):
            self._poke.set()
            return
        try:
            with self._state:
                self._next_wake = None
            while not self._stopping:
                self._poke.clear()
                self._sweep_once()
                upcoming = self.dispatcher.next_due()
                if upcoming is None:
                    return
                delay = self.clock.wall_seconds_until(upcoming)
                if delay > self.poll_secs:
                    with self._state:
                        self._next_wake = upcoming
                    self._schedule(upcoming)
                    return
                if delay > 0:
                    self._poke.wait(delay)
        finally:
            self._sweeping.release()

    def _sweep_once(self) -> None:
        try:
            self.dispatcher.sweep(self.clock.now())
            self.sweeps += 1
            self.last_error = None
        except MissionError as exc:
            self.last_error = str(exc)
            log.error("sweep failed: %s", exc)
        except Exception as exc:  # keep the trigger alive; the next tick retries
            self.last_error = repr(exc)
            log.exception("sweep failed")
            time.sleep(min(1.0, self.poll_secs))  # do not spin on a persistent failure
