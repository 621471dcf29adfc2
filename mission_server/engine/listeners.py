"""Listeners that connect the dispatcher to the rest of the service.

When a call ends, its insights are extracted first and only then are the settled listeners
(the planner) told, so whatever they resume sees the call's insight results recorded. With
``background=True`` (long-running processes) extraction runs on a small thread pool: an LLM or
the Telnyx platform may take seconds or minutes, and the dispatcher must keep placing calls.
"""

from __future__ import annotations

import logging

from mission_server.engine.pool import DaemonPool
from mission_server.services.context import CallFinished, Context
from mission_server.services.extraction import extract_insights

log = logging.getLogger(__name__)

EXTRACTION_THREADS = 4


def insights_listener(ctx: Context):  # type: ignore[no-untyped-def]
    """A call listener that extracts the conversation's insights when a call ends, then tells
    the settled listeners."""

    def extract_then_settle(event: CallFinished) -> None:
        if event.conversation_id is not None and ctx.extractor is not None:
            try:
                extract_insights(ctx, event.conversation_id)
            except Exception:
                # The results record their own failures; this is the unexpected kind. The
                # planner is told all the same, and reads the insight as failed or pending.
                log.exception("extracting the insights of %s failed", event.conversation_id)
        ctx.notify_settled(event)

    def on_call_finished(event: CallFinished) -> None:
        pool = ctx.extraction_pool
        if pool is None:
            extract_then_settle(event)
        else:
            pool.submit(extract_then_settle, event)

    on_call_finished.__name__ = "insights_listener"
    return on_call_finished


def install_listeners(ctx: Context, *, background: bool = False) -> None:
    """Install the standard listeners once (idempotent). ``background`` moves extraction off
    the dispatcher's thread; ``shutdown_listeners`` then stops it quickly."""
    if background and ctx.extraction_pool is None:
        ctx.extraction_pool = DaemonPool(
            EXTRACTION_THREADS, name="insights", what="insight extraction"
        )
    if any(getattr(f, "__name__", "") == "insights_listener" for f in ctx.call_listeners):
        return
    ctx.call_listeners.insert(0, insights_listener(ctx))


def shutdown_listeners(ctx: Context) -> None:
    """Abandon the queued extractions and give the running ones a short grace
    (``DaemonPool.shutdown``): a stop takes seconds, never minutes. Nothing is lost: an
    extraction's state is in the records (a finished call without settled insight results), and
    the next process extracts it (``services.extraction.settle_unextracted``, run by
    ``MissionApp.recover``)."""
    pool, ctx.extraction_pool = ctx.extraction_pool, None
    if pool is not None:
        pool.shutdown(wait=True)
