"""The retry decision: what happens to a scheduled call after an attempt reaches a terminal
call status.

A scheduled event allows ``1 + max_retries_client_errors`` attempts. A phone call whose attempt
ends in a retryable client-side status (busy, no answer, failed, cancelled) is tried again
``retry_interval_secs`` after that attempt ended, until the attempts are used up; SMS and
non-retryable statuses fail at once. Pure: the caller moves a retry out of calling hours and
writes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: The only channel whose attempts are retried; an SMS is sent once.
RETRIED_CHANNEL = "phone_call"
#: The call status of an attempt that reached the end user: nothing left to do.
COMPLETED = "completed"


@dataclass(frozen=True)
class RetryPolicy:
    """How a scheduled event may be retried."""

    max_retries_client_errors: int
    retry_interval_secs: float
    #: Call statuses that count as retryable client-side outcomes (the provider layer's list).
    retryable_statuses: frozenset[str]
    channel: str = RETRIED_CHANNEL

    @property
    def attempts(self) -> int:
        """How many attempts the event allows in all."""
        return 1 + self.max_retries_client_errors


@dataclass(frozen=True)
class Complete:
    """The call completed."""


@dataclass(frozen=True)
class Retry:
    """Place another attempt at ``at`` (before any calling-hours deferral)."""

    at: datetime


@dataclass(frozen=True)
class Fail:
    """The event fails with ``error`` (``code`` and ``detail``)."""

    error: dict[str, Any]


Decision = Complete | Retry | Fail


def decide(
    call_status: str, attempt_number: int, policy: RetryPolicy, ended_at: datetime
) -> Decision:
    """The decision after attempt ``attempt_number`` (1-based) ended at ``ended_at`` with
    ``call_status``."""
    if call_status == COMPLETED:
        return Complete()
    retryable = call_status in policy.retryable_statuses and policy.channel == RETRIED_CHANNEL
    if retryable and attempt_number < policy.attempts:
        return Retry(at=ended_at + timedelta(seconds=policy.retry_interval_secs))
    if retryable:
        return Fail(
            {
                "code": "client_error_retry_budget_exhausted",
                "detail": (
                    f"client-error retry budget exhausted: {attempt_number} attempt(s) "
                    f"(max_retries_client_errors={policy.max_retries_client_errors}), last "
                    f"call_status {call_status}"
                ),
            }
        )
    return Fail({"code": "call_failed", "detail": f"call_status {call_status}"})
