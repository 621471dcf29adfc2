"""Insight definitions, insight groups and their assignment to assistants. Extraction and
memory are in ``services.extraction``.

Every function takes the engine and, where it writes, the current time (from the caller's
clock). Writes are transactional: a rejected request leaves nothing behind.

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
from mission_server.errors import NotFound, ValidationError
from mission_server.insights.base import (
    InsightDefinition,
    InsightParameter,
)
from mission_server.insights.schema import parameter_to_dict, parse_definition, parse_parameters
from mission_server.net.webhooks import validate_webhook_url
from mission_server.services.insight_schemas import (
    AssistantInsightSettingsOut,
    InsightGroupOut,
    InsightOut,
    InsightParameterOut,
    InsightResultOut,
)
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
    "get_insight",
    "get_insight_group",
    "list_insight_groups",
    "list_insights",
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


def result_out(row: m.InsightResult, name: str, missing: Sequence[str] = ()) -> InsightResultOut:
    return InsightResultOut(
        conversation_id=row.conversation_id,
        insight_id=row.insight_id,
        insight_name=name,
        status=row.status,
        result=row.result,
        error=row.error,
        extractor=row.extractor,
        missing=list(missing),
        truth=row.truth,
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


def require_count(value: Any, field: str = "limit", maximum: int = 500) -> int:
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
    limit = require_count(limit)
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
    limit = require_count(limit)
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
