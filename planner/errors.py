"""Errors the planner raises on purpose.

The planner does not import the service, so it has its own small hierarchy; the service maps
these onto its own errors at the boundary (``SpecError`` becomes a ``ValidationError`` with the
same field, rule and value).
"""

from __future__ import annotations

from typing import Any

#: The longest echo of a bad value (as in ``mission_server.errors.shown``: the planner imports
#: nothing of ours, so it keeps its own three lines).
ECHO_LIMIT = 120


def _shown(value: Any) -> str:
    text = repr(value)
    return (
        text if len(text) <= ECHO_LIMIT else f"{text[: ECHO_LIMIT - 20]}… ({len(text)} characters)"
    )


class PlannerError(Exception):
    """Base class for every error the planner raises on purpose."""


class SpecError(PlannerError, ValueError):
    """A mission spec (or request) is invalid: names the field, the rule and the value."""

    def __init__(self, field: str, rule: str, value: Any = None, *, show_value: bool = True):
        self.field = field
        self.rule = rule
        self.value = value
        self.show_value = show_value
        message = f"{field} {rule}"
        if show_value:
            message += f", got {_shown(value)}"
        super().__init__(message)


class OperationFailed(PlannerError):
    """A ``MissionOps`` operation was refused for a reason the run should report (no free
    number, a do-not-call target, a provider refusal). Bugs and outages are not wrapped.

    ``code`` names the rule where the service knows it: ``do_not_call``, ``run_finished``,
    ``no_calling_hours``."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class LLMError(PlannerError):
    """The optional language model could not turn a request into a valid spec."""
