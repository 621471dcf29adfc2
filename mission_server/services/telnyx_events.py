"""What a verified Telnyx webhook changes (``mcp.telnyx_webhooks`` checks the signature first).

- ``call.conversation.ended``: the call's scheduled event is checked at once. Its outcome
  check (``due_at``) is brought forward to now and the dispatcher is woken (``ctx.wake``);
  the dispatcher then reads the outcome from Telnyx as it always does, so the webhook is a
  hint that never becomes a record by itself. A call is matched by the call control id or
  conversation id, or by the Telnyx assistant and the callee's number.
- ``call.conversation_insights.generated``: the extractions waiting for Telnyx's insights
  fetch them at once (``insights.wakeup.INSIGHTS_READY``).
- Any other event type is acknowledged and ignored.

Polling stays the fallback: a webhook that never comes only means the next poll finds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update

from mission_server.insights.wakeup import INSIGHTS_READY
from mission_server.services.context import Context
from state import models as m

CONVERSATION_ENDED = "call.conversation.ended"
INSIGHTS_GENERATED = "call.conversation_insights.generated"

_EVENTS = m.ScheduledEvent.__table__
_ASSISTANTS = m.Assistant.__table__


@dataclass(frozen=True)
class WebhookOutcome:
    event_type: str | None
    calls_woken: int = 0
    extraction_woken: bool = False


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def handle_telnyx_event(ctx: Context, body: Any) -> WebhookOutcome:
    """Act on one verified Telnyx webhook body (``{"data": {"event_type", "payload"}}``)."""
    data = body.get("data") if isinstance(body, Mapping) else None
    data = data if isinstance(data, Mapping) else {}
    kind = _text(data, "event_type")
    payload = data.get("payload")
    payload = payload if isinstance(payload, Mapping) else {}
    if kind == CONVERSATION_ENDED:
        return WebhookOutcome(kind, calls_woken=_check_calls_now(ctx, payload))
    if kind == INSIGHTS_GENERATED:
        INSIGHTS_READY.wake()
        return WebhookOutcome(kind, extraction_woken=True)
    return WebhookOutcome(kind)


def _check_calls_now(ctx: Context, payload: Mapping[str, Any]) -> int:
    now = ctx.now()
    matches = []
    for column, key in (
        (_EVENTS.c.in_flight_call_control_id, "call_control_id"),
        (_EVENTS.c.conversation_id, "conversation_id"),
    ):
        value = _text(payload, key)
        if value is not None:
            matches.append(column == value)
    assistant = _text(payload, "assistant_id")
    callee = [v for v in (_text(payload, "to"), _text(payload, "from")) if v]
    if assistant is not None and callee:
        ours = select(_ASSISTANTS.c.assistant_id).where(_ASSISTANTS.c.provider_ref == assistant)
        matches.append(
            and_(
                _EVENTS.c.assistant_id.in_(ours.scalar_subquery()),
                _EVENTS.c.telnyx_end_user_target.in_(callee),
            )
        )
    woken = 0
    if matches:
        with ctx.engine.begin() as conn:
            woken = conn.execute(
                update(_EVENTS)
                .where(_EVENTS.c.status == "in_progress", _EVENTS.c.due_at > now, or_(*matches))
                .values(due_at=now)
            ).rowcount
    ctx.wake(now)
    return woken
