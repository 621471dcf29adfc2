"""What the insight service returns: pydantic models shared by the MCP tools, the CLI and the
planner. Field names follow the Telnyx insights APIs; timestamps are aware UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from mission_server.insights.base import InsightParameter
from mission_server.services.schemas import OutModel


class InsightParameterOut(OutModel):
    name: str
    type: str
    required: bool = False
    description: str = ""
    enum: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, parameter: InsightParameter) -> InsightParameterOut:
        return cls(
            name=parameter.name,
            type=parameter.type,
            required=parameter.required,
            description=parameter.description,
            enum=list(parameter.enum),
        )


class InsightOut(OutModel):
    """An insight definition. ``parameters`` is empty for a free-text insight."""

    insight_id: str
    name: str
    instructions: str
    parameters: list[InsightParameterOut] = Field(default_factory=list)
    structured: bool = False
    created_at: datetime
    updated_at: datetime


class InsightGroupOut(OutModel):
    insight_group_id: str
    name: str
    webhook_url: str | None = None
    insight_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class AssistantInsightSettingsOut(OutModel):
    """An assistant's insight settings: its group and its own webhook override, and the URL
    that results will actually be delivered to."""

    assistant_id: str
    insight_group_id: str | None = None
    webhook_url: str | None = None
    effective_webhook_url: str | None = None


class InsightResultOut(OutModel):
    """One insight's result for one conversation. ``missing`` lists the fields the extractor
    could not find (only known right after extraction; it is not stored). ``truth``: in a
    rehearsal, the values that were actually said, beside what the extractor read."""

    conversation_id: str
    insight_id: str
    insight_name: str
    status: str
    result: Any = None
    error: str | None = None
    extractor: str | None = None
    missing: list[str] = Field(default_factory=list)
    truth: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class WebhookAttemptOut(OutModel):
    attempt: int
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    delivered: bool = False
    created_at: datetime | None = None


class WebhookDeliveryOut(OutModel):
    """One delivery of a ``conversation.insights.completed`` webhook and its attempts.
    ``url`` has any credentials and query values masked."""

    delivery_id: str
    conversation_id: str
    insight_group_id: str | None = None
    url: str
    delivered: bool = False
    attempts: list[WebhookAttemptOut] = Field(default_factory=list)


class PriorConversationOut(OutModel):
    """A past conversation with its insight results: what an assistant's memory is built from
    (``reference/02_memory.md``)."""

    conversation_id: str
    name: str | None = None
    assistant_id: str | None = None
    run_id: str | None = None
    channel: str = "phone_call"
    end_user_target: str | None = None
    agent_target: str | None = None
    call_status: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    insights: list[InsightResultOut] = Field(default_factory=list)
