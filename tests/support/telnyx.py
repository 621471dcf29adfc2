"""A fake Telnyx v2 API for ``TelnyxProvider`` tests, served through ``httpx.MockTransport``.

``FakeTelnyx`` routes ``(method, path)`` to scripted handlers and records every request: the
wire-format tests in ``tests/mission_server/test_telnyx.py`` script each answer. Requests it
has no route for go to its ``fallback``, by default a Telnyx-style 404.

Imported as ``tests.support.telnyx``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

API_KEY = "KEY0187A1B2C3D4E5F6_s3cr3tT0k3nValue"

Handler = Callable[[httpx.Request], httpx.Response]


def not_found(request: httpx.Request) -> httpx.Response:
    """Telnyx's answer to a path it does not know."""
    detail = f"no route {request.method} {request.url.path}"
    return error(404, "10005", "Resource not found", detail)


def error(
    status: int, code: str, title: str, detail: str, pointer: str | None = None
) -> httpx.Response:
    """A Telnyx error response: ``{"errors": [{"code", "title", "detail", "source"}]}``."""
    item: dict[str, Any] = {"code": code, "title": title, "detail": detail}
    if pointer is not None:
        item["source"] = {"pointer": pointer}
    return httpx.Response(status, json={"errors": [item]})


class FakeTelnyx:
    """Routes (method, path) to handlers; a list of handlers is served in order, the last one
    repeating. Records every request. Unrouted requests go to ``fallback``."""

    def __init__(self, fallback: Handler = not_found) -> None:
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.requests: list[httpx.Request] = []
        self.fallback = fallback

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        self.routes[(method, "/v2" + path)] = list(handlers)

    def off(self, method: str, path: str) -> None:
        """Remove the route: the path is served by ``fallback`` again."""
        self.routes.pop((method, "/v2" + path), None)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handlers = self.routes.get((request.method, request.url.path))
        if not handlers:
            return self.fallback(request)
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        return handler(request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == "/v2" + path]


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raise_(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("timed out", request=request)

    return handler


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
