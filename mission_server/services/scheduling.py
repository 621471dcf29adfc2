"""Scheduled events (calls and SMS): creation with every rule of the reference, inspection,
cancellation, calling hours and the do-not-call list.

Rules (reference/09_scheduled-events.md): ``max_retries_client_errors`` 0–10 counts retries on
top of the first attempt; ``retry_interval_secs`` 60–86400 is required when retries > 0 and
rejected otherwise; both are rejected for ``sms_chat``, where ``text`` is required;
``scheduled_at_fixed_datetime`` must be in the future.

Creating one event and creating a campaign's batch (``create_scheduled_events``) are the same
code: the rules on the request alone (``_check_request``), then the rules that read the time
and the records (``_create_event``) through ``_Reads``, which reads each record once (a batch
preloads what its requests name) and writes the events with one insert.

Size: about 1,050 lines, one module on purpose: creating, listing and cancelling an event
share its validation, the idempotency-key comparison and the lease rule that decides what a
cancel may touch; the do-not-call list is ``services.do_not_call``, calling hours are
``domain.calling_hours``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mission_server.clock import ensure_utc
from mission_server.domain.calling_hours import CallingWindow, next_allowed
from mission_server.domain.guardrails import hold_reason, refuse_finished_run
from mission_server.domain.targets import normalise_target, timezones_for_target
from mission_server.domain.validation import (
    require_choice,
    require_int,
    require_mapping,
    require_text,
)
from mission_server.errors import ConflictError, GuardrailError, MissionError, ValidationError
from mission_server.services.context import CallFinished, Context
from mission_server.services.do_not_call import is_do_not_call
from mission_server.services.paging import MAX_LIMIT, Keyset, Page, every, page_limit
from mission_server.services.schemas import ScheduledEventOut
from mission_server.telephony.base import CancellableCalls, NumberInfo, SmsPlatform
from state import models as m
from state.db import session_scope
from state.errors import NotFound
from state.repo import append_event, attempts_by_event, load_event
from state.transitions import (
    EVENT_STATUSES,
    SCHEDULED_EVENT_TRANSITIONS,
    check_transition,
)
from state.types import new_id

CHANNELS = ("phone_call", "sms_chat")
MAX_RETRIES = (0, 10)
RETRY_INTERVAL = (60, 86_400)
#: How far ahead a call or SMS may be scheduled (the reference sets no bound; this one keeps
#: every date the service computes from it inside the calendar).
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def validate_retry_policy(
    channel: str, max_retries: Any, retry_interval: Any
) -> tuple[int, int | None]:
    """Apply the reference's retry rules; return (max_retries_client_errors,
    retry_interval_secs).

    Raises:
        ValidationError: naming the field, the rule and the value.
    """
    if channel == "sms_chat":
        if max_retries not in (None, 0):
            raise ValidationError(
                "max_retries_client_errors",
                "must be omitted (or 0) for sms_chat events: retries are phone-call only",
                max_retries,
            )
        if retry_interval not in (None, 0):
            raise ValidationError(
                "retry_interval_secs",
                "must be omitted for sms_chat events: retries are phone-call only",
                retry_interval,
            )
        return 0, None
    retries = (
        0
        if max_retries is None
        else require_int(
            max_retries, "max_retries_client_errors", minimum=MAX_RETRIES[0], maximum=MAX_RETRIES[1]
        )
    )
    if retries > 0:
        if retry_interval is None:
            raise ValidationError(
                "retry_interval_secs",
                "is required when max_retries_client_errors > 0",
                retry_interval,
            )
        interval = require_int(
            retry_interval,
            "retry_interval_secs",
            minimum=RETRY_INTERVAL[0],
            maximum=RETRY_INTERVAL[1],
        )
        return retries, interval
    if retry_interval is not None:
        # Range first, so an out-of-range value gets the more specific message.
        require_int(
            retry_interval,
            "retry_interval_secs",
            minimum=RETRY_INTERVAL[0],
            maximum=RETRY_INTERVAL[1],
        )
        raise ValidationError(
            "retry_interval_secs",
            "is only allowed when max_retries_client_errors > 0",
            retry_interval,
        )
    return 0, None


def describe_window(zones: list[str], window: CallingWindow) -> str:
    start, end = window.effective()
    days = window.to_dict()["days"]
    day_text = f"{days[0]}–{days[-1]}" if len(days) > 1 else days[0]
    return f"{day_text} {start:%H:%M}–{end:%H:%M} local ({', '.join(zones)})"


def defer_for_calling_hours(
    moment: datetime, zones: list[str], window: CallingWindow, lead: timedelta = timedelta(0)
) -> tuple[datetime, str | None]:
    """The time to use and, when it moved, the reason. ``lead`` is how long after that time
    the provider dials (``Provider.schedule_lead``): the dial moment must be inside the window
    too.

    Raises:
        ValidationError: no zones, or the zones share no calling hours.
    """
    allowed = next_allowed(moment, zones, window, lead)
    if allowed == moment:
        return moment, None
    dial = moment + lead
    shown = "%a %H:%M:%S" if lead else "%a %H:%M"
    local = ", ".join(f"{dial.astimezone(ZoneInfo(z)):{shown}} in {z}" for z in zones)
    when = f"it would be dialled {local}" if lead else f"it would be {local}"
    return allowed, (f"outside calling hours ({describe_window(zones, window)}); {when}")


def deferral_record(requested: datetime, moved_to: datetime, reason: str, now: datetime) -> dict:
    from state.types import utc_iso

    return {
        "requested": utc_iso(requested),
        "moved_to": utc_iso(moved_to),
        "reason": reason,
        "recorded_at": utc_iso(now),
    }


def create_scheduled_event(
    ctx: Context,
    *,
    assistant_id: str,
    channel: str,
    to: str,
    from_number: str | None = None,
    scheduled_at: datetime | str | None = None,
    text: str | None = None,
    dynamic_variables: dict[str, Any] | None = None,
    conversation_metadata: dict[str, Any] | None = None,
    max_retries_client_errors: int | None = None,
    retry_interval_secs: int | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
    idempotency_key: str | None = None,
    timezone: str | None = None,
    calling_window: dict[str, Any] | None = None,
) -> ScheduledEventOut:
    """Schedule a call or SMS. ``scheduled_at`` omitted means as soon as calling hours allow.

    Calling hours are kept in every zone of the number and in ``timezone`` when given (it
    narrows the window, never widens it); a SIP URI or a number with no known zone needs
    ``timezone``. The provider's dial moment (``scheduled_at`` plus its ``schedule_lead``) is
    what must be inside the window.

    Idempotency: a repeated ``idempotency_key`` returns the first event as it is now, and is
    looked up before the checks that depend on time or state (``scheduled_at`` in the future,
    the run still active, the do-not-call list), so a retried request whose time has since
    passed, or whose run has since finished, still gets the first event. The repeated request
    must ask for the same thing: every field it gives is compared with the first request
    (``from_number`` and ``scheduled_at`` only when given; ``scheduled_at`` against the time
    the first request asked for, before any calling-hours deferral) and a difference is a
    ``ConflictError`` naming the field. Nothing is written when any rule fails.

    Raises:
        ValidationError, NotFound (assistant, run, step), ConflictError, GuardrailError
        (do-not-call list, finished run).
    """
    checked = _check_request(
        assistant_id=assistant_id,
        channel=channel,
        to=to,
        from_number=from_number,
        scheduled_at=scheduled_at,
        text=text,
        dynamic_variables=dynamic_variables,
        conversation_metadata=conversation_metadata,
        max_retries_client_errors=max_retries_client_errors,
        retry_interval_secs=retry_interval_secs,
        run_id=run_id,
        step_id=step_id,
        idempotency_key=idempotency_key,
        timezone=timezone,
        calling_window=calling_window,
    )
    try:
        with session_scope(ctx.engine) as session:
            reads = _Reads(session)
            out = _create_event(ctx, reads, checked)
            reads.write()
    except IntegrityError:
        raise ConflictError(
            f"idempotency_key {checked.idempotency_key!r} was used concurrently; retry the request"
        ) from None
    if reads.wakes:
        ctx.wake(reads.wakes[0])
    return out


def create_scheduled_events(
    ctx: Context,
    requests: list[dict[str, Any]],
    *,
    then: Callable[[Connection, list[ScheduledEventOut | MissionError], bool], None] | None = None,
) -> list[ScheduledEventOut | MissionError]:
    """Schedule many calls in one transaction: each request is what ``create_scheduled_event``
    takes, with the same rules; return, in order, each event or the error that refused it
    (a refused request writes nothing, the others are still scheduled). Should two writers
    race on an idempotency key, the batch is redone one request at a time.

    ``then(connection, results, committed)`` writes what the caller keeps about the events
    in the same transaction, before anyone else can see them (``committed`` False); after a
    race, when the events were committed one by one, in a transaction of its own
    (``committed`` True: others may be acting on them already).

    What the rules read is read once for the batch: the first events of the idempotency keys,
    the do-not-call entries of the targets and the plan steps named, in one query each; each
    assistant, its numbers and each run once. The events (and their run events) are written
    with one insert each.
    """
    results: list[ScheduledEventOut | MissionError] = []
    checked: list[_Checked | None] = []
    for request in requests:
        try:
            checked.append(_check_request(**request))
        except MissionError as exc:
            checked.append(None)
            results.append(exc)
            continue
        results.append(_PENDING)
    try:
        with session_scope(ctx.engine) as session:
            reads = _Reads(session)
            reads.preload([c for c in checked if c is not None])
            for index, item in enumerate(checked):
                if item is None:
                    continue
                try:
                    results[index] = _create_event(ctx, reads, item)
                except MissionError as exc:
                    results[index] = exc
            reads.write()
            if then is not None:
                then(session.connection(), results, False)
    except IntegrityError:
        results = []
        for request in requests:
            try:
                results.append(create_scheduled_event(ctx, **request))
            except MissionError as exc:
                results.append(exc)
        if then is not None:
            with ctx.engine.begin() as conn:
                then(conn, results, True)
        return results
    if reads.wakes:
        ctx.wake(min(reads.wakes))
    return results


#: A placeholder in ``create_scheduled_events``' results while the batch is written.
_PENDING: Any = object()


@dataclass(frozen=True)
class _Checked:
    """A request to schedule, after the rules that need neither the database nor the time:
    the values as they are stored."""

    assistant_id: str
    channel: str
    target: str
    retries: int
    interval: int | None
    text: str | None
    variables: dict[str, Any]
    metadata: dict[str, Any]
    idempotency_key: str | None
    window: CallingWindow
    zones: list[str]
    given_from: str | None
    asked_for: datetime | None
    run_id: str | None
    step_id: str | None

    def asked(self) -> dict[str, Any]:
        """What ``_same_request_or_conflict`` compares with an idempotency key's first event."""
        return {
            "assistant_id": self.assistant_id,
            "telnyx_conversation_channel": self.channel,
            "to": self.target,
            "from_number": self.given_from,
            "scheduled_at": self.asked_for,
            "text": self.text,
            "dynamic_variables": self.variables,
            "conversation_metadata": self.metadata,
            "max_retries_client_errors": self.retries,
            "retry_interval_secs": self.interval,
            "run_id": self.run_id,
            "step_id": self.step_id,
            "timezone": self.zones,
            "calling_window": self.window.to_dict(),
        }


def _check_request(
    *,
    assistant_id: str,
    channel: str,
    to: str,
    from_number: str | None = None,
    scheduled_at: datetime | str | None = None,
    text: str | None = None,
    dynamic_variables: dict[str, Any] | None = None,
    conversation_metadata: dict[str, Any] | None = None,
    max_retries_client_errors: int | None = None,
    retry_interval_secs: int | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
    idempotency_key: str | None = None,
    timezone: str | None = None,
    calling_window: dict[str, Any] | None = None,
) -> _Checked:
    """The rules of ``create_scheduled_event`` on the request alone, in their order.

    Raises:
        ValidationError.
    """
    require_choice(channel, "telnyx_conversation_channel", CHANNELS)
    target = normalise_target(to, "to")
    retries, interval = validate_retry_policy(
        channel, max_retries_client_errors, retry_interval_secs
    )
    if channel == "sms_chat":
        text = require_text(text, "text", max_length=1600)
    elif text is not None:
        raise ValidationError("text", "applies to sms_chat events only", text)
    variables = require_mapping(dynamic_variables, "dynamic_variables")
    metadata = require_mapping(conversation_metadata, "conversation_metadata")
    if idempotency_key is not None:
        idempotency_key = require_text(idempotency_key, "idempotency_key")
    window = CallingWindow.from_dict(calling_window)
    zones = timezones_for_target(target, timezone)
    given_from = None if from_number is None else normalise_target(from_number, "from_number")
    return _Checked(
        assistant_id=assistant_id,
        channel=channel,
        target=target,
        retries=retries,
        interval=interval,
        text=text,
        variables=variables,
        metadata=metadata,
        idempotency_key=idempotency_key,
        window=window,
        zones=zones,
        given_from=given_from,
        asked_for=_parse_scheduled_at(scheduled_at),
        run_id=run_id,
        step_id=step_id,
    )


#: How many values one ``IN (…)`` of the batch's look-ups carries.
_IN_CHUNK = 500


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]


# ``_Reads``' batch reads, built once (building a statement costs about as much as running it).
_EVENTS_OF_KEYS = select(m.ScheduledEvent).where(
    col(m.ScheduledEvent.idempotency_key).in_(bindparam("r_keys", expanding=True))
)
_BLOCKED_OF = select(m.DoNotCall.target).where(
    col(m.DoNotCall.target).in_(bindparam("r_targets", expanding=True))
)
_STEPS_OF_RUN = select(m.PlanStep.step_id).where(
    m.PlanStep.run_id == bindparam("r_run"),
    col(m.PlanStep.step_id).in_(bindparam("r_steps", expanding=True)),
)
_ASSISTANT_OF = sa_select(
    m.Assistant.__table__.c.assistant_id,  # type: ignore[attr-defined]
    m.Assistant.__table__.c.name,  # type: ignore[attr-defined]
    m.Assistant.__table__.c.provider_ref,  # type: ignore[attr-defined]
).where(m.Assistant.__table__.c.assistant_id == bindparam("r_assistant"))  # type: ignore[attr-defined]
_RUN_OF = sa_select(
    m.Run.__table__.c.status,  # type: ignore[attr-defined]
    m.Run.__table__.c.approval_required,  # type: ignore[attr-defined]
    m.Run.__table__.c.approved_at,  # type: ignore[attr-defined]
).where(m.Run.__table__.c.run_id == bindparam("r_run"))  # type: ignore[attr-defined]
_FIRST_NUMBER = (
    select(m.PhoneNumber)
    .where(m.PhoneNumber.assistant_id == bindparam("r_assistant"))
    .order_by(col(m.PhoneNumber.hd_voice).desc())
)


class _Reads:
    """What scheduling reads and writes in one transaction: each record it reads is read once
    (preloaded for a batch), and the events it makes are written together (``write``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._assistants: dict[str, Any] = {}
        self._first_numbers: dict[str, m.PhoneNumber | None] = {}
        self._numbers: dict[str, m.PhoneNumber | None] = {}
        self._runs: dict[str, Any] = {}
        #: Preloaded for a batch (None: looked up one at a time).
        self._existing: dict[str, m.ScheduledEvent] | None = None
        self._attempts: dict[str, list[m.CallAttempt]] = {}
        self._steps: set[tuple[str, str]] | None = None
        self._blocked: set[str] | None = None
        #: The events made here, by idempotency key (they are the first events of their keys).
        self._made: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.run_events: list[dict[str, Any]] = []
        #: When to wake the dispatcher: the due time of each event made that is not held.
        self.wakes: list[datetime] = []

    def preload(self, checked: list[_Checked]) -> None:
        """Read, for the whole batch, in one query each: the events of the idempotency keys
        (and their attempts), the do-not-call entries of the targets, the plan steps named."""
        session = self.session
        keys = sorted({c.idempotency_key for c in checked if c.idempotency_key is not None})
        self._existing = {}
        for chunk in _chunks(keys):
            for row in session.exec(_EVENTS_OF_KEYS, params={"r_keys": chunk}):
                assert row.idempotency_key is not None
                self._existing[row.idempotency_key] = row
        if self._existing:
            self._attempts = attempts_by_event(
                session, [row.scheduled_event_id for row in self._existing.values()]
            )
        targets = sorted({c.target for c in checked})
        self._blocked = set()
        for chunk in _chunks(targets):
            self._blocked.update(session.exec(_BLOCKED_OF, params={"r_targets": chunk}))
        steps = {(c.run_id, c.step_id) for c in checked if c.run_id and c.step_id is not None}
        self._steps = set()
        for run_id in sorted({run_id for run_id, _ in steps}):
            wanted = sorted(step for run, step in steps if run == run_id)
            for chunk in _chunks(wanted):
                found = session.exec(_STEPS_OF_RUN, params={"r_run": run_id, "r_steps": chunk})
                self._steps.update((run_id, step) for step in found)

    def first_event(self, key: str) -> tuple[Any, list[m.CallAttempt]] | None:
        """The first event of idempotency key ``key`` and its attempts, if there is one."""
        made = self._made.get(key)
        if made is not None:
            return made, []
        if self._existing is not None:
            row = self._existing.get(key)
            if row is None:
                return None
            return row, self._attempts.get(row.scheduled_event_id, [])
        row = self.session.exec(
            select(m.ScheduledEvent).where(m.ScheduledEvent.idempotency_key == key)
        ).first()
        if row is None:
            return None
        return row, attempts_by_event(self.session, [row.scheduled_event_id]).get(
            row.scheduled_event_id, []
        )

    def assistant(self, assistant_id: str) -> Any:
        """The columns scheduling reads of the assistant (``assistant_id``, ``name``,
        ``provider_ref``). Raises: NotFound."""
        found = self._assistants.get(assistant_id)
        if found is None:
            found = (
                self.session.connection()
                .execute(_ASSISTANT_OF, {"r_assistant": assistant_id})
                .first()
            )
            if found is None:
                raise NotFound("assistant", assistant_id)
            self._assistants[assistant_id] = found
        return found

    def first_number(self, assistant_id: str) -> m.PhoneNumber | None:
        """The assistant's number a call is made from unless it names one (HD voice first)."""
        if assistant_id not in self._first_numbers:
            self._first_numbers[assistant_id] = self.session.exec(
                _FIRST_NUMBER, params={"r_assistant": assistant_id}
            ).first()
        return self._first_numbers[assistant_id]

    def number(self, phone_number: str) -> m.PhoneNumber | None:
        if phone_number not in self._numbers:
            self._numbers[phone_number] = self.session.get(m.PhoneNumber, phone_number)
        return self._numbers[phone_number]

    def run(self, run_id: str) -> Any:
        """The columns scheduling reads of the run (``status``, ``approval_required``,
        ``approved_at``). Raises: NotFound."""
        found = self._runs.get(run_id)
        if found is None:
            found = self.session.connection().execute(_RUN_OF, {"r_run": run_id}).first()
            if found is None:
                raise NotFound("run", run_id)
            self._runs[run_id] = found
        return found

    def has_step(self, run_id: str, step_id: str) -> bool:
        if self._steps is not None:
            return (run_id, step_id) in self._steps
        return (
            self.session.exec(
                select(m.PlanStep).where(m.PlanStep.run_id == run_id, m.PlanStep.step_id == step_id)
            ).first()
            is not None
        )

    def do_not_call(self, target: str) -> bool:
        if self._blocked is not None:
            return target in self._blocked
        return is_do_not_call(self.session, target)

    def add(self, event: dict[str, Any], run_event: dict[str, Any] | None) -> ScheduledEventOut:
        """Keep a new event (and its run event) for ``write``; the event as returned."""
        self.events.append(event)
        if run_event is not None:
            self.run_events.append(run_event)
        row = SimpleNamespace(**event)
        if event["idempotency_key"] is not None:
            self._made[event["idempotency_key"]] = row
        if event["hold_reason"] is None:
            self.wakes.append(event["due_at"])
        return ScheduledEventOut.of(cast(m.ScheduledEvent, row), [])

    def write(self) -> None:
        """Insert the events made, then their run events, one statement each.

        Raises:
            IntegrityError: an idempotency key was used concurrently.
        """
        conn = self.session.connection()
        if self.events:
            conn.execute(_INSERT_SCHEDULED, self.events)
        if self.run_events:
            conn.execute(_INSERT_RUN_EVENTS, self.run_events)


_INSERT_SCHEDULED = insert(m.ScheduledEvent.__table__)  # type: ignore[attr-defined]
_INSERT_RUN_EVENTS = insert(m.Event.__table__)  # type: ignore[attr-defined]


def _create_event(ctx: Context, reads: _Reads, checked: _Checked) -> ScheduledEventOut:
    """The rules of ``create_scheduled_event`` that read the time or the database, in their
    order; the event made (kept in ``reads`` to be written), or the first event of its
    idempotency key.

    Raises:
        ValidationError, NotFound, ConflictError, GuardrailError.
    """
    c = checked
    assistant_id, target, run_id, step_id = c.assistant_id, c.target, c.run_id, c.step_id
    now = ctx.now()
    if c.idempotency_key is not None:
        first = reads.first_event(c.idempotency_key)
        if first is not None:
            existing, attempts = first
            return _same_request_or_conflict(existing, c.asked(), attempts)
    if c.asked_for is None:
        requested = now
    else:
        requested = c.asked_for
        if requested <= now:
            raise ValidationError(
                "scheduled_at",
                f"must be in the future (server time is {now.isoformat()})",
                requested.isoformat(),
            )
        if requested > now + MAX_SCHEDULE_AHEAD:
            raise ValidationError(
                "scheduled_at",
                f"must be at most {MAX_SCHEDULE_AHEAD.days} days ahead "
                f"(server time is {now.isoformat()})",
                requested.isoformat(),
            )
    due, reason = defer_for_calling_hours(requested, c.zones, c.window, ctx.provider.schedule_lead)
    assistant = reads.assistant(assistant_id)
    if c.given_from is None:
        number = reads.first_number(assistant_id)
        if number is None:
            raise ValidationError(
                "from_number",
                f"is required: assistant {assistant.name!r} has no phone "
                "number; call assign_phone_number first",
                None,
            )
        agent_target = number.phone_number
    else:
        agent_target = c.given_from
        number = reads.number(agent_target)
        if number is None or number.assistant_id != assistant_id:
            raise ValidationError(
                "from_number", "must be a number assigned to this assistant", agent_target
            )
    if c.channel == "sms_chat" and isinstance(ctx.provider, SmsPlatform):
        # Refused here, at scheduling time, when the account cannot send SMS.
        ctx.provider.prepare_sms(
            assistant.provider_ref or assistant.assistant_id,
            NumberInfo(
                phone_number=number.phone_number,
                number_id=number.number_id,
                hd_voice=number.hd_voice,
            ),
        )
    hold = None
    if run_id is not None:
        run = reads.run(run_id)
        refuse_finished_run(run_id, run.status, "schedule calls")
        hold = hold_reason(run.status, run.approval_required, run.approved_at)
        if step_id is not None and not reads.has_step(run_id, step_id):
            raise ValidationError("step_id", "must name a step of the run's plan", step_id)
    if reads.do_not_call(target):
        raise GuardrailError(f"{target} is on the do-not-call list; it will not be contacted")
    event_id = new_id()
    event = {
        "scheduled_event_id": event_id,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "step_id": step_id,
        "telnyx_conversation_channel": c.channel,
        "telnyx_end_user_target": target,
        "telnyx_agent_target": agent_target,
        "scheduled_at_fixed_datetime": due,
        "requested_at": requested,
        "due_at": due,
        "text": c.text,
        "dynamic_variables": c.variables,
        "conversation_metadata": c.metadata,
        "max_retries_client_errors": c.retries,
        "retry_interval_secs": c.interval,
        "status": "pending",
        "call_status": None,
        "conversation_id": None,
        "errors": [],
        "idempotency_key": c.idempotency_key,
        "timezones": c.zones,
        "calling_window": c.window.to_dict(),
        "deferrals": [deferral_record(requested, due, reason, now)] if reason else [],
        "hold_reason": hold,
        "current_attempt": 0,
        "in_flight_call_control_id": None,
        "in_flight_placed_at": None,
        "in_flight_context": None,
        "recovered": False,
        "caller_fixed": c.given_from is not None,
        "lease_owner": None,
        "lease_expires_at": None,
        "created_at": now,
        "updated_at": now,
    }
    run_event = None
    if run_id is not None:
        summary = f"{'Call' if c.channel == 'phone_call' else 'SMS'} to {target} scheduled"
        summary += f" for {due.isoformat()}"
        if reason:
            summary += f" (moved from {requested.isoformat()}: {reason})"
        if hold:
            summary += f"; held: {hold.replace('_', ' ')}"
        run_event = {
            "event_id": new_id(),
            "run_id": run_id,
            "type": "tool_result",
            "summary": summary,
            "step_id": step_id,
            "agent_id": None,
            "payload": {
                "scheduled_event_id": event_id,
                "to": target,
                "scheduled_at_fixed_datetime": due.isoformat(),
                "deferred": bool(reason),
            },
            "idempotency_key": None,
            "created_at": now,
        }
    return reads.add(event, run_event)


def _parse_scheduled_at(value: datetime | str | None) -> datetime | None:
    """The requested time as aware UTC (``None`` when omitted); its format only, not whether
    it is still in the future.

    Raises:
        ValidationError.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("scheduled_at", "must be an ISO-8601 timestamp", value) from None
    if not isinstance(value, datetime):
        raise ValidationError("scheduled_at", "must be an ISO-8601 timestamp", value)
    try:
        # Converting a moment at the very end of the calendar to UTC can leave it.
        moment = ensure_utc(value, "scheduled_at")
    except OverflowError:
        raise ValidationError("scheduled_at", "is out of range", value.isoformat()) from None
    return moment


def _same_request_or_conflict(
    existing: m.ScheduledEvent, request: dict[str, Any], attempts: list[m.CallAttempt]
) -> ScheduledEventOut:
    """The first event of an idempotency key (with its ``attempts``), when ``request`` asks
    for the same thing.

    Raises:
        ConflictError: naming every field that differs from the first request.
    """
    first: dict[str, Any] = {
        "assistant_id": existing.assistant_id,
        "telnyx_conversation_channel": existing.telnyx_conversation_channel,
        "to": existing.telnyx_end_user_target,
        "from_number": existing.telnyx_agent_target,
        "scheduled_at": existing.requested_at,
        "text": existing.text,
        "dynamic_variables": existing.dynamic_variables or {},
        "conversation_metadata": existing.conversation_metadata or {},
        "max_retries_client_errors": existing.max_retries_client_errors,
        "retry_interval_secs": existing.retry_interval_secs,
        "run_id": existing.run_id,
        "step_id": existing.step_id,
        "timezone": list(existing.timezones or []),
        "calling_window": existing.calling_window or CallingWindow().to_dict(),
    }
    # Omitted here means "whatever the first request got" for these two.
    optional = {"from_number", "scheduled_at"}
    differing = [
        name
        for name, value in request.items()
        if not (name in optional and value is None) and _plain(value) != _plain(first[name])
    ]
    if differing:
        details = "; ".join(
            f"{name} was {_short(first[name])}, now {_short(request[name])}" for name in differing
        )
        raise ConflictError(
            f"idempotency_key {existing.idempotency_key!r} was already used for scheduled event "
            f"{existing.scheduled_event_id} with different parameters: {details}"
        )
    return ScheduledEventOut.of(existing, attempts)


def _plain(value: Any) -> Any:
    """Comparable form: JSON round trip (tuples and lists alike), aware datetimes in UTC."""
    if isinstance(value, datetime):
        return ensure_utc(value, "scheduled_at_fixed_datetime")
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _short(value: Any, limit: int = 80) -> str:
    text = value.isoformat() if isinstance(value, datetime) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def get_scheduled_event(ctx: Context, scheduled_event_id: str) -> ScheduledEventOut:
    """Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        row = load_event(session, scheduled_event_id)
        attempts = attempts_by_event(session, [scheduled_event_id])
        return ScheduledEventOut.of(row, attempts.get(scheduled_event_id, []))


SCHEDULED = Keyset(
    "list_scheduled_calls",
    (col(m.ScheduledEvent.created_at), datetime),
    (col(m.ScheduledEvent.scheduled_event_id), str),
)


def list_scheduled_events(
    ctx: Context,
    run_id: str | None = None,
    status: str | None = None,
    assistant_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ScheduledEventOut]:
    """Scheduled events in the order they were scheduled (created_at, then id; a deferral or
    retry moves ``scheduled_at_fixed_datetime`` but not a call's place), ``limit`` per page;
    calls scheduled while a client pages appear on later pages (see ``services.paging``).

    Raises: ValidationError.
    """
    limit = page_limit(limit)
    if status is not None:
        require_choice(status, "status", EVENT_STATUSES)
    scope = (run_id, status, assistant_id)
    with session_scope(ctx.engine) as session:
        query = select(m.ScheduledEvent)
        if run_id:
            query = query.where(m.ScheduledEvent.run_id == run_id)
        if status:
            query = query.where(m.ScheduledEvent.status == status)
        if assistant_id:
            query = query.where(m.ScheduledEvent.assistant_id == assistant_id)
        rows = list(session.exec(SCHEDULED.apply(query, cursor, scope).limit(limit + 1)))
        page = SCHEDULED.page(rows, limit, lambda r: (r.created_at, r.scheduled_event_id), scope)
        attempts = attempts_by_event(session, [r.scheduled_event_id for r in page])
        return page.map(lambda r: ScheduledEventOut.of(r, attempts.get(r.scheduled_event_id, [])))


def all_scheduled_events(ctx: Context, run_id: str) -> list[ScheduledEventOut]:
    """Every scheduled event of the run, in the order they were scheduled (all pages)."""
    return every(
        lambda cursor: list_scheduled_events(ctx, run_id=run_id, limit=MAX_LIMIT, cursor=cursor)
    )


def lease_is_live(lease_expires_at: datetime | None, now: datetime) -> bool:
    """Whether a dispatcher holds the row right now (the opposite of the claim condition:
    an unset or expired lease can be claimed)."""
    return lease_expires_at is not None and ensure_utc(lease_expires_at) > now


def _unleased(now: datetime) -> Any:
    """SQL: no dispatcher holds the row at ``now``."""
    lease_end = col(m.ScheduledEvent.lease_expires_at)
    return lease_end.is_(None) | (lease_end <= now)


#: ``in_flight_context`` keys: the call in flight is to be called off at the provider (set
#: by ``cancel_scheduled_event``), and the provider has answered that request (set by the
#: dispatcher, so it is asked once per attempt).
CANCEL_REQUESTED = "cancel_requested"
CANCEL_SETTLED = "cancel_settled"


def _request_cancel_in_flight(
    ctx: Context, session: Session, row: m.ScheduledEvent, now: datetime
) -> None:
    """Ask the dispatcher to call off an attempt in flight at the provider: it deletes the
    provider's pending event at its next sweep (due now), or, when the provider already
    dialled, records the call's real outcome; either way no further attempt is made."""
    context = dict(row.in_flight_context or {})
    if context.get(CANCEL_REQUESTED):
        return
    row.in_flight_context = {**context, CANCEL_REQUESTED: now.isoformat()}
    row.due_at = now
    row.updated_at = now
    session.add(row)
    if row.run_id:
        append_event(
            session,
            row.run_id,
            "custom",
            f"Cancel requested for the call to {row.telnyx_end_user_target} in flight: "
            f"it is called off at {ctx.provider.name} unless it has already dialled",
            now,
            step_id=row.step_id,
            payload={"scheduled_event_id": row.scheduled_event_id, "cancel_requested": True},
        )


def _cancel_unleased(event_ids: list[str], now: datetime) -> Any:
    """Cancel these events where they are still pending and no dispatcher holds them: the
    guards again in SQL, as a dispatcher may have claimed a row since it was read."""
    return (
        update(m.ScheduledEvent)
        .where(
            col(m.ScheduledEvent.scheduled_event_id).in_(event_ids),
            col(m.ScheduledEvent.status) == "pending",
            _unleased(now),
        )
        .values(
            status="cancelled",
            hold_reason=None,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )


def _being_dispatched(row: m.ScheduledEvent) -> ConflictError:
    return ConflictError(
        f"scheduled event {row.scheduled_event_id} is being dispatched right now; "
        "try again in a moment"
    )


def cancel_scheduled_event(ctx: Context, scheduled_event_id: str) -> ScheduledEventOut:
    """Cancel a pending event: no further dispatches; finished attempts stay as they are.
    An event in flight at a provider that dials later (Telnyx) is called off there by the
    dispatcher (it stays ``in_progress`` until the provider has answered: ``cancelled`` when
    the provider's event was deleted in time, else the call's real outcome, with no retry).

    A pending event a dispatcher has claimed (its lease is live) is refused: the dispatcher
    may be placing the call at this moment, and clearing its lease would lose the outcome.
    An expired lease (its worker died) does not block the cancellation.

    Raises:
        NotFound, IllegalTransition (an event in progress or already finished),
        ConflictError (a dispatcher holds the event right now).
    """
    now = ctx.now()
    with session_scope(ctx.engine) as session:
        row = load_event(session, scheduled_event_id)
        if row.status == "cancelled":  # idempotent: no second event, no second notice
            attempts = attempts_by_event(session, [scheduled_event_id])
            return ScheduledEventOut.of(row, attempts.get(scheduled_event_id, []))
        if row.status == "in_progress" and isinstance(ctx.provider, CancellableCalls):
            # Placed at the provider, which dials later: called off there by the dispatcher.
            if lease_is_live(row.lease_expires_at, now):
                raise _being_dispatched(row)
            _request_cancel_in_flight(ctx, session, row, now)
            session.flush()
            attempts = attempts_by_event(session, [scheduled_event_id])
            return ScheduledEventOut.of(row, attempts.get(scheduled_event_id, []))
        check_transition(
            "scheduled event",
            scheduled_event_id,
            SCHEDULED_EVENT_TRANSITIONS,
            row.status,
            "cancelled",
        )
        if lease_is_live(row.lease_expires_at, now):
            raise _being_dispatched(row)
        cancel = _cancel_unleased([scheduled_event_id], now)
        result = session.exec(cancel)  # type: ignore[call-overload]
        session.refresh(row)
        if result.rowcount != 1:
            if lease_is_live(row.lease_expires_at, now):
                raise _being_dispatched(row)
            check_transition(
                "scheduled event",
                scheduled_event_id,
                SCHEDULED_EVENT_TRANSITIONS,
                row.status,
                "cancelled",
            )
            raise ConflictError(
                f"scheduled event {scheduled_event_id} changed while it was being cancelled; "
                "try again"
            )
        if row.run_id:
            append_event(
                session,
                row.run_id,
                "custom",
                f"Scheduled call to {row.telnyx_end_user_target} cancelled",
                now,
                step_id=row.step_id,
                payload={"scheduled_event_id": scheduled_event_id},
            )
        attempts = attempts_by_event(session, [scheduled_event_id])
        out = ScheduledEventOut.of(row, attempts.get(scheduled_event_id, []))
        finished = cancelled_event(row, now)
    # After the commit, so whoever waits for this call (a planner run) stops waiting.
    ctx.notify_call_finished(finished)
    return out


def cancelled_event(row: m.ScheduledEvent, now: datetime) -> CallFinished:
    """The ``CallFinished`` notice for a scheduled event that was just cancelled."""
    return CallFinished(
        scheduled_event_id=row.scheduled_event_id,
        run_id=row.run_id,
        step_id=row.step_id,
        assistant_id=row.assistant_id,
        status="cancelled",
        call_status=row.call_status,
        conversation_id=row.conversation_id,
        attempts=row.current_attempt,
        finished_at=now,
        end_user_target=row.telnyx_end_user_target,
    )


def cancel_pending_for_run(
    session: Session, run_id: str, now: datetime, reason: str
) -> list[CallFinished]:
    """Cancel every pending event of a run (inside the caller's transaction) and return the
    notices the caller sends to ``ctx.notify_call_finished`` once it has committed.

    Events a dispatcher holds right now (live lease) are left to it: it may be placing the
    call, and cancelling under it would lose the outcome. The dispatcher reads the run when it
    acts on its claim and does not place a call of a finished run; it finishes such an event
    itself (``cancelled``, error ``run_finished``) and sends the notice then.
    """
    rows = session.exec(
        select(m.ScheduledEvent).where(
            col(m.ScheduledEvent.run_id) == run_id, col(m.ScheduledEvent.status) == "pending"
        )
    ).all()
    if not rows:
        return []
    free = [row for row in rows if not lease_is_live(row.lease_expires_at, now)]
    cancelled: set[str] = set()
    if free:
        result = session.exec(  # type: ignore[call-overload]
            _cancel_unleased([row.scheduled_event_id for row in free], now).returning(
                col(m.ScheduledEvent.scheduled_event_id)
            )
        )
        cancelled = set(result.scalars().all())
    if cancelled:
        append_event(
            session,
            run_id,
            "custom",
            f"{len(cancelled)} pending call(s) cancelled: {reason}",
            now,
        )
    left = [row.scheduled_event_id for row in rows if row.scheduled_event_id not in cancelled]
    if left:
        append_event(
            session,
            run_id,
            "custom",
            f"{len(left)} call(s) were being dispatched at that moment and were left to the "
            f"dispatcher to finish ({reason})",
            now,
            payload={"scheduled_event_ids": left},
        )
    return [cancelled_event(row, now) for row in rows if row.scheduled_event_id in cancelled]


def reconcile_in_flight_for_run(session: Session, run_id: str, now: datetime, reason: str) -> int:
    """Make the run's calls in flight due now (inside the caller's transaction), so the next
    sweep asks for their outcome, records it and makes no further attempt (the dispatcher
    reads the run); return how many there are."""
    query = (
        update(m.ScheduledEvent)
        .where(
            col(m.ScheduledEvent.run_id) == run_id,
            col(m.ScheduledEvent.status) == "in_progress",
        )
        .values(due_at=now, updated_at=now)
    )
    count = int(session.exec(query).rowcount or 0)  # type: ignore[call-overload]
    if count:
        append_event(
            session,
            run_id,
            "custom",
            f"{count} call(s) in flight: their outcome is recorded when they end, and they are "
            f"not retried ({reason})",
            now,
        )
    return count


def set_hold_for_run(
    session: Session, run_id: str, hold: str | None, now: datetime, only: str | None = None
) -> int:
    """Hold (or release, with ``hold=None``) the run's pending events."""
    query = update(m.ScheduledEvent).where(
        col(m.ScheduledEvent.run_id) == run_id, col(m.ScheduledEvent.status) == "pending"
    )
    if only is not None:
        query = query.where(col(m.ScheduledEvent.hold_reason) == only)
    result = session.exec(query.values(hold_reason=hold, updated_at=now))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


__all__ = [
    "CHANNELS",
    "cancel_scheduled_event",
    "create_scheduled_event",
    "defer_for_calling_hours",
    "get_scheduled_event",
    "list_scheduled_events",
    "validate_retry_policy",
]
