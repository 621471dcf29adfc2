"""Listeners that connect the dispatcher to the rest of the service.

Order matters: insights are extracted first, so anything resumed afterwards (the planner)
sees a conversation whose insight results are already recorded.
"""

from __future__ import annotations

import logging

from mission_server.context import Context
from mission_server.dispatcher import CallFinished

log = logging.getLogger(__name__)


def insights_listener(ctx: Context):  # type: ignore[no-untyped-def]
    """A call listener that extracts the conversation's insights when a call ends."""
    from mission_server.insights.service import extract_conversation_insights

    def on_call_finished(event: CallFinished) -> None:
        if event.conversation_id is None or ctx.extractor is None:
            return
        extract_conversation_insights(
            ctx.engine, event.conversation_id, ctx.extractor, now=ctx.now()
        )

    on_call_finished.__name__ = "insights_listener"
    return on_call_finished


def install_listeners(ctx: Context) -> None:
    """Install the standard listeners once (idempotent)."""
    if any(getattr(f, "__name__", "") == "insights_listener" for f in ctx.call_listeners):
        return
    ctx.call_listeners.insert(0, insights_listener(ctx))
