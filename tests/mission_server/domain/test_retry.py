"""The retry decision after a terminal call status (mission_server.domain.retry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mission_server.domain.retry import Complete, Fail, Retry, RetryPolicy, decide
from mission_server.telephony.base import RETRYABLE_CALL_STATUSES

ENDED = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)


def policy(retries: int, interval: float = 300.0, channel: str = "phone_call") -> RetryPolicy:
    return RetryPolicy(
        max_retries_client_errors=retries,
        retry_interval_secs=interval,
        retryable_statuses=RETRYABLE_CALL_STATUSES,
        channel=channel,
    )


@pytest.mark.parametrize("retries", [0, 1, 3, 10])
def test_attempts_are_one_plus_the_retries(retries: int) -> None:
    assert policy(retries).attempts == 1 + retries


@pytest.mark.parametrize("retries", [0, 1, 3, 10])
def test_a_retryable_status_retries_until_the_attempts_are_used_up(retries: int) -> None:
    for attempt in range(1, retries + 1):
        assert decide("busy", attempt, policy(retries), ENDED) == Retry(
            at=ENDED + timedelta(seconds=300)
        )
    last = decide("busy", retries + 1, policy(retries), ENDED)
    assert isinstance(last, Fail)
    assert last.error == {
        "code": "client_error_retry_budget_exhausted",
        "detail": (
            f"client-error retry budget exhausted: {retries + 1} attempt(s) "
            f"(max_retries_client_errors={retries}), last call_status busy"
        ),
    }


@pytest.mark.parametrize("retries", [0, 1, 3, 10])
@pytest.mark.parametrize("attempt", [1, 2, 11])
def test_completed_is_complete_on_any_attempt(retries: int, attempt: int) -> None:
    assert decide("completed", attempt, policy(retries), ENDED) == Complete()


@pytest.mark.parametrize("status", sorted(RETRYABLE_CALL_STATUSES))
def test_every_retryable_status_is_retried(status: str) -> None:
    assert isinstance(decide(status, 1, policy(1), ENDED), Retry)


@pytest.mark.parametrize("interval", [0.0, 1.5, 3600.0])
def test_the_next_attempt_is_the_interval_after_the_attempt_ended(interval: float) -> None:
    decision = decide("no-answer", 1, policy(2, interval=interval), ENDED)
    assert decision == Retry(at=ENDED + timedelta(seconds=interval))


def test_a_status_that_is_not_retryable_fails_at_once() -> None:
    decision = decide("rejected", 1, policy(3), ENDED)
    assert decision == Fail({"code": "call_failed", "detail": "call_status rejected"})


@pytest.mark.parametrize("status", ["busy", "failed"])
def test_an_sms_is_never_retried(status: str) -> None:
    decision = decide(status, 1, policy(3, channel="sms_chat"), ENDED)
    assert decision == Fail({"code": "call_failed", "detail": f"call_status {status}"})


def test_an_sms_that_completed_is_complete() -> None:
    assert decide("completed", 1, policy(0, channel="sms_chat"), ENDED) == Complete()
