"""Extraction and memory: a finished conversation's insight results, and the prior
conversations with a target (``reference/02_memory.md``).

Extraction moves each result row ``pending → in_progress → completed | failed``, committed
before and after each extractor call so a watcher sees progress (the rows are written
``pending`` with the first one already ``in_progress``, and each result is stored in the
commit that starts the next insight: one transaction per insight, plus one); an extractor
that raises turns into a ``failed`` row with the reason, never a row stuck half-way. The
results are then delivered to the group's webhook, when one applies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, bindparam, cast
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, col, select

from mission_server.clock import ensure_utc
from mission_server.domain.targets import normalise_target
from mission_server.domain.templating import render
from mission_server.errors import NotFound, ValidationError
from mission_server.insights.accuracy import Tally, score_fields
from mission_server.insights.base import (
    ExtractionResult,
    Extractor,
    InsightDefinition,
    InsightParameter,
)
from mission_server.insights.schema import parse_parameters
from mission_server.insights.truth import conversation_truth
from mission_server.net.webhooks import WebhookSender
from mission_server.services.context import Context
from mission_server.services.insight_schemas import (
    InsightResultOut,
    PriorConversationOut,
)
from mission_server.services.insights import (
    DEFAULT_SUMMARY_INSIGHT_ID,
    definition_of,
    ensure_default_summary_insight,
    missing_fields,
    result_out,
)
from mission_server.services.paging import Keyset, Page, page_limit
from mission_server.services.webhooks import (
    CONVERSATION_GROUP,
    deliver_conversation_insights,
    webhook_target,
)
from mission_server.telephony.base import TranscriptMessage
from state import models as m

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- extraction

_CONVERSATIONS = m.Conversation.__table__
_ASSISTANTS = m.Assistant.__table__
_GROUPS = m.InsightGroup.__table__
_MEMBERS = m.InsightGroupMember.__table__
_INSIGHTS = m.Insight.__table__
_MESSAGES = m.Message.__table__
_RESULTS = m.InsightResult.__table__

# The statements of the hot path are built once (SQLAlchemy Core, no ORM objects): extraction
# runs after every call of a campaign.

#: The conversation, its assistant's group and the group's insights in order: one row per
#: insight (one row with no insight when there is no group or it has none).
_CONTEXT = (
    core_select(
        _CONVERSATIONS.c.channel,
        _CONVERSATIONS.c.agent_target,
        _CONVERSATIONS.c.end_user_target,
        _CONVERSATIONS.c.dynamic_variables,
        _CONVERSATIONS.c.started_at,
        _ASSISTANTS.c.insight_group_id.label("assistant_group_id"),
        _GROUPS.c.insight_group_id,
        _INSIGHTS.c.insight_id,
        _INSIGHTS.c.name,
        _INSIGHTS.c.instructions,
        # As stored (JSON text): the key of the parsed parameters' cache.
        cast(_INSIGHTS.c.parameters, Text).label("parameters"),
    )
    .select_from(
        CONVERSATION_GROUP.outerjoin(
            _MEMBERS, _MEMBERS.c.insight_group_id == _GROUPS.c.insight_group_id
        ).outerjoin(_INSIGHTS, _INSIGHTS.c.insight_id == _MEMBERS.c.insight_id)
    )
    .where(_CONVERSATIONS.c.conversation_id == bindparam("conversation_id"))
    .order_by(_MEMBERS.c.position)
)
_INSIGHT = core_select(
    _INSIGHTS.c.insight_id,
    _INSIGHTS.c.name,
    _INSIGHTS.c.instructions,
    cast(_INSIGHTS.c.parameters, Text).label("parameters"),
).where(_INSIGHTS.c.insight_id == bindparam("insight_id"))
_TRANSCRIPT = (
    core_select(_MESSAGES.c.role, _MESSAGES.c.text, _MESSAGES.c.sent_at, _MESSAGES.c.facts)
    .where(_MESSAGES.c.conversation_id == bindparam("conversation_id"))
    .order_by(_MESSAGES.c.seq)
)
_EXISTING = core_select(_RESULTS.c.insight_id, _RESULTS.c.created_at).where(
    _RESULTS.c.conversation_id == bindparam("conversation_id")
)
_RESULT_ROW = (_RESULTS.c.conversation_id == bindparam("c_id")) & (
    _RESULTS.c.insight_id == bindparam("i_id")
)
_INSERT_RESULT = _RESULTS.insert()
_RESET_RESULT = (
    _RESULTS.update()
    .where(_RESULT_ROW)
    .values(
        status=bindparam("status"),
        result=None,
        error=None,
        extractor=bindparam("extractor"),
        updated_at=bindparam("now"),
        truth=None,
    )
)
_START_RESULT = (
    _RESULTS.update().where(_RESULT_ROW).values(status="in_progress", updated_at=bindparam("now"))
)
_FINISH_RESULT = (
    _RESULTS.update()
    .where(_RESULT_ROW)
    .values(
        status=bindparam("status"),
        updated_at=bindparam("now"),
        result=bindparam("result"),
        error=bindparam("error"),
        truth=bindparam("truth"),
    )
)


@lru_cache(maxsize=1024)
def _parameters(insight_id: str, stored: str | None) -> tuple[InsightParameter, ...]:
    """An insight's parameters parsed from their stored JSON text. Keyed by that text, so an
    edited row is parsed again; what is returned is immutable, so sharing it is safe."""
    raw = json.loads(stored) if stored is not None else None
    # As ``insights.definition_of``: stored rows were validated on the way in; parse again so
    # a hand-edited row is caught.
    return parse_parameters(raw or [], field=f"insight {insight_id} parameters")


def _variables(row: Any, extra: Mapping[str, Any] | None) -> dict[str, str]:
    # Precedence as for calls: explicit variables > the conversation's own > system values.
    values: dict[str, str] = {
        "telnyx_conversation_channel": row.channel or "",
        "telnyx_agent_target": row.agent_target or "",
        "telnyx_end_user_target": row.end_user_target or "",
    }
    for source in (row.dynamic_variables or {}, extra or {}):
        for key, value in source.items():
            values[str(key)] = value if isinstance(value, str) else str(value)
    return values


def _transcript(
    conn: Connection, conversation_id: str, fallback: datetime
) -> list[TranscriptMessage]:
    transcript = []
    for role, text, sent_at, facts in conn.execute(
        _TRANSCRIPT, {"conversation_id": conversation_id}
    ):
        # Unknown roles (tool output, say) are kept as system text, which extractors skip.
        transcript.append(
            TranscriptMessage(
                role=role if role in ("assistant", "user", "system") else "system",
                text=text,
                sent_at=sent_at or fallback,
                facts=facts,
            )
        )
    return transcript


@dataclass
class _Plan:
    """What one extraction works through, read in its first transaction."""

    group_id: str | None
    transcript: list[TranscriptMessage]
    definitions: list[InsightDefinition]
    created: dict[str, datetime]
    #: Whether a webhook applies (only read here when there is no insight to extract).
    webhook: bool = False


def _prepare(
    conn: Connection,
    conversation_id: str,
    extractor: str,
    variables: Mapping[str, Any] | None,
    now: datetime,
    deliver: bool,
) -> _Plan | None:
    """Read the conversation, its insights and transcript, then mark every result row
    ``pending`` and the first ``in_progress`` (one transaction). None when the conversation
    has no group and the default "Summary" insight does not exist yet.

    Raises:
        NotFound: no such conversation.
        ValidationError: a stored insight's parameters are not valid (nothing is written).
    """
    rows = conn.execute(_CONTEXT, {"conversation_id": conversation_id}).all()
    if not rows:
        raise NotFound("conversation", conversation_id)
    first = rows[0]
    group_id = first.insight_group_id if first.assistant_group_id else None
    if group_id is not None:
        insights = [row for row in rows if row.insight_id is not None]
    else:
        summary = conn.execute(_INSIGHT, {"insight_id": DEFAULT_SUMMARY_INSIGHT_ID}).first()
        if summary is None:
            return None
        insights = [summary]
    moment = first.started_at or now
    transcript = _transcript(conn, conversation_id, moment)
    values = _variables(first, variables)
    # Build every definition before writing anything, so a bad stored insight fails cleanly.
    definitions = [
        InsightDefinition(
            insight_id=row.insight_id,
            name=row.name,
            instructions=render(row.instructions, values, moment),
            parameters=_parameters(row.insight_id, row.parameters),
        )
        for row in insights
    ]
    plan = _Plan(
        group_id=group_id,
        transcript=transcript,
        definitions=definitions,
        created={},
    )
    if not definitions:
        plan.webhook = deliver and group_id is not None and _has_webhook(conn, conversation_id)
        return plan
    existing = dict(conn.execute(_EXISTING, {"conversation_id": conversation_id}).all())
    inserts: list[dict[str, Any]] = []
    resets: list[dict[str, Any]] = []
    for index, definition in enumerate(definitions):
        # The first is started at once: a watcher sees the same progress as before, in one
        # commit fewer (``pending`` or ``in_progress``, either is unsettled for recovery).
        status = "in_progress" if index == 0 else "pending"
        insight_id = definition.insight_id
        if insight_id in existing:
            plan.created[insight_id] = existing[insight_id]
            resets.append(
                {
                    "c_id": conversation_id,
                    "i_id": insight_id,
                    "status": status,
                    "extractor": extractor,
                    "now": now,
                }
            )
        else:
            plan.created[insight_id] = now
            inserts.append(
                {
                    "conversation_id": conversation_id,
                    "insight_id": insight_id,
                    "status": status,
                    "result": None,
                    "error": None,
                    "extractor": extractor,
                    "truth": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if inserts:
        conn.execute(_INSERT_RESULT, inserts)
    if resets:
        conn.execute(_RESET_RESULT, resets)
    return plan


def _has_webhook(conn: Connection, conversation_id: str) -> bool:
    found = webhook_target(conn, conversation_id)
    return found is not None and found[0] is not None and bool(found[1])


def _finish(
    conn: Connection,
    conversation_id: str,
    insight_id: str,
    status: str,
    now: datetime,
    result: ExtractionResult,
    truth: dict[str, Any] | None,
) -> None:
    done = conn.execute(
        _FINISH_RESULT,
        {
            "c_id": conversation_id,
            "i_id": insight_id,
            "status": status,
            "now": now,
            "result": result.result if status == "completed" else None,
            "error": result.error,
            "truth": truth,
        },
    )
    if done.rowcount != 1:  # the row went away mid-extraction
        raise NoResultFound(f"no insight result of {conversation_id!r} for {insight_id!r}")


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

    One transaction reads what is needed and marks the rows ``pending`` (the first
    ``in_progress``); then one per insight stores its result and starts the next, so the rows
    show progress and a process that stops half-way leaves rows still unsettled for the next
    one (``unextracted_conversations``). The last one also reads whether a webhook applies,
    so nothing more is done when none does.

    Raises:
        NotFound: no such conversation.
        ValidationError: ``now`` without a timezone, or a stored insight whose parameters are
            no longer valid (nothing is written then).
    """
    now = ensure_utc(now, "now")
    if variables is not None and not isinstance(variables, Mapping):
        raise ValidationError("variables", "must be an object (key/value mapping)", variables)
    with engine.begin() as conn:
        plan = _prepare(conn, conversation_id, extractor.name, variables, now, deliver)
    if plan is None:
        ensure_default_summary_insight(engine, now=now)
        with engine.begin() as conn:
            plan = _prepare(conn, conversation_id, extractor.name, variables, now, deliver)
        assert plan is not None
    transcript, definitions = plan.transcript, plan.definitions
    webhook = plan.webhook

    outputs: list[InsightResultOut] = []
    for index, definition in enumerate(definitions):
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
        truth = conversation_truth(definition, transcript)
        following = definitions[index + 1] if index + 1 < len(definitions) else None
        with engine.begin() as conn:
            _finish(conn, conversation_id, definition.insight_id, status, now, result, truth)
            if following is not None:
                conn.execute(
                    _START_RESULT,
                    {"c_id": conversation_id, "i_id": following.insight_id, "now": now},
                )
            elif deliver and plan.group_id is not None:
                webhook = _has_webhook(conn, conversation_id)
        outputs.append(
            InsightResultOut(
                conversation_id=conversation_id,
                insight_id=definition.insight_id,
                insight_name=definition.name,
                status=status,
                result=result.result if status == "completed" else None,
                error=result.error,
                extractor=extractor.name,
                missing=list(result.missing),
                truth=truth,
                created_at=plan.created[definition.insight_id],
                updated_at=now,
            )
        )

    if webhook:
        deliver_conversation_insights(engine, conversation_id, now=now, sender=sender)
    return outputs


#: The most bytes (as JSON) the listed mismatches take: the accuracy rides in the run's result
#: payload, which the planner fits in 14,000 of the 16 KiB a payload may take
#: (``planner.result.PAYLOAD_BUDGET``), so the two together stay under it.
MISMATCH_BYTES = 1_500


def extraction_accuracy(engine: Engine, run_id: str) -> dict[str, Any] | None:
    """How well the run's conversations were read, where their truth is known (a rehearsal):
    per field, the value read against the value said (``insights.accuracy``). None when no
    result of the run carries a truth (real calls).

    ``mismatches`` lists the wrong values, the first 20 that fit in ``MISMATCH_BYTES``: a
    value read that no one said, or another value than the one said; ``mismatches_total``
    counts them all.
    """
    # Core rows, and each insight's fields worked out once: a 10,000-target rehearsal has
    # 10,000 results of one insight.
    query = (
        core_select(
            _RESULTS.c.insight_id,
            _RESULTS.c.truth,
            _RESULTS.c.result,
            _RESULTS.c.extractor,
            _CONVERSATIONS.c.conversation_id,
            _CONVERSATIONS.c.name,
        )
        .join(
            _CONVERSATIONS,
            _CONVERSATIONS.c.conversation_id == _RESULTS.c.conversation_id,
        )
        .where(_CONVERSATIONS.c.run_id == run_id, _RESULTS.c.truth.is_not(None))
        .order_by(_RESULTS.c.id)
    )
    tally = Tally()
    conversations: set[str] = set()
    extractors: set[str] = set()
    where: dict[int, str] = {}
    fields_of: dict[str, list[tuple[str, str]] | None] = {}
    with Session(engine) as session:
        for row in session.connection().execute(query):
            if row.truth is None:  # a JSON null
                continue
            if row.insight_id not in fields_of:
                insight = session.get(m.Insight, row.insight_id)
                fields_of[row.insight_id] = (
                    [(p.name, p.type) for p in definition_of(insight).parameters]
                    if insight is not None and insight.parameters
                    else None
                )
            fields = fields_of[row.insight_id]
            if fields is None:
                continue
            conversations.add(row.conversation_id)
            extractors.add(row.extractor or "unknown")
            read = row.result if isinstance(row.result, dict) else None
            before = len(tally.mismatches)
            tally.add(score_fields(fields, row.truth, read))
            for index in range(before, len(tally.mismatches)):
                where[index] = row.name or row.conversation_id
    if not conversations:
        return None
    mismatches: list[dict[str, Any]] = []
    size = 2
    for i, v in enumerate(tally.mismatches[:20]):
        item = {"conversation": where[i], "field": v.name, "said": v.truth, "read": v.read}
        size += len(json.dumps(item, ensure_ascii=False).encode()) + 2
        if size > MISMATCH_BYTES:
            break
        mismatches.append(item)
    return {
        "conversations": len(conversations),
        "extractors": sorted(extractors),
        "fields": tally.fields,
        "stated": tally.stated,
        "right": tally.right,
        "wrong": tally.wrong,
        "missed": tally.missed,
        "absent": tally.absent,
        **tally.rates(),
        "mismatches": mismatches,
        "mismatches_total": len(tally.mismatches),
    }


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


def conversation_results(
    session: Session, conversation_ids: Sequence[str]
) -> dict[str, list[InsightResultOut]]:
    """The stored insight results of many conversations, read in one query (``session`` is
    the caller's)."""
    return _results_of(session, conversation_ids)


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
        missing = missing_fields(insight.parameters, result.result)
        out.setdefault(result.conversation_id, []).append(result_out(result, insight.name, missing))
    return out


def _metadata_matches(stored: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    stored = stored or {}
    return all(key in stored and stored[key] == value for key, value in wanted.items())


CONVERSATIONS = Keyset(
    "list_prior_conversations",
    (col(m.Conversation.created_at), datetime),
    (col(m.Conversation.conversation_id), str),
    descending=True,
)


def list_prior_conversations(
    engine: Engine,
    end_user_target: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    limit: int | None = 5,
    *,
    insight_ids: Sequence[str] | None = None,
    exclude_conversation_id: str | None = None,
    cursor: str | None = None,
) -> Page[PriorConversationOut]:
    """Past conversations with their insight results, newest first, ``limit`` per page (5 when
    omitted; see ``services.paging``): the memory hook (``reference/02_memory.md``: "the last 5
    conversations with this number").

    ``end_user_target`` and every ``metadata`` key/value must match (metadata is compared for
    equality per key, like ``metadata->key=eq.value``); ``insight_ids`` keeps only those
    insights' results (the reference's ``insight_query``). The target is normalised like a
    call's ``to`` (``targets.normalise_target``), so ``312-555-0101`` and ``+1 312 555 0101``
    find the conversations with ``+13125550101``.

    Raises:
        ValidationError: ``limit`` outside 1–100, ``metadata`` not a mapping,
            ``insight_ids`` not a list, ``end_user_target`` not a phone number or SIP URI, or
            a cursor not of this list (with these filters).
    """
    limit = page_limit(limit, default=5, maximum=100)
    if end_user_target is not None:
        end_user_target = normalise_target(end_user_target, field="end_user_target")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError("metadata", "must be an object (key/value mapping)", metadata)
    if insight_ids is not None and (
        isinstance(insight_ids, (str, bytes)) or not isinstance(insight_ids, Sequence)
    ):
        raise ValidationError("insight_ids", "must be a list of insight ids", insight_ids)
    scope = (end_user_target, dict(metadata or {}), exclude_conversation_id)
    key = CONVERSATIONS.decode(cursor, scope)
    with Session(engine) as session:
        query = select(m.Conversation)
        if end_user_target is not None:
            query = query.where(m.Conversation.end_user_target == end_user_target)
        if exclude_conversation_id is not None:
            query = query.where(m.Conversation.conversation_id != exclude_conversation_id)
        query = query.order_by(*CONVERSATIONS.order_by())
        matched: list[m.Conversation] = []
        # JSON filtering is done here rather than in SQL so SQLite and PostgreSQL agree;
        # rows are read in batches (keyset, like the pages) so a large history is not loaded
        # at once. One match more than the page tells whether there is a next page.
        while len(matched) <= limit:
            batch_query = query if key is None else query.where(CONVERSATIONS.after(key))
            batch = session.exec(batch_query.limit(200)).all()
            if not batch:
                break
            key = (batch[-1].created_at, batch[-1].conversation_id)
            matched.extend(
                row for row in batch if not metadata or _metadata_matches(row.meta, metadata)
            )
        page = CONVERSATIONS.page(
            matched, limit, lambda c: (c.created_at, c.conversation_id), scope
        )
        chosen = list(page)
        results = _results_of(session, [c.conversation_id for c in chosen], insight_ids)
        out = [
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
        return Page(out, page.next_cursor)


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
