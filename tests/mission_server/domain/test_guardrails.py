"""The hold rule (mission_server.domain.guardrails)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mission_server.domain.guardrails import (
    HOLD_AWAITING_APPROVAL,
    HOLD_PAUSED,
    hold_reason,
)

APPROVED = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


# Every combination for the statuses of a run that is not finished.
@pytest.mark.parametrize(
    ("status", "approval_required", "approved_at", "expected"),
    [
        ("running", False, None, None),
        ("running", False, APPROVED, None),
        ("running", True, None, HOLD_AWAITING_APPROVAL),
        ("running", True, APPROVED, None),
        ("pending", False, None, None),
        ("pending", False, APPROVED, None),
        ("pending", True, None, HOLD_AWAITING_APPROVAL),
        ("pending", True, APPROVED, None),
        ("paused", False, None, HOLD_PAUSED),
        ("paused", False, APPROVED, HOLD_PAUSED),
        # Pausing wins over a missing approval.
        ("paused", True, None, HOLD_PAUSED),
        ("paused", True, APPROVED, HOLD_PAUSED),
    ],
)
def test_hold_reason(
    status: str, approval_required: bool, approved_at: datetime | None, expected: str | None
) -> None:
    assert hold_reason(status, approval_required, approved_at) == expected


def test_the_hold_reasons_are_the_stored_values() -> None:
    assert (HOLD_PAUSED, HOLD_AWAITING_APPROVAL) == ("paused", "awaiting_approval")
