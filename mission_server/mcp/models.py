"""Output models of the MCP tools that the service layer does not already define.

Every tool returns a pydantic model, so clients get ``structuredContent`` and an output schema.
Lists are wrapped in an object (an output schema must be an object). Field names follow the
service schemas, which follow the Telnyx APIs (``scheduled_at_fixed_datetime``,
``call_attempts``, …).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mission_server.services.insight_schemas import (
    InsightResultOut,
    PriorConversationOut,
    WebhookDeliveryOut,
)
from mission_server.services.paging import next_cursor_field
from mission_server.services.run_view import RunBrief
from mission_server.services.schemas import (
    AssistantOut,
    ConversationOut,
    EventOut,
    MessageOut,
    MissionOut,
    OutModel,
    PhoneNumberOut,
    PlanStepOut,
    RunOut,
    ScheduledEventOut,
)


class PlanStepSpec(BaseModel):
    """One step of a plan as an agent writes it."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(
        description="Slug unique within the run: lowercase letters, digits, '-', '_' or '.', "
        "e.g. 'call-lakefront'."
    )
    description: str = Field(description="What the step does, one line.")
    sequence: int | None = Field(
        default=None, description="Order of the step (0..100000); omitted: after the last step."
    )
    parent_step_id: str | None = Field(
        default=None, description="step_id of the parent step, for sub-steps."
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Free-form key/values.")


class MissionDetail(MissionOut):
    """A mission with its most recent runs (newest first)."""

    runs: list[RunOut] = Field(default_factory=list)


class RunList(OutModel):
    runs: list[RunOut]
    next_cursor: str | None = next_cursor_field()


class PlanOut(OutModel):
    run_id: str
    steps: list[PlanStepOut]


class EventList(OutModel):
    run_id: str
    events: list[EventOut]
    next_cursor: str | None = next_cursor_field()


class AssistantList(OutModel):
    assistants: list[AssistantOut]
    next_cursor: str | None = next_cursor_field()


class PhoneNumberList(OutModel):
    phone_numbers: list[PhoneNumberOut]
    next_cursor: str | None = next_cursor_field()


class ScheduledCallList(OutModel):
    scheduled_calls: list[ScheduledEventOut]
    next_cursor: str | None = next_cursor_field()


class RunVariables(OutModel):
    run_id: str
    variables: dict[str, Any] = Field(
        description="Interim values every later dispatch of the run's calls receives as "
        "dynamic variables (per-call dynamic_variables still win)."
    )


class ConversationDetail(ConversationOut):
    """A conversation with its transcript (``messages``) and its insight results."""

    insights: list[InsightResultOut] = Field(default_factory=list)


class ConversationInsights(OutModel):
    conversation_id: str
    insights: list[InsightResultOut] = Field(default_factory=list)


class CallWaitResult(ScheduledEventOut):
    """A scheduled call after waiting: the event (reference field names) plus what the agent
    needs next — the transcript and the insight results of its conversation."""

    terminal: bool = Field(description="True when status is completed, failed or cancelled.")
    timed_out: bool = Field(
        description="True when the wait ended before the event was terminal; call "
        "wait_for_call again to keep waiting."
    )
    waited_secs: float = Field(description="Wall-clock seconds this call waited.")
    server_time: datetime = Field(description="Server time (simulated time in simulation).")
    calling_hours_note: str | None = Field(
        default=None,
        description="When and why calling hours moved the call, in one sentence; null when "
        "the call was never moved.",
    )
    transcript: list[MessageOut] = Field(default_factory=list)
    insights: list[InsightResultOut] = Field(default_factory=list)


class RunWaitResult(RunBrief):
    """A run after waiting: the compact view, its result payload once there is one, and how
    the wait ended."""

    result_payload: dict[str, Any] | None = None
    terminal: bool = Field(description="True when status is succeeded, failed or cancelled.")
    awaiting_approval_stop: bool = Field(
        description="True when the wait ended because the run needs approve_run."
    )
    timed_out: bool = Field(
        description="True when timeout_secs passed first; call wait_for_run again to keep waiting."
    )
    waited_secs: float = Field(description="Wall-clock seconds this call waited.")
    server_time: datetime = Field(description="Server time (simulated time in simulation).")


class ServerStatus(OutModel):
    """What an agent needs to know about this server before scheduling anything."""

    provider: str = Field(description="'simulated' (no real calls), 'telnyx' (REAL calls), …")
    real_calls: bool = Field(description="True when calls reach real phones.")
    server_time: datetime = Field(
        description="The server's current time; scheduled_at values are in this time. In "
        "simulation it is simulated time."
    )
    clock: str = Field(description="'system', 'accelerated' (simulation) or 'virtual'.")
    sim_speed: float | None = Field(
        default=None, description="Simulated seconds per wall second; null outside simulation."
    )
    database: str = Field(description="'sqlite' or 'postgresql'.")
    extractor: str | None = Field(
        default=None,
        description="What reads finished conversations: 'simulated' (a rehearsal's ground "
        "truth), 'offline' (the text reader), 'llm' or 'telnyx'.",
    )
    dispatcher_running: bool = Field(
        description="True when this process places due calls; false means `mission worker` "
        "processes must run, or calls stay pending."
    )
    version: str


class WebhookDeliveryList(OutModel):
    """Insight-webhook deliveries, newest first, each with every attempt."""

    deliveries: list[WebhookDeliveryOut] = Field(
        default_factory=list,
        description="delivered=false means no attempt got a 2xx answer; attempts[].error says "
        "why (e.g. 'HTTP 500', a connection error, or MISSION_WEBHOOK_SECRET not set).",
    )
    next_cursor: str | None = next_cursor_field()


class PriorConversationList(OutModel):
    """Past conversations with one end user and their insight results: an assistant's memory."""

    target: str = Field(description="The end-user target as matched (E.164 or SIP URI).")
    conversations: list[PriorConversationOut] = Field(
        default_factory=list, description="Newest first."
    )
    next_cursor: str | None = next_cursor_field()
