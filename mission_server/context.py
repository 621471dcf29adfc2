"""The service context: everything a service function needs, passed explicitly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from mission_server.clock import Clock
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
    (after its conversation and transcript are stored); ``wakeups`` are told when new work
    becomes due earlier than the dispatcher may expect (the real-time trigger reschedules).
    """

    engine: Engine
    clock: Clock
    provider: Provider
    settings: Settings
    extractor: Extractor | None = None
    call_listeners: list[Callable[[CallFinished], None]] = field(default_factory=list)
    wakeups: list[Callable[[datetime], None]] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock.now()

    def notify_call_finished(self, event: CallFinished) -> None:
        """Tell every call listener, in order; a failing listener is logged and skipped so
        the others (and the caller, which has already committed) are unaffected."""
        for listener in list(self.call_listeners):
            try:
                listener(event)
            except Exception:
                log.exception("call listener failed for %s", event.scheduled_event_id)

    def wake(self, due_at: datetime) -> None:
        for callback in self.wakeups:
            callback(due_at)
