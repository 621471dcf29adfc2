"""A ``TelnyxAccount`` served over real HTTP on 127.0.0.1, for tests whose workers are separate
processes (so they can be killed): ``mission worker`` reaches it as ``TELNYX_BASE_URL``.

- ``create_delay``: each accepted ``POST .../scheduled_events`` creates its event at once and
  then answers after a random delay in this range, like a slow platform: a worker killed while
  it waits leaves an event at Telnyx that its records do not show.
- ``faults``: a hook that may answer a request instead of the account (an outage); it sees the
  account, so it can let a create through and still answer 500.
- Calls end by themselves: a pending event whose dial time has passed is finished (answered)
  when it is next read.

Every request is handled in its own thread; the account is guarded by one lock. Every request
and answer is checked against the official SDK (``tests.support.telnyx_oracle``); what breaks
it is answered 500 and raised when the server stops.

Imported as ``tests.support.telnyx_server``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.support.telnyx import TelnyxAccount
from tests.support.telnyx_oracle import OracleViolation, checked

#: ``(request, account, forward)`` -> a response instead of the account's, or None to pass.
#: ``forward(request)`` lets the account handle the request (under its lock) and returns its
#: answer, so a fault can let a create happen and still answer 500.
Fault = Callable[
    [httpx.Request, TelnyxAccount, Callable[[httpx.Request], httpx.Response]],
    httpx.Response | None,
]


class ServedAccount:
    """``account`` behind ``http://127.0.0.1:<port>/v2``."""

    def __init__(
        self,
        account: TelnyxAccount,
        *,
        create_delay: tuple[float, float] = (0.0, 0.0),
        faults: Fault | None = None,
        seed: int = 7,
    ) -> None:
        self.account = account
        self.create_delay = create_delay
        self.faults = faults
        self.lock = threading.Lock()
        #: What the SDK oracle found wrong (``tests.support.telnyx_oracle``); ``stop`` raises.
        self.violations: list[str] = []
        #: ``"<METHOD> <path>"`` of every request, in order of arrival.
        self.requests: list[str] = []
        self._random = random.Random(seed)
        served = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = httpx.Request(
                    self.command,
                    f"http://127.0.0.1{self.path}",
                    headers=dict(self.headers.items()),
                    content=body,
                )
                response = served.answer(request)
                content = response.read()
                try:
                    self.send_response(response.status_code)
                    for name, value in response.headers.items():
                        if name.lower() not in {"content-length", "transfer-encoding"}:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while it waited: what it sent still counts

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2"

    def forward(self, request: httpx.Request) -> httpx.Response:
        """The account's own answer (under the lock), ending calls whose time has come."""
        with self.lock:
            self._finish_due()
            return self.account(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(f"{request.method} {request.url.path}")
        try:
            return checked(self._answer)(request)
        except OracleViolation as exc:
            # Raised in a server thread, where no test sees it: kept for ``stop`` to raise.
            with self.lock:
                self.violations.append(str(exc))
            return httpx.Response(500, json={"errors": [{"code": "oracle", "detail": "see test"}]})

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if self.faults is not None:
            faulted = self.faults(request, self.account, self.forward)
            if faulted is not None:
                return faulted
        response = self.forward(request)
        creating = request.method == "POST" and request.url.path.endswith("/scheduled_events")
        if creating and self.create_delay[1] > 0:
            with self.lock:
                delay = self._random.uniform(*self.create_delay)
            time.sleep(delay)
        return response

    def _finish_due(self) -> None:
        now = datetime.now(UTC)
        for event in self.account.events.values():
            if event["status"] != "pending":
                continue
            due = datetime.fromisoformat(
                event["scheduled_at_fixed_datetime"].replace("Z", "+00:00")
            )
            if due <= now:
                self.account.finish(
                    f"scheduled_event/{event['assistant_id']}/{event['scheduled_event_id']}"
                )

    def creates(self) -> list[str]:
        """The idempotency key of every event created at the account, one per create."""
        with self.lock:
            return self.account.keys()

    def start(self) -> ServedAccount:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; raise ``OracleViolation`` if a request or answer broke the SDK's
        description of the endpoint."""
        self._server.shutdown()
        self._server.server_close()
        if self.violations:
            raise OracleViolation("\n".join(self.violations))


@contextmanager
def served(account: TelnyxAccount, **options: object) -> Iterator[ServedAccount]:
    server = ServedAccount(account, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
