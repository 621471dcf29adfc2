"""The insights seam: an ``Extractor`` turns a finished conversation into one result per
insight definition. Backends: offline (transcript text only), an OpenAI-compatible LLM, and
Telnyx (the platform's own results)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from mission_server.telephony.base import TranscriptMessage
from planner.types import INSIGHT_PARAMETER_TYPES, InsightParameterType

ParameterType = InsightParameterType
PARAMETER_TYPES: tuple[str, ...] = INSIGHT_PARAMETER_TYPES
ResultStatus = Literal["pending", "in_progress", "completed", "failed"]


@dataclass(frozen=True)
class InsightParameter:
    name: str
    type: str  # one of PARAMETER_TYPES
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class InsightDefinition:
    """An insight as an extractor sees it: instructions already rendered for the conversation.
    ``parameters`` empty means free-text output."""

    insight_id: str
    name: str
    instructions: str
    parameters: tuple[InsightParameter, ...] = ()

    @property
    def structured(self) -> bool:
        return bool(self.parameters)


@dataclass
class ExtractionResult:
    """One insight's result for one conversation, after schema validation."""

    insight_id: str
    status: ResultStatus
    result: Any = None  # dict for structured insights, str for free text
    error: str | None = None
    missing: list[str] = field(default_factory=list)  # fields the extractor could not find


@runtime_checkable
class Extractor(Protocol):
    name: str  # "offline", "llm" or "telnyx"

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> ExtractionResult:
        """Extract and validate one insight. Never returns a silently wrong value: a required
        field missing or of the wrong type gives ``status="failed"`` with the reason."""
        ...
