"""``SimulatedExtractor``: the insight results of a rehearsal, read from its ground truth.

In a simulated call every utterance that states a fact carries it (``TranscriptMessage.facts``),
so the right result is known without reading the text. Using it as the extractor lets a
rehearsal check the mission's own logic (leverage, recommendation, summary) on correct facts;
``--extractor offline`` or an LLM reads the text instead, and the run then reports how well
that reader did against this same truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mission_server.insights.base import ExtractionResult, InsightDefinition
from mission_server.insights.schema import validate_result
from mission_server.insights.truth import conversation_truth
from mission_server.telephony.base import TranscriptMessage

__all__ = ["SimulatedExtractor"]


class SimulatedExtractor:
    """Results from the facts the simulated callee stated. A field it never stated is
    missing; a required one missing fails the result, as with any extractor."""

    name = "simulated"

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> ExtractionResult:
        insight_id = definition.insight_id
        truth = conversation_truth(definition, transcript)
        if not definition.structured:
            # A free-text insight states no facts: the offline reader's summary of the text.
            # (Loaded here: a rehearsal of structured insights only does without it.)
            from mission_server.insights.offline import OfflineExtractor

            return OfflineExtractor().extract(definition, transcript)
        if truth is None:
            return ExtractionResult(
                insight_id,
                "failed",
                error="the conversation carries no ground truth (not a simulated call); "
                "use the offline or LLM extractor",
            )
        values: dict[str, Any] = {}
        missing: list[str] = []
        for parameter in definition.parameters:
            if parameter.name in truth:
                values[parameter.name] = truth[parameter.name]
            else:
                missing.append(parameter.name)
        required = [p.name for p in definition.parameters if p.required and p.name in missing]
        if required:
            return ExtractionResult(
                insight_id,
                "failed",
                error="required field(s) not stated in the conversation: " + ", ".join(required),
                missing=missing,
            )
        problems = validate_result(definition, values)
        if problems:
            return ExtractionResult(
                insight_id,
                "failed",
                error="the stated facts do not match the insight's schema: " + "; ".join(problems),
                missing=missing,
            )
        return ExtractionResult(insight_id, "completed", result=values, missing=missing)
