"""``python -m llama_cpp.server`` for ``make test-llm``, adapted in three ways. First, it also
accepts OpenAI's ``response_format: {"type": "json_schema", "json_schema": {"schema": ...}}``.

The project's client (``mission_server.net.openai``) sends that form, which OpenAI, vLLM, Ollama
and llama.cpp's own ``llama-server`` accept. llama-cpp-python's server (0.3.x) only takes
``{"type": "json_object", "schema": ...}`` and answers the OpenAI form with an HTTP 500. This
launcher rewrites the one into the other before the server reads the request, so the schema is
enforced (as a grammar) exactly as with the native form; every other byte and every command
line option is the library's own.

Two more adaptations. ``max_tokens``: a request without one gets ``$SERVE_MAX_TOKENS``
(default 512), as hosted servers cap an answer; this base (not instruction-tuned) model
rarely stops by itself, and the server goes on generating for a client that gave up.
``maxLength`` and ``maxItems``: they are left out of the grammar. llama-cpp-python
spells a bound of N as N nested optional repetitions, so the mission spec's
``maxLength: 50000`` makes a grammar llama.cpp refuses to parse (and the server then dies
mid-request). Types, required fields, enums and structure are still enforced; the project
checks the lengths itself after parsing (``planner.spec``, ``insights.schema``).

    python tests/llm/serve.py --model PATH --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import llama_cpp.server.__main__ as llama_server

Scope = dict[str, Any]


def as_native(body: Any) -> Any:
    """``body`` with an OpenAI ``json_schema`` response format turned into llama-cpp-python's
    ``json_object`` + ``schema``, and a default ``max_tokens``; anything else unchanged."""
    if not isinstance(body, dict):
        return body
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        native: dict[str, Any] = {"type": "json_object"}
        if isinstance(spec.get("schema"), dict):
            native["schema"] = without_bounds(spec["schema"])
        body = {**body, "response_format": native}
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body = {**body, "max_tokens": int(os.environ.get("SERVE_MAX_TOKENS", "512"))}
    return body


_UNBOUNDED = frozenset({"maxLength", "maxItems"})


def without_bounds(schema: Any) -> Any:
    """``schema`` without any ``maxLength`` / ``maxItems`` (see the module's note)."""
    if isinstance(schema, dict):
        return {k: without_bounds(v) for k, v in schema.items() if k not in _UNBOUNDED}
    if isinstance(schema, list):
        return [without_bounds(v) for v in schema]
    return schema


class JsonSchemaShim:
    """ASGI middleware: rewrites the JSON body of ``POST …/chat/completions``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].endswith("/chat/completions")
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        with contextlib.suppress(ValueError):  # not JSON: the server answers it as it would
            raw = json.dumps(as_native(json.loads(raw))).encode()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        scope = {**scope, "headers": headers}
        message = {"type": "http.request", "body": raw, "more_body": False}
        await self.app(scope, _replay([message], receive), send)


def _replay(messages: list[dict[str, Any]], then: Any) -> Any:
    """A ``receive`` that gives ``messages`` first, then whatever ``then`` gives (so the
    server still learns of a real disconnect)."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return await then()

    return receive


def main() -> None:
    create_app = llama_server.create_app
    llama_server.create_app = lambda **kwargs: JsonSchemaShim(create_app(**kwargs))  # type: ignore[assignment]
    llama_server.main()


if __name__ == "__main__":
    main()
