"""The LLM extractor: any OpenAI-compatible ``/chat/completions`` endpoint (Telnyx inference,
OpenAI, vLLM, Ollama …) asked for JSON that matches the insight's compiled schema.

Structured insights are requested with ``response_format: {"type": "json_schema", ...}``; the
answer is parsed and validated again here, because not every server enforces the schema.
Free-text insights are requested as plain text. A server error, an unreadable answer or an
answer that breaks the schema gives a ``failed`` result with the reason; nothing is guessed.

The HTTP side is the shared OpenAI-compatible client (``mission_server.net.openai``): transient
failures (connection errors, timeouts, 408, 425, 429, 5xx) are retried a bounded number of
times with exponential backoff, honouring ``Retry-After``; the sleep is injectable so tests do
not wait. The API key travels only in the ``Authorization`` header and never appears in a
result or an error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from mission_server.errors import ConfigurationError
from mission_server.insights.base import ExtractionResult, InsightDefinition
from mission_server.insights.schema import compile_schema, parse_json_answer, validate_result
from mission_server.net.openai import ChatClient, ChatError
from mission_server.net.retry import RetryPolicy
from mission_server.telephony.base import TranscriptMessage

__all__ = ["LLMExtractor", "render_transcript"]

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
        self._chat = ChatClient(
            base_url,
            model,
            api_key,
            timeout=timeout,
            policy=RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_secs),
            transport=transport,
            sleep=sleep,
        )
        self.base_url = self._chat.base_url
        self.model = self._chat.model
        self.max_attempts = max_attempts
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

    def _messages(
        self, definition: InsightDefinition, transcript: Sequence[TranscriptMessage]
    ) -> list[dict[str, str]]:
        system = _SYSTEM_PROMPT.format(
            name=definition.name, instructions=definition.instructions or "(none)"
        ) + (_STRUCTURED_RULES if definition.structured else _TEXT_RULES)
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": "Transcript:\n" + render_transcript(transcript)},
        ]

    @staticmethod
    def _response_format(definition: InsightDefinition) -> dict[str, Any] | None:
        if not definition.structured:
            return None
        return {
            "type": "json_schema",
            "json_schema": {
                "name": _schema_name(definition.name),
                "schema": compile_schema(definition),
                # Optional fields may be left out, which OpenAI's strict mode forbids.
                "strict": False,
            },
        }

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
            content = self._chat.complete(
                self._messages(definition, transcript),
                response_format=self._response_format(definition),
                temperature=self._temperature,
            )
        except ChatError as exc:
            return ExtractionResult(insight_id, "failed", error=str(exc))
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
