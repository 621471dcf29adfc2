"""The insight service: definitions, groups, assistant assignment, extraction and memory.

Every function takes the engine and, where it writes, the current time (from the caller's
clock). Writes are transactional: a rejected request leaves nothing behind. Extraction moves
each result row ``pending → in_progress → completed | failed``, committing each step so a
watcher sees progress; an extractor that raises turns into a ``failed`` row with the reason,
never a row stuck half-way.

Semantics follow ``reference/18, 20, 21``: an insight is free text (no parameters) or
structured; a group is a named, ordered set of insights with an optional webhook URL; an
assistant has at most one group and may override the group's webhook URL with its own. A
conversation whose assistant has no group still gets the default free-text "Summary".
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mission_server.clock import SystemClock, ensure_utc
from mission_server.domain.targets import normalise_target
from mission_server.errors import NotFound, ValidationError
from mission_server.insights.base import (
    ExtractionResult,
    Extractor,
    InsightDefinition,
    InsightParameter,
)
from mission_server.insights.schema import parameter_to_dict, parse_definition, parse_parameters
from mission_server.services.context import Context
from mission_server.services.insight_schemas import (
    AssistantInsightSettingsOut,
    InsightGroupOut,
    InsightOut,
    InsightParameterOut,
    InsightResultOut,
    PriorConversationOut,
)
from mission_server.services.webhooks import (
    WebhookSender,
    deliver_conversation_insights,
    validate_webhook_url,
)
from mission_server.telephony.base import TranscriptMessage
from state import models as m
from state.db import session_scope

__all__ = [
    "DEFAULT_SUMMARY_INSIGHT_ID",
    "DEFAULT_SUMMARY_INSTRUCTIONS",
    "assign_insight_group",
    "create_insight",
    "create_insight_group",
    "definition_of",
    "ensure_default_summary_insight",
    "extract_conversation_insights",
    "get_conversation_insights",
    "get_insight",
    "get_insight_group",
    "list_insight_groups",
    "list_insights",
    "list_prior_conversations",
]

log = logging.getLogger(__name__)

#: A fixed id, so two processes creating the default at once end up with one row.
DEFAULT_SUMMARY_INSIGHT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "agent-missions:insight:summary"))
DEFAULT_SUMMARY_NAME = "Summary"
DEFAULT_SUMMARY_INSTRUCTIONS = (
    "Summarize the conversation for use as future context. Include: key facts mentioned, "
    "prices or terms quoted, decisions made, and any follow-ups needed. Keep the summary "
    "concise (2-3 sentences)."
)
_MAX_GROUP_INSIGHTS = 50


# --------------------------------------------------------------------------- helpers


def _parameters_of(row: m.Insight) -> tuple[InsightParameter, ...]:
    # Stored rows were validated on the way in; parse again so a hand-edited row is caught.
    return parse_parameters(row.parameters or [], field=f"insight {row.insight_id} parameters")


def definition_of(row: m.Insight, instructions: str | None = None) -> InsightDefinition:
    """The extractor's view of a stored insight, optionally with rendered instructions.

    Raises:
        ValidationError: the stored parameters are not a valid definition.
    """
    return InsightDefinition(
        insight_id=row.insight_id,
        name=row.name,
        instructions=row.instructions if instructions is None else instructions,
        parameters=_parameters_of(row),
    )


def _insight_out(row: m.Insight) -> InsightOut:
    parameters = _parameters_of(row)
    assert row.created_at is not None and row.updated_at is not None
    return InsightOut(
        insight_id=row.insight_id,
        name=row.name,
        instructions=row.instructions,
        parameters=[InsightParameterOut.of(p) for p in parameters],
        structured=bool(parameters),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _group_out(session: Session, row: m.InsightGroup) -> InsightGroupOut:
    members = session.exec(
        select(m.InsightGroupMember)
        .where(m.InsightGroupMember.insight_group_id == row.insight_group_id)
        .order_by(col(m.InsightGroupMember.position))
    ).all()
    assert row.created_at is not None and row.updated_at is not None
    return InsightGroupOut(
        insight_group_id=row.insight_group_id,
        name=row.name,
        webhook_url=row.webhook_url,
        insight_ids=[member.insight_id for member in members],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _result_out(row: m.InsightResult, name: str, missing: Sequence[str] = ()) -> InsightResultOut:
    return InsightResultOut(
        conversation_id=row.conversation_id,
        insight_id=row.insight_id,
        insight_name=name,
        status=row.status,
        result=row.result,
        error=row.error,
        extractor=row.extractor,
        missing=list(missing),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(
            field, "must be a non-empty id string of at most 200 characters", value
        )
    return value.strip()


def _name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string", value)
    value = value.strip()
    if len(value) > 200:
        raise ValidationError(field, "must be at most 200 characters", f"{len(value)} characters")
    return value


def _limit(value: Any, field: str = "limit", maximum: int = 500) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(field, f"must be an integer between 1 and {maximum}", value)
    return value


# --------------------------------------------------------------------------- insights


def create_insight(
    engine: Engine,
    *,
    name: str,
    instructions: str = "",
    parameters: Sequence[Mapping[str, Any]] | None = None,
    now: datetime,
) -> InsightOut:
    """Store a new insight definition (free text when ``parameters`` is empty).

    Raises:
        ValidationError: a bad name, instructions or parameter (the field is named, e.g.
            ``parameters[1].enum``), or ``now`` without a timezone.
    """
    now = ensure_utc(now, "now")
    definition = parse_definition(
        {"name": name, "instructions": instructions, "parameters": parameters}
    )
    row = m.Insight(
        name=definition.name,
        instructions=definition.instructions,
        parameters=[parameter_to_dict(p) for p in definition.parameters] or None,
        created_at=now,
        updated_at=now,
    )
    with session_scope(engine) as session:
        session.add(row)
    return _insight_out(row)


def get_insight(engine: Engine, insight_id: str) -> InsightOut:
    """One insight definition.

    Raises:
        NotFound: no insight with that id.
    """
    with Session(engine) as session:
        row = session.get(m.Insight, insight_id)
        if row is None:
            raise NotFound("insight", insight_id)
        return _insight_out(row)


def list_insights(engine: Engine, *, limit: int = 100) -> list[InsightOut]:
    """Insight definitions, oldest first.

    Raises:
        ValidationError: ``limit`` outside 1–500.
    """
    limit = _limit(limit)
    with Session(engine) as session:
        rows = session.exec(
            select(m.Insight)
            .order_by(col(m.Insight.created_at), col(m.Insight.insight_id))
            .limit(limit)
        ).all()
        return [_insight_out(row) for row in rows]


def ensure_default_summary_insight(engine: Engine, *, now: datetime | None = None) -> InsightOut:
    """Make sure the default free-text "Summary" insight exists and return it. Safe to call
    from several processes at once.

    ``now`` stamps the row if it has to be created (default: the system clock).

    Raises:
        ValidationError: ``now`` without a timezone.
    """
    with Session(engine) as session:
        row = session.get(m.Insight, DEFAULT_SUMMARY_INSIGHT_ID)
        if row is not None:
            return _insight_out(row)
    stamp = ensure_utc(now, "now") if now is not None else SystemClock().now()
    row = m.Insight(
        insight_id=DEFAULT_SUMMARY_INSIGHT_ID,
        name=DEFAULT_SUMMARY_NAME,
        instructions=DEFAULT_SUMMARY_INSTRUCTIONS,
        parameters=None,
        created_at=stamp,
        updated_at=stamp,
    )
    try:
        with session_scope(engine) as session:
            session.add(row)
    except IntegrityError:
        # Another process created it between our read and our insert.
        pass
    return get_insight(engine, DEFAULT_SUMMARY_INSIGHT_ID)


# --------------------------------------------------------------------------- groups


def create_insight_group(
    engine: Engine,
    name: str,
    insight_ids: Sequence[str],
    webhook_url: str | None = None,
    *,
    now: datetime,
) -> InsightGroupOut:
    """Store a named, ordered group of existing insights with an optional webhook URL.

    Raises:
        ValidationError: empty name, ``insight_ids`` not a list, repeating an id, longer than
            50, or naming an insight that does not exist; a webhook URL that is not an
            absolute http(s) URL; ``now`` without a timezone.
    """
    now = ensure_utc(now, "now")
    name = _name(name)
    if isinstance(insight_ids, (str, bytes)) or not isinstance(insight_ids, Sequence):
        raise ValidationError("insight_ids", "must be a list of insight ids", insight_ids)
    if len(insight_ids) > _MAX_GROUP_INSIGHTS:
        raise ValidationError(
            "insight_ids", f"must have at most {_MAX_GROUP_INSIGHTS} entries", len(insight_ids)
        )
    ids = [_id(value, f"insight_ids[{i}]") for i, value in enumerate(insight_ids)]
    for index, value in enumerate(ids):
        if value in ids[:index]:
            raise ValidationError(f"insight_ids[{index}]", "must not repeat an insight", value)
    url = validate_webhook_url(webhook_url)
    with session_scope(engine) as session:
        unknown = [i for i in ids if session.get(m.Insight, i) is None]
        if unknown:
            raise ValidationError("insight_ids", "must name existing insights; unknown", unknown)
        group = m.InsightGroup(name=name, webhook_url=url, created_at=now, updated_at=now)
        session.add(group)
        session.flush()
        for position, insight_id in enumerate(ids):
            session.add(
                m.InsightGroupMember(
                    insight_group_id=group.insight_group_id,
                    insight_id=insight_id,
                    position=position,
                )
            )
        session.flush()
        return _group_out(session, group)


def get_insight_group(engine: Engine, insight_group_id: str) -> InsightGroupOut:
    """One insight group with its insight ids in order.

    Raises:
        NotFound: no group with that id.
    """
    with Session(engine) as session:
        row = session.get(m.InsightGroup, insight_group_id)
        if row is None:
            raise NotFound("insight group", insight_group_id)
        return _group_out(session, row)


def list_insight_groups(engine: Engine, *, limit: int = 100) -> list[InsightGroupOut]:
    """Insight groups, oldest first.

    Raises:
        ValidationError: ``limit`` outside 1–500.
    """
    limit = _limit(limit)
    with Session(engine) as session:
        rows = session.exec(
            select(m.InsightGroup)
            .order_by(col(m.InsightGroup.created_at), col(m.InsightGroup.insight_group_id))
            .limit(limit)
        ).all()
        return [_group_out(session, row) for row in rows]


def assign_insight_group(
    engine: Engine,
    assistant_id: str,
    insight_group_id: str | None,
    webhook_url: str | None = None,
    *,
    now: datetime,
) -> AssistantInsightSettingsOut:
    """Set an assistant's insight settings: its one group (None removes it) and its webhook
    override (None removes the override, so the group's URL applies). Replaces whatever was
    set before, like the reference's ``insight_settings``.

    Raises:
        NotFound: no such assistant or insight group.
        ValidationError: a webhook URL that is not an absolute http(s) URL, an override
            without a group, or ``now`` without a timezone.
    """
    now = ensure_utc(now, "now")
    url = validate_webhook_url(webhook_url)
    if insight_group_id is None and url is not None:
        raise ValidationError(
            "webhook_url",
            "overrides a group's webhook, so it needs an insight_group_id",
            url,
        )
    with session_scope(engine) as session:
        assistant = session.get(m.Assistant, assistant_id)
        if assistant is None:
            raise NotFound("assistant", assistant_id)
        group = None
        if insight_group_id is not None:
            group = session.get(m.InsightGroup, insight_group_id)
            if group is None:
                raise NotFound("insight group", insight_group_id)
        assistant.insight_group_id = insight_group_id
        assistant.webhook_url = url
        assistant.updated_at = now
        session.add(assistant)
        return AssistantInsightSettingsOut(
            assistant_id=assistant_id,
            insight_group_id=insight_group_id,
            webhook_url=url,
            effective_webhook_url=url or (group.webhook_url if group else None),
        )


# --------------------------------------------------------------------------- extraction


def _render(template: str, variables: Mapping[str, str], now: datetime) -> str:
    try:
        from mission_server.domain.templating import render
    except ImportError:
        # The templating module is optional at this layer; raw instructions still work.
        return template
    return render(template, variables, now)


def _variables(conversation: m.Conversation, extra: Mapping[str, Any] | None) -> dict[str, str]:
    # Precedence as for calls: explicit variables > the conversation's own > system values.
    values: dict[str, str] = {
        "telnyx_conversation_channel": conversation.channel or "",
        "telnyx_agent_target": conversation.agent_target or "",
        "telnyx_end_user_target": conversation.end_user_target or "",
    }
    for source in (conversation.dynamic_variables or {}, extra or {}):
        for key, value in source.items():
            values[str(key)] = value if isinstance(value, str) else str(value)
    return values


def _transcript(
    session: Session, conversation_id: str, fallback: datetime
) -> list[TranscriptMessage]:
    rows = session.exec(
        select(m.Message)
        .where(m.Message.conversation_id == conversation_id)
        .order_by(col(m.Message.seq))
    ).all()
    transcript = []
    for row in rows:
        # Unknown roles (tool output, say) are kept as system text, which extractors skip.
        role: Any = row.role if row.role in ("assistant", "user", "system") else "system"
        transcript.append(
            TranscriptMessage(role=role, text=row.text, sent_at=row.sent_at or fallback)
        )
    return transcript


def _conversation_insights(
    session: Session, conversation: m.Conversation
) -> tuple[m.InsightGroup | None, list[m.Insight]]:
    assistant = (
        session.get(m.Assistant, conversation.assistant_id) if (conversation.assistant_id) else None
    )
    if assistant is not None and assistant.insight_group_id:
        group = session.get(m.InsightGroup, assistant.insight_group_id)
        if group is not None:
            insights = session.exec(
                select(m.Insight)
                .join(
                    m.InsightGroupMember,
                    col(m.InsightGroupMember.insight_id) == col(m.Insight.insight_id),
                )
                .where(m.InsightGroupMember.insight_group_id == group.insight_group_id)
                .order_by(col(m.InsightGroupMember.position))
            ).all()
            return group, list(insights)
    return None, []


def _set_status(
    engine: Engine,
    conversation_id: str,
    insight_id: str,
    status: str,
    now: datetime,
    result: ExtractionResult | None = None,
) -> m.InsightResult:
    with session_scope(engine) as session:
        row = session.exec(
            select(m.InsightResult).where(
                m.InsightResult.conversation_id == conversation_id,
                m.InsightResult.insight_id == insight_id,
            )
        ).one()
        row.status = status
        row.updated_at = now
        if result is not None:
            row.result = result.result if status == "completed" else None
            row.error = result.error
        session.add(row)
        return row


def extract_conversation_insights(
    engine: Engine,
    conversation_id: str,
    extractor: Extractor,
    *,
    now: datetime,
    variables: Mapping[str, Any] | None = None,
    deliver: bool = True,
    sender: WebhookSender | None = None,
) -> list[InsightResultOut]:
    """Extract every insight of the conversation's assistant's group (or just the default
    "Summary" when it has none), store the results and deliver the webhook.

    Instructions are rendered with dynamic variables first: the ``telnyx_*`` system values
    (channel, agent and end-user targets; times from the conversation's start), the
    conversation's own variables, then ``variables``. Running again replaces earlier results.
    Webhook delivery happens when ``deliver`` is true and a URL applies; its outcome is
    recorded in ``WebhookDelivery`` and never fails the extraction.

    Raises:
        NotFound: no such conversation.
        ValidationError: ``now`` without a timezone, or a stored insight whose parameters are
            no longer valid (nothing is written then).
    """
    now = ensure_utc(now, "now")
    if variables is not None and not isinstance(variables, Mapping):
        raise ValidationError("variables", "must be an object (key/value mapping)", variables)
    with Session(engine) as session:
        conversation = session.get(m.Conversation, conversation_id)
        if conversation is None:
            raise NotFound("conversation", conversation_id)
        group, insights = _conversation_insights(session, conversation)
        transcript = _transcript(session, conversation_id, conversation.started_at or now)
    if group is None:
        summary = ensure_default_summary_insight(engine, now=now)
        with Session(engine) as session:
            row = session.get(m.Insight, summary.insight_id)
            assert row is not None
            insights = [row]
    values = _variables(conversation, variables)
    moment = conversation.started_at or now
    # Build every definition before writing anything, so a bad stored insight fails cleanly.
    definitions = [
        definition_of(row, _render(row.instructions, values, moment)) for row in insights
    ]
    names = {row.insight_id: row.name for row in insights}

    with session_scope(engine) as session:
        existing = {
            r.insight_id: r
            for r in session.exec(
                select(m.InsightResult).where(m.InsightResult.conversation_id == conversation_id)
            ).all()
        }
        for definition in definitions:
            row = existing.get(definition.insight_id) or m.InsightResult(
                conversation_id=conversation_id,
                insight_id=definition.insight_id,
                created_at=now,
            )
            row.status, row.result, row.error = "pending", None, None
            row.extractor, row.updated_at = extractor.name, now
            session.add(row)

    outputs: list[InsightResultOut] = []
    for definition in definitions:
        _set_status(engine, conversation_id, definition.insight_id, "in_progress", now)
        try:
            result = extractor.extract(definition, transcript, conversation_id=conversation_id)
        except Exception as exc:  # an extractor bug must not leave the row in_progress
            log.exception(
                "extractor %s raised on insight %s", extractor.name, definition.insight_id
            )
            result = ExtractionResult(
                definition.insight_id,
                "failed",
                error=f"the {extractor.name} extractor raised {type(exc).__name__}: {exc}",
            )
        status = "completed" if result.status == "completed" else "failed"
        if status == "failed" and not result.error:
            result.error = f"the {extractor.name} extractor reported status {result.status!r}"
        row = _set_status(engine, conversation_id, definition.insight_id, status, now, result)
        outputs.append(_result_out(row, names[definition.insight_id], result.missing))

    if deliver and group is not None:
        deliver_conversation_insights(engine, conversation_id, now=now, sender=sender)
    return outputs


def get_conversation_insights(engine: Engine, conversation_id: str) -> list[InsightResultOut]:
    """The stored insight results of a conversation, in insight-group order where known.

    Raises:
        NotFound: no such conversation.
    """
    with Session(engine) as session:
        conversation = session.get(m.Conversation, conversation_id)
        if conversation is None:
            raise NotFound("conversation", conversation_id)
        return _results_of(session, [conversation_id]).get(conversation_id, [])


def _results_of(
    session: Session, conversation_ids: Sequence[str], insight_ids: Sequence[str] | None = None
) -> dict[str, list[InsightResultOut]]:
    if not conversation_ids:
        return {}
    query = (
        select(m.InsightResult, m.Insight)
        .join(m.Insight, col(m.Insight.insight_id) == col(m.InsightResult.insight_id))
        .where(col(m.InsightResult.conversation_id).in_(list(conversation_ids)))
        .order_by(col(m.InsightResult.id))
    )
    if insight_ids is not None:
        query = query.where(col(m.InsightResult.insight_id).in_(list(insight_ids)))
    out: dict[str, list[InsightResultOut]] = {}
    for result, insight in session.exec(query).all():
        out.setdefault(result.conversation_id, []).append(_result_out(result, insight.name))
    return out


def _metadata_matches(stored: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    stored = stored or {}
    return all(key in stored and stored[key] == value for key, value in wanted.items())


def list_prior_conversations(
    engine: Engine,
    end_user_target: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    limit: int = 5,
    *,
    insight_ids: Sequence[str] | None = None,
    exclude_conversation_id: str | None = None,
) -> list[PriorConversationOut]:
    """Past conversations with their insight results, newest first: the memory hook
    (``reference/02_memory.md``: "the last 5 conversations with this number").

    ``end_user_target`` and every ``metadata`` key/value must match (metadata is compared for
    equality per key, like ``metadata->key=eq.value``); ``insight_ids`` keeps only those
    insights' results (the reference's ``insight_query``). The target is normalised like a
    call's ``to`` (``targets.normalise_target``), so ``312-555-0101`` and ``+1 312 555 0101``
    find the conversations with ``+13125550101``.

    Raises:
        ValidationError: ``limit`` outside 1–100, ``metadata`` not a mapping,
            ``insight_ids`` not a list, or ``end_user_target`` not a phone number or SIP URI.
    """
    limit = _limit(limit, maximum=100)
    if end_user_target is not None:
        end_user_target = normalise_target(end_user_target, field="end_user_target")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError("metadata", "must be an object (key/value mapping)", metadata)
    if insight_ids is not None and (
        isinstance(insight_ids, (str, bytes)) or not isinstance(insight_ids, Sequence)
    ):
        raise ValidationError("insight_ids", "must be a list of insight ids", insight_ids)
    with Session(engine) as session:
        query = select(m.Conversation)
        if end_user_target is not None:
            query = query.where(m.Conversation.end_user_target == end_user_target)
        if exclude_conversation_id is not None:
            query = query.where(m.Conversation.conversation_id != exclude_conversation_id)
        query = query.order_by(
            col(m.Conversation.created_at).desc(), col(m.Conversation.conversation_id).desc()
        )
        chosen: list[m.Conversation] = []
        # JSON filtering is done here rather than in SQL so SQLite and PostgreSQL agree;
        # rows are read in pages so a large history is not loaded at once.
        offset = 0
        while len(chosen) < limit:
            page = session.exec(query.offset(offset).limit(200)).all()
            if not page:
                break
            offset += len(page)
            chosen.extend(
                row for row in page if not metadata or _metadata_matches(row.meta, metadata)
            )
        chosen = chosen[:limit]
        results = _results_of(session, [c.conversation_id for c in chosen], insight_ids)
        return [
            PriorConversationOut(
                conversation_id=c.conversation_id,
                name=c.name,
                assistant_id=c.assistant_id,
                run_id=c.run_id,
                channel=c.channel,
                end_user_target=c.end_user_target,
                agent_target=c.agent_target,
                call_status=c.call_status,
                started_at=c.started_at,
                ended_at=c.ended_at,
                metadata=dict(c.meta or {}),
                insights=results.get(c.conversation_id, []),
            )
            for c in chosen
        ]


def extract_insights(ctx: Context, conversation_id: str) -> list[InsightResultOut]:
    """Extract and store the conversation's insights with the context's extractor, and
    deliver its webhook signed with the context's secret.

    Raises:
        NotFound: unknown conversation. ValueError: the context has no extractor.
    """
    if ctx.extractor is None:
        raise ValueError("the context has no extractor")
    return extract_conversation_insights(
        ctx.engine,
        conversation_id,
        ctx.extractor,
        now=ctx.now(),
        sender=WebhookSender.from_settings(ctx.settings),
    )


def unextracted_conversations(engine: Engine, *, limit: int = 1000) -> list[str]:
    """Conversations of finished calls whose insights were never extracted, or were left
    half-done (no results, or a result still ``pending``/``in_progress``): what a process that
    stopped before extracting them left for the next one."""
    events = m.ScheduledEvent.__table__
    results = m.InsightResult.__table__
    unsettled = (
        select(results.c.conversation_id)
        .where(results.c.status.in_(("pending", "in_progress")))
        .scalar_subquery()
    )
    settled_any = select(results.c.conversation_id).scalar_subquery()
    query = (
        select(events.c.conversation_id)
        .where(
            events.c.status.in_(("completed", "failed", "cancelled")),
            events.c.conversation_id.in_(select(m.Conversation.__table__.c.conversation_id)),
            events.c.conversation_id.not_in(settled_any) | events.c.conversation_id.in_(unsettled),
        )
        .distinct()
        .limit(limit)
    )
    with engine.connect() as conn:
        return [str(c) for c in conn.execute(query).scalars()]


def settle_unextracted(ctx: Context, *, limit: int = 1000) -> int:
    """Extract the insights a stopped process left unextracted (``unextracted_conversations``);
    return how many conversations were extracted. A failing one is logged and skipped."""
    if ctx.extractor is None:
        return 0
    count = 0
    for conversation_id in unextracted_conversations(ctx.engine, limit=limit):
        try:
            extract_insights(ctx, conversation_id)
            count += 1
        except Exception:
            log.exception("extracting the insights of %s failed", conversation_id)
    return count
