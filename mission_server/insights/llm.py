"""The LLM extractor: any OpenAI-compatible ``/chat/completions`` endpoint (Telnyx inference,
OpenAI, vLLM, Ollama …) asked for JSON that matches the insight's compiled schema.

Structured insights are requested with ``response_format: {"type": "json_schema", ...}``; the
answer is parsed and validated again here, because not every server enforces the schema.
Free-text insights are requested as plain text. A server error, an unreadable answer or an
answer that breaks the schema gives a ``failed`` result with the reason; nothing is guessed.

Transient failures (connection errors, timeouts, 408, 429, 5xx) are retried a bounded number
of times with exponential backoff; the sleep is injectable so tests do not wait. The API key
travels only in the ``Authorization`` header and never appears in a result or an error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from mission_server.errors import ConfigurationError, ValidationError
from mission_server.insights.base import ExtractionResult, InsightDefinition
from mission_server.insights.schema import compile_schema, parse_json_answer, validate_result
from mission_server.telephony.base import TranscriptMessage

__all__ = ["LLMExtractor", "render_transcript"]

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_SYSTEM_PROMPT = """\
You analyse a finished phone conversation and extract one insight from it.
In the transcript, "assistant" is our voice agent and "user" is the other party (on an outbound \
call, the business that was called).
Insight: {name}
Instructions: {instructions}
"""
_STRUCTURED_RULES = """\
Reply with one JSON object that matches the given JSON schema and nothing else.
Only state what the conversation supports: leave out an optional field the conversation does \
not answer, and never invent values.
"""
_TEXT_RULES = "Reply with the insight as plain text, without preamble."


def render_transcript(transcript: Sequence[TranscriptMessage]) -> str:
    """The transcript as ``role: text`` lines (system messages left out)."""
    return "\n".join(
        f"{m.role}: {m.text.strip()}" for m in transcript if m.role in ("assistant", "user")
    )


def _schema_name(name: str) -> str:
    # OpenAI restricts json_schema.name to [A-Za-z0-9_-]{1,64}.
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "insight"
    return slug[:64]


class LLMExtractor:
    """Extract insights with an OpenAI-compatible chat completions endpoint.

    ``base_url`` is the API root (``https://api.openai.com/v1``); the request goes to
    ``{base_url}/chat/completions``. ``transport`` replaces the network (tests use
    ``httpx.MockTransport``); ``sleep`` replaces ``time.sleep`` between retries.
    """

    name = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: SecretStr | str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        max_attempts: int = 3,
        backoff_secs: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        temperature: float | None = 0.0,
    ) -> None:
        """Raises:
        ValidationError: ``base_url`` is not an http(s) URL, ``model`` is empty, or
            ``max_attempts`` is below 1.
        """
        if not isinstance(base_url, str) or not re.match(r"^https?://[^\s/]+", base_url):
            raise ValidationError("llm_base_url", "must be an http(s) URL", base_url)
        if not isinstance(model, str) or not model.strip():
            raise ValidationError("llm_model", "must not be empty", model)
        if (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or (max_attempts < 1)
        ):
            raise ValidationError("max_attempts", "must be an integer of at least 1", max_attempts)
        self.base_url = base_url.rstrip("/")
        self.model = model.strip()
        self._api_key = (
            api_key if isinstance(api_key, SecretStr) or api_key is None else (SecretStr(api_key))
        )
        self._transport = transport
        self._timeout = timeout
        self.max_attempts = max_attempts
        self._backoff = backoff_secs
        self._sleep = sleep
        self._temperature = temperature

    def __repr__(self) -> str:
        return f"LLMExtractor(base_url={self.base_url!r}, model={self.model!r})"

    @classmethod
    def from_settings(
        cls, settings: Any, *, transport: httpx.BaseTransport | None = None, **options: Any
    ) -> LLMExtractor:
        """Build from ``settings.llm_base_url``, ``settings.llm_model`` and the optional
        ``settings.llm_api_key``.

        Raises:
            ConfigurationError: the base URL or the model is not configured
                (``MISSION_LLM_BASE_URL`` / ``MISSION_LLM_MODEL``).
            ValidationError: the configured base URL is not an http(s) URL.
        """
        base_url = getattr(settings, "llm_base_url", None)
        model = getattr(settings, "llm_model", None)
        if not base_url or not model:
            unset = [
                env
                for env, value in (("MISSION_LLM_BASE_URL", base_url), ("MISSION_LLM_MODEL", model))
                if not value
            ]
            raise ConfigurationError(
                "the LLM extractor needs " + " and ".join(unset) + " to be set"
            )
        return cls(
            base_url, model, getattr(settings, "llm_api_key", None), transport=transport, **options
        )

    # ------------------------------------------------------------------ request

    def _body(
        self, definition: InsightDefinition, transcript: Sequence[TranscriptMessage]
    ) -> dict[str, Any]:
        system = _SYSTEM_PROMPT.format(
            name=definition.name, instructions=definition.instructions or "(none)"
        ) + (_STRUCTURED_RULES if definition.structured else _TEXT_RULES)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "Transcript:\n" + render_transcript(transcript)},
            ],
        }
        if self._temperature is not None:
            body["temperature"] = self._temperature
        if definition.structured:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(definition.name),
                    "schema": compile_schema(definition),
                    # Optional fields may be left out, which OpenAI's strict mode forbids.
                    "strict": False,
                },
            }
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None and self._api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return headers

    def _redact(self, text: str) -> str:
        # A server may echo the key back in its error text; it must not reach a result.
        secret = self._api_key.get_secret_value() if self._api_key is not None else ""
        return text.replace(secret, "***") if secret else text

    def _complete(self, body: dict[str, Any]) -> str:
        """POST with bounded retries; return the assistant message content.

        Raises:
            _Failed: the server kept failing, refused, or answered without content.
        """
        url = f"{self.base_url}/chat/completions"
        last_problem = "no attempt made"
        with httpx.Client(transport=self._transport, timeout=self._timeout) as client:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    response = client.post(url, json=body, headers=self._headers())
                except httpx.TimeoutException:
                    last_problem = f"the request to {url} timed out"
                except httpx.TransportError as exc:
                    last_problem = f"could not reach {url}: {type(exc).__name__}: {exc}"
                else:
                    if response.is_success:
                        return self._content(response)
                    last_problem = (
                        f"the LLM server answered HTTP {response.status_code}"
                        + _error_detail(response)
                    )
                    if response.status_code not in _RETRYABLE_STATUS:
                        raise _Failed(last_problem)
                log.warning(
                    "LLM request attempt %d/%d failed: %s",
                    attempt,
                    self.max_attempts,
                    self._redact(last_problem),
                )
                if attempt < self.max_attempts:
                    self._sleep(self._backoff * 2 ** (attempt - 1))
        raise _Failed(f"{last_problem} (gave up after {self.max_attempts} attempts)")

    @staticmethod
    def _content(response: httpx.Response) -> str:
        try:
            payload = response.json()
            message = payload["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Failed(
                "the LLM server's answer is not a chat completion (no choices[0].message)"
            ) from None
        if message.get("refusal"):
            raise _Failed(f"the model refused: {str(message['refusal'])[:200]}")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _Failed("the model's answer was empty")
        return content

    # ------------------------------------------------------------------ extract

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> ExtractionResult:
        """Ask the model for ``definition`` on ``transcript``, then parse and validate.

        Raises nothing for server or model trouble: an unreachable or failing server, an
        answer that is not JSON, or one that breaks the schema gives ``status="failed"``
        with the reason.
        """
        insight_id = definition.insight_id
        try:
            content = self._complete(self._body(definition, transcript))
        except _Failed as exc:
            return ExtractionResult(insight_id, "failed", error=self._redact(str(exc)))
        if not definition.structured:
            value: Any = content.strip()
        else:
            try:
                value = parse_json_answer(content)
            except ValueError:
                return ExtractionResult(
                    insight_id,
                    "failed",
                    error=f"the model's answer is not JSON: {content.strip()[:200]!r}",
                )
        problems = validate_result(definition, value)
        if problems:
            return ExtractionResult(
                insight_id,
                "failed",
                error="the model's answer does not match the insight's schema: "
                + "; ".join(problems),
            )
        missing = [
            p.name for p in definition.parameters if isinstance(value, dict) and p.name not in value
        ]
        return ExtractionResult(insight_id, "completed", result=value, missing=missing)


class _Failed(Exception):
    """The completion could not be obtained; the message is the reason."""


def _error_detail(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return ""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return f": {str(message)[:200]}" if message else ""
