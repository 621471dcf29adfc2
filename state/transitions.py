"""The status machines of runs, plan steps and scheduled events.

One table per record kind; ``check_transition`` raises ``IllegalTransition`` naming the allowed
moves. A same-status "transition" is allowed (idempotent updates).
"""

from __future__ import annotations

from state.errors import IllegalTransition

RUN_STATUSES = ("pending", "running", "paused", "succeeded", "failed", "cancelled")
STEP_STATUSES = ("pending", "in_progress", "completed", "skipped", "failed")
EVENT_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
EVENT_TYPES = (
    "status_change",
    "step_started",
    "step_completed",
    "step_failed",
    "tool_call",
    "tool_result",
    "message",
    "error",
    "custom",
)

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
