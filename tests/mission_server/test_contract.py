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

MISSION = str(Path(sys.executable).with_name("mission"))

TOOLS = {
    # status
    "server_status",
    # missions and runs
    "create_mission",
    "list_missions",
    "get_mission",
    "start_run",
    "get_run",
    "list_runs",
    "update_run",
    "cancel_run",
    "pause_run",
    "resume_run",
    "set_run_variables",
    "get_run_variables",
    # plans and events
    "create_plan",
    "add_plan_step",
    "update_plan_step",
    "log_event",
    "list_events",
    # assistants and numbers
    "create_assistant",
    "update_assistant",
    "list_assistants",
    "list_phone_numbers",
    "assign_phone_number",
    # calls
    "schedule_call",
    "schedule_sms",
    "get_scheduled_call",
    "list_scheduled_calls",
    "cancel_scheduled_call",
    "wait_for_call",
    # conversations, insights, memory, webhooks
    "get_conversation",
    "get_conversation_insights",
    "create_insight",
    "create_insight_group",
    "assign_insight_group",
    "list_prior_conversations",
    "list_webhook_deliveries",
    "redeliver_webhook",
    # do-not-call list
    "add_do_not_call",
    "remove_do_not_call",
    "list_do_not_call",
    # the planner
    "run_mission",
    "approve_run",
}

RESOURCE_TEMPLATES = {
    "mission://missions/{mission_id}",
    "mission://runs/{run_id}",
    "mission://runs/{run_id}/plan",
    "mission://runs/{run_id}/events",
    "mission://runs/{run_id}/calls",
    "mission://runs/{run_id}/result",
    "mission://conversations/{conversation_id}",
}
RESOURCES = {"mission://missions"}
PROMPTS = {"plan_mission": {"request"}, "negotiate_quotes": {"service", "targets"}}


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
        assert tool.description and tool.annotations and tool.annotations.title, tool.name
