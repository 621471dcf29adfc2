"""Reads and renderings shared by the MCP tools and resources."""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel

from mission_server.mcp.models import (
    ConversationDetail,
)
from mission_server.services import assistants as assistant_service
from mission_server.services import conversations, extraction
from mission_server.services import insights as insight_service
from mission_server.services.context import Context
from mission_server.services.insight_schemas import (
    InsightResultOut,
)
from mission_server.services.missions import RunDetail
from mission_server.services.schemas import (
    ScheduledEventOut,
)
from state.errors import NotFound

log = logging.getLogger(__name__)


def conversation_detail(ctx: Context, conversation_id: str) -> ConversationDetail:
    """A conversation with its transcript and insight results.

    Raises:
        NotFound: unknown conversation.
    """
    base = conversations.get_conversation(ctx, conversation_id)
    return ConversationDetail(
        **base.model_dump(), insights=conversation_insights(ctx, conversation_id)
    )


def conversation_insights(ctx: Context, conversation_id: str) -> list[InsightResultOut]:
    """The conversation's insight results (empty when none were extracted).

    Raises:
        NotFound: unknown conversation.
    """
    return list(extraction.get_conversation_insights(ctx.engine, conversation_id))


def expected_insights(ctx: Context, assistant_id: str) -> int:
    """How many insight results a conversation of this assistant will get: one per insight
    of its group, or the default summary when it has none."""
    group_id = assistant_service.get_assistant(ctx, assistant_id).insight_group_id
    if not group_id:
        return 1
    try:
        return len(insight_service.get_insight_group(ctx.engine, group_id).insight_ids)
    except NotFound:
        return 0


def calling_hours_note(event: ScheduledEventOut) -> str | None:
    """One sentence per calling-hours move of the event, or None when it never moved."""
    if not event.deferrals:
        return None
    return " ".join(
        f"Moved from {d.requested.isoformat()} to {d.moved_to.isoformat()} "
        f"(decided at {d.recorded_at.isoformat()}): {d.reason}."
        for d in event.deferrals
    )


def run_result_markdown(detail: RunDetail) -> str:
    """The run's result as markdown: the summary, then the payload as a JSON block."""
    lines = [
        f"# {detail.mission_name} — run {detail.run_id}",
        "",
        f"Status: **{detail.status}**"
        + (f" (finished {detail.finished_at.isoformat()})" if detail.finished_at else ""),
        "",
    ]
    if detail.error:
        lines += [f"Error: {detail.error}", ""]
    lines += [detail.result_summary or "_No result summary recorded yet._", ""]
    lines += ["## result_payload", "", "```json"]
    lines.append(json.dumps(detail.result_payload, indent=2, default=str))
    lines += ["```", ""]
    return "\n".join(lines)


def as_json(model: BaseModel) -> str:
    return model.model_dump_json(indent=2)
