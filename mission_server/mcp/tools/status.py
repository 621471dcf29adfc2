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
        """Where and when this server runs. Call it first.

        Returns the telephony provider ('simulated': nothing real is dialled; 'telnyx': REAL
        calls), the server's current time (simulated time in simulation — scheduled_at values
        are in this time), the simulation speed, the database kind, the extractor that reads
        finished calls ('simulated': the rehearsal's ground truth) and whether this process
        places due calls (dispatcher_running; when false, `mission worker` processes must run).
        """
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
