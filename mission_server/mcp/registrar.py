"""``ToolRegistrar``: registers tool functions with the error mapping and MCP annotations."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from mission_server.mcp.errors import MissionMCPServer, as_tool

log = logging.getLogger(__name__)


class ToolRegistrar:
    """Registers tool functions with error mapping and MCP annotations. On the mission server
    (``MissionMCPServer``) every tool takes exactly its parameters: an unknown argument is
    refused before the tool runs."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server

    def add(
        self,
        fn: Callable[..., Any],
        *,
        title: str,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
        refused: Mapping[str, str] | None = None,
    ) -> None:
        """Register ``fn`` under its own name; its docstring is the description.

        ``open_world`` marks tools that reach the telephony provider (real phones, when the
        provider is Telnyx). ``refused`` names arguments the tool does not take on purpose, each
        with the reason its error gives (instead of "did you mean").
        """
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=False if read_only else destructive,
            idempotent_hint=True if read_only else idempotent,
            open_world_hint=open_world,
        )
        self.server.add_tool(
            as_tool(fn),
            name=fn.__name__,
            title=title,
            description=inspect.cleandoc(fn.__doc__ or ""),
            annotations=annotations,
        )
        if refused and isinstance(self.server, MissionMCPServer):
            self.server.explain_refused(fn.__name__, refused)
