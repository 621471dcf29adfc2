"""What the service returns: pydantic models shared by the MCP tools, resources and the CLI.

Field names follow the Telnyx APIs (``scheduled_at_fixed_datetime``, ``call_attempts``, …).
Timestamps serialise as ISO-8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from state import models as m
from state.transitions import TERMINAL_RUN


class OutModel(BaseModel):
    """Base of every model the service returns. (The MCP layer slims the schemas it publishes:
    ``mcp.schemas``.)"""


class _Out(OutModel):
    model_config = ConfigDict(from_attributes=True)


class MissionOut(_Out):
    mission_id: str
    name: str
    description: str | None = None
    instructions: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    execution_mode: str = "external"
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: m.Mission) -> MissionOut:
        return cls(
            mission_id=row.mission_id,
            name=row.name,
            description=row.description,
            instructions=row.instructions,
            metadata=row.meta or {},
            execution_mode=row.execution_mode,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def awaiting_approval(run: Any) -> bool:
    """The run requires approval, has none yet and is not finished (a run row, ORM or Core)."""
    return bool(
        run.approval_required and run.approved_at is None and run.status not in TERMINAL_RUN
    )


class RunOut(_Out):
    run_id: str
    mission_id: str
    status: str
    input: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    result_summary: str | None = None
    result_payload: dict[str, Any] | None = None
    error: str | None = None
    call_budget: int | None = None
    calls_placed: int = 0
    approval_required: bool = False
    approved_at: datetime | None = None
    #: No call of the run is placed until approve_run (its status stays, e.g. running).
    awaiting_approval: bool = False
    #: Service clock (simulated time in a rehearsal), like every time but ``recorded_at``.
    created_at: datetime
    #: Absent on runs recorded before it was kept (an optional field says so).
    recorded_at: datetime | None = Field(default=None, description="Wall clock.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def of(cls, row: m.Run) -> RunOut:
        return cls(
            run_id=row.run_id,
            mission_id=row.mission_id,
            status=row.status,
            input=row.input or {},
            metadata=row.meta or {},
            variables=row.variables or {},
            result_summary=row.result_summary,
            result_payload=row.result_payload,
            error=row.error,
            call_budget=row.call_budget,
            calls_placed=row.calls_placed,
            approval_required=row.approval_required,
            approved_at=row.approved_at,
            awaiting_approval=awaiting_approval(row),
            created_at=row.created_at,
            recorded_at=row.recorded_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            updated_at=row.updated_at,
        )


class PlanStepOut(_Out):
    step_id: str
    description: str
    sequence: int
    parent_step_id: str | None = None
    status: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def of(cls, row: m.PlanStep) -> PlanStepOut:
        return cls(
            step_id=row.step_id,
            description=row.description,
            sequence=row.sequence,
            parent_step_id=row.parent_step_id,
            status=row.status,
            metadata=row.meta or {},
            started_at=row.started_at,
            finished_at=row.finished_at,
            updated_at=row.updated_at,
        )


class EventOut(_Out):
    event_id: str
    run_id: str
    type: str
    summary: str
    step_id: str | None = None
    agent_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    created_at: datetime

    @classmethod
    def of(cls, row: m.Event) -> EventOut:
        return cls(
            event_id=row.event_id,
            run_id=row.run_id,
            type=row.type,
            summary=row.summary,
            step_id=row.step_id,
            agent_id=row.agent_id,
            payload=row.payload or {},
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
        )


class AssistantOut(_Out):
    assistant_id: str
    name: str
    instructions: str
    greeting: str | None = None
    model: str | None = None
    voice: str | None = None
    dynamic_variables: dict[str, Any] = Field(default_factory=dict)
    insight_group_id: str | None = None
    webhook_url: str | None = None
    provider: str
    provider_ref: str | None = None
    keep_number: bool = False
    phone_numbers: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: m.Assistant, numbers: list[str] | None = None) -> AssistantOut:
        return cls(
            assistant_id=row.assistant_id,
            name=row.name,
            instructions=row.instructions,
            greeting=row.greeting,
            model=row.model,
            voice=row.voice,
            dynamic_variables=row.dynamic_variables or {},
            insight_group_id=row.insight_group_id,
            webhook_url=row.webhook_url,
            provider=row.provider,
            provider_ref=row.provider_ref,
            keep_number=row.keep_number,
            phone_numbers=numbers or [],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class PhoneNumberOut(_Out):
    phone_number: str
    number_id: str
    assistant_id: str | None = None
    hd_voice: bool = False
    available: bool

    @classmethod
    def of(cls, row: m.PhoneNumber) -> PhoneNumberOut:
        return cls(
            phone_number=row.phone_number,
            number_id=row.number_id,
            assistant_id=row.assistant_id,
            hd_voice=row.hd_voice,
            available=row.assistant_id is None,
        )


class CallAttemptOut(_Out):
    attempt_number: int
    attempted_at: datetime
    ended_at: datetime | None = None
    call_status: str
    call_duration: float | None = None
    telnyx_call_control_id: str | None = None
    conversation_id: str | None = None
    cost: float | None = None
    voicemail: bool = False

    @classmethod
    def of(cls, row: m.CallAttempt) -> CallAttemptOut:
        return cls(
            attempt_number=row.attempt_number,
            attempted_at=row.attempted_at,
            ended_at=row.ended_at,
            call_status=row.call_status,
            call_duration=row.call_duration,
            telnyx_call_control_id=row.telnyx_call_control_id,
            conversation_id=row.conversation_id,
            cost=row.cost,
            voicemail=row.voicemail,
        )


class DeferralOut(OutModel):
    """A move of the scheduled time by calling hours (or another guardrail)."""

    requested: datetime
    moved_to: datetime
    reason: str
    recorded_at: datetime


class ScheduledEventOut(_Out):
    scheduled_event_id: str
    assistant_id: str
    run_id: str | None = None
    step_id: str | None = None
    telnyx_conversation_channel: str
    telnyx_end_user_target: str
    telnyx_agent_target: str
    scheduled_at_fixed_datetime: datetime
    requested_at: datetime
    text: str | None = None
    dynamic_variables: dict[str, Any] = Field(default_factory=dict)
    conversation_metadata: dict[str, Any] = Field(default_factory=dict)
    max_retries_client_errors: int = 0
    retry_interval_secs: int | None = None
    status: str
    call_status: str | None = None
    conversation_id: str | None = None
    call_attempts: list[CallAttemptOut] = Field(default_factory=list)
    #: What went wrong on each failed attempt or delivery.
    errors: list[dict[str, Any]] = Field(default_factory=list, description="Oldest first.")
    idempotency_key: str | None = None
    timezones: list[str] = Field(default_factory=list)
    calling_window: dict[str, Any] | None = None
    deferrals: list[DeferralOut] = Field(default_factory=list)
    hold_reason: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: m.ScheduledEvent, attempts: list[m.CallAttempt]) -> ScheduledEventOut:
        return cls(
            scheduled_event_id=row.scheduled_event_id,
            assistant_id=row.assistant_id,
            run_id=row.run_id,
            step_id=row.step_id,
            telnyx_conversation_channel=row.telnyx_conversation_channel,
            telnyx_end_user_target=row.telnyx_end_user_target,
            telnyx_agent_target=row.telnyx_agent_target,
            scheduled_at_fixed_datetime=row.scheduled_at_fixed_datetime,
            requested_at=row.requested_at,
            text=row.text,
            dynamic_variables=row.dynamic_variables or {},
            conversation_metadata=row.conversation_metadata or {},
            max_retries_client_errors=row.max_retries_client_errors,
            retry_interval_secs=row.retry_interval_secs,
            status=row.status,
            call_status=row.call_status,
            conversation_id=row.conversation_id,
            call_attempts=[CallAttemptOut.of(a) for a in attempts],
            errors=row.errors or [],
            idempotency_key=row.idempotency_key,
            timezones=row.timezones or [],
            calling_window=row.calling_window,
            deferrals=[DeferralOut(**d) for d in (row.deferrals or [])],
            hold_reason=row.hold_reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class MessageOut(_Out):
    role: str
    text: str
    sent_at: datetime | None = None


class ConversationOut(_Out):
    conversation_id: str
    name: str | None = None
    run_id: str | None = None
    assistant_id: str | None = None
    scheduled_event_id: str | None = None
    channel: str
    end_user_target: str | None = None
    agent_target: str | None = None
    call_status: str | None = None
    duration_secs: float | None = None
    cost: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    greeting: str | None = None
    instructions: str | None = None
    messages: list[MessageOut] = Field(default_factory=list)

    @classmethod
    def of(cls, row: m.Conversation, messages: list[m.Message] | None = None) -> ConversationOut:
        return cls(
            conversation_id=row.conversation_id,
            name=row.name,
            run_id=row.run_id,
            assistant_id=row.assistant_id,
            scheduled_event_id=row.scheduled_event_id,
            channel=row.channel,
            end_user_target=row.end_user_target,
            agent_target=row.agent_target,
            call_status=row.call_status,
            duration_secs=row.duration_secs,
            cost=row.cost,
            started_at=row.started_at,
            ended_at=row.ended_at,
            metadata=row.meta or {},
            greeting=row.greeting,
            instructions=row.instructions,
            messages=[
                MessageOut(role=x.role, text=x.text, sent_at=x.sent_at) for x in (messages or [])
            ],
        )
