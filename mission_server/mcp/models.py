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
        description="Slug unique in the run: a-z, 0-9, '-', '_' or '.', e.g. 'call-lakefront'."
    )
    description: str = Field(description="One line.")
    sequence: int | None = Field(
        default=None, description="Order, 0..100000; omitted: after the last step."
    )
    parent_step_id: str | None = Field(default=None, description="For sub-steps.")
    metadata: dict[str, Any] | None = None


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
    #: Interim values every later dispatch of the run's calls receives as dynamic variables
    #: (per-call dynamic_variables still win): set_run_variables says so.
    variables: dict[str, Any]


class ConversationDetail(ConversationOut):
    """A conversation with its transcript (``messages``) and its insight results."""

    insights: list[InsightResultOut] = Field(default_factory=list)


class ConversationInsights(OutModel):
    conversation_id: str
    insights: list[InsightResultOut] = Field(default_factory=list)


class CallWaitResult(ScheduledEventOut):
    """A scheduled call after waiting: the event (reference field names) plus what the agent
    needs next — the transcript and the insight results of its conversation."""

    # What each field means the tool's description says (terminal: completed, failed or
    # cancelled; timed_out: call again to keep waiting; waited_secs: wall clock).
    terminal: bool
    timed_out: bool
    waited_secs: float
    server_time: datetime
    #: When and why calling hours moved the call, in one sentence; absent when never moved.
    calling_hours_note: str | None = None
    transcript: list[MessageOut] = Field(default_factory=list)
    insights: list[InsightResultOut] = Field(default_factory=list)


class RunWaitResult(RunBrief):
    """A run after waiting: the compact view, its result payload once there is one, and how
    the wait ended."""

    result_payload: dict[str, Any] | None = None
    # As in CallWaitResult, the tool's description says what these mean.
    terminal: bool
    awaiting_approval_stop: bool = Field(description="The run waits for approve_run.")
    timed_out: bool
    waited_secs: float
    server_time: datetime


class ServerStatus(OutModel):
    """What an agent needs to know about this server before scheduling anything."""

    provider: str = Field(description="'simulated' (no real calls), 'telnyx' (REAL calls), …")
    real_calls: bool
    server_time: datetime = Field(
        description="scheduled_at values are in this time (simulated in simulation)."
    )
    clock: str = Field(description="'system', 'accelerated' (simulation) or 'virtual'.")
    sim_speed: float | None = Field(
        default=None, description="Simulated seconds per wall second (simulation only)."
    )
    database: str  # 'sqlite' or 'postgresql'
    extractor: str | None = Field(
        default=None,
        description="Reads finished calls: 'simulated' (a rehearsal's ground truth), "
        "'offline' (text reader), 'llm' or 'telnyx'.",
    )
    dispatcher_running: bool = Field(
        description="This process places due calls; if false, `mission worker` processes "
        "must run or calls stay pending."
    )
    version: str


class WebhookDeliveryList(OutModel):
    """Insight-webhook deliveries, newest first, each with every attempt."""

    deliveries: list[WebhookDeliveryOut] = Field(
        default_factory=list,
        description="delivered=false: no attempt got a 2xx; attempts[].error says why.",
    )
    next_cursor: str | None = next_cursor_field()


class PriorConversationList(OutModel):
    """Past conversations with one end user and their insight results: an assistant's memory."""

    target: str = Field(description="As matched: E.164 or SIP URI.")
    conversations: list[PriorConversationOut] = Field(default_factory=list)  # newest first
    next_cursor: str | None = next_cursor_field()
