"""Errors the planner raises on purpose.

The planner does not import the service, so it has its own small hierarchy; the service maps
these onto its own errors at the boundary (``SpecError`` becomes a ``ValidationError`` with the
same field, rule and value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

#: The longest echo of a bad value in an error message; longer values are cut and their size
#: given, so a megabyte of input never comes back (or reaches a log) whole.
ECHO_LIMIT = 120


def shown(value: Any) -> str:
    """``value`` as an error message shows it: as the user wrote it, never a Python repr.

    A string is quoted (``'abc'``), a time is ISO-8601, a list or object is JSON, ``None`` is
    ``null``. Anything longer than ``ECHO_LIMIT`` characters is cut, with its size: ``… (N
    items)`` for a list or object, ``… (N characters)`` otherwise. (``mission_server.errors``
    re-exports it: the planner imports nothing of ours, so the one definition lives here.)
    """
    if isinstance(value, str):
        text = repr(value)
        if len(text) <= ECHO_LIMIT:
            return text
        return f"{text[: ECHO_LIMIT - 20]}… ({len(value)} characters)"
    if isinstance(value, datetime | date | time):
        return f"'{value.isoformat()}'"
    text = json.dumps(_plain(value), ensure_ascii=False, default=str)
    if len(text) <= ECHO_LIMIT:
        return text
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return f"{text[: ECHO_LIMIT - 20]}… ({len(value)} items)"
    return f"{text[: ECHO_LIMIT - 20]}… ({len(text)} characters)"


def _plain(value: Any) -> Any:
    """``value`` with its times as ISO-8601 text and sets as lists, ready for JSON."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g} seconds"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):  # a pydantic model: its fields, as JSON
        return _plain(value.model_dump(mode="json"))
    return value


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
            message += f", got {shown(value)}"
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
