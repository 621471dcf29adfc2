"""The dispatcher's act phase: for each due scheduled event it claimed, decide and do what is
next, then have the batch recorded.

``Dispatcher.sweep(now)`` works in batches: it claims due rows under a lease
(``engine.queue.claim``), acts on each outside any transaction, and records every result of
the batch in one transaction that releases the leases, where this worker still holds them
(``engine.queue.record``); listeners hear about events that reached a terminal status.
Batches are short: a batch claims what it can act on within half the lease at the pace
measured, starts no row after half the lease has passed, and releases the rest untouched.

Exactly once: the placement of ``<scheduled_event_id>:<attempt_number>`` is keyed by that
idempotency key. A row that may already have reached the provider is ``recovered`` in the
database (its last holder's lease lapsed unreleased, or its create went unanswered), and is
looked up with ``provider.find_attempt`` before anything else is done with it; it stays marked
until a look-up answers, so no process, this one or a later one, sends it blind.

Acting on a pending row: guardrails (do-not-call, the run gate — finished, paused, awaiting
approval —, calling hours over the span from now to the provider's dial moment
(``Provider.schedule_lead``), call budget), then ``provider.place_call``.
In-flight rows are asked for their outcome; a terminal outcome is settled by
``domain.retry.decide`` (complete, retry later, or fail).

An outcome that cannot be fetched is handled per row, never per sweep: a transient provider
failure is asked again with a growing back-off; a permanent one (the call is unknown to the
provider) ends the attempt as ``failed`` with the reason, and the retry rules apply. No row
stays in progress past ``in_flight_deadline`` (placed + lease + the provider's longest call):
then the attempt ends as ``failed`` with an event saying why. An in-flight call of a finished
(cancelled) run is reconciled when it ends, and not retried.

What runs the sweep (virtual or real time) lives in ``engine.drivers``.

Size: about 700 lines, one module on purpose: the act phase is one decision per row (check,
place, poll, settle) whose branches share the batch's lookups and report; the SQL lives in
``engine.queue``, the rows it writes in ``engine.records``, the rules in ``domain``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from mission_server.domain.calling_hours import CallingWindow, is_inside
from mission_server.domain.guardrails import hold_reason
from mission_server.domain.retry import Complete, Retry, RetryPolicy, decide
from mission_server.engine import queue, records
from mission_server.engine.lookups import Lookups
from mission_server.engine.queue import as_utc
from mission_server.errors import MissionError, ProviderError
from mission_server.services.context import CallFinished, Context
from mission_server.services.scheduling import (
    CANCEL_REQUESTED,
    CANCEL_SETTLED,
    defer_for_calling_hours,
    deferral_record,
)
from mission_server.telephony.base import (
    RETRYABLE_CALL_STATUSES,
    CallOutcome,
    CallRequest,
    CancellableCalls,
    Placement,
)
from state.db import is_postgres
from state.transitions import TERMINAL_RUN
from state.types import utc_iso

log = logging.getLogger(__name__)

#: How soon a call off at the provider that failed is asked again.
CANCEL_RETRY = timedelta(seconds=3)

#: How long to wait before asking a provider again about a call still in progress.
DEFAULT_POLL_SECS = 15.0
#: Back-off after a transient provider failure to place a call (no attempt is used up).
PROVIDER_RETRY_SECS = 60.0
#: The longest a call can last at a provider that does not say (``Provider.max_call_secs``).
DEFAULT_MAX_CALL_SECS = 4 * 3600.0
#: How many rows a dispatcher claims before it has measured how long a row takes.
FIRST_CLAIM = 20
#: The longest back-off between two looks at an outcome the provider failed to give.
MAX_OUTCOME_BACKOFF_SECS = 300.0


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
    #: Rows released untouched: the batch had used half its lease, or the process is stopping.
    released: int = 0

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
    #: The row's run is finished (cancelled): a call in flight is reconciled, never retried.
    run_finished: bool = False
    #: The row as claimed (``row`` is replaced as the act phase goes): what the record phase
    #: compares with, to write only what changed.
    claimed: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.claimed = self.row


def _retry_policy(row: dict[str, Any]) -> RetryPolicy:
    """The retry policy of a claimed row."""
    return RetryPolicy(
        max_retries_client_errors=row["max_retries_client_errors"],
        retry_interval_secs=row["retry_interval_secs"] or 0,
        retryable_statuses=RETRYABLE_CALL_STATUSES,
        channel=row["telnyx_conversation_channel"],
    )


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
        pace = ctx.settings.calls_per_second
        #: The account's limits on calls, enforced in the claim across every worker.
        self.limits = queue.DialLimits(
            max_calls=ctx.settings.concurrent_calls_limit(ctx.provider.name),
            interval_secs=1.0 / pace if pace else None,
        )
        #: Seconds one row of a batch took to act on, smoothed over batches (by the clock);
        #: None until a batch has been timed.
        self._secs_per_row: float | None = None
        self._windows: dict[str, CallingWindow] = {}

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    # ------------------------------------------------------------------ public

    def sweep(
        self,
        now: datetime | None = None,
        *,
        max_batches: int | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> SweepReport:
        """Process every row due at ``now`` (default: the clock's time), batch by batch.
        Once ``stopping()`` is true (a shutdown), no further batch is claimed and the rest of
        the current one is released untouched: a stop waits for one row at most."""
        now = now or self.ctx.now()
        report = SweepReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            if stopping is not None and stopping():
                break
            size = self.claim_size()
            rows = self._claim(now)
            if not rows:
                break
            batches += 1
            started = self.ctx.now()
            batch = self._process(rows, now, stopping)
            report.add(batch)
            self._timed(len(rows) - batch.released, started)
            if len(rows) < size and not batch.released:
                break
        return report

    def next_due(self) -> datetime | None:
        """The earliest time any unheld, unfinished row needs attention (``queue.next_due``)."""
        return queue.next_due(self.engine, self.limits, self.ctx.now())

    # ------------------------------------------------------------------ claim

    def claim_size(self) -> int:
        """How many rows to claim: as many as can be acted on within half the lease at the
        pace measured, at most ``batch_size``; ``FIRST_CLAIM`` before anything is measured, so a
        slow provider cannot make the first batch hold rows other workers could place."""
        per_row = self._secs_per_row
        if per_row is None:
            return min(self.batch_size, FIRST_CLAIM)
        if not per_row:
            return self.batch_size
        fits = int(self.lease.total_seconds() / 2 / per_row)
        return max(1, min(self.batch_size, fits))

    def _claim(self, now: datetime) -> list[dict[str, Any]]:
        return queue.claim(
            self.engine,
            worker_id=self.worker_id,
            now=now,
            lease_until=max(now, self.ctx.now()) + self.lease,
            batch_size=self.claim_size(),
            postgres=self._postgres,
            limits=self.limits,
        )

    def _window(self, data: dict[str, Any] | None) -> CallingWindow:
        """``CallingWindow.from_dict(data)``, read once per distinct window (a campaign's
        calls share one)."""
        try:
            key = repr(sorted(data.items())) if isinstance(data, dict) else repr(data)
        except TypeError:
            return CallingWindow.from_dict(data)
        window = self._windows.get(key)
        if window is None:
            window = CallingWindow.from_dict(data)
            if len(self._windows) < 1000:
                self._windows[key] = window
        return window

    def _timed(self, rows: int, started: datetime) -> None:
        """Fold one batch's pace (``rows`` acted on since ``started``) into ``_secs_per_row``."""
        pace = (self.ctx.now() - started).total_seconds() / max(rows, 1)
        old = self._secs_per_row
        self._secs_per_row = pace if old is None else (old + pace) / 2

    # ------------------------------------------------------------------ act

    def _process(
        self,
        rows: list[dict[str, Any]],
        now: datetime,
        stopping: Callable[[], bool] | None = None,
    ) -> SweepReport:
        report = SweepReport(claimed=len(rows))
        lookups = Lookups.load(self.engine, rows)
        work: list[_Work] = []
        # No row is started once half the lease has passed (by the clock: a batch takes a
        # while), so every request goes out well inside the lease of its row.
        act_until = self.ctx.now() + self.lease / 2
        for row in rows:
            if (stopping is not None and stopping()) or self.ctx.now() >= act_until:
                # A shutdown, or the batch has used its time: the rows not yet acted on are
                # released as they were, for the next sweep here or in another worker.
                report.released += 1
                work.append(_Work(row))
                continue
            try:
                if row["status"] == "pending":
                    item = self._dispatch(row, now, lookups, report)
                else:
                    item = self._check(row, now, lookups, report)
            except ProviderError as exc:
                if not exc.retryable:
                    # Permanent: this row fails with the reason (below), the sweep goes on.
                    item = self._failed_row(row, now, exc, report)
                else:
                    # The provider is briefly unavailable (reconciling): look again later;
                    # nothing was decided.
                    log.warning("provider unavailable for %s: %s", row["scheduled_event_id"], exc)
                    item = _Work(row)
                    item.values = {"due_at": now + self.poll}
            except Exception as exc:
                # One bad row must not stall the batch, nor be retried forever: it fails
                # visibly with the reason.
                if not isinstance(exc, MissionError):
                    log.exception("dispatch of %s failed", row["scheduled_event_id"])
                item = self._failed_row(row, now, exc, report)
            work.append(item)
        queue.record(self.engine, self.worker_id, work, now)
        for item in work:
            if item.finished is not None:
                self.ctx.notify_call_finished(item.finished)
        return report

    def _failed_row(
        self, row: dict[str, Any], now: datetime, exc: Exception, report: SweepReport
    ) -> _Work:
        code = getattr(exc, "code", None) or "dispatch_error"
        return self._stop(
            _Work(row), now, report, "failed", code, str(exc), call_status=row.get("call_status")
        )

    def _dispatch(
        self, row: dict[str, Any], now: datetime, lookups: Lookups, report: SweepReport
    ) -> _Work:
        item = _Work(row)
        event_id = row["scheduled_event_id"]
        target = row["telnyx_end_user_target"]
        run = lookups.runs.get(row["run_id"]) if row["run_id"] else None
        attempt_number = row["current_attempt"] + 1
        key = f"{event_id}:{attempt_number}"

        if row["recovered"]:
            # This attempt may have reached the provider (its last holder's lease lapsed
            # unreleased, or its create went unanswered): ask before anything else. A look-up
            # that fails leaves the row marked, for the next sweep to ask again.
            placement = self.ctx.provider.find_attempt(key, since=row.get("created_at"))
            if placement is not None:
                report.reconciled += 1
                item.run_finished = run is not None and run["status"] in TERMINAL_RUN
                request = self._request(row, attempt_number, key, now, lookups)
                return self._placed(item, attempt_number, key, request, placement, now, report)
            row = {**row, "recovered": False}
            item.row = row

        if target in lookups.do_not_call:
            return self._stop(
                item,
                now,
                report,
                "failed",
                "do_not_call",
                f"{target} is on the do-not-call list; the call was not placed",
            )
        if run is not None:
            stopped = self._run_gate(item, run, now, report)
            if stopped is not None:
                return stopped

        # Calling hours are kept from the moment the request goes out (the clock's time: a
        # batch takes a while) until the provider dials, its schedule lead later. A row with
        # no zones (written before every target needed one) fails here, saying so.
        zones = list(row["timezones"] or [])
        window = self._window(row["calling_window"])
        lead = self.ctx.provider.schedule_lead
        now = max(now, self.ctx.now())
        if not is_inside(now, zones, window, lead):
            moved, reason = defer_for_calling_hours(now, zones, window, lead)
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
                item.run_events.append(records.deferred_event(row, moved, reason))
            return item

        caller = lookups.caller_for(row)
        if caller != row["telnyx_agent_target"]:
            row = {**row, "telnyx_agent_target": caller}
            item.row = row
        request = self._request(row, attempt_number, key, now, lookups)
        if run is not None and not lookups.take_budget(self.engine, run):
            # The run may have changed since the batch read it (cancelled, paused): the
            # budget update only counts a call for a run that may still place it.
            stopped = self._run_gate(item, lookups.reload_run(self.engine, run), now, report)
            if stopped is not None:
                return stopped
            return self._stop(
                item,
                now,
                report,
                "failed",
                "call_budget_exhausted",
                f"the run's call budget of {run['call_budget']} calls is used up",
            )
        try:
            placement = self.ctx.provider.place_call(request)
        except ProviderError as exc:
            return self._placement_failed(item, now, exc, report)
        report.placed += 1
        return self._placed(item, attempt_number, key, request, placement, now, report)

    def _placed(
        self,
        item: _Work,
        attempt_number: int,
        key: str,
        request: CallRequest,
        placement: Placement,
        now: datetime,
        report: SweepReport,
    ) -> _Work:
        """Record ``placement`` as the row's attempt in flight, then settle what is known."""
        row = item.row
        item.values = {
            "recovered": False,
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
            attempts = _retry_policy(row).attempts
            item.run_events.append(
                records.placed_event(row, attempt_number, attempts, key, placement)
            )
        row = {**row, **item.values}
        item.row = row
        return self._settle(item, placement, now, report)

    def _check(
        self, row: dict[str, Any], now: datetime, lookups: Lookups, report: SweepReport
    ) -> _Work:
        item = _Work(row)
        run = lookups.runs.get(row["run_id"]) if row["run_id"] else None
        item.run_finished = run is not None and run["status"] in TERMINAL_RUN
        attempt_number = row["current_attempt"]
        key = f"{row['scheduled_event_id']}:{attempt_number}"
        if row["in_flight_call_control_id"] is None:
            # Claimed as in progress but never recorded as placed: reconcile.
            placement = self.ctx.provider.find_attempt(key, since=row.get("created_at"))
            if placement is None:
                item.values = {
                    "status": "pending",
                    "current_attempt": attempt_number - 1,
                    "due_at": now,
                    "recovered": False,
                }
                return item
            report.reconciled += 1
        else:
            placement = Placement(
                call_control_id=row["in_flight_call_control_id"],
                placed_at=as_utc(row["in_flight_placed_at"]) or now,
                conversation_id=row["conversation_id"],
            )
        # The attempt in flight is known: nothing is left to reconcile for this row.
        item.values["recovered"] = False
        context = dict(row.get("in_flight_context") or {})
        wanted = item.run_finished or bool(context.get(CANCEL_REQUESTED))
        if wanted and placement.outcome is None and not context.get(CANCEL_SETTLED):
            cancelled = self._cancel_at_provider(item, placement, context, now, report)
            if cancelled is not None:
                return cancelled
            if CANCEL_SETTLED not in (item.values.get("in_flight_context") or {}):
                # The cancel failed: asked again soon, before the provider dials if it can.
                settled = self._settle(item, placement, now, report)
                due = settled.values.get("due_at")
                if settled.values.get("status") == "in_progress" and due is not None:
                    settled.values["due_at"] = min(due, now + CANCEL_RETRY)
                return settled
        return self._settle(item, placement, now, report)

    def _cancel_at_provider(
        self,
        item: _Work,
        placement: Placement,
        context: dict[str, Any],
        now: datetime,
        report: SweepReport,
    ) -> _Work | None:
        """Call a call in flight off at the provider (its run ended, or it was cancelled):
        the ``_Work`` that ends it as cancelled, or None to read its outcome as usual (the
        provider had dispatched it, or cannot cancel). A failed cancel is recorded and asked
        again at the next sweep, while the outcome is polled meanwhile."""
        provider = self.ctx.provider
        if not isinstance(provider, CancellableCalls):
            return None
        row = item.row
        why = "run finished" if item.run_finished else "cancelled on request"
        try:
            cancelled = provider.cancel_call(placement)
        except ProviderError as exc:
            if row["run_id"]:
                item.run_events.append(records.cancel_failed_event(row, exc))
            return None
        # Asked once and answered: never again for this attempt.
        item.values["in_flight_context"] = {**context, CANCEL_SETTLED: True}
        if not cancelled:
            if row["run_id"]:
                item.run_events.append(records.cancel_dispatched_event(row, why))
            return None
        if row["run_id"]:
            item.run_events.append(records.cancelled_at_provider_event(row, why))
        attempt_number = row["current_attempt"]
        outcome = CallOutcome(
            call_status="canceled", ended_at=now, call_control_id=placement.call_control_id
        )
        row_ended = records.attempt_record(row, attempt_number, placement, outcome, now, None)
        item.attempt = row_ended
        item.values.update(
            {
                "call_status": "canceled",
                "in_flight_call_control_id": None,
                "in_flight_placed_at": None,
                "in_flight_context": None,
            }
        )
        return self._stop(
            item,
            now,
            report,
            "cancelled",
            "run_finished" if item.run_finished else "cancelled",
            f"attempt {attempt_number} was cancelled at the provider before it dialled ({why})",
            call_status="canceled",
        )

    def _settle(
        self, item: _Work, placement: Placement, now: datetime, report: SweepReport
    ) -> _Work:
        outcome = placement.outcome
        if outcome is None or outcome.ended_at > now:
            if outcome is None:
                try:
                    outcome = self.ctx.provider.get_outcome(placement, now)
                except ProviderError as exc:
                    return self._outcome_unavailable(item, placement, now, exc, report)
            if outcome is None or outcome.ended_at > now:
                deadline = self.in_flight_deadline(placement)
                if outcome is None and now >= deadline:
                    detail = (
                        f"no outcome for call {placement.call_control_id} "
                        f"{(now - placement.placed_at).total_seconds():.0f} s after it was "
                        "placed (longer than the lease plus the longest call)"
                    )
                    return self._give_up(item, placement, now, report, "outcome_timeout", detail)
                report.in_flight += 1
                item.values.setdefault("status", "in_progress")
                item.values["due_at"] = (
                    outcome.ended_at if outcome else min(now + self.poll, deadline)
                )
                return item
        return self._terminal(item, placement, outcome, now, report)

    def in_flight_deadline(self, placement: Placement) -> datetime:
        """When an attempt placed as ``placement`` has certainly ended: its placement plus
        the lease plus the provider's longest call."""
        longest = getattr(self.ctx.provider, "max_call_secs", None) or DEFAULT_MAX_CALL_SECS
        placed = as_utc(placement.placed_at) or placement.placed_at
        return placed + self.lease + timedelta(seconds=float(longest))

    def _outcome_unavailable(
        self,
        item: _Work,
        placement: Placement,
        now: datetime,
        exc: ProviderError,
        report: SweepReport,
    ) -> _Work:
        """The provider failed to give the outcome. Transient: ask again after a back-off
        that grows with the call's age, up to the deadline. Permanent (unknown to the
        provider), or past the deadline: the attempt ends as failed with the reason."""
        event_id = item.row["scheduled_event_id"]
        deadline = self.in_flight_deadline(placement)
        if exc.retryable and now < deadline:
            placed = as_utc(placement.placed_at) or placement.placed_at
            age = max((now - placed).total_seconds(), 0.0)
            delay = min(max(age / 2, self.poll.total_seconds()), MAX_OUTCOME_BACKOFF_SECS)
            again = min(now + timedelta(seconds=delay), deadline)
            log.warning(
                "outcome of %s unavailable, asking again at %s: %s", event_id, utc_iso(again), exc
            )
            report.in_flight += 1
            item.values.setdefault("status", "in_progress")
            item.values["due_at"] = again
            if item.row["run_id"]:
                item.run_events.append(records.outcome_unavailable_event(item.row, exc, again))
            return item
        log.warning("outcome of %s cannot be fetched; the attempt fails: %s", event_id, exc)
        code = "outcome_unavailable" if exc.retryable else (exc.code or "outcome_not_found")
        return self._give_up(item, placement, now, report, code, str(exc))

    def _give_up(
        self,
        item: _Work,
        placement: Placement,
        now: datetime,
        report: SweepReport,
        code: str,
        detail: str,
    ) -> _Work:
        """End the attempt as ``failed`` with the reason; the retry rules then apply."""
        error = {"code": code, "detail": detail, "at": utc_iso(now)}
        item.values["errors"] = [*(item.row["errors"] or []), error]
        if item.row["run_id"]:
            item.run_events.append(records.attempt_abandoned_event(item.row, code, detail))
        outcome = CallOutcome(
            call_status="failed",
            ended_at=now,
            call_control_id=placement.call_control_id,
            conversation_id=placement.conversation_id,
        )
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
        item.attempt = records.attempt_record(
            row, attempt_number, placement, outcome, ended, conversation_id
        )
        context = item.values.get("in_flight_context") or row.get("in_flight_context") or {}
        if outcome.errors:
            # The provider's own reasons (Telnyx's event ``errors``): kept on the event and
            # shown in the run's events.
            said = "; ".join(outcome.errors)
            error = {"code": "provider_errors", "detail": said, "at": utc_iso(now)}
            item.values["errors"] = [*(item.values.get("errors", row["errors"]) or []), error]
            if row["run_id"]:
                item.run_events.append(records.provider_errors_event(row, attempt_number, said))
        if conversation_id:
            self._collect_conversation(item, conversation_id, placement, outcome, context, ended)
        target = row["telnyx_end_user_target"]
        policy = _retry_policy(row)
        item.values.update(
            {
                "call_status": outcome.call_status,
                "conversation_id": conversation_id,
                "in_flight_call_control_id": None,
                "in_flight_placed_at": None,
                "in_flight_context": None,
            }
        )
        decision = decide(outcome.call_status, attempt_number, policy, ended)
        if item.run_finished and not isinstance(decision, Complete):
            # The run was cancelled (or ended) while this call was in flight: its outcome is
            # recorded, and no further attempt is made.
            return self._stop(
                item,
                ended,
                report,
                "cancelled",
                "run_finished",
                f"the run finished while attempt {attempt_number} was in flight "
                f"(call_status {outcome.call_status}); no retry",
                call_status=outcome.call_status,
            )
        if context.get(CANCEL_REQUESTED) and not isinstance(decision, Complete):
            return self._stop(
                item,
                ended,
                report,
                "cancelled",
                "cancelled",
                f"the call was cancelled while attempt {attempt_number} was in flight "
                f"(call_status {outcome.call_status}); no retry",
                call_status=outcome.call_status,
            )
        if isinstance(decision, Complete):
            report.completed += 1
            return self._finish(
                item,
                ended,
                "completed",
                outcome.call_status,
                note=(
                    f"Call to {target} {records.status_text(outcome)} after attempt "
                    f"{attempt_number}"
                    + (f" ({outcome.call_duration:.0f} s)" if outcome.call_duration else "")
                ),
            )
        if isinstance(decision, Retry):
            retry_at = decision.at
            zones = list(row["timezones"] or [])
            window = self._window(row["calling_window"])
            moved, reason = defer_for_calling_hours(
                retry_at, zones, window, self.ctx.provider.schedule_lead
            )
            deferrals = list(row["deferrals"] or [])
            if reason:
                deferrals.append(deferral_record(retry_at, moved, reason, now))
            report.retried += 1
            item.values.update(
                {
                    "status": "pending",
                    "due_at": moved,
                    "scheduled_at_fixed_datetime": moved,
                    "deferrals": deferrals,
                }
            )
            if row["run_id"]:
                item.run_events.append(
                    records.retry_event(
                        row, attempt_number, policy.attempts, outcome, retry_at, moved, reason
                    )
                )
            return item
        report.failed += 1
        return self._finish(item, ended, "failed", outcome.call_status, error=decision.error)

    def _collect_conversation(
        self,
        item: _Work,
        conversation_id: str,
        placement: Placement,
        outcome: CallOutcome,
        context: dict[str, Any],
        ended: datetime,
    ) -> None:
        try:
            messages = self.ctx.provider.get_messages(conversation_id)
        except ProviderError as exc:
            log.warning("could not fetch transcript of %s: %s", conversation_id, exc)
            messages = []
        attempt_number = item.attempt["attempt_number"] if item.attempt else None
        item.conversation = records.conversation_record(
            item.row, conversation_id, attempt_number, placement, outcome, context, ended
        )
        item.messages = records.message_records(conversation_id, messages)

    def _stop(
        self,
        item: _Work,
        when: datetime,
        report: SweepReport,
        status: str,
        code: str,
        detail: str,
        *,
        call_status: str | None = None,
    ) -> _Work:
        """End the event without placing (or retrying) it, with the reason: counted as failed."""
        report.failed += 1
        return self._finish(item, when, status, call_status, error={"code": code, "detail": detail})

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
            earlier = item.values.get("errors", row["errors"]) or []
            item.values["errors"] = [*earlier, {**error, "at": utc_iso(when)}]
        conversation_id = item.values.get("conversation_id", row.get("conversation_id"))
        if row["run_id"]:
            item.run_events.append(
                records.finished_event(row, status, call_status, conversation_id, error, note)
            )
        attempts = item.attempt["attempt_number"] if item.attempt else row["current_attempt"]
        item.finished = records.call_finished(
            row, status, call_status, conversation_id, attempts, when
        )
        return item

    def _placement_failed(
        self, item: _Work, now: datetime, exc: ProviderError, report: SweepReport
    ) -> _Work:
        if exc.retryable:
            # The provider could not take the call right now: try again later without using
            # up an attempt. A create that may have reached it is marked in the row, so the
            # next sweep, here or in another process, looks it up before sending it again.
            item.values = {
                "due_at": now + timedelta(seconds=PROVIDER_RETRY_SECS),
                "recovered": exc.maybe_sent,
            }
            if item.row["run_id"]:
                item.run_events.append(records.provider_busy_event(item.row, exc))
            return item
        return self._stop(item, now, report, "failed", exc.code or "provider_rejected", str(exc))

    def _run_gate(
        self, item: _Work, run: dict[str, Any], now: datetime, report: SweepReport
    ) -> _Work | None:
        """The work item when the run's state stops this call (finished: cancel it; paused or
        awaiting approval: hold it), else None."""
        if run["status"] in TERMINAL_RUN:
            return self._stop(
                item, now, report, "cancelled", "run_finished", f"run is {run['status']}"
            )
        hold = hold_reason(run["status"], run["approval_required"], run["approved_at"])
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
        lookups: Lookups,
    ) -> CallRequest:
        run = lookups.runs.get(row["run_id"]) if row["run_id"] else None
        assistant = lookups.assistants[row["assistant_id"]]
        return records.call_request(
            row, attempt_number, key, now, assistant, run, asks=lookups.asks_of(assistant)
        )
