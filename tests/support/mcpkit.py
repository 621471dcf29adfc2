"""Calling MCP tools in tests: a structured result, or the text of a tool error.

Imported as ``tests.support.mcpkit``.
"""

from __future__ import annotations

from typing import Any

from mcp.client import Client


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed with structured content, which is returned."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def err(client: Client, tool: str, **arguments: Any) -> str:
    """Call ``tool``; it must fail, and the error text is returned."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text


#: The value MCP gives each tool annotation hint a server leaves out.
HINT_DEFAULTS = {
    "read_only_hint": False,
    "destructive_hint": True,
    "idempotent_hint": False,
    "open_world_hint": True,
}


def hint(tool: Any, name: str) -> bool:
    """A tool's annotation hint as a client reads it: the published value, or MCP's default
    when the server leaves it out (the server publishes only the hints that differ)."""
    value = getattr(tool.annotations, name, None) if tool.annotations else None
    return HINT_DEFAULTS[name] if value is None else value
