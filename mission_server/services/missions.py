"""Missions, runs, plan steps, events and run variables: the Missions API semantics.

Every function takes the service ``Context`` first, validates its input before writing
anything, and writes in one transaction.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Table, bindparam
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from mission_server.domain.guardrails import HOLD_AWAITING_APPROVAL, HOLD_PAUSED, PAUSED_RUN
from mission_server.domain.targets import normalise_target
from mission_server.domain.validation import (
    optional_text,
    require_choice,
    require_int,
    require_mapping,
    require_text,
)
from mission_server.errors import ValidationError
from mission_server.services.assistants import release_numbers_of_ended_run
from mission_server.services.context import CallFinished, Context
from mission_server.services.insight_schemas import InsightResultOut
from mission_server.services.insights import missing_fields, result_out
from mission_server.services.paging import Keyset, Page, next_cursor_field, page_limit
from mission_server.services.scheduling import (
    cancel_pending_for_run,
    reconcile_in_flight_for_run,
    set_hold_for_run,
)
from mission_server.services.schemas import (
    AssistantOut,
    ConversationOut,
    EventOut,
    MissionOut,
    OutModel,
    PlanStepOut,
    RunOut,
    ScheduledEventOut,
)
from state import models as m
from state.db import reader, session_scope
from state.errors import NotFound
from state.repo import append_event, load_mission, load_run
from state.transitions import (
    RUN_STATUSES,
    RUN_TRANSITIONS,
    TERMINAL_RUN,
    check_transition,
)

EXECUTION_MODES = ("external", "managed")


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- missions


def create_mission(
    ctx: Context,
    name: str,
    instructions: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    execution_mode: str = "external",
) -> MissionOut:
    """Create a mission (the reusable definition of a task).

    Raises:
        ValidationError: empty or over-long name, non-object metadata, unknown execution_mode.
    """
    name = require_text(name, "name")
    instructions = optional_text(instructions, "instructions")
    description = optional_text(description, "description")
    meta = require_mapping(metadata, "metadata")
    require_choice(execution_mode, "execution_mode", EXECUTION_MODES)
    now = ctx.now()
    row = m.Mission(
        name=name,
        instructions=instructions,
        description=description,
        meta=meta,
        execution_mode=execution_mode,
        created_at=now,
        updated_at=now,
    )
    with session_scope(ctx.engine) as session:
        session.add(row)
    return MissionOut.of(row)


def get_mission(ctx: Context, mission_id: str) -> MissionOut:
    """Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        return MissionOut.of(load_mission(session, mission_id))


class MissionPage(OutModel):
    missions: list[MissionOut]
    next_cursor: str | None = next_cursor_field()


MISSIONS = Keyset(
    "list_missions",
    (col(m.Mission.created_at), datetime),
    (col(m.Mission.mission_id), str),
    descending=True,
)
RUNS = Keyset(
    "list_runs", (col(m.Run.created_at), datetime), (col(m.Run.run_id), str), descending=True
)


def list_missions(
    ctx: Context,
    limit: int | None = None,
    cursor: str | None = None,
    run_status: str | None = None,
) -> MissionPage:
    """Missions, newest first, ``limit`` per page (see ``services.paging``); with
    ``run_status``, only the missions that have a run in that status.

    Raises:
        ValidationError: limit out of 1..500, an unknown run status, or a cursor that is not a
            next_cursor of this list with these filters.
    """
    limit = page_limit(limit)
    if run_status is not None:
        require_choice(run_status, "status", RUN_STATUSES)
    scope = (run_status,) if run_status is not None else ()
    with session_scope(ctx.engine) as session:
        query = select(m.Mission)
        if run_status is not None:
            query = query.where(
                select(m.Run.run_id)
                .where(m.Run.mission_id == m.Mission.mission_id, m.Run.status == run_status)
                .exists()
            )
        query = MISSIONS.apply(query, cursor, scope)
        rows = list(session.exec(query.limit(limit + 1)))
    page = MISSIONS.page(rows, limit, lambda r: (r.created_at, r.mission_id), scope)
    return MissionPage(missions=[MissionOut.of(r) for r in page], next_cursor=page.next_cursor)


# --------------------------------------------------------------------------- runs


def start_run(
    ctx: Context,
    mission_id: str,
    input: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    call_budget: int | None = None,
    require_approval: bool = False,
) -> RunOut:
    """Start a run of a mission. The run is ``running`` at once.

    ``call_budget`` caps how many call attempts the run may place; ``require_approval`` holds
    every call of the run until ``approve_run``.

    Raises:
        NotFound: unknown mission. ValidationError: bad input, metadata or budget.
    """
    run_input = require_mapping(input, "input")
    meta = require_mapping(metadata, "metadata")
    if call_budget is not None:
        require_int(call_budget, "call_budget", minimum=1, maximum=10_000)
    now = ctx.now()
    with session_scope(ctx.engine) as session:
        load_mission(session, mission_id)
        run = m.Run(
            mission_id=mission_id,
            status="running",
            input=run_input,
            meta=meta,
            variables={},
            call_budget=call_budget,
            approval_required=bool(require_approval),
            created_at=now,
            recorded_at=ctx.wall_clock.now(),
            started_at=now,
            updated_at=now,
        )
        session.add(run)
        session.flush()
        append_event(
            session,
            run.run_id,
            "status_change",
            "Run started",
            now,
            payload={"from": None, "to": "running"},
        )
    return RunOut.of(run)


class RunCallOut(ScheduledEventOut):
    """A scheduled call of the run, named by its target."""

    #: The target's name where the run knows it (a spec's targets).
    target_name: str | None = None


class RunConversationOut(ConversationOut):
    """A conversation of the run: its transcript and insight results, named by its target."""

    target_name: str | None = None
    attempt_number: int | None = None
    insights: list[InsightResultOut] = Field(default_factory=list)


class RunDetail(RunOut):
    """A run with everything it touched: plan, assistants, scheduled calls (with every attempt
    and deferral), conversations (with transcripts and insight results) and its event log.
    Calls and conversations are in time order."""

    mission_name: str
    plan: list[PlanStepOut] = Field(default_factory=list)
    assistants: list[AssistantOut] = Field(default_factory=list)
    scheduled_calls: list[RunCallOut] = Field(default_factory=list)
    conversations: list[RunConversationOut] = Field(default_factory=list)
    events: list[EventOut] = Field(
        default_factory=list, description="The run's audit trail, oldest first."
    )


def get_run_record(ctx: Context, run_id: str) -> RunOut:
    """The run's own record, without its plan, calls or conversations. Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        return RunOut.of(load_run(session, run_id))


def resolve_run_id(ctx: Context, run_id: str) -> str:
    """The id of the one run whose id is ``run_id`` or starts with it.

    Raises:
        NotFound: no run has such an id. ValidationError: an empty prefix, or one that several
        runs share (the message lists them).
    """
    prefix = require_text(run_id, "run_id").strip()
    runs = _table(m.Run)
    with reader(ctx.engine).connect() as conn:
        if conn.execute(sa_select(runs.c.run_id).where(runs.c.run_id == prefix)).first():
            return prefix
        found = list(
            conn.execute(
                sa_select(runs.c.run_id, runs.c.created_at)
                .where(runs.c.run_id.startswith(prefix, autoescape=True))
                .order_by(runs.c.created_at.desc(), runs.c.run_id)
                .limit(_MAX_CANDIDATES + 1)
            )
        )
        conn.rollback()
    if not found:
        raise NotFound("run", prefix)
    if len(found) > 1:
        listed = ", ".join(r.run_id for r in found[:_MAX_CANDIDATES])
        more = " and more" if len(found) > _MAX_CANDIDATES else ""
        raise ValidationError(
            "run_id", f"is the start of several runs' ids ({listed}{more}); give more of it", prefix
        )
    return found[0].run_id


_MAX_CANDIDATES = 10


def short_run_ids(ctx: Context, run_ids: list[str], minimum: int = 8) -> dict[str, str]:
    """The shortest prefix (at least ``minimum`` characters) of each id that no other run's id
    starts with: what ``resolve_run_id`` takes back."""
    runs = _table(m.Run)
    out: dict[str, str] = {}
    with reader(ctx.engine).connect() as conn:
        for run_id in run_ids:
            length = min(minimum, len(run_id))
            while length < len(run_id):
                clash = conn.execute(
                    sa_select(runs.c.run_id)
                    .where(runs.c.run_id.startswith(run_id[:length], autoescape=True))
                    .where(runs.c.run_id != run_id)
                    .limit(1)
                ).first()
                if clash is None:
                    break
                length += 4
            out[run_id] = run_id[: min(length, len(run_id))]
        conn.rollback()
    return out


def _target_names(run_input: dict[str, Any] | None) -> dict[str, str]:
    """Phone number (or SIP URI) -> name, from the spec a planner run was started with."""
    spec = (run_input or {}).get("spec")
    targets = spec.get("targets") if isinstance(spec, dict) else None
    names: dict[str, str] = {}
    for target in targets if isinstance(targets, list) else []:
        if not isinstance(target, dict):
            continue
        name = target.get("name")
        for key in ("phone", "sip", "target"):
            address = target.get(key)
            if isinstance(name, str) and isinstance(address, str):
                names.setdefault(address, name)
    return names


def _call_target_name(call: Any, by_address: dict[str, str]) -> str | None:
    for source, key in (
        (call.conversation_metadata, "target"),
        (call.dynamic_variables, "target_name"),
    ):
        value = (source or {}).get(key)
        if isinstance(value, str) and value.strip():
            return value
    return by_address.get(call.telnyx_end_user_target)


def get_run(ctx: Context, run_id: str) -> RunDetail:
    """The run with its plan, linked assistants, scheduled calls (with their attempts and
    deferrals), conversations (with transcripts and insight results) and events.

    Raises:
        NotFound: unknown run.
    """
    # Core selects on one connection (one transaction, so one consistent view): the run with
    # its mission's name and whether it has assistants, calls or conversations at all, then
    # only the queries that can return rows. Rows are read through the ORM attribute names,
    # so the schemas' ``of`` builders apply to them unchanged.
    with reader(ctx.engine).connect() as conn:
        run = conn.execute(_DETAIL_RUN, {"run_id": run_id}).first()
        if run is None:
            raise NotFound("run", run_id)
        if run.mission_name is None:
            raise NotFound("mission", run.mission_id)
        params = {"run_id": run_id}
        steps = conn.execute(_DETAIL_STEPS, params).all()
        assistants = conn.execute(_DETAIL_ASSISTANTS, params).all() if run.has_agents else []
        numbers: dict[str, list[str]] = {}
        if assistants:
            for number in conn.execute(
                _DETAIL_NUMBERS, {"assistant_ids": [a.assistant_id for a in assistants]}
            ):
                numbers.setdefault(number.assistant_id or "", []).append(number.phone_number)
        calls = conn.execute(_DETAIL_CALLS, params).all() if run.has_calls else []
        attempts: dict[str, list[Any]] = {}
        if calls:
            for attempt in conn.execute(
                _DETAIL_ATTEMPTS, {"event_ids": [e.scheduled_event_id for e in calls]}
            ):
                attempts.setdefault(attempt.scheduled_event_id, []).append(attempt)
        conversations = (
            conn.execute(_DETAIL_CONVERSATIONS, params).all() if run.has_conversations else []
        )
        messages: dict[str, list[Any]] = {}
        insights: dict[str, list[InsightResultOut]] = {}
        if conversations:
            ids = {"conversation_ids": [c.conversation_id for c in conversations]}
            for message in conn.execute(_DETAIL_MESSAGES, ids):
                messages.setdefault(message.conversation_id, []).append(message)
            for row in conn.execute(_DETAIL_INSIGHTS, ids):
                missing = missing_fields(row.insight_parameters, row.result)
                insights.setdefault(row.conversation_id, []).append(
                    result_out(row, row.insight_name, missing)  # type: ignore[arg-type]
                )
        log = conn.execute(_DETAIL_EVENTS, params).all()
        conn.rollback()  # read only: nothing to commit
    base = RunOut.of(run)  # type: ignore[arg-type]
    by_address = _target_names(base.input)
    named = {c.scheduled_event_id: _call_target_name(c, by_address) for c in calls}

    def call_time(call: Any) -> tuple[Any, ...]:
        tried = attempts.get(call.scheduled_event_id)
        first = tried[0].attempted_at if tried else call.scheduled_at_fixed_datetime
        return (first, call.created_at, call.scheduled_event_id)

    def talk_time(talk: Any) -> tuple[Any, ...]:
        return (talk.started_at or talk.created_at, talk.attempt_number or 0, talk.conversation_id)

    # dict(base), not model_dump(): the validated values as they are, no dump and re-parse.
    # The nested parts are model instances, which pydantic takes without revalidating them.
    # (model_construct measured no faster than this validation, so it is not used.)
    return RunDetail(
        **dict(base),
        mission_name=run.mission_name,
        plan=[PlanStepOut.of(s) for s in steps],  # type: ignore[arg-type]
        assistants=[
            AssistantOut.of(a, numbers.get(a.assistant_id))  # type: ignore[arg-type]
            for a in assistants
        ],
        scheduled_calls=[
            RunCallOut(
                **dict(ScheduledEventOut.of(e, attempts.get(e.scheduled_event_id, []))),  # type: ignore[arg-type]
                target_name=named[e.scheduled_event_id],
            )
            for e in sorted(calls, key=call_time)
        ],
        conversations=[
            RunConversationOut(
                **dict(ConversationOut.of(c, messages.get(c.conversation_id, []))),  # type: ignore[arg-type]
                target_name=named.get(c.scheduled_event_id or "")
                or by_address.get(c.end_user_target or ""),
                attempt_number=c.attempt_number,
                insights=insights.get(c.conversation_id, []),
            )
            for c in sorted(conversations, key=talk_time)
        ],
        events=[EventOut.of(e) for e in log],  # type: ignore[arg-type]
    )


def run_transcripts(
    ctx: Context, run_id: str, target: str | None = None
) -> list[RunConversationOut]:
    """The run's conversations with their transcripts, in time order; with ``target``, only
    those with that target: its name (any case, or a part of it no other target's name has)
    or its number (as given or normalised).

    Raises:
        NotFound: unknown run. ValidationError: a target the run has no conversation with
        (the message lists the ones it has), or a part of several targets' names.
    """
    conversations = get_run(ctx, run_id).conversations
    if target is None or not target.strip():
        return conversations
    wanted = target.strip()
    addresses = {wanted}
    with suppress(ValidationError):  # a name, not a number
        addresses.add(normalise_target(wanted, "target"))
    key = wanted.casefold()
    chosen = [
        c
        for c in conversations
        if (c.target_name or "").casefold() == key or c.end_user_target in addresses
    ]
    if not chosen:  # a part of one target's name will do
        chosen = [c for c in conversations if key in (c.target_name or "").casefold()]
        names = sorted({c.target_name or "" for c in chosen})
        if len(names) > 1:
            raise ValidationError(
                "target", f"is part of several targets' names ({', '.join(names)})", wanted
            )
    if not chosen:
        known = sorted(
            {
                f"{c.target_name} ({c.end_user_target})"
                if c.target_name
                else f"{c.end_user_target}"
                for c in conversations
            }
        )
        raise ValidationError(
            "target",
            "names no conversation of the run"
            + (f"; it has: {', '.join(known)}" if known else "; it has none"),
            wanted,
        )
    return chosen


def _attribute_columns(model: type[SQLModel]) -> list[Any]:
    """The model's table columns labelled with its attribute names (``metadata`` → ``meta``),
    so a Core row reads like the ORM object."""
    return [
        attr.columns[0].label(attr.key)
        for attr in sa_inspect(model).column_attrs  # type: ignore[union-attr]
    ]


def _table(model: type[m.TableModel]) -> Table:
    return model.__table__


def _detail_statements() -> tuple[Any, ...]:
    """get_run's statements, built once."""
    runs, missions = _table(m.Run), _table(m.Mission)
    run_agents, assistants = _table(m.RunAgent), _table(m.Assistant)
    numbers, events = _table(m.PhoneNumber), _table(m.ScheduledEvent)
    attempts, conversations, steps = (
        _table(m.CallAttempt),
        _table(m.Conversation),
        _table(m.PlanStep),
    )
    messages, results, insights = _table(m.Message), _table(m.InsightResult), _table(m.Insight)
    log = _table(m.Event)
    run_id = bindparam("run_id")
    conversation_ids = bindparam("conversation_ids", expanding=True)

    def has(table: Table) -> Any:
        return sa_select(table.c.run_id).where(table.c.run_id == runs.c.run_id).exists()

    run = (
        sa_select(
            *_attribute_columns(m.Run),
            missions.c.name.label("mission_name"),
            has(run_agents).label("has_agents"),
            has(events).label("has_calls"),
            has(conversations).label("has_conversations"),
        )
        .select_from(runs.outerjoin(missions, missions.c.mission_id == runs.c.mission_id))
        .where(runs.c.run_id == run_id)
    )
    plan = (
        sa_select(*_attribute_columns(m.PlanStep))
        .where(steps.c.run_id == run_id)
        .order_by(steps.c.sequence, steps.c.id)
    )
    linked = (
        sa_select(*_attribute_columns(m.Assistant))
        .join(run_agents, run_agents.c.assistant_id == assistants.c.assistant_id)
        .where(run_agents.c.run_id == run_id)
        .order_by(run_agents.c.created_at)
    )
    phone_numbers = sa_select(*_attribute_columns(m.PhoneNumber)).where(
        numbers.c.assistant_id.in_(bindparam("assistant_ids", expanding=True))
    )
    calls = (
        sa_select(*_attribute_columns(m.ScheduledEvent))
        .where(events.c.run_id == run_id)
        .order_by(events.c.created_at, events.c.scheduled_event_id)
    )
    call_attempts = (
        sa_select(*_attribute_columns(m.CallAttempt))
        .where(attempts.c.scheduled_event_id.in_(bindparam("event_ids", expanding=True)))
        .order_by(attempts.c.attempt_number)
    )
    talks = (
        sa_select(*_attribute_columns(m.Conversation))
        .where(conversations.c.run_id == run_id)
        .order_by(conversations.c.started_at)
    )
    transcript = (
        sa_select(*_attribute_columns(m.Message))
        .where(messages.c.conversation_id.in_(conversation_ids))
        .order_by(messages.c.conversation_id, messages.c.seq)
    )
    readings = (
        sa_select(
            *_attribute_columns(m.InsightResult),
            insights.c.name.label("insight_name"),
            insights.c.parameters.label("insight_parameters"),
        )
        .join(insights, insights.c.insight_id == results.c.insight_id)
        .where(results.c.conversation_id.in_(conversation_ids))
        .order_by(results.c.id)
    )
    trail = (
        sa_select(*_attribute_columns(m.Event)).where(log.c.run_id == run_id).order_by(log.c.seq)
    )
    return (
        run,
        plan,
        linked,
        phone_numbers,
        calls,
        call_attempts,
        talks,
        transcript,
        readings,
        trail,
    )


(
    _DETAIL_RUN,
    _DETAIL_STEPS,
    _DETAIL_ASSISTANTS,
    _DETAIL_NUMBERS,
    _DETAIL_CALLS,
    _DETAIL_ATTEMPTS,
    _DETAIL_CONVERSATIONS,
    _DETAIL_MESSAGES,
    _DETAIL_INSIGHTS,
    _DETAIL_EVENTS,
) = _detail_statements()


def list_runs(
    ctx: Context,
    mission_id: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[RunOut]:
    """Runs, newest first (created_at, then run_id), ``limit`` per page (see
    ``services.paging``).

    Raises:
        ValidationError: unknown status, limit out of range or a cursor not of this list (with
            these filters).
    """
    limit = page_limit(limit)
    if status is not None:
        require_choice(status, "status", RUN_STATUSES)
    scope = (mission_id, status)
    with session_scope(ctx.engine) as session:
        query = select(m.Run)
        if mission_id:
            query = query.where(m.Run.mission_id == mission_id)
        if status:
            query = query.where(m.Run.status == status)
        rows = list(session.exec(RUNS.apply(query, cursor, scope).limit(limit + 1)))
        page = RUNS.page(rows, limit, lambda r: (r.created_at, r.run_id), scope)
        return page.map(RunOut.of)


def update_run(
    ctx: Context,
    run_id: str,
    status: str | None = None,
    result_summary: str | None = None,
    result_payload: dict[str, Any] | None = None,
    error: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> RunOut:
    """Change a run's status and/or record its result.

    Moving to ``cancelled`` cancels the run's pending calls; ``paused`` holds them and
    ``running`` (from paused) releases them. Once the run has ended (succeeded, failed,
    cancelled) the phone numbers of its assistants are released
    (``assistants.release_numbers_of_ended_run``). Metadata is merged into the existing metadata.

    Raises:
        NotFound, IllegalTransition, ValidationError.
    """
    if status is not None:
        require_choice(status, "status", RUN_STATUSES)
    result_summary = optional_text(result_summary, "result_summary", max_length=200_000)
    if result_payload is not None:
        result_payload = require_mapping(result_payload, "result_payload")
    error = optional_text(error, "error")
    meta = require_mapping(metadata, "metadata") if metadata is not None else None
    now = ctx.now()
    cancelled_calls: list[CallFinished] = []
    ended = False
    with session_scope(ctx.engine) as session:
        run = load_run(session, run_id)
        if status is not None and status != run.status:
            check_transition("run", run_id, RUN_TRANSITIONS, run.status, status)
            previous = run.status
            run.status = status
            if status in TERMINAL_RUN:
                run.finished_at = now
                ended = True
            cancelled_calls = _apply_run_status_to_calls(session, run_id, previous, status, now)
            append_event(
                session,
                run_id,
                "status_change",
                f"Run {previous} → {status}",
                now,
                payload={"from": previous, "to": status, **({"error": error} if error else {})},
            )
        elif run.status in TERMINAL_RUN and (result_payload is not None or result_summary):
            pass  # recording a result on a finished run is allowed (late summaries)
        if result_summary is not None:
            run.result_summary = result_summary
        if result_payload is not None:
            run.result_payload = result_payload
        if error is not None:
            run.error = error
        if meta is not None:
            run.meta = {**(run.meta or {}), **meta}
        run.updated_at = now
        session.add(run)
    for finished in cancelled_calls:
        ctx.notify_call_finished(finished)
    if ended:
        release_numbers_of_ended_run(ctx, run_id)
    return RunOut.of(run)


def _apply_run_status_to_calls(
    session: Session, run_id: str, previous: str, status: str, now: datetime
) -> list[CallFinished]:
    """Cancel, hold or release the run's pending calls; return the cancelled calls' notices."""
    if status == "cancelled" or status in {"failed", "succeeded"}:
        reconcile_in_flight_for_run(session, run_id, now, reason=f"run {status}")
        return cancel_pending_for_run(session, run_id, now, reason=f"run {status}")
    if status == PAUSED_RUN:
        set_hold_for_run(session, run_id, HOLD_PAUSED, now)
    elif previous == PAUSED_RUN and status == "running":
        set_hold_for_run(session, run_id, None, now)
    return []


def cancel_run(ctx: Context, run_id: str, reason: str | None = None) -> RunOut:
    """Cancel a run and every pending call of it. Raises: NotFound, IllegalTransition."""
    return update_run(ctx, run_id, status="cancelled", error=reason)


def pause_run(ctx: Context, run_id: str) -> RunOut:
    """Pause a run: its pending calls are held. Raises: NotFound, IllegalTransition."""
    return update_run(ctx, run_id, status="paused")


def resume_run(ctx: Context, run_id: str) -> RunOut:
    """Resume a paused run: its held calls become due again. Raises: NotFound,
    IllegalTransition."""
    out = update_run(ctx, run_id, status="running")
    ctx.wake(ctx.now())
    return out


def approve_calls(ctx: Context, run_id: str, approved: bool, note: str | None = None) -> RunOut:
    """Open (or refuse) the run's approval gate. Approval releases the held calls; refusal
    cancels the run.

    Raises:
        NotFound, IllegalTransition.
    """
    note = optional_text(note, "note")
    now = ctx.now()
    if not approved:
        return update_run(ctx, run_id, status="cancelled", error=note or "approval refused")
    with session_scope(ctx.engine) as session:
        run = load_run(session, run_id)
        if run.status in TERMINAL_RUN:
            check_transition("run", run_id, RUN_TRANSITIONS, run.status, "running")
        run.approved_at = now
        run.updated_at = now
        session.add(run)
        set_hold_for_run(session, run_id, None, now, only=HOLD_AWAITING_APPROVAL)
        append_event(
            session,
            run_id,
            "custom",
            "Calls approved" + (f": {note}" if note else ""),
            now,
            payload={"approval": True, "note": note},
        )
    ctx.wake(now)
    return RunOut.of(run)
