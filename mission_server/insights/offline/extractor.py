"""``OfflineExtractor``: reads every parameter of an insight definition from the
transcript and validates the result against the insight's JSON Schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mission_server.insights.base import ExtractionResult, InsightDefinition
from mission_server.insights.offline.reader import (
    _Missing,
    _Reader,
)
from mission_server.insights.schema import validate_result
from mission_server.telephony.base import TranscriptMessage


@dataclass
class OfflineExtractionResult(ExtractionResult):
    """An ``ExtractionResult`` that also says *why* each missing field is missing, and what was
    found when the result failed (``result`` stays None then, so nothing half-right is used)."""

    reasons: dict[str, str] = field(default_factory=dict)
    partial: dict[str, Any] = field(default_factory=dict)


class OfflineExtractor:
    """Extracts insights from the transcript text with the documented heuristics.

    ``extract`` never raises for anything in the transcript: what it cannot read is reported
    in ``missing`` (with ``reasons``), and a required field missing gives ``failed``.
    """

    name = "offline"

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> OfflineExtractionResult:
        """Read ``definition``'s parameters (or a summary, for a free-text insight) from
        ``transcript`` and validate the outcome against the insight's schema.

        Raises nothing: unreadable or ambiguous fields become ``missing`` with a reason;
        a required field missing or a schema violation gives ``status="failed"``.
        """
        reader = _Reader(transcript, definition.parameters)
        insight_id = definition.insight_id
        if not definition.structured:
            try:
                text = reader.summary()
            except _Missing as exc:
                return OfflineExtractionResult(insight_id, "failed", error=str(exc))
            return self._validated(definition, text, [], {})
        values: dict[str, Any] = {}
        missing: list[str] = []
        reasons: dict[str, str] = {}
        for parameter in definition.parameters:
            try:
                values[parameter.name] = reader.read(parameter)
            except _Missing as exc:
                missing.append(parameter.name)
                reasons[parameter.name] = str(exc)
        required_missing = [
            p.name for p in definition.parameters if p.required and p.name in reasons
        ]
        if required_missing:
            error = "required field(s) not found: " + "; ".join(
                f"{name} ({reasons[name]})" for name in required_missing
            )
            return OfflineExtractionResult(
                insight_id,
                "failed",
                error=error,
                missing=missing,
                reasons=reasons,
                partial=values,
            )
        return self._validated(definition, values, missing, reasons)

    @staticmethod
    def _validated(
        definition: InsightDefinition, value: Any, missing: list[str], reasons: dict[str, str]
    ) -> OfflineExtractionResult:
        problems = validate_result(definition, value)
        if problems:
            return OfflineExtractionResult(
                definition.insight_id,
                "failed",
                error="result does not match the insight's schema: " + "; ".join(problems),
                missing=missing,
                reasons=reasons,
                partial=value if isinstance(value, dict) else {},
            )
        return OfflineExtractionResult(
            definition.insight_id, "completed", result=value, missing=missing, reasons=reasons
        )
