"""``DaemonPool``: a small pool of daemon threads that never holds up a shutdown.

Long-running processes hand it work whose state is in the records, so abandoning it is safe:
insight extraction (a finished call without settled results is extracted by the next process)
and the planner's graph steps (checkpointed when a run stops, ``durability="exit"``; the next
process resumes the run from its last checkpoint and replays the steps since, which are
idempotent). ``concurrent.futures.ThreadPoolExecutor`` would not do: the
interpreter joins its threads at exit, so one step waiting minutes on an LLM or on Telnyx would
keep a stopped worker alive for minutes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

log = logging.getLogger(__name__)

#: How long shutdown lets the work already running finish before it abandons it.
GRACE_SECS = 3.0


class DaemonPool(Executor):
    """``threads`` daemon threads named ``<name>_<n>``; ``what`` names the work in the log.

    ``shutdown`` drops what is queued and gives the running work ``grace`` seconds; whatever is
    left is abandoned, and the process may exit under it.
    """

    def __init__(self, threads: int, *, name: str, what: str) -> None:
        self._what = what
        self._queue: queue.Queue[tuple[Future[Any], Callable[[], Any]] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self._stopping.is_set():
            future.cancel()  # abandoned: the next process does it from the records
            return future
        self._queue.put((future, lambda: fn(*args, **kwargs)))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopping.is_set():
                return
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    @property
    def stopping(self) -> bool:
        """True once ``shutdown`` was called: long work should stop at its next safe point."""
        return self._stopping.is_set()

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = True, grace: float | None = None
    ) -> None:
        """Stop taking work, abandon the queue, and wait at most ``grace`` seconds
        (``GRACE_SECS``; none unless ``wait``) for the running work."""
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
        deadline = time.monotonic() + ((GRACE_SECS if grace is None else grace) if wait else 0.0)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = sum(thread.is_alive() for thread in self._threads)
        if abandoned or running:
            log.warning(
                "shutdown: %d queued and %d running %s(s) abandoned; the next process does them",
                abandoned,
                running,
                self._what,
            )
