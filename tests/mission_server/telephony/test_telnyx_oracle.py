"""The SDK oracle itself (``tests.support.telnyx_oracle``): it finds what the official SDK
does not describe, so a Telnyx test that passes it sends only what Telnyx defines."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.telnyx_oracle import (
    OracleViolation,
    check_request,
    check_response,
    endpoint_for,
    request_problems,
    response_problems,
)

BASE = "https://api.telnyx.com/v2"


def request(method: str, path: str, *, params: Any = None, body: Any = None, **headers: str):
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Request(method, BASE + path, params=params, content=content, headers=headers)


EVENT = {
    "scheduled_at_fixed_datetime": "2026-05-07T15:00:15Z",
    "telnyx_agent_target": "+13125550001",
    "telnyx_conversation_channel": "phone_call",
    "telnyx_end_user_target": "+13125550101",
}


def test_the_endpoints_we_use_are_the_sdks() -> None:
    found = endpoint_for("DELETE", "/v2/ai/assistants/a1/scheduled_events/e1")
    assert found is not None and found.sdk_method.endswith("ScheduledEventsResource.delete")
    found = endpoint_for("POST", "/v2/ai/assistants/import")
    assert found is not None and found.sdk_method.endswith("AssistantsResource.imports")
    assert endpoint_for("GET", "/v2/ai/no-such-thing") is None


def test_a_request_the_sdk_describes_passes() -> None:
    check_request(
        request(
            "POST", "/ai/assistants/a1/scheduled_events", body=EVENT, **{"Idempotency-Key": "k"}
        )
    )
    check_request(request("GET", "/ai/assistants/a1/scheduled_events", params={"page[number]": 2}))


@pytest.mark.parametrize(
    ("req", "problem"),
    [
        (
            request("POST", "/ai/assistants/a1/scheduled_events", body={**EVENT, "to": "x"}),
            "to: not a field of ScheduledEventCreateParams",
        ),
        (
            request(
                "POST",
                "/ai/assistants/a1/scheduled_events",
                body={k: v for k, v in EVENT.items() if k != "telnyx_agent_target"},
            ),
            "telnyx_agent_target: Field required",
        ),
        (
            request(
                "POST",
                "/ai/assistants/a1/scheduled_events",
                body={**EVENT, "telnyx_conversation_channel": "fax"},
            ),
            "telnyx_conversation_channel",
        ),
        (
            request("GET", "/ai/conversations/c1/conversations-insights", params={"page[size]": 1}),
            "defines no query parameters",
        ),
        (
            request("GET", "/ai/conversations", params={"metadata->mission_key": "eq.1"}),
            "metadata->mission_key: not a field of ConversationListParams",
        ),
        (
            request("PATCH", "/phone_numbers/1/messaging", body={}, **{"Idempotency-Key": "k"}),
            "does not define one",
        ),
        (request("GET", "/ai/nowhere"), "no such endpoint"),
    ],
)
def test_what_the_sdk_does_not_describe_is_a_violation(req: httpx.Request, problem: str) -> None:
    problems = request_problems(req)
    assert any(problem in p for p in problems), problems
    with pytest.raises(OracleViolation):
        check_request(req)


def test_fake_answers_are_checked_against_the_response_models() -> None:
    path = "/v2/ai/conversations/c1/conversations-insights"
    good = {
        "data": [
            {
                "id": "r1",
                "status": "completed",
                "created_at": "2026-05-07T15:05:00Z",
                "conversation_insights": [{"insight_id": "i1", "result": "{}"}],
            }
        ],
        "meta": {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": 1},
    }
    check_response("GET", path, 200, good)
    wrong_status = json.loads(json.dumps(good))
    wrong_status["data"][0]["status"] = "done"
    assert any("status" in p for p in response_problems("GET", path, 200, wrong_status))
    extra = json.loads(json.dumps(good))
    extra["data"][0]["score"] = 1
    assert any("score: not a field" in p for p in response_problems("GET", path, 200, extra))
    # An event answer missing what Telnyx always sends; an error body in another shape.
    event_path = "/v2/ai/assistants/a1/scheduled_events/e1"
    assert response_problems("GET", event_path, 200, {"status": "pending"})
    assert response_problems("GET", event_path, 404, {"message": "nope"})
    assert response_problems("DELETE", event_path, 204, None) == []
