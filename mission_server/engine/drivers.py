"""The drivers of the dispatcher: what decides when ``Dispatcher.sweep`` runs.

- ``run_until_idle``: virtual time — sweep, then jump a ``VirtualClock`` to the next due time,
  until nothing is left.
- ``RealtimeTrigger``: real (or accelerated) time — APScheduler runs the sweep at the next due
  time, woken early when this process schedules new work. In simulation (``jump``, see
  ``engine.simtime``) a wait longer than a poll interval is skipped: the clock jumps to the
  next due time when nothing is due before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from mission_server.clock import Clock, VirtualClock
from mission_server.engine.dispatcher import Dispatcher, SweepReport
from mission_server.errors import MissionError

log = logging.getLogger(__name__)


def run_until_idle(
    dispatcher: Dispatcher,
    clock: VirtualClock,
    *,
    until: datetime | None = None,
    stop: Callable[[], bool] | None = None,
    after_sweep: Callable[[], None] | None = None,
    max_sweeps: int = 1_000_000,
) -> SweepReport:
    """Discrete-event loop: sweep, then jump the virtual clock to the next due time, until
    nothing is left (or ``until`` is reached, or ``stop()`` says so).

    ``after_sweep`` runs after every sweep (e.g. to let a planner schedule follow-up calls),
    so the loop only ends when neither the dispatcher nor the caller has more to do.
    """
    total = SweepReport()
    for _ in range(max_sweeps):
        total.add(dispatcher.sweep(clock.now()))
        if after_sweep is not None:
            after_sweep()
        if stop is not None and stop():
            break
        upcoming = dispatcher.next_due()
        if upcoming is None:
            break
        if until is not None and upcoming > until:
            clock.advance_to(until)
            break
        clock.advance_to(upcoming)
    return total


class RealtimeTrigger:
    """Runs the sweep in real (or accelerated) time with APScheduler.

    A sweep job keeps going while work falls due within ``poll_secs`` (sleeping exactly until
    the next due time, or until ``wake`` pokes it), and otherwise leaves a one-off APScheduler
    job for the next due time. A periodic safety job picks up rows written by other processes.
    ``wake(due_at)`` (wired to ``Context.wakeups``) brings the next sweep forward when new work
    is scheduled in this process.
    """

    JOB_ID = "mission-sweep"

    def __init__(
        self,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        poll_secs: float = 1.0,
        jump: Callable[[datetime], bool] | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.dispatcher = dispatcher
        self.clock = clock
        self.poll_secs = poll_secs
        self._jump = jump
        self._heartbeat = heartbeat
        self._scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._sweeping = threading.Lock()
        self._state = threading.Lock()
        self._poke = threading.Event()
        self._next_wake: datetime | None = None
        self._stopping = False
        self.sweeps = 0

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._stopping = False
        self.dispatcher.ctx.wakeups.append(self.wake)
        self._scheduler.start()
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.poll_secs,
            id="mission-poll",
            replace_existing=True,
            # A tick that finds a sweep running only pokes it (``_tick``): let it, rather
            # than have APScheduler warn about a skipped run every interval.
            max_instances=2,
        )
        self.wake(self.clock.now())

    def stop(self) -> None:
        self._stopping = True
        self._poke.set()
        if self.wake in self.dispatcher.ctx.wakeups:
            self.dispatcher.ctx.wakeups.remove(self.wake)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake(self, due_at: datetime) -> None:
        """Make sure a sweep runs no later than ``due_at`` (clock time)."""
        if not self._scheduler.running or self._stopping:
            return
        if self._sweeping.locked():
            self._poke.set()  # the running sweep loop re-reads the next due time
            return
        with self._state:
            if self._next_wake is not None and self._next_wake <= due_at:
                return
            self._next_wake = due_at
        self._schedule(due_at)

    def _schedule(self, due_at: datetime) -> None:
        delay = max(0.0, self.clock.wall_seconds_until(due_at))
        run_at = datetime.now().astimezone() + timedelta(seconds=delay)
        self._scheduler.add_job(
            self._tick, "date", run_date=run_at, id=self.JOB_ID, replace_existing=True
        )

    def _tick(self) -> None:
        self._beat()
        if not self._sweeping.acquire(blocking=False):
            self._poke.set()
            return
        try:
            with self._state:
                self._next_wake = None
            while not self._stopping:
                self._poke.clear()
                self._sweep_once()
                upcoming = self.dispatcher.next_due()
                if upcoming is None:
                    return
                delay = self.clock.wall_seconds_until(upcoming)
                if delay > self.poll_secs and self._jumped(upcoming):
                    continue  # simulated time: the wait was skipped, sweep at once
                if delay > self.poll_secs:
                    with self._state:
                        self._next_wake = upcoming
                    self._schedule(upcoming)
                    return
                if delay > 0:
                    self._poke.wait(delay)
        finally:
            self._sweeping.release()

    def _jumped(self, upcoming: datetime) -> bool:
        """Jump the (simulated) clock to ``upcoming`` when ``jump`` is given and allows it."""
        if self._jump is None:
            return False
        try:
            return self._jump(upcoming)
        except Exception:  # no jump: the trigger waits for the time instead
            log.exception("the simulated clock could not jump to %s", upcoming)
            return False

    def _beat(self) -> None:
        if self._heartbeat is None:
            return
        try:
            self._heartbeat()
        except Exception:
            log.warning("could not record that this process runs on the shared simulated time")

    def _sweep_once(self) -> None:
        try:
            self.dispatcher.sweep(self.clock.now(), stopping=lambda: self._stopping)
            self.sweeps += 1
        except MissionError as exc:
            log.error("sweep failed: %s", exc)
        except Exception:  # keep the trigger alive; the next tick retries
            log.exception("sweep failed")
            time.sleep(min(1.0, self.poll_secs))  # do not spin on a persistent failure
