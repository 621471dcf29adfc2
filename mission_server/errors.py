"""Every error the project raises on purpose, in one tree.

    MissionError                  mission_server and its adapters
    ├── ValidationError           bad input: names the field, the rule and the value (ValueError)
    ├── ConflictError             clashes with what is stored (an idempotency key reused)
    ├── GuardrailError            a safety rule refused (do-not-call, call budget, approval)
    ├── ConfigurationError        environment, files or flags incomplete or contradictory
    └── ProviderError             the telephony platform refused or failed (``retryable``)
    StateError                    state (the system of record)
    ├── NotFound                  no record with that id (LookupError)
    └── IllegalTransition         a status change the record's state machine forbids
    PlannerError                  planner
    ├── SpecError                 an invalid mission spec or request (ValueError)
    ├── OperationFailed           a MissionOps refusal the run reports
    └── LLMError                  the language model gave no valid spec

``state`` and ``planner`` import nothing of ours (the layer rule), so their roots cannot derive
from ``MissionError``; they are part of this tree by being listed in ``USER_ERRORS``, the one
definition of "an error a user caused or can act on". The CLI (``cli.common.user_errors``) and
the MCP tools (``mcp.errors``) catch exactly ``USER_ERRORS``: anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

from typing import Any

from planner.errors import ECHO_LIMIT, LLMError, OperationFailed, PlannerError, SpecError, shown
from state.errors import (
    IllegalTransition,
    NotFound,
    StateError,
)

__all__ = [
    "ECHO_LIMIT",
    "USER_ERRORS",
    "ConfigurationError",
    "ConflictError",
    "GuardrailError",
    "IllegalTransition",
    "LLMError",
    "MissionError",
    "NotFound",
    "OperationFailed",
    "PlannerError",
    "ProviderError",
    "SpecError",
    "StateError",
    "ValidationError",
    "shown",
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
            message += f", got {shown(value)}"
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
    ``retryable`` says whether trying again later may succeed; ``maybe_sent`` that the request
    may have reached the provider and acted there (a create that went unanswered): it must be
    looked up (``Provider.find_attempt``) before it is ever sent again.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        retryable: bool = False,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.maybe_sent = maybe_sent


USER_ERRORS: tuple[type[Exception], ...] = (MissionError, StateError, PlannerError)
"""The errors a user caused or can act on: reported as a message, never as a traceback."""
