"""The Telnyx extractor: the platform computes insights itself after a conversation ends; this
backend fetches them (``GET /ai/conversations/{id}/conversations-insights``), waits while they
are still being generated, and validates what comes back against the local definition.

The endpoint returns a list of records, newest last or with ``created_at``::

    {"id": "...", "status": "pending" | "in_progress" | "completed" | "failed",
     "created_at": "2026-03-02T15:04:05Z",
     "conversation_insights": [{"insight_id": "...", "result": "<text or JSON text>"}]}

A structured insight's ``result`` is JSON text (sometimes in a Markdown code fence) or an
already-decoded object; a free-text insight's is the text.

The one shape the reference documents is the insight-group webhook
(``21_insight-groups.md``)::

    {"event_type": "conversation.insights.completed", "conversation_id": "...",
     "insight_group_id": "...", "insights": [{"insight_id", "insight_name", "result": {...}}]}

``fetch`` may return that too (a delivered webhook body); it counts as one completed record.

Polling is bounded (``max_polls`` fetches, ``poll_interval_secs`` apart, with an injectable
sleep). Not finished in time, failed on the platform, or breaking the schema all give a
``failed`` result with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mission_server.errors import ProviderError, ValidationError
from mission_server.insights.base import ExtractionResult, InsightDefinition
from mission_server.insights.schema import parse_json_answer, validate_result
from mission_server.telephony.base import TranscriptMessage

__all__ = ["TelnyxInsightsExtractor"]

_WAITING = frozenset({"pending", "in_progress", "queued", "processing"})

Fetch = Callable[[str], Any]


class TelnyxInsightsExtractor:
    """Fetch and validate the insight results Telnyx computed for a conversation.

    ``fetch(conversation_id)`` returns the endpoint's records (a list, or the raw
    ``{"data": [...]}`` body); the Telnyx client's ``get_conversation_insights`` fits.
    ``id_map`` maps a local insight id to the Telnyx insight id where they differ;
    ``remote_id`` looks one up (the recorded id of the insight's template at Telnyx, see
    ``services.insight_sync``) and answers None for an insight never created there, whose
    result then fails at once, saying so, instead of being polled for in vain.
    """

    name = "telnyx"

    def __init__(
        self,
        fetch: Fetch,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval_secs: float = 5.0,
        max_polls: int = 24,
        id_map: Mapping[str, str] | None = None,
        remote_id: Callable[[str], str | None] | None = None,
    ) -> None:
        """Raises:
        ValidationError: ``max_polls`` below 1 or a negative ``poll_interval_secs``.
        """
        if isinstance(max_polls, bool) or not isinstance(max_polls, int) or max_polls < 1:
            raise ValidationError("max_polls", "must be an integer of at least 1", max_polls)
        if poll_interval_secs < 0:
            raise ValidationError("poll_interval_secs", "must not be negative", poll_interval_secs)
        self._fetch = fetch
        self._sleep = sleep
        self._interval = poll_interval_secs
        self.max_polls = max_polls
        self._id_map = dict(id_map or {})
        self._remote_id = remote_id

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> ExtractionResult:
        """Poll Telnyx until its result for ``definition`` is final, then map and validate it.

        ``transcript`` is not read: the platform analysed the conversation itself.

        Raises:
            ValidationError: ``conversation_id`` is missing (the platform's results are looked
                up by it).
        """
        if not conversation_id:
            raise ValidationError(
                "conversation_id", "is required by the telnyx extractor", conversation_id
            )
        remote_id = self._id_map.get(definition.insight_id)
        if remote_id is None and self._remote_id is not None:
            remote_id = self._remote_id(definition.insight_id)
            if remote_id is None:
                return self._failed(
                    definition,
                    f"insight {definition.insight_id!r} ({definition.name}) has no insight "
                    "template at Telnyx: its group was never assigned to a Telnyx assistant, "
                    "so Telnyx computes no result for it",
                )
        remote_id = remote_id or definition.insight_id
        last_state = "no insight records yet"
        for poll in range(1, self.max_polls + 1):
            try:
                records = _records(self._fetch(conversation_id))
            except ProviderError as exc:
                if not exc.retryable:
                    return self._failed(definition, f"Telnyx refused the request: {exc}")
                last_state = f"Telnyx was unavailable: {exc}"
            else:
                found = _find(records, remote_id)
                if found is not None:
                    status, result = found
                    if status == "completed":
                        return self._mapped(definition, result)
                    if status == "failed":
                        return self._failed(
                            definition, "Telnyx reports the insight generation failed"
                        )
                    last_state = f"status {status!r}"
                elif any(str(r.get("status")) in _WAITING for r in records):
                    last_state = "insights still being generated"
                elif records:
                    last_state = "the completed insights do not include this insight"
            if poll < self.max_polls:
                self._sleep(self._interval)
        return self._failed(
            definition,
            f"Telnyx had no completed result for insight {remote_id!r} after "
            f"{self.max_polls} polls ({last_state})",
        )

    @staticmethod
    def _failed(definition: InsightDefinition, reason: str) -> ExtractionResult:
        return ExtractionResult(definition.insight_id, "failed", error=reason)

    @staticmethod
    def _mapped(definition: InsightDefinition, raw: Any) -> ExtractionResult:
        value: Any = raw
        if definition.structured and isinstance(raw, str):
            try:
                value = parse_json_answer(raw)
            except ValueError:
                return ExtractionResult(
                    definition.insight_id,
                    "failed",
                    error=f"Telnyx's result is not JSON: {raw.strip()[:200]!r}",
                )
        elif not definition.structured and isinstance(raw, str):
            value = raw.strip()
        problems = validate_result(definition, value)
        if problems:
            return ExtractionResult(
                definition.insight_id,
                "failed",
                error="Telnyx's result does not match the insight's schema: " + "; ".join(problems),
            )
        missing = [
            p.name for p in definition.parameters if isinstance(value, dict) and p.name not in value
        ]
        return ExtractionResult(definition.insight_id, "completed", result=value, missing=missing)


def _records(payload: Any) -> list[Mapping[str, Any]]:
    if isinstance(payload, Mapping) and "data" in payload:
        payload = payload["data"]
    if isinstance(payload, Mapping) and isinstance(payload.get("insights"), list):
        payload = [payload]  # one insight-group webhook body
    if not isinstance(payload, list):
        return []
    records = [r for r in payload if isinstance(r, Mapping)]
    # Newest last, so a re-run's record wins over an older one.
    return sorted(records, key=lambda r: str(r.get("created_at") or ""))


def _find(records: list[Mapping[str, Any]], insight_id: str) -> tuple[str, Any] | None:
    """(record status, result) of the newest record holding ``insight_id``."""
    for record in reversed(records):
        items = record.get("conversation_insights") or record.get("insights") or ()
        for item in items if isinstance(items, list) else ():
            if isinstance(item, Mapping) and str(item.get("insight_id")) == insight_id:
                return str(record.get("status") or "completed"), item.get("result")
    return None
