"""The one OpenAI-compatible ``/chat/completions`` client (OpenAI, Telnyx inference, vLLM,
Ollama …), and the planner's ``LLM`` built on it.

``ChatClient.complete`` POSTs the messages (with an optional ``response_format``, e.g. a JSON
schema) through the retrying transport (``mission_server.net.retry``) and returns the
assistant message's text. A completion has no effect on the server, so it is sent as
idempotent: timeouts, 408/425/429/5xx and transport errors are retried within the policy,
honouring ``Retry-After``. Any failure is a ``ChatError`` whose message names the server
(never the API key, which is a ``SecretStr`` sent only as a bearer token).

``OpenAICompatibleLLM`` is the planner's ``LLM`` (``planner.llm``): it asks for JSON matching
a schema and parses the answer, raising the planner's ``LLMError``. The insights extractor
(``mission_server.insights.llm``) uses ``ChatClient`` directly.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from mission_server.errors import ValidationError
from mission_server.net.retry import Exchange, HttpClient, RetryPolicy
from planner.errors import LLMError

__all__ = ["ChatClient", "ChatError", "OpenAICompatibleLLM"]

_URL = re.compile(r"^https?://[^\s/]+")


class ChatError(Exception):
    """The completion could not be obtained; the message (free of secrets) says why, and
    ``status_code`` is the server's last HTTP status, if it answered."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ChatClient:
    """Chat completions at ``{base_url}/chat/completions``.

    Args:
        base_url: the API root, e.g. ``https://api.openai.com/v1`` or
            ``http://127.0.0.1:11434/v1``.
        model: the model name.
        api_key: the bearer token, if the server needs one.
        timeout: seconds per attempt.
        policy: attempts and waits (``RetryPolicy``; by default three attempts).
        transport: an httpx transport (tests use ``httpx.MockTransport``).
        sleep: how to wait between attempts (tests pass a no-op).

    Raises:
        ValidationError: ``base_url`` is not an http(s) URL (``llm_base_url``) or ``model``
            is empty (``llm_model``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: SecretStr | str | None = None,
        *,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(base_url, str) or not _URL.match(base_url):
            raise ValidationError("llm_base_url", "must be an http(s) URL", base_url)
        if not isinstance(model, str) or not model.strip():
            raise ValidationError("llm_model", "must not be empty", model)
        self.base_url = base_url.rstrip("/")
        self.model = model.strip()
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._timeout = timeout
        self.policy = policy or RetryPolicy()
        self._transport = transport
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r})"

    def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        response_format: Mapping[str, Any] | None = None,
        temperature: float | None = 0.0,
    ) -> str:
        """The assistant message's text for ``messages``.

        Raises:
            ChatError: the server could not be reached, answered an HTTP error (after the
                retries), refused, or answered without text.
        """
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if temperature is not None:
            body["temperature"] = temperature
        if response_format is not None:
            body["response_format"] = dict(response_format)
        with HttpClient(
            api_key=self._api_key,
            timeout=self._timeout,
            headers={"Accept": "application/json"},
            policy=self.policy,
            name="LLM",
            transport=self._transport,
            sleep=self._sleep,
        ) as http:
            exchange = http.send(
                "POST", f"{self.base_url}/chat/completions", json=body, retry=True, idempotent=True
            )
            response = exchange.response
            if response is None or not response.is_success:
                raise ChatError(
                    self._failure(http, exchange), status_code=exchange.last.status_code
                )
            return _content(response)

    def _failure(self, http: HttpClient, exchange: Exchange) -> str:
        where = f"the LLM at {_shown(self.base_url)}"
        response = exchange.response
        if response is None:
            message = f"{where} could not be reached: {http.describe(exchange.last)}"
        elif exchange.stop == "retry_after":
            message = (
                f"{where} answered HTTP {response.status_code} and asked to retry after "
                f"{exchange.retry_after:.0f}s, longer than the {self.policy.max_retry_after:.0f}s "
                "this client waits"
            )
        else:
            message = f"{where} answered HTTP {response.status_code}{_detail(response)}"
        tries = len(exchange.attempts)
        if tries > 1:
            message += f" (gave up after {tries} attempts)"
        return http.scrub(message)


def _shown(url: str) -> str:
    """The base URL without credentials, for messages."""
    return re.sub(r"^(https?://)[^@/]*@", r"\1", url)


def _detail(response: httpx.Response) -> str:
    """``: <the server's error message>`` from an OpenAI-style error body, if any."""
    try:
        payload = response.json()
    except ValueError:
        text = response.text.strip()[:200]
        return f": {text}" if text else ""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return f": {str(message)[:300]}" if message else ""


def _content(response: httpx.Response) -> str:
    try:
        message = response.json()["choices"][0]["message"]
        refusal = message.get("refusal")
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ChatError(
            "the LLM server's answer is not a chat completion (no choices[0].message) "
            f"(HTTP {response.status_code})",
            status_code=response.status_code,
        ) from None
    if refusal:
        raise ChatError(f"the model refused: {str(refusal)[:200]}")
    if not isinstance(content, str) or not content.strip():
        raise ChatError("the model's answer was empty")
    return content


class OpenAICompatibleLLM:
    """The planner's ``LLM`` over ``ChatClient``: ``response_format`` set to the JSON schema,
    the answer parsed (a code fence around it tolerated).

    Args:
        base_url, model, api_key, timeout, transport, sleep: as for ``ChatClient``.
        max_retries: attempts on top of the first.

    Raises:
        LLMError: ``base_url`` is not an http(s) URL or ``model`` is empty (naming
            ``MISSION_LLM_BASE_URL`` / ``MISSION_LLM_MODEL``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: SecretStr | str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            self._chat = ChatClient(
                base_url,
                model,
                api_key,
                timeout=timeout,
                policy=RetryPolicy(max_attempts=max(0, max_retries) + 1),
                transport=transport,
                sleep=sleep,
            )
        except ValidationError as exc:
            raise LLMError(f"MISSION_{exc.field.upper()} {exc.rule}, got {exc.value!r}") from None
        self.base_url = self._chat.base_url
        self.model = self._chat.model

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model!r})"

    def complete_json(self, *, system: str, user: str, schema: dict[str, Any], name: str) -> Any:
        """Ask the model; return its JSON answer parsed.

        Raises:
            LLMError: unreachable server, HTTP error (after retries), or an answer that is not
                JSON.
        """
        try:
            content = self._chat.complete(
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema},
                },
                temperature=0,
            )
        except ChatError as exc:
            raise LLMError(str(exc)) from None
        text = content.strip()
        if text.startswith("```"):
            # Some servers wrap JSON in a code fence despite response_format.
            text = text.strip("`").removeprefix("json").strip()
        try:
            return json.loads(text)
        except ValueError:
            raise LLMError(f"the LLM did not answer with JSON: {text[:200]!r}") from None
