"""The status machines of runs, plan steps and scheduled events.

One table per record kind; ``check_transition`` raises ``IllegalTransition`` naming the allowed
moves. A same-status "transition" is allowed (idempotent updates).
"""

from __future__ import annotations

from typing import Literal, get_args

from state.errors import IllegalTransition

RunStatus = Literal["pending", "running", "paused", "succeeded", "failed", "cancelled"]
StepStatus = Literal["pending", "in_progress", "completed", "skipped", "failed"]
EventStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]
EventType = Literal[
    "status_change",
    "step_started",
    "step_completed",
    "step_failed",
    "tool_call",
    "tool_result",
    "message",
    "error",
    "custom",
]
#: The same choices as tuples, for the service's checks (the Literals type the MCP schemas).
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

RUN_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"running", "paused", "failed", "cancelled", "succeeded"},
    "running": {"paused", "succeeded", "failed", "cancelled"},
    "paused": {"running", "failed", "cancelled"},
    "succeeded": set(),
    "failed": set(),
    "cancelled": set(),
}

STEP_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"in_progress", "completed", "skipped", "failed"},
    "in_progress": {"completed", "failed", "skipped", "pending"},
    "failed": {"in_progress", "pending"},  # a failed step may be retried
    "completed": set(),
    "skipped": set(),
}

SCHEDULED_EVENT_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"in_progress", "cancelled", "failed"},
    "in_progress": {"completed", "failed", "pending"},  # pending again = retry re-queued
    "completed": set(),
    "failed": set(),
    "cancelled": set(),
}

TERMINAL_RUN = frozenset({"succeeded", "failed", "cancelled"})
TERMINAL_STEP = frozenset({"completed", "skipped"})
TERMINAL_EVENT = frozenset({"completed", "failed", "cancelled"})


def check_transition(
    kind: str, key: object, table: dict[str, set[str]], current: str, requested: str
) -> None:
    """Raise ``IllegalTransition`` unless ``current -> requested`` is allowed (or a no-op)."""
    if current == requested:
        return
    allowed = table.get(current, set())
    if requested not in allowed:
        raise IllegalTransition(kind, key, current, requested, allowed)
