"""``server_status``: what this server is (provider, time, dispatcher)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mission_server.mcp.models import (
    ServerStatus,
)
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.mcp.version import server_version
from mission_server.services.context import Context

log = logging.getLogger(__name__)


def register(tools: ToolRegistrar, ctx: Context, dispatcher_running: Callable[[], bool]) -> None:
    version = server_version()

    def server_status() -> ServerStatus:
        """Where and when this server runs: call it first. It says whether calls are REAL
        (provider 'telnyx') or simulated, and the server's time, which scheduled_at values are
        in."""
        clock_kind = getattr(ctx.clock, "kind", type(ctx.clock).__name__.lower())
        return ServerStatus(
            provider=ctx.provider.name,
            real_calls=ctx.provider.name == "telnyx",
            server_time=ctx.now(),
            clock=clock_kind,
            sim_speed=float(ctx.clock.speed) if clock_kind == "accelerated" else None,  # type: ignore[attr-defined]
            database=ctx.engine.dialect.name,
            extractor=ctx.extractor.name if ctx.extractor is not None else None,
            dispatcher_running=dispatcher_running(),
            version=version,
        )

    tools.add(server_status, title="Server status", read_only=True)
