"""The service context: everything a service function needs, passed explicitly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from mission_server.clock import Clock, SystemClock
from mission_server.settings import Settings
from mission_server.telephony.base import Provider

if TYPE_CHECKING:
    from mission_server.insights.base import Extractor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallFinished:
    """A scheduled event reached a terminal status (completed, failed or cancelled)."""

    scheduled_event_id: str
    run_id: str | None
    step_id: str | None
    assistant_id: str
    status: str
    call_status: str | None
    conversation_id: str | None
    attempts: int
    finished_at: datetime
    end_user_target: str


@dataclass
class Context:
    """Engine, clock, provider and settings of one running service.

    ``call_listeners`` are told about every scheduled event that reaches a terminal status
    (after its conversation and transcript are stored), in the thread that finished it;
    ``settled_listeners`` once its insights are recorded too (the insights listener, see
    ``wiring``, tells them; on ``extraction_pool`` when one is set, so a slow extractor never
    holds up the dispatcher). ``wakeups`` are told when new work becomes due earlier than the
    dispatcher may expect (the real-time trigger reschedules). ``wall_clock`` is real time
    whatever ``clock`` is (virtual in a rehearsal): records keep it beside the service time.
    """

    engine: Engine
    clock: Clock
    provider: Provider
    settings: Settings
    extractor: Extractor | None = None
    call_listeners: list[Callable[[CallFinished], None]] = field(default_factory=list)
    settled_listeners: list[Callable[[CallFinished], None]] = field(default_factory=list)
    extraction_pool: Executor | None = None
    wakeups: list[Callable[[datetime], None]] = field(default_factory=list)
    wall_clock: Clock = field(default_factory=SystemClock)

    def now(self) -> datetime:
        return self.clock.now()

    def notify_call_finished(self, event: CallFinished) -> None:
        """Tell every call listener, in order; a failing listener is logged and skipped so
        the others (and the caller, which has already committed) are unaffected."""
        _tell(self.call_listeners, event)

    def notify_settled(self, event: CallFinished) -> None:
        """Tell every settled listener (the call's insights are recorded), like
        ``notify_call_finished``."""
        _tell(self.settled_listeners, event)

    def wake(self, due_at: datetime) -> None:
        for callback in self.wakeups:
            callback(due_at)


def _tell(listeners: list[Callable[[CallFinished], None]], event: CallFinished) -> None:
    for listener in list(listeners):
        try:
            listener(event)
        except Exception:
            log.exception("listener %r failed for %s", listener, event.scheduled_event_id)
