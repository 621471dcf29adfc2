"""The hold rule: when a run's state keeps its calls from being placed; and the finished-run
rule: a succeeded, failed or cancelled run takes no more plan, variables or calls.

A paused run holds its calls with hold reason ``paused``; a run that requires approval and is
not approved yet holds them with ``awaiting_approval``. Scheduling writes the hold onto a new
call, and the dispatcher's run gate onto a due one. The dispatcher's SQL that releases holds a
run no longer justifies (``engine.queue._release_stale_holds``) states the same rule with these
constants: change both together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mission_server.errors import GuardrailError, shown
from state.transitions import TERMINAL_RUN

#: The run status that holds the run's calls.
PAUSED_RUN = "paused"
#: Hold reason of a call whose run is paused.
HOLD_PAUSED: Literal["paused"] = "paused"
#: Hold reason of a call whose run requires approval and is not approved yet.
HOLD_AWAITING_APPROVAL: Literal["awaiting_approval"] = "awaiting_approval"

HoldReason = Literal["paused", "awaiting_approval"]


def hold_reason(
    status: str, approval_required: bool, approved_at: datetime | None
) -> HoldReason | None:
    """Why a run in this state holds its calls, or None when it lets them be placed.

    Only for a run that is not finished: a finished run's calls are refused or cancelled, not
    held. Pausing wins over a missing approval.
    """
    if status == PAUSED_RUN:
        return HOLD_PAUSED
    if approval_required and approved_at is None:
        return HOLD_AWAITING_APPROVAL
    return None


def refuse_finished_run(run_id: str, status: str, action: str) -> None:
    """Refuse ``action`` (e.g. "schedule calls") on a finished run (succeeded, failed or
    cancelled): its outcome is recorded, so nothing more may be added to it.

    Raises:
        GuardrailError: the run is finished; the message names run_id, the rule and the run.
    """
    if status in TERMINAL_RUN:
        raise GuardrailError(
            f"run_id {shown(run_id)} names a finished run (status {status}): a finished run "
            f"cannot {action}; start a new run"
        )
