"""1. The LLM extractor, over real HTTP, on a catering transcript: the answer validates against
the insight's schema, whatever the values (a 270M model's are often wrong).

Also the schema enforcement itself: a schema the model could not guess (one allowed value,
``xq-7741``) comes back exactly, which only a server that applies the schema can do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.llm import LLMExtractor
from mission_server.insights.schema import compile_schema, parse_json_answer, validate_result
from mission_server.net.openai import ChatClient
from mission_server.settings import Settings
from mission_server.telephony.base import TranscriptMessage

QUOTE = InsightDefinition(
    insight_id="quote",
    name="Catering quote",
    instructions="Read the caterer's prices per person.",
    parameters=(
        InsightParameter("initial_price_per_person", "number", False, "The first price quoted"),
        InsightParameter("final_price_per_person", "number", True, "The final agreed price"),
        InsightParameter("includes_dessert", "boolean", False, "Whether dessert is included"),
        InsightParameter("service_style", "enum", False, "", ("buffet", "plated")),
    ),
)
AT = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
TRANSCRIPT = [
    TranscriptMessage(role, text, AT + timedelta(seconds=10 * i))  # type: ignore[arg-type]
    for i, (role, text) in enumerate(
        [
            ("assistant", "Hi, what is your price per person for a lunch for 50?"),
            ("user", "Our buffet lunch is $65 per person, dessert included."),
            ("assistant", "We have a quote of $62 from another caterer."),
            ("user", "We can beat that. We can do $60 per person."),
            ("assistant", "Great, so $60 per person is final?"),
            ("user", "Yes, $60 per person is final."),
        ]
    )
]


def test_the_extractor_answers_within_the_insight_schema(llm_settings: Settings) -> None:
    extractor = LLMExtractor.from_settings(llm_settings, timeout=120.0)
    result = extractor.extract(QUOTE, TRANSCRIPT)
    print(f"\n  extractor read: {result.result!r} (truth: initial 65, final 60, dessert, buffet)")
    assert result.status == "completed", result.error
    jsonschema.validate(result.result, compile_schema(QUOTE))
    assert validate_result(QUOTE, result.result) == []


@pytest.mark.parametrize("kind", ["string", "enum"])
def test_the_server_enforces_the_schema_it_is_sent(llm_settings: Settings, kind: str) -> None:
    # The same request shape the extractor sends: response_format {"type": "json_schema"}.
    chat = ChatClient(
        llm_settings.llm_base_url or "",
        llm_settings.llm_model or "",
        llm_settings.llm_api_key,
        timeout=120.0,
    )
    code = {"type": "string", "enum": ["xq-7741"]} if kind == "enum" else {"const": "xq-7741"}
    schema = {
        "type": "object",
        "properties": {"code": code, "count": {"type": "integer"}},
        "required": ["code", "count"],
        "additionalProperties": False,
    }
    answer = chat.complete(
        [{"role": "user", "content": "Name a colour."}],
        response_format={"type": "json_schema", "json_schema": {"name": "code", "schema": schema}},
    )
    value = parse_json_answer(answer)
    jsonschema.validate(value, schema)
    assert value["code"] == "xq-7741"
