"""What an agent pays to read the MCP surface: the bytes of ``tools/list`` and of ``get_run``
(compact and full) for the catering rehearsal, and how many nullable type lists
(``"type": [..., "null"]``) the schemas carry — MCP Inspector's ``--strict`` mode warns on each.

The catering example runs on a virtual clock in a temporary SQLite database; the server is
driven in process with the SDK ``Client``. ``tools/list`` is the JSON-RPC result as sent
(compact JSON, as the SDK serialises it; MCP Inspector prints it indented, about twice the
bytes). A ``get_run`` view is its JSON once; the result as sent carries it twice (structured
content, and the text block for clients that read only text).

    python bench/mcp_sizes.py

Targets (issue 14): tools/list under 80 KB, compact get_run under 3 KB, 0 nullable type lists.
The last line is one JSON object.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.mcp.server import build_server
from tests.support.missionkit import catering, make_ctx

TOOLS_LIST_MAX = 80_000
COMPACT_RUN_MAX = 3_000


def nullable_type_lists(node: Any) -> int:
    """How many ``"type": [...]`` lists with "null" in them ``node`` holds."""
    if isinstance(node, dict):
        here = isinstance(node.get("type"), list) and "null" in node["type"]
        return int(here) + sum(nullable_type_lists(v) for v in node.values())
    if isinstance(node, list):
        return sum(nullable_type_lists(v) for v in node)
    return 0


def wire_bytes(result: Any) -> int:
    """The bytes of a JSON-RPC result as sent (compact JSON)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def json_bytes(value: Any) -> int:
    """The bytes of ``value`` as compact UTF-8 JSON, as it is in the wire bytes."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def view_bytes(result: Any) -> int:
    """The bytes of a tool result's JSON, once (the result carries it twice: as structured
    content and, for clients that read only text, as the text block)."""
    return len(json.dumps(result.structured_content, separators=(",", ":")).encode())


async def measure(tmp: Path) -> dict[str, Any]:
    ctx = make_ctx(str(tmp / "sizes.db"), tmp)
    runner = MissionRunner(ctx, mode="inline")
    try:
        run_id = runner.start(catering())
        drive_virtual(ctx, runner, [run_id])
        server = build_server(ctx, wait_poll_secs=0.01)
        async with Client(server) as client:
            listed = await client.list_tools()
            tools = [t.model_dump(by_alias=True, exclude_none=True) for t in listed.tools]
            compact = await client.call_tool("get_run", {"run_id": run_id})
            full = await client.call_tool("get_run", {"run_id": run_id, "detail": "full"})
        largest = sorted(((json_bytes(t), t["name"]) for t in tools), reverse=True)[:5]
        return {
            "tools": len(tools),
            "tools_list_bytes": wire_bytes(listed),
            "output_schema_bytes": sum(json_bytes(t.get("outputSchema", {})) for t in tools),
            "nullable_type_lists": nullable_type_lists(tools),
            "largest_tools": {name: size for size, name in largest},
            "get_run_compact_bytes": view_bytes(compact),
            "get_run_full_bytes": view_bytes(full),
            "get_run_compact_wire_bytes": wire_bytes(compact),
            "get_run_full_wire_bytes": wire_bytes(full),
        }
    finally:
        runner.close()
        ctx.engine.dispose()


def main() -> None:
    warnings.simplefilter("ignore", MCPDeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        figures = anyio.run(measure, Path(tmp))
    print(
        f"tools/list: {figures['tools_list_bytes']:,} bytes for {figures['tools']} tools "
        f"(target < {TOOLS_LIST_MAX:,}); output schemas {figures['output_schema_bytes']:,}"
    )
    print(f"nullable type lists: {figures['nullable_type_lists']} (target 0)")
    print("largest tools: " + ", ".join(f"{n} {s:,}" for n, s in figures["largest_tools"].items()))
    print(
        f"get_run compact: {figures['get_run_compact_bytes']:,} bytes "
        f"(target < {COMPACT_RUN_MAX:,}); full: {figures['get_run_full_bytes']:,} bytes; "
        f"as sent (JSON-RPC result, text block and structured content): "
        f"{figures['get_run_compact_wire_bytes']:,} and {figures['get_run_full_wire_bytes']:,}"
    )
    figures["ok"] = (
        figures["tools_list_bytes"] < TOOLS_LIST_MAX
        and figures["get_run_compact_bytes"] < COMPACT_RUN_MAX
        and figures["nullable_type_lists"] == 0
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
