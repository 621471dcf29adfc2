"""The LLM extractor against httpx.MockTransport: valid output, output breaking the schema,
server errors and retries, and the API key staying secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from mission_server.errors import ConfigurationError
from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.llm import LLMExtractor
from mission_server.settings import Settings
from mission_server.telephony.base import TranscriptMessage

Say = Callable[..., list[TranscriptMessage]]
KEY = "sk-test-do-not-leak"

QUOTE = InsightDefinition(
    insight_id="quote",
    name="Catering quote",
    instructions="Extract the final quote.",
    parameters=(
        InsightParameter("final_price", "number", True, "Final price per person"),
        InsightParameter("service_style", "enum", False, "", ("buffet", "plated")),
    ),
)


def completion(content: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "cmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        },
    )


class Server:
    """Scripted responses; records each request body and headers."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    def body(self, index: int = 0) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


def extractor(server: Server, sleeps: list[float] | None = None, **options: Any) -> LLMExtractor:
    return LLMExtractor(
        "http://127.0.0.1:9/v1",
        "test-model",
        KEY,
        transport=httpx.MockTransport(server),
        sleep=(sleeps.append if sleeps is not None else lambda _s: None),
        **options,
    )


@pytest.fixture
def call(say: Say) -> list[TranscriptMessage]:
    return say(
        ("assistant", "What's your best price per person?"),
        ("user", "We can do $60 a head, plated."),
    )


def test_valid_output_is_parsed_validated_and_completed(call: list[TranscriptMessage]) -> None:
    server = Server(completion('{"final_price": 60, "service_style": "plated"}'))
    result = extractor(server).extract(QUOTE, call)
    assert result.status == "completed"
    assert result.result == {"final_price": 60, "service_style": "plated"}
    assert result.error is None

    request = server.requests[0]
    assert request.url == "http://127.0.0.1:9/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    body = server.body()
    assert body["model"] == "test-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["final_price"]
    assert fmt["json_schema"]["name"] == "Catering_quote"
    prompt = " ".join(m["content"] for m in body["messages"])
    assert "Extract the final quote." in prompt
    assert "user: We can do $60 a head, plated." in prompt


def test_an_optional_field_left_out_is_reported_missing(call: list[TranscriptMessage]) -> None:
    result = extractor(Server(completion('```json\n{"final_price": 60}\n```'))).extract(QUOTE, call)
    assert result.status == "completed"
    assert result.result == {"final_price": 60}
    assert result.missing == ["service_style"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"final_price": "sixty dollars"}', "final_price: 'sixty dollars' is not of type"),
        ('{"service_style": "plated"}', "'final_price' is a required property"),
        ('{"final_price": 60, "service_style": "banquet"}', "service_style: 'banquet' is not one"),
        ('{"final_price": 60, "tip": 5}', "'tip' was unexpected"),
        ("The price is sixty dollars.", "not JSON"),
    ],
)
def test_output_violating_the_schema_fails_with_the_reason(
    call: list[TranscriptMessage], content: str, reason: str
) -> None:
    result = extractor(Server(completion(content))).extract(QUOTE, call)
    assert result.status == "failed"
    assert result.result is None
    assert reason in result.error


def test_server_errors_are_retried_with_backoff_then_succeed(
    call: list[TranscriptMessage],
) -> None:
    sleeps: list[float] = []
    server = Server(
        httpx.Response(503), httpx.ConnectError("refused"), completion('{"final_price": 60}')
    )
    result = extractor(server, sleeps, backoff_secs=0.5).extract(QUOTE, call)
    assert result.status == "completed"
    assert len(server.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_server_that_keeps_failing_gives_a_clear_failed_result(
    call: list[TranscriptMessage],
) -> None:
    sleeps: list[float] = []
    server = Server(*[httpx.Response(500, json={"error": {"message": "overloaded"}})] * 3)
    result = extractor(server, sleeps).extract(QUOTE, call)
    assert result.status == "failed"
    assert "HTTP 500: overloaded" in result.error
    assert "gave up after 3 attempts" in result.error
    assert len(server.requests) == 3
    assert len(sleeps) == 2


def test_a_client_error_is_not_retried_and_the_key_is_never_echoed(
    call: list[TranscriptMessage],
) -> None:
    server = Server(httpx.Response(401, json={"error": {"message": f"bad key {KEY}"}}))
    result = extractor(server).extract(QUOTE, call)
    assert result.status == "failed"
    assert len(server.requests) == 1
    assert "HTTP 401" in result.error
    assert KEY not in result.error
    assert KEY not in repr(extractor(server))


def test_a_free_text_insight_asks_for_plain_text(call: list[TranscriptMessage]) -> None:
    summary = InsightDefinition(insight_id="sum", name="Summary", instructions="Summarise.")
    server = Server(completion("  The caterer offered $60 per person, plated.  "))
    result = extractor(server).extract(summary, call)
    assert result.status == "completed"
    assert result.result == "The caterer offered $60 per person, plated."
    assert "response_format" not in server.body()


def test_from_settings_reads_the_llm_settings(call: list[TranscriptMessage]) -> None:
    settings = Settings(llm_base_url="http://127.0.0.1:9/v1/", llm_model="m1", llm_api_key=KEY)
    server = Server(completion('{"final_price": 61}'))
    llm = LLMExtractor.from_settings(settings, transport=httpx.MockTransport(server))
    assert llm.extract(QUOTE, call).result == {"final_price": 61}
    assert server.body()["model"] == "m1"
    assert server.requests[0].url == "http://127.0.0.1:9/v1/chat/completions"


def test_from_settings_without_configuration_says_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="MISSION_LLM_BASE_URL and MISSION_LLM_MODEL"):
        LLMExtractor.from_settings(
            SimpleNamespace(llm_base_url=None, llm_model=None, llm_api_key=None)
        )
