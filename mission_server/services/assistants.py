"""Voice assistants and the account's phone numbers."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from mission_server.domain.targets import normalise_target
from mission_server.domain.validation import optional_text, require_mapping, require_text
from mission_server.errors import ConflictError, ProviderError, ValidationError
from mission_server.services.context import Context
from mission_server.services.schemas import AssistantOut, PhoneNumberOut
from mission_server.telephony.base import AssistantSpec
from state import models as m
from state.db import session_scope
from state.errors import NotFound
from state.repo import append_event, load_assistant, load_run

NUMBER_PURCHASE_HINT = (
    "buy or free a number (Telnyx Portal → Numbers → Search & Buy: "
    "https://portal.telnyx.com/#/app/numbers/search-numbers), or add one to the simulated "
    "world's `numbers` list"
)


def _spec(row: m.Assistant) -> AssistantSpec:
    return AssistantSpec(
        name=row.name,
        instructions=row.instructions,
        greeting=row.greeting,
        model=row.model,
        voice=row.voice,
        dynamic_variables={k: str(v) for k, v in (row.dynamic_variables or {}).items()},
        insight_group_ref=row.insight_group_id,
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
) -> AssistantOut:
    """Create a voice assistant at the provider and record it; link it to ``run_id``.

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
        created_at=now,
        updated_at=now,
    )
    # The provider call happens first: if it fails, nothing is recorded.
    row.provider_ref = ctx.provider.create_assistant(_spec(row))
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
) -> AssistantOut:
    """Change an assistant; only the given fields change.

    Raises:
        NotFound, ValidationError, ProviderError.
    """
    now = ctx.now()
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
        row.updated_at = now
        if row.provider_ref:
            ctx.provider.update_assistant(row.provider_ref, _spec(row))
        session.add(row)
        return AssistantOut.of(row, _numbers_of(session, assistant_id))


def get_assistant(ctx: Context, assistant_id: str) -> AssistantOut:
    """Raises: NotFound."""
    with session_scope(ctx.engine) as session:
        row = load_assistant(session, assistant_id)
        return AssistantOut.of(row, _numbers_of(session, assistant_id))


def list_assistants(
    ctx: Context, run_id: str | None = None, limit: int = 100
) -> list[AssistantOut]:
    with session_scope(ctx.engine) as session:
        query = select(m.Assistant).order_by(col(m.Assistant.created_at).desc())
        if run_id:
            query = query.join(
                m.RunAgent, col(m.RunAgent.assistant_id) == col(m.Assistant.assistant_id)
            ).where(m.RunAgent.run_id == run_id)
        rows = session.exec(query.limit(limit)).all()
        return [AssistantOut.of(r, _numbers_of(session, r.assistant_id)) for r in rows]


def sync_phone_numbers(ctx: Context) -> None:
    """Record the provider's numbers locally (new ones appear; assignments are kept)."""
    numbers = ctx.provider.list_phone_numbers()
    now = ctx.now()
    with session_scope(ctx.engine) as session:
        known = {n.phone_number: n for n in session.exec(select(m.PhoneNumber))}
        for info in numbers:
            row = known.get(info.phone_number)
            if row is None:
                session.add(
                    m.PhoneNumber(
                        phone_number=info.phone_number,
                        number_id=info.number_id,
                        hd_voice=info.hd_voice,
                        provider=ctx.provider.name,
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif row.hd_voice != info.hd_voice:
                row.hd_voice = info.hd_voice
                row.updated_at = now
                session.add(row)


def list_phone_numbers(ctx: Context, available_only: bool = False) -> list[PhoneNumberOut]:
    """The account's numbers; ``available_only`` keeps those not assigned to an assistant.

    Raises:
        ProviderError: the provider could not list numbers.
    """
    sync_phone_numbers(ctx)
    with session_scope(ctx.engine) as session:
        query = select(m.PhoneNumber).order_by(col(m.PhoneNumber.phone_number))
        if available_only:
            query = query.where(col(m.PhoneNumber.assistant_id).is_(None))
        return [PhoneNumberOut.of(r) for r in session.exec(query)]


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
                raise ProviderError(
                    "no free phone number: every number of the account is assigned to an "
                    f"assistant; {NUMBER_PURCHASE_HINT}"
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
                    f"phone_number {wanted} is already assigned to assistant {row.assistant_id}"
                )
        from mission_server.telephony.base import NumberInfo

        ctx.provider.assign_phone_number(
            NumberInfo(
                phone_number=row.phone_number, number_id=row.number_id, hd_voice=row.hd_voice
            ),
            assistant.provider_ref or assistant.assistant_id,
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


def release_phone_number(ctx: Context, phone_number: str) -> PhoneNumberOut:
    """Free a number so another assistant can use it. Raises: NotFound, ValidationError."""
    number = normalise_target(phone_number, "phone_number")
    with session_scope(ctx.engine) as session:
        row = session.get(m.PhoneNumber, number)
        if row is None:
            raise NotFound("phone number", number)
        row.assistant_id = None
        row.updated_at = ctx.now()
        session.add(row)
        return PhoneNumberOut.of(row)
