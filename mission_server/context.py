"""The service context: everything a service function needs, passed explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from mission_server.clock import Clock
from mission_server.settings import Settings
from mission_server.telephony.base import Provider

if TYPE_CHECKING:
    from mission_server.dispatcher import CallFinished
    from mission_server.insights.base import Extractor


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

    def wake(self, due_at: datetime) -> None:
        for callback in self.wakeups:
            callback(due_at)
