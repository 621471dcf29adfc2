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
        # Each hint only where it differs from the default MCP gives it (readOnly false,
        # destructive true, idempotent false, openWorld true): the same meaning, fewer bytes
        # in every tools/list. The title is the tool's own.
        annotations = ToolAnnotations(
            read_only_hint=True if read_only else None,
            destructive_hint=None if read_only or destructive else False,
            idempotent_hint=True if read_only or idempotent else None,
            open_world_hint=None if open_world else False,
        )
        self.server.add_tool(
            as_tool(fn),
            name=fn.__name__,
            title=title,
            description=description(fn),
            annotations=annotations,
        )
        if refused and isinstance(self.server, MissionMCPServer):
            self.server.explain_refused(fn.__name__, refused)


def description(fn: Callable[..., Any]) -> str:
    """``fn``'s docstring as its tool description: each paragraph on one line (the docstring's
    line breaks are for the source; in JSON each costs two bytes and says nothing), paragraphs
    apart."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)
