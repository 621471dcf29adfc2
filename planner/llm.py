"""The optional language model: turns a natural-language request into a mission spec.

``LLM`` is the seam (injected through the graph's runtime context); ``OpenAICompatibleLLM``
speaks the OpenAI chat-completions API over httpx with JSON-schema output, which OpenAI,
Telnyx inference, vLLM and Ollama all accept. The model's answer is validated against the
spec schema and the service's rules; an invalid answer is sent back once with the error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import httpx

from planner.errors import LLMError, SpecError
from planner.spec import MissionSpec, parse_spec, spec_json_schema

__all__ = ["LLM", "OpenAICompatibleLLM", "spec_from_request"]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0

SYSTEM_PROMPT = """\
You plan phone-call missions for an agent mission orchestrator. Turn the user's request into a
mission spec: JSON matching the given schema exactly, with no other text.

- targets: every business or person to call, with its phone number exactly as given (never
  invent a number; if the request names no numbers, return an empty targets list).
- strategy: "sequential_leverage" when quotes should be negotiated one after another using the
  best quote so far; "parallel" to survey every target at once.
- assistant.instructions: what the voice assistant says and asks, in the second person
  ("You are calling {{target_name}} ..."), using imperative sentences ("Ask for ...").
  For sequential_leverage add a section that only renders once a best quote exists:
  "{{#best_quote}}We already have a quote of ${{best_quote}} per person from {{best_company}};
  ask whether they can beat it.{{/best_quote}}".
- extract: the structured fields to read from every conversation (snake_case names; types
  string, enum, number, integer, boolean, array, array(string), array(number), array(boolean),
  object). For quotes use a number field for the first price (name starting with initial_) and
  one for the final agreed price (name starting with final_).
- leverage (required for sequential_leverage): field = the final price field, initial_field =
  the first price field, better = "lower" for prices, variable "best_quote", name_variable
  "best_company", quantity = the number of guests/units when stated.
- retry: {"max_retries_client_errors": 2, "retry_interval_secs": 300} unless the request says
  otherwise.
"""


@runtime_checkable
class LLM(Protocol):
    """A chat model that answers with JSON matching a schema."""

    def complete_json(self, *, system: str, user: str, schema: dict[str, Any], name: str) -> Any:
        """The model's answer, parsed from JSON.

        Raises:
            LLMError: the model could not be reached or did not answer with JSON.
        """
        ...


class OpenAICompatibleLLM:
    """Chat completions at ``{base_url}/chat/completions`` with ``response_format`` set to a
    JSON schema. The API key (optional for local servers) is sent as a bearer token and never
    appears in errors or logs.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:11434/v1``.
        model: the model name.
        api_key: the bearer token, if the server needs one.
        timeout: seconds per request.
        max_retries: extra attempts on 408/409/429/5xx and transport errors.
        transport: an httpx transport (tests use ``httpx.MockTransport``).
        sleep: how to wait between retries (tests pass a no-op).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise LLMError(f"MISSION_LLM_BASE_URL must be an http(s) URL, got {base_url!r}")
        if not model:
            raise LLMError("MISSION_LLM_MODEL must name a model")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max(0, max_retries)
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def close(self) -> None:
        self._client.close()

    def complete_json(self, *, system: str, user: str, schema: dict[str, Any], name: str) -> Any:
        """Ask the model; return its JSON answer parsed.

        Raises:
            LLMError: unreachable server, HTTP error (after retries), or an answer that is not
                JSON.
        """
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema},
            },
        }
        response = self._post(body)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(
                "the LLM's response has no choices[0].message.content "
                f"(HTTP {response.status_code})"
            ) from None
        if not isinstance(content, str):
            raise LLMError("the LLM's message content is not text")
        text = content.strip()
        if text.startswith("```"):
            # Some servers wrap JSON in a code fence despite response_format.
            text = text.strip("`").removeprefix("json").strip()
        try:
            return json.loads(text)
        except ValueError:
            raise LLMError(f"the LLM did not answer with JSON: {text[:200]!r}") from None

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._client.post(url, json=body)
            except httpx.HTTPError as exc:
                if last:
                    raise LLMError(
                        f"the LLM at {self.base_url} could not be reached: {type(exc).__name__}"
                    ) from None
                self._sleep(min(2.0**attempt, _MAX_RETRY_AFTER))
                continue
            if response.status_code < 400:
                return response
            if response.status_code in _RETRY_STATUSES and not last:
                self._sleep(_retry_after(response, attempt))
                continue
            raise LLMError(
                f"the LLM at {self.base_url} answered HTTP {response.status_code}: "
                f"{_detail(response)}"
            )
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after")
    if header:
        try:
            return min(max(float(header), 0.0), _MAX_RETRY_AFTER)
        except ValueError:
            pass
    return min(2.0**attempt, _MAX_RETRY_AFTER)


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:300]
    return json.dumps(data)[:300]


def spec_from_request(
    llm: LLM,
    request: str,
    check: Callable[[MissionSpec], MissionSpec] | None = None,
    *,
    attempts: int = 2,
) -> MissionSpec:
    """Ask the model for a spec, validate it (structure, then ``check`` — the service's
    rules); an invalid answer goes back to the model once with the error.

    Raises:
        LLMError: the model failed, or its answers stayed invalid (the last error is named).
    """
    schema = spec_json_schema()
    prompt = request.strip()
    problem: SpecError | None = None
    for _ in range(max(1, attempts)):
        data = llm.complete_json(system=SYSTEM_PROMPT, user=prompt, schema=schema, name="spec")
        try:
            spec = parse_spec(data)
            return check(spec) if check is not None else spec
        except SpecError as exc:
            problem = exc
            log.info("LLM spec rejected: %s", exc)
            prompt = (
                f"{request.strip()}\n\nYour previous answer was invalid: {exc}. "
                "Answer again with a corrected spec."
            )
    raise LLMError(f"the LLM's spec was invalid: {problem}")
