"""Listeners that connect the dispatcher to the rest of the service.

When a call ends, its insights are extracted first and only then are the settled listeners
(the planner) told, so whatever they resume sees the call's insight results recorded. With
``background=True`` (long-running processes) extraction runs on a small thread pool: an LLM or
the Telnyx platform may take seconds or minutes, and the dispatcher must keep placing calls.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from mission_server.services.context import CallFinished, Context
from mission_server.services.extraction import extract_insights

log = logging.getLogger(__name__)

EXTRACTION_THREADS = 4
#: How long shutdown lets the extractions already running finish before it abandons them.
EXTRACTION_GRACE_SECS = 3.0


class ExtractionPool(Executor):
    """A small pool of daemon threads for insight extraction that never holds up a shutdown.

    ``shutdown`` drops what is queued and gives the running extractions ``grace`` seconds;
    whatever is left is abandoned. Nothing is lost: an extraction's state is in the records
    (a finished call without settled insight results), and the next process extracts it
    (``services.extraction.settle_unextracted``, run by ``MissionApp.recover``).
    """

    def __init__(self, threads: int = EXTRACTION_THREADS) -> None:
        self._queue: queue.Queue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._queue = queue.Queue()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"insights_{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self._stopping.is_set():
            future.cancel()  # abandoned: the next process extracts it from the records
            return future
        self._queue.put((future, lambda: fn(*args, **kwargs), ()))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopping.is_set():
                return
            future, call, _ = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = True, grace: float | None = None
    ) -> None:
        """Stop taking work, abandon the queue, and wait at most ``grace`` seconds
        (``EXTRACTION_GRACE_SECS``; none unless ``wait``) for the running extractions."""
        self._stopping.set()
        abandoned = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
                abandoned += 1
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + (
            (EXTRACTION_GRACE_SECS if grace is None else grace) if wait else 0.0
        )
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = sum(thread.is_alive() for thread in self._threads)
        if abandoned or running:
            log.warning(
                "shutdown: %d queued and %d running insight extraction(s) abandoned; the next "
                "process extracts them",
                abandoned,
                running,
            )


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
        ctx.extraction_pool = ExtractionPool(EXTRACTION_THREADS)
    if any(getattr(f, "__name__", "") == "insights_listener" for f in ctx.call_listeners):
        return
    ctx.call_listeners.insert(0, insights_listener(ctx))


def shutdown_listeners(ctx: Context) -> None:
    """Abandon the queued extractions and give the running ones a short grace
    (``ExtractionPool.shutdown``): a stop takes seconds, never minutes. What is abandoned is
    extracted by the next process (``services.extraction.settle_unextracted``)."""
    pool, ctx.extraction_pool = ctx.extraction_pool, None
    if pool is not None:
        pool.shutdown(wait=True)
