"""Exceptions raised by the mission service. One small hierarchy for the whole package.

Every error that reaches a user (CLI, MCP tool result) is a ``MissionError``; its message names
what was wrong. Validation errors name the field, the rule and the offending value.
"""

from __future__ import annotations

from typing import Any

from state.errors import (
    IllegalTransition,
    NotFound,
    StateError,
)

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "GuardrailError",
    "IllegalTransition",
    "MissionError",
    "NotFound",
    "ProviderError",
    "StateError",
    "ValidationError",
]


class MissionError(Exception):
    """Base class for every error the mission service raises on purpose."""


class ValidationError(MissionError, ValueError):
    """Bad input: names the field, the rule it broke and the value it got."""

    def __init__(self, field: str, rule: str, value: Any = None, *, show_value: bool = True):
        self.field = field
        self.rule = rule
        self.value = value
        message = f"{field} {rule}"
        if show_value:
            message += f", got {value!r}"
        super().__init__(message)


class ConflictError(MissionError):
    """The request conflicts with what is already stored (e.g. an idempotency key reused
    with different content)."""


class GuardrailError(MissionError):
    """A safety rule refused the action (do-not-call list, call budget, approval gate)."""


class ConfigurationError(MissionError):
    """The configuration (environment, files, flags) is incomplete or contradictory."""


class ProviderError(MissionError):
    """The telephony provider refused or failed a request.

    ``code`` and ``detail`` carry the provider's own error code and text where it gave one;
    ``retryable`` says whether trying again later may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.retryable = retryable
