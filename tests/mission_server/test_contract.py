"""The contract clients see: every tool, resource template, resource and prompt of the server
exactly as ``mission serve`` assembles it, read from the running process over stdio.

A tool dropped from (or added to) the server without updating this list fails here, whichever
module registers it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.support.contract import PROMPTS, RESOURCE_TEMPLATES, RESOURCES, TOOLS

MISSION = str(Path(sys.executable).with_name("mission"))


@pytest.mark.slow
@pytest.mark.anyio
async def test_mission_serve_offers_exactly_the_documented_contract(tmp_path):
    params = StdioServerParameters(
        command=MISSION,
        args=["serve", "--db", str(tmp_path / "m.db"), "--simulate", "--no-dispatcher"],
    )
    async with Client(params) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        prompts = {
            p.name: {a.name for a in (p.arguments or [])}
            for p in (await client.list_prompts()).prompts
        }

    assert set(tools) == TOOLS
    assert templates == RESOURCE_TEMPLATES
    assert resources == RESOURCES
    assert prompts == PROMPTS
    for tool in tools.values():
        assert tool.description and tool.title and tool.annotations, tool.name
