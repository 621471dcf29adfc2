"""The optional LLM seam: an OpenAI-compatible chat-completions client, exercised through
httpx.MockTransport, and the spec it is asked to produce."""

from __future__ import annotations

import json

import httpx
import pytest

from mission_server.net.openai import OpenAICompatibleLLM
from planner.errors import LLMError
from planner.llm import spec_from_request
from planner.spec import MissionSpec

SPEC = {
    "name": "Quotes",
    "objective": "Get quotes",
    "strategy": "parallel",
    "assistant": {"name": "Caller", "instructions": "Ask for their price per person."},
    "targets": [{"name": "Lakefront Catering", "phone": "+13125550101"}],
    "extract": [{"name": "price_per_person", "type": "number"}],
}


def completion(content: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def client(handler, **kw) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        "https://llm.example/v1",
        "test-model",
        "sk-secret-key",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
        **kw,
    )


def test_request_carries_model_schema_and_bearer_and_answer_is_parsed():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion(json.dumps(SPEC)))

    spec = spec_from_request(client(handler), "call Lakefront Catering for a quote")
    assert isinstance(spec, MissionSpec) and spec.name == "Quotes"
    request = seen[0]
    assert request.url == "https://llm.example/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-secret-key"
    body = json.loads(request.content)
    assert body["model"] == "test-model"
    assert body["response_format"]["type"] == "json_schema"
    assert "targets" in body["response_format"]["json_schema"]["schema"]["properties"]
    assert body["messages"][-1]["content"] == "call Lakefront Catering for a quote"


def test_invalid_answer_is_sent_back_once_with_the_error():
    answers = [{**SPEC, "targets": [{"name": "X"}]}, SPEC]
    prompts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        prompts.append(json.loads(request.content)["messages"][-1]["content"])
        return httpx.Response(200, json=completion(json.dumps(answers.pop(0))))

    spec = spec_from_request(client(handler), "quotes please")
    assert spec.targets[0].phone == "+13125550101"
    assert "targets[0].phone is required" in prompts[1]


def test_answers_that_stay_invalid_fail_naming_the_field():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion(json.dumps({**SPEC, "strategy": "random"})))

    with pytest.raises(LLMError) as err:
        spec_from_request(client(handler), "quotes please")
    assert "strategy" in str(err.value)


def test_service_rules_apply_to_the_llm_spec_too():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion(json.dumps(SPEC)))

    def check(spec: MissionSpec) -> MissionSpec:
        from planner.errors import SpecError

        raise SpecError("targets[0].phone", "must be a valid, dialable phone number", "x")

    with pytest.raises(LLMError) as err:
        spec_from_request(client(handler), "quotes", check)
    assert "targets[0].phone must be a valid" in str(err.value)


def test_rate_limit_is_retried_honouring_retry_after():
    waits: list[float] = []
    responses = [
        httpx.Response(429, headers={"retry-after": "3"}, json={"error": {"message": "slow"}}),
        httpx.Response(200, json=completion(json.dumps(SPEC))),
    ]
    llm = OpenAICompatibleLLM(
        "https://llm.example/v1",
        "m",
        transport=httpx.MockTransport(lambda r: responses.pop(0)),
        sleep=waits.append,
    )
    assert llm.complete_json(system="s", user="u", schema={}, name="spec") == SPEC
    assert waits == [3.0]


def test_http_errors_name_the_status_and_never_the_key():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "invalid api key"}})

    with pytest.raises(LLMError) as err:
        client(handler).complete_json(system="s", user="u", schema={}, name="spec")
    assert "HTTP 401" in str(err.value) and "invalid api key" in str(err.value)
    assert "sk-secret-key" not in str(err.value)


def test_unreachable_server_is_an_llm_error():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LLMError) as err:
        client(handler, max_retries=1).complete_json(system="s", user="u", schema={}, name="x")
    assert "could not be reached" in str(err.value)


def test_non_json_answer_is_an_llm_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion("Sure! Here is your plan: call them."))

    with pytest.raises(LLMError) as err:
        client(handler).complete_json(system="s", user="u", schema={}, name="x")
    assert "did not answer with JSON" in str(err.value)


def test_fenced_json_is_accepted():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion("```json\n" + json.dumps(SPEC) + "\n```"))

    assert client(handler).complete_json(system="s", user="u", schema={}, name="x") == SPEC


def test_base_url_must_be_http():
    with pytest.raises(LLMError) as err:
        OpenAICompatibleLLM("llm.example", "m")
    assert "MISSION_LLM_BASE_URL" in str(err.value)
