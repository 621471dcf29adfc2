"""The Telnyx extractor: polls the platform's results until complete, then maps and validates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mission_server.errors import ProviderError, ValidationError
from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.telnyx import TelnyxInsightsExtractor

QUOTE = InsightDefinition(
    insight_id="ins-quote",
    name="Quote",
    instructions="",
    parameters=(
        InsightParameter("final_price", "number", True),
        InsightParameter("delivery_included", "boolean"),
    ),
)


def record(
    status: str, results: dict[str, Any] | None = None, created_at: str = "2026-03-02T15:10:00Z"
) -> dict[str, Any]:
    return {
        "id": "rec-1",
        "status": status,
        "created_at": created_at,
        "conversation_insights": [
            {"insight_id": k, "result": v} for k, v in (results or {}).items()
        ],
    }


class Platform:
    """Answers each fetch with the next scripted reply (repeating the last)."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls: list[str] = []

    def __call__(self, conversation_id: str) -> Any:
        self.calls.append(conversation_id)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_polls_until_completed_then_maps_the_json_result() -> None:
    sleeps: list[float] = []
    platform = Platform(
        [],
        [record("in_progress")],
        {
            "data": [
                record(
                    "completed",
                    {"ins-quote": json.dumps({"final_price": 58, "delivery_included": True})},
                )
            ]
        },
    )
    extractor = TelnyxInsightsExtractor(platform, sleep=sleeps.append, poll_interval_secs=2)
    result = extractor.extract(QUOTE, [], conversation_id="conv-1")
    assert result.status == "completed"
    assert result.result == {"final_price": 58, "delivery_included": True}
    assert platform.calls == ["conv-1"] * 3
    assert sleeps == [2, 2]


def test_the_newest_record_wins_and_fenced_json_is_read() -> None:
    platform = Platform(
        [
            record(
                "completed",
                {"ins-quote": '```json\n{"final_price": 58}\n```'},
                "2026-03-02T15:20:00Z",
            ),
            record("completed", {"ins-quote": '{"final_price": 70}'}, "2026-03-02T15:10:00Z"),
        ]
    )
    result = TelnyxInsightsExtractor(platform, sleep=lambda _s: None).extract(
        QUOTE, [], conversation_id="conv-1"
    )
    assert result.result == {"final_price": 58}
    assert result.missing == ["delivery_included"]


def test_a_local_id_can_map_to_the_platforms_insight_id() -> None:
    platform = Platform([record("completed", {"tx-99": {"final_price": 58}})])
    extractor = TelnyxInsightsExtractor(
        platform, sleep=lambda _s: None, id_map={"ins-quote": "tx-99"}
    )
    assert extractor.extract(QUOTE, [], conversation_id="c").result == {"final_price": 58}


def test_the_insight_group_webhook_body_is_read() -> None:
    # The shape 21_insight-groups.md documents for "conversation.insights.completed".
    webhook = {
        "event_type": "conversation.insights.completed",
        "conversation_id": "conv_abc123",
        "insight_group_id": "a2708926-c060-480a-8631-041cb7304117",
        "insight_group_name": "Catering Quotes",
        "insights": [
            {"insight_id": "insight_xyz789", "insight_name": "Summary", "result": "Quoted $58."},
            {
                "insight_id": "ins-quote",
                "insight_name": "Quote",
                "result": {"final_price": 58, "delivery_included": True},
            },
        ],
    }
    result = TelnyxInsightsExtractor(Platform(webhook), sleep=lambda _s: None).extract(
        QUOTE, [], conversation_id="conv_abc123"
    )
    assert result.status == "completed"
    assert result.result == {"final_price": 58, "delivery_included": True}


def test_free_text_results_are_text() -> None:
    summary = InsightDefinition(insight_id="sum", name="Summary", instructions="")
    platform = Platform([record("completed", {"sum": " The caterer quoted $58. "})])
    result = TelnyxInsightsExtractor(platform, sleep=lambda _s: None).extract(
        summary, [], conversation_id="c"
    )
    assert result.result == "The caterer quoted $58."


def test_gives_up_after_the_poll_bound_with_the_reason() -> None:
    sleeps: list[float] = []
    platform = Platform([record("pending")])
    extractor = TelnyxInsightsExtractor(platform, sleep=sleeps.append, max_polls=4)
    result = extractor.extract(QUOTE, [], conversation_id="conv-1")
    assert result.status == "failed"
    assert "after 4 polls" in result.error and "still being generated" in result.error
    assert len(platform.calls) == 4
    assert len(sleeps) == 3


def test_a_failed_generation_and_a_schema_violation_fail() -> None:
    failed = Platform([record("failed", {"ins-quote": None})])
    result = TelnyxInsightsExtractor(failed, sleep=lambda _s: None).extract(
        QUOTE, [], conversation_id="c"
    )
    assert result.status == "failed" and "generation failed" in result.error

    wrong = Platform([record("completed", {"ins-quote": '{"final_price": "58 dollars"}'})])
    result = TelnyxInsightsExtractor(wrong, sleep=lambda _s: None).extract(
        QUOTE, [], conversation_id="c"
    )
    assert result.status == "failed"
    assert "final_price: '58 dollars' is not of type 'number'" in result.error


def test_transient_provider_errors_are_polled_through_but_refusals_are_not() -> None:
    flaky = Platform(
        ProviderError("HTTP 503", status_code=503, retryable=True),
        [record("completed", {"ins-quote": {"final_price": 58}})],
    )
    result = TelnyxInsightsExtractor(flaky, sleep=lambda _s: None).extract(
        QUOTE, [], conversation_id="c"
    )
    assert result.status == "completed"

    refused = Platform(ProviderError("HTTP 404 conversation not found", status_code=404))
    result = TelnyxInsightsExtractor(refused, sleep=lambda _s: None).extract(
        QUOTE, [], conversation_id="c"
    )
    assert result.status == "failed"
    assert "conversation not found" in result.error
    assert len(refused.calls) == 1


def test_the_conversation_id_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        TelnyxInsightsExtractor(Platform([])).extract(QUOTE, [])
    assert caught.value.field == "conversation_id"
