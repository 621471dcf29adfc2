"""Voice assistants and the account's phone numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, select

from mission_server.domain.targets import normalise_target
from mission_server.domain.validation import optional_text, require_mapping, require_text
from mission_server.errors import ConflictError, ProviderError, ValidationError
from mission_server.services import insight_sync
from mission_server.services.context import Context
from mission_server.services.paging import Keyset, Page, page_limit
from mission_server.services.schemas import AssistantOut, PhoneNumberOut
from mission_server.telephony.base import AssistantSpec, NumberInfo
from state import models as m
from state.db import session_scope
from state.errors import NotFound
from state.repo import append_event, load_assistant, load_run
from state.transitions import TERMINAL_RUN

NUMBER_PURCHASE_HINT = (
    "buy or free a number (Telnyx Portal → Numbers → Search & Buy: "
    "https://portal.telnyx.com/#/app/numbers/search-numbers), or add one to the simulated "
    "world's `numbers` list"
)


def _info(row: m.PhoneNumber) -> NumberInfo:
    return NumberInfo(phone_number=row.phone_number, number_id=row.number_id, hd_voice=row.hd_voice)


def _link(session: Session, run_id: str, assistant_id: str, now: datetime) -> None:
    """Link the assistant to the run (once): its numbers are released when the run ends."""
    if session.get(m.RunAgent, (run_id, assistant_id)) is None:
        session.add(m.RunAgent(run_id=run_id, assistant_id=assistant_id, created_at=now))
        session.flush()


def _runs_of(session: Session, assistant_id: str) -> list[m.Run]:
    """The runs the assistant is linked to, oldest first."""
    return list(
        session.exec(
            select(m.Run)
            .join(m.RunAgent, col(m.RunAgent.run_id) == col(m.Run.run_id))
            .where(m.RunAgent.assistant_id == assistant_id)
            .order_by(col(m.Run.created_at))
        )
    )


def _holder(session: Session, row: m.PhoneNumber) -> str:
    """Who holds a number: 'assistant <id> '<name>' (runs: <id> running, ...)'."""
    assistant = session.get(m.Assistant, row.assistant_id) if row.assistant_id else None
    if assistant is None:
        return f"assistant {row.assistant_id}"
    runs = _runs_of(session, assistant.assistant_id)
    held_by = ", ".join(f"{r.run_id} {r.status}" for r in runs) or "no run"
    kept = "; keep_number" if assistant.keep_number else ""
    return f"assistant {assistant.assistant_id} {assistant.name!r} (runs: {held_by}{kept})"


def _group_ref(ctx: Context, insight_group_id: str | None) -> str | None:
    """The insight group id the provider is sent: on a platform that computes insights
    itself (Telnyx) its copy of the group, brought in step first (``insight_sync``);
    elsewhere our own id. Called outside any open session: the sync records ids itself.

    Raises:
        NotFound (the group), ProviderError.
    """
    if insight_group_id is None:
        return None
    return insight_sync.remote_group_id(ctx, insight_group_id) or insight_group_id


def _spec(row: m.Assistant, group_ref: str | None) -> AssistantSpec:
    return AssistantSpec(
        name=row.name,
        instructions=row.instructions,
        greeting=row.greeting,
        model=row.model,
        voice=row.voice,
        dynamic_variables={k: str(v) for k, v in (row.dynamic_variables or {}).items()},
        insight_group_ref=group_ref,
        idempotency_key=row.assistant_id,
    )


def _numbers_of(session: Session, assistant_id: str) -> list[str]:
    return [
        n.phone_number
        for n in session.exec(
            select(m.PhoneNumber).where(m.PhoneNumber.assistant_id == assistant_id)
        )
    ]


def create_assistant(
    ctx: Context,
    name: str,
    instructions: str,
    greeting: str | None = None,
    model: str | None = None,
    voice: str | None = None,
    dynamic_variables: dict[str, Any] | None = None,
    insight_group_id: str | None = None,
    run_id: str | None = None,
    keep_number: bool = False,
) -> AssistantOut:
    """Create a voice assistant at the provider and record it; link it to ``run_id``.
    Its phone number is released when its runs end, unless ``keep_number``.

    Raises:
        ValidationError, NotFound (run or insight group), ProviderError.
    """
    name = require_text(name, "name")
    instructions = require_text(instructions, "instructions", max_length=50_000)
    greeting = optional_text(greeting, "greeting", max_length=5000)
    variables = require_mapping(dynamic_variables, "dynamic_variables")
    now = ctx.now()
    with session_scope(ctx.engine) as session:
        if run_id is not None:
            load_run(session, run_id)
        if insight_group_id is not None and session.get(m.InsightGroup, insight_group_id) is None:
            raise NotFound("insight group", insight_group_id)
    row = m.Assistant(
        name=name,
        instructions=instructions,
        greeting=greeting,
        model=model,
        voice=voice,
        dynamic_variables=variables,
        insight_group_id=insight_group_id,
        provider=ctx.provider.name,
        keep_number=bool(keep_number),
        created_at=now,
        updated_at=now,
    )
    # The provider call happens first: if it fails, nothing is recorded.
    row.provider_ref = ctx.provider.create_assistant(
        _spec(row, _group_ref(ctx, row.insight_group_id))
    )
    with session_scope(ctx.engine) as session:
        session.add(row)
        if run_id is not None:
            session.add(m.RunAgent(run_id=run_id, assistant_id=row.assistant_id, created_at=now))
            append_event(
                session,
                run_id,
                "tool_result",
                f"Assistant created: {name}",
                now,
                payload={"assistant_id": row.assistant_id},
            )
    return AssistantOut.of(row)


def update_assistant(
    ctx: Context,
    assistant_id: str,
    name: str | None = None,
    instructions: str | None = None,
    greeting: str | None = None,
    model: str | None = None,
    voice: str | None = None,
    dynamic_variables: dict[str, Any] | None = None,
    insight_group_id: str | None = None,
    keep_number: bool | None = None,
) -> AssistantOut:
    """Change an assistant; only the given fields change.

    Raises:
        NotFound, ValidationError, ProviderError.
    """
    now = ctx.now()
    with Session(ctx.engine) as session:
        current_group = load_assistant(session, assistant_id).insight_group_id
    # The group is brought in step at the provider before the update (no session open).
    group_ref = _group_ref(ctx, insight_group_id if insight_group_id is not None else current_group)
    with session_scope(ctx.engine) as session:
        row = load_assistant(session, assistant_id)
        if name is not None:
            row.name = require_text(name, "name")
        if instructions is not None:
            row.instructions = require_text(instructions, "instructions", max_length=50_000)
        if greeting is not None:
            row.greeting = optional_text(greeting, "greeting", max_length=5000)
        if model is not None:
            row.model = model
        if voice is not None:
            row.voice = voice
        if dynamic_variables is not None:
            row.dynamic_variables = require_mapping(dynamic_variables, "dynamic_variables")
        if insight_group_id is not None:
            if session.get(m.InsightGroup, insight_group_id) is None:
                raise NotFound("insight group", insight_group_id)
            row.insight_group_id = insight_group_id
        if keep_number is not None:
            row.keep_number = bool(keep_number)
        row.updated_at = now
        if row.provider_ref:
            ctx.provider.update_assistant(row.provider_ref, _spec(row, group_ref))
        session.add(row)
        return AssistantOut.of(row, _numbers_of(session, assistant_id))


def push_assistant(ctx: Context, assistant_id: str) -> None:
    """Send the assistant's recorded configuration to the provider again (after its insight
    settings changed, say), its insight group brought in step first.

    Raises:
        NotFound, ProviderError.
    """
    with session_scope(ctx.engine) as session:
        row = load_assistant(session, assistant_id)
        session.expunge(row)
    if row.provider_ref:
        ctx.provider.update_assistant(
            row.provider_ref, _spec(row, _group_ref(ctx, row.insight_group_id))
        )


def get_assistant(ctx: Context, assistant_id: str) -> AssistantOut:
    """Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        row = load_assistant(session, assistant_id)
        return AssistantOut.of(row, _numbers_of(session, assistant_id))


ASSISTANTS = Keyset(
    "list_assistants",
    (col(m.Assistant.created_at), datetime),
    (col(m.Assistant.assistant_id), str),
    descending=True,
)
PHONE_NUMBERS = Keyset("list_phone_numbers", (col(m.PhoneNumber.phone_number), str))


def list_assistants(
    ctx: Context,
    run_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[AssistantOut]:
    """Assistants with their numbers, newest first (created_at, then id), ``limit`` per page
    (see ``services.paging``).

    Raises:
        ValidationError: limit out of range or a cursor not of this list (with this run_id).
    """
    limit = page_limit(limit)
    scope = (run_id,)
    with session_scope(ctx.engine) as session:
        query = select(m.Assistant)
        if run_id:
            query = query.join(
                m.RunAgent, col(m.RunAgent.assistant_id) == col(m.Assistant.assistant_id)
            ).where(m.RunAgent.run_id == run_id)
        rows = list(session.exec(ASSISTANTS.apply(query, cursor, scope).limit(limit + 1)))
        page = ASSISTANTS.page(rows, limit, lambda r: (r.created_at, r.assistant_id), scope)
        return page.map(lambda r: AssistantOut.of(r, _numbers_of(session, r.assistant_id)))


def sync_phone_numbers(ctx: Context) -> None:
    """Record the provider's numbers locally (new ones appear; assignments are kept). Reads
    two columns of the known numbers and writes only what changed: every number assignment
    syncs, so it must not cost a row object per number of the account."""
    numbers = ctx.provider.list_phone_numbers()
    now = ctx.now()
    table = m.PhoneNumber.__table__  # type: ignore[attr-defined]
    with ctx.engine.begin() as conn:
        known = dict(conn.execute(sa_select(table.c.phone_number, table.c.hd_voice)).all())
        fresh = [
            {
                "phone_number": info.phone_number,
                "number_id": info.number_id,
                "hd_voice": info.hd_voice,
                "provider": ctx.provider.name,
                "assistant_id": None,
                "created_at": now,
                "updated_at": now,
            }
            for info in numbers
            if info.phone_number not in known
        ]
        if fresh:
            conn.execute(sa_insert(table), fresh)
        for info in numbers:
            if info.phone_number in known and bool(known[info.phone_number]) != info.hd_voice:
                conn.execute(
                    sa_update(table)
                    .where(table.c.phone_number == info.phone_number)
                    .values(hd_voice=info.hd_voice, updated_at=now)
                )


def list_phone_numbers(
    ctx: Context,
    available_only: bool = False,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[PhoneNumberOut]:
    """The account's numbers in number order, ``limit`` per page; ``available_only`` keeps
    those not assigned to an assistant.

    Raises:
        ProviderError: the provider could not list numbers.
        ValidationError: limit out of range or a cursor not of this list (with this filter).
    """
    limit = page_limit(limit)
    scope = (bool(available_only),)
    PHONE_NUMBERS.decode(cursor, scope)  # a bad cursor is refused before the provider is asked
    sync_phone_numbers(ctx)
    with session_scope(ctx.engine) as session:
        query = select(m.PhoneNumber)
        if available_only:
            query = query.where(col(m.PhoneNumber.assistant_id).is_(None))
        rows = list(session.exec(PHONE_NUMBERS.apply(query, cursor, scope).limit(limit + 1)))
        page = PHONE_NUMBERS.page(rows, limit, lambda r: (r.phone_number,), scope)
        return page.map(PhoneNumberOut.of)


def assign_phone_number(
    ctx: Context,
    assistant_id: str,
    phone_number: str | None = None,
    run_id: str | None = None,
) -> PhoneNumberOut:
    """Assign a number to the assistant: the given one, else a free one (HD voice preferred).
    An assistant that already has a number keeps it when no number is named.

    Raises:
        NotFound, ValidationError, ConflictError (number taken by another assistant),
        ProviderError (including when no number is free: the message says how to get one).
    """
    wanted = normalise_target(phone_number, "phone_number") if phone_number else None
    sync_phone_numbers(ctx)
    now = ctx.now()
    with session_scope(ctx.engine) as session:
        assistant = load_assistant(session, assistant_id)
        if run_id:
            load_run(session, run_id)
            _link(session, run_id, assistant_id, now)
        if wanted is None:
            current = session.exec(
                select(m.PhoneNumber).where(m.PhoneNumber.assistant_id == assistant_id)
            ).first()
            if current is not None:
                return PhoneNumberOut.of(current)
            row = session.exec(
                select(m.PhoneNumber)
                .where(col(m.PhoneNumber.assistant_id).is_(None))
                .order_by(col(m.PhoneNumber.hd_voice).desc(), col(m.PhoneNumber.phone_number))
            ).first()
            if row is None:
                held = "; ".join(
                    f"{n.phone_number} to {_holder(session, n)}"
                    for n in session.exec(
                        select(m.PhoneNumber).order_by(col(m.PhoneNumber.phone_number))
                    )
                )
                raise ProviderError(
                    "no free phone number: every number of the account is assigned to an "
                    f"assistant: {held}. A number comes back when its run ends; "
                    f"release_phone_number frees one now; or {NUMBER_PURCHASE_HINT}"
                )
        else:
            row = session.get(m.PhoneNumber, wanted)
            if row is None:
                raise ValidationError(
                    "phone_number",
                    "must be one of the account's numbers (see list_phone_numbers)",
                    wanted,
                )
            if row.assistant_id not in (None, assistant_id):
                raise ConflictError(
                    f"phone_number {wanted} is already assigned to {_holder(session, row)}; "
                    "release_phone_number frees it"
                )
        ctx.provider.assign_phone_number(
            _info(row), assistant.provider_ref or assistant.assistant_id
        )
        row.assistant_id = assistant_id
        row.updated_at = now
        session.add(row)
        if run_id:
            append_event(
                session,
                run_id,
                "tool_result",
                f"Number {row.phone_number} assigned to {assistant.name}",
                now,
                payload={"phone_number": row.phone_number, "assistant_id": assistant_id},
            )
        return PhoneNumberOut.of(row)


def release_phone_number(
    ctx: Context, phone_number: str, run_id: str | None = None
) -> PhoneNumberOut:
    """Free a number so another assistant can use it: unassign it at the provider, then
    record it as free. The release is recorded in ``run_id``'s events, else in the events of
    every run its assistant is linked to. A number that is already free is returned as is.

    Raises:
        ValidationError (phone_number), NotFound (number or run), ProviderError.
    """
    number = normalise_target(phone_number, "phone_number")
    with session_scope(ctx.engine) as session:
        if run_id is not None:
            load_run(session, run_id)
        known = session.get(m.PhoneNumber, number) is not None
    if not known:
        sync_phone_numbers(ctx)
    with session_scope(ctx.engine) as session:
        row = session.get(m.PhoneNumber, number)
        if row is None:
            raise NotFound("phone number", number)
        if row.assistant_id is None:
            return PhoneNumberOut.of(row)
        assistant = load_assistant(session, row.assistant_id)
        runs = [run_id] if run_id else [r.run_id for r in _runs_of(session, row.assistant_id)]
        _release(ctx, session, row, assistant, runs, reason="released on request")
        return PhoneNumberOut.of(row)


def _release(
    ctx: Context,
    session: Session,
    row: m.PhoneNumber,
    assistant: m.Assistant,
    run_ids: list[str],
    reason: str,
) -> None:
    """Unassign ``row`` from ``assistant`` at the provider (first: if it refuses, nothing is
    recorded), then record it free and the release in each run's events."""
    ctx.provider.release_phone_number(_info(row), assistant.provider_ref or assistant.assistant_id)
    now = ctx.now()
    row.assistant_id = None
    row.updated_at = now
    session.add(row)
    for rid in run_ids:
        append_event(
            session,
            rid,
            "tool_result",
            f"Number {row.phone_number} released from {assistant.name} ({reason})",
            now,
            payload={
                "phone_number": row.phone_number,
                "assistant_id": assistant.assistant_id,
                "released": True,
                "reason": reason,
            },
        )


def release_numbers_of_ended_run(ctx: Context, run_id: str) -> list[str]:
    """Release the numbers of the run's assistants once the run has ended: those of every
    assistant linked to it that is linked to no other run still going, unless the assistant
    has ``keep_number``. Every release (and every number kept) is recorded in the run's
    events; a provider that refuses a release leaves the number assigned and records an
    ``error`` event saying so (the run has ended either way). Returns the released numbers.
    """
    released: list[str] = []
    with session_scope(ctx.engine) as session:
        run = load_run(session, run_id)
        if run.status not in TERMINAL_RUN:
            return released
        linked = session.exec(
            select(m.Assistant)
            .join(m.RunAgent, col(m.RunAgent.assistant_id) == col(m.Assistant.assistant_id))
            .where(m.RunAgent.run_id == run_id)
            .order_by(col(m.Assistant.created_at))
        ).all()
        for assistant in linked:
            numbers = session.exec(
                select(m.PhoneNumber)
                .where(m.PhoneNumber.assistant_id == assistant.assistant_id)
                .order_by(col(m.PhoneNumber.phone_number))
            ).all()
            if not numbers:
                continue
            going = [
                r.run_id
                for r in _runs_of(session, assistant.assistant_id)
                if r.run_id != run_id and r.status not in TERMINAL_RUN
            ]
            now = ctx.now()
            if assistant.keep_number or going:
                why = "keep_number" if assistant.keep_number else f"run {going[0]} still uses it"
                for row in numbers:
                    append_event(
                        session,
                        run_id,
                        "tool_result",
                        f"Number {row.phone_number} kept by {assistant.name} ({why})",
                        now,
                        payload={
                            "phone_number": row.phone_number,
                            "assistant_id": assistant.assistant_id,
                            "released": False,
                            "reason": why,
                        },
                    )
                continue
            for row in numbers:
                try:
                    _release(ctx, session, row, assistant, [run_id], reason=f"run {run.status}")
                except ProviderError as exc:
                    append_event(
                        session,
                        run_id,
                        "error",
                        f"Number {row.phone_number} could not be released from "
                        f"{assistant.name}: {exc}; release_phone_number retries",
                        now,
                        payload={
                            "phone_number": row.phone_number,
                            "assistant_id": assistant.assistant_id,
                            "released": False,
                            "error": str(exc),
                        },
                    )
                else:
                    released.append(row.phone_number)
    return released
