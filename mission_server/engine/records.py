"""What the dispatcher's act phase builds from a claimed ``scheduled_events`` row: the
provider's ``CallRequest`` for an attempt, the ``call_attempts`` row, the conversation and its
transcript rows, the ``CallFinished`` notice and the entries of the run's activity log. Pure
builders: no SQL, no provider calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mission_server.services.context import CallFinished
from mission_server.telephony.base import (
    AskedField,
    CallOutcome,
    CallRequest,
    Placement,
    TranscriptMessage,
)
from state.types import utc_iso


def call_request(
    row: Mapping[str, Any],
    attempt_number: int,
    key: str,
    now: datetime,
    assistant: Mapping[str, Any],
    run: Mapping[str, Any] | None,
    *,
    asks: tuple[AskedField, ...] = (),
) -> CallRequest:
    """The request that places attempt ``attempt_number`` (idempotency key ``key``), with the
    assistant's texts rendered for the run's and the call's variables."""
    from mission_server.domain.templating import render, resolve_variables

    variables = resolve_variables(
        assistant_defaults=assistant["dynamic_variables"] or {},
        run_variables=(run["variables"] or {}) if run else {},
        call_variables=row["dynamic_variables"] or {},
        system={
            "telnyx_conversation_channel": row["telnyx_conversation_channel"],
            "telnyx_agent_target": row["telnyx_agent_target"],
            "telnyx_end_user_target": row["telnyx_end_user_target"],
        },
    )
    greeting = assistant["greeting"]
    metadata = dict(row["conversation_metadata"] or {})
    return CallRequest(
        idempotency_key=key,
        scheduled_event_id=row["scheduled_event_id"],
        attempt_number=attempt_number,
        channel=row["telnyx_conversation_channel"],
        from_number=row["telnyx_agent_target"],
        to=row["telnyx_end_user_target"],
        assistant_ref=assistant["provider_ref"] or assistant["assistant_id"],
        placed_at=now,
        instructions=render(assistant["instructions"], variables, now),
        greeting=render(greeting, variables, now) if greeting else None,
        text=render(row["text"], variables, now) if row["text"] else None,
        dynamic_variables=variables,
        conversation_metadata=metadata,
        conversation_name=metadata.get("conversation_name"),
        instructions_template=assistant["instructions"],
        greeting_template=greeting,
        asks=asks,
    )


def attempt_record(
    row: Mapping[str, Any],
    attempt_number: int,
    placement: Placement,
    outcome: CallOutcome,
    ended: datetime,
    conversation_id: str | None,
) -> dict[str, Any]:
    """The ``call_attempts`` row of an attempt that ended at ``ended``."""
    return {
        "scheduled_event_id": row["scheduled_event_id"],
        "attempt_number": attempt_number,
        "attempted_at": placement.placed_at,
        "ended_at": ended,
        "call_status": outcome.call_status,
        "call_duration": outcome.call_duration,
        "telnyx_call_control_id": outcome.call_control_id or placement.call_control_id,
        "conversation_id": conversation_id,
        "cost": outcome.cost,
        "voicemail": outcome.voicemail,
    }


def conversation_record(
    row: Mapping[str, Any],
    conversation_id: str,
    attempt_number: int | None,
    placement: Placement,
    outcome: CallOutcome,
    context: Mapping[str, Any],
    ended: datetime,
) -> dict[str, Any]:
    """The ``conversations`` row of a finished attempt; ``context`` is what was sent when it
    was placed (the row's ``in_flight_context``)."""
    return {
        "conversation_id": conversation_id,
        "name": outcome.conversation_name or context.get("conversation_name"),
        "run_id": row["run_id"],
        "assistant_id": row["assistant_id"],
        "scheduled_event_id": row["scheduled_event_id"],
        "attempt_number": attempt_number,
        "channel": row["telnyx_conversation_channel"],
        "end_user_target": row["telnyx_end_user_target"],
        "agent_target": row["telnyx_agent_target"],
        "instructions": context.get("instructions"),
        "greeting": context.get("greeting"),
        "dynamic_variables": context.get("dynamic_variables") or {},
        "meta": row["conversation_metadata"] or {},
        "call_status": outcome.call_status,
        "duration_secs": outcome.call_duration,
        "cost": outcome.cost,
        "started_at": placement.placed_at,
        "ended_at": ended,
        "created_at": ended,
    }


def message_records(
    conversation_id: str, messages: Sequence[TranscriptMessage]
) -> list[dict[str, Any]]:
    """The ``messages`` rows of a conversation's transcript, in order."""
    return [
        {
            "conversation_id": conversation_id,
            "seq": index,
            "role": msg.role,
            "text": msg.text,
            "sent_at": msg.sent_at,
            "facts": dict(msg.facts) if msg.facts is not None else None,
        }
        for index, msg in enumerate(messages)
    ]


def call_finished(
    row: Mapping[str, Any],
    status: str,
    call_status: str | None,
    conversation_id: str | None,
    attempts: int,
    when: datetime,
) -> CallFinished:
    """The notice to listeners that the event reached terminal ``status`` at ``when``."""
    return CallFinished(
        scheduled_event_id=row["scheduled_event_id"],
        run_id=row["run_id"],
        step_id=row["step_id"],
        assistant_id=row["assistant_id"],
        status=status,
        call_status=call_status,
        conversation_id=conversation_id,
        attempts=attempts,
        finished_at=when,
        end_user_target=row["telnyx_end_user_target"],
    )


# ---------------------------------------------------------------------- run events

#: One entry of a run's activity log: (type, summary, payload).
RunEvent = tuple[str, str, dict[str, Any]]


def status_text(outcome: CallOutcome) -> str:
    """The call status as the activity log tells it."""
    return outcome.call_status + (" (voicemail)" if outcome.voicemail else "")


def deferred_event(row: Mapping[str, Any], moved: datetime, reason: str | None) -> RunEvent:
    """The call was moved to ``moved`` to keep to calling hours."""
    return (
        "custom",
        f"Call to {row['telnyx_end_user_target']} deferred to {utc_iso(moved)}: {reason}",
        {"scheduled_event_id": row["scheduled_event_id"], "moved_to": utc_iso(moved)},
    )


def placed_event(
    row: Mapping[str, Any], attempt_number: int, attempts: int, key: str, placement: Placement
) -> RunEvent:
    """Attempt ``attempt_number`` of ``attempts`` was placed."""
    what = "Call" if row["telnyx_conversation_channel"] == "phone_call" else "SMS"
    return (
        "tool_call",
        f"{what} to {row['telnyx_end_user_target']} placed (attempt {attempt_number} of "
        f"{attempts})",
        {
            "scheduled_event_id": row["scheduled_event_id"],
            "attempt_number": attempt_number,
            "idempotency_key": key,
            "call_control_id": placement.call_control_id,
        },
    )


def retry_event(
    row: Mapping[str, Any],
    attempt_number: int,
    attempts: int,
    outcome: CallOutcome,
    retry_at: datetime,
    moved: datetime,
    reason: str | None,
) -> RunEvent:
    """The attempt ended retryably; the next one is due at ``moved`` (``retry_at`` moved out
    of calling hours for ``reason``, if any)."""
    text = (
        f"Call to {row['telnyx_end_user_target']}: {status_text(outcome)} on attempt "
        f"{attempt_number} of {attempts}; retry at {utc_iso(moved)}"
    )
    if reason:
        text += f" (moved from {utc_iso(retry_at)}: {reason})"
    return (
        "custom",
        text,
        {
            "scheduled_event_id": row["scheduled_event_id"],
            "attempt_number": attempt_number,
            "call_status": outcome.call_status,
            "retry_at": utc_iso(moved),
        },
    )


def finished_event(
    row: Mapping[str, Any],
    status: str,
    call_status: str | None,
    conversation_id: str | None,
    error: Mapping[str, Any] | None,
    note: str | None,
) -> RunEvent:
    """The event reached terminal ``status``; ``note`` (else the error) says how."""
    summary = note or (
        f"Call to {row['telnyx_end_user_target']} {status}: " + (error["detail"] if error else "")
    )
    return (
        "error" if status == "failed" else "tool_result",
        summary,
        {
            "scheduled_event_id": row["scheduled_event_id"],
            "status": status,
            "call_status": call_status,
            "conversation_id": conversation_id,
        },
    )


def provider_busy_event(row: Mapping[str, Any], exc: Exception) -> RunEvent:
    """The provider could not take the call yet; it is tried again later."""
    return (
        "error",
        f"Provider could not place the call to {row['telnyx_end_user_target']} yet: {exc}",
        {"scheduled_event_id": row["scheduled_event_id"]},
    )


def outcome_unavailable_event(row: Mapping[str, Any], exc: Exception, again: datetime) -> RunEvent:
    """The provider failed to report the outcome of a call in flight; asked again later."""
    return (
        "error",
        f"Outcome of the call to {row['telnyx_end_user_target']} unavailable: {exc}; "
        f"asking again at {utc_iso(again)}",
        {"scheduled_event_id": row["scheduled_event_id"], "retry_at": utc_iso(again)},
    )


def attempt_abandoned_event(row: Mapping[str, Any], code: str, detail: str) -> RunEvent:
    """The attempt in flight ends as failed because its outcome cannot be known."""
    return (
        "error",
        f"Attempt {row['current_attempt']} of the call to {row['telnyx_end_user_target']} "
        f"ends as failed: {detail}",
        {"scheduled_event_id": row["scheduled_event_id"], "code": code},
    )


def cancelled_at_provider_event(row: Mapping[str, Any], why: str) -> RunEvent:
    """The call in flight was called off at the provider before it dialled."""
    return (
        "custom",
        f"Call to {row['telnyx_end_user_target']} cancelled at the provider before it "
        f"dialled ({why})",
        {"scheduled_event_id": row["scheduled_event_id"], "cancelled_at_provider": True},
    )


def cancel_dispatched_event(row: Mapping[str, Any], why: str) -> RunEvent:
    """The provider had already dispatched the call: its outcome is read, not assumed."""
    return (
        "custom",
        f"Call to {row['telnyx_end_user_target']} could not be cancelled ({why}): the "
        "provider had already dispatched it; its outcome is recorded when known",
        {"scheduled_event_id": row["scheduled_event_id"], "cancelled_at_provider": False},
    )


def cancel_failed_event(row: Mapping[str, Any], exc: Exception) -> RunEvent:
    """Cancelling at the provider failed; it is tried again at the next sweep."""
    return (
        "error",
        f"Cancelling the call to {row['telnyx_end_user_target']} at the provider failed: "
        f"{exc}; tried again",
        {"scheduled_event_id": row["scheduled_event_id"], "cancel_retry": True},
    )


def provider_errors_event(row: Mapping[str, Any], attempt_number: int, said: str) -> RunEvent:
    """The provider reported why an attempt failed."""
    return (
        "error",
        f"Attempt {attempt_number} of the call to {row['telnyx_end_user_target']}: the "
        f"provider reports {said}",
        {"scheduled_event_id": row["scheduled_event_id"], "provider_errors": said},
    )
