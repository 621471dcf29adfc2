"""``MirrorLoop``: delivers the Telnyx mirror's outbox (``services.mirror``) on its own thread,
so no call, record or request ever waits for Telnyx.

It delivers whatever is due, then sleeps until the next row falls due (by the service clock)
or ``poll_secs`` pass, whichever comes first: rows written by other processes are picked up
within a poll. ``wake`` brings the next pass forward.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from mission_server.services.context import Context
from mission_server.services.mirror import DeliveryReport, MissionsMirror, deliver_due, next_due

log = logging.getLogger(__name__)

#: Rows per pass; a pass that reaches it is followed by the next at once.
LIMIT = 200


class MirrorLoop:
    def __init__(self, ctx: Context, mirror: MissionsMirror, *, poll_secs: float = 2.0) -> None:
        self.ctx = ctx
        self.mirror = mirror
        self.poll_secs = poll_secs
        self.owner = ctx.settings.worker_id or f"{socket.gethostname()}:{os.getpid()}:mirror"
        self._poke = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.last_report: DeliveryReport | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="telnyx-mirror", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._poke.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._poke.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def run_once(self) -> DeliveryReport:
        report = deliver_due(
            self.ctx.engine, self.mirror, self.ctx.clock, owner=self.owner, limit=LIMIT
        )
        self.passes += 1
        self.last_report = report
        if report.retried or report.failed:
            log.warning(
                "Telnyx mirror: %d delivered, %d to retry, %d failed; last error: %s",
                report.delivered,
                report.retried,
                report.failed,
                report.errors[-1] if report.errors else "-",
            )
        return report

    def _wait(self) -> float:
        upcoming = next_due(self.ctx.engine)
        if upcoming is None:
            return self.poll_secs
        return max(0.0, min(self.poll_secs, self.ctx.clock.wall_seconds_until(upcoming)))

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                report = self.run_once()
                done = report.delivered + report.retried + report.failed
                wait = 0.0 if done >= LIMIT else max(0.2, self._wait())
            except Exception:  # the database may be away for a moment: keep the loop alive
                log.exception("the Telnyx mirror pass failed")
                wait = self.poll_secs
            if wait:
                self._poke.wait(wait)
            self._poke.clear()
