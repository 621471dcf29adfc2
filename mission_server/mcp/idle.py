"""Idle HTTP connections are closed: uvicorn's own ``timeout_keep_alive`` only runs between
requests once one has completed, and any byte received disarms it, so a client that connects
and sends nothing, or dribbles a request's headers, held its connection (and a file
descriptor) for good.

``idle_timeout_protocol(secs)`` is uvicorn's h11 protocol closing a connection on which no
request is in progress and no new request has completed for ``secs`` (checked every ``secs``,
so it is closed between one and two periods after it fell idle; the setting is
``MISSION_HTTP_IDLE_SECS``). A request in progress (a long MCP response stream included) is
never cut.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def idle_timeout_protocol(secs: float) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` that closes connections idle for
    ``secs``."""
    return type("IdleTimeoutH11Protocol", (_IdleTimeoutH11Protocol,), {"idle_timeout": secs})


class _IdleTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that stay idle (see the module)."""

    idle_timeout: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._seen_cycle: Any = self.cycle
        self._idle_check = self.loop.call_later(self.idle_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._idle_check.cancel()
        super().connection_lost(exc)

    def _check_idle(self) -> None:
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        if busy or cycle is not self._seen_cycle:
            # A request is running, or one completed since the last look: not idle.
            self._seen_cycle = cycle
            self._idle_check = self.loop.call_later(self.idle_timeout, self._check_idle)
            return
        self.transport.close()
