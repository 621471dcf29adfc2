"""The do-not-call tools over MCP (in process, the SDK's ``Client``): add, list and remove
entries, normalised, with annotations; a listed number is refused at scheduling and a call
scheduled before it was listed is never placed."""

from __future__ import annotations

import pytest
from mcp.client import Client

from mission_server.mcp.server import build_server
from mission_server.services import do_not_call as do_not_call_service
from tests.mission_server.test_server import dispatch
from tests.support.mcpkit import err, hint, ok

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(ctx):
    return build_server(ctx)


async def test_the_tools_are_listed_with_annotations(server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    add, remove, listed = (
        tools["add_do_not_call"],
        tools["remove_do_not_call"],
        tools["list_do_not_call"],
    )
    for tool in (add, remove, listed):
        assert tool.description and tool.output_schema["type"] == "object"
    assert hint(add, "read_only_hint") is False and hint(add, "destructive_hint") is False
    assert hint(add, "idempotent_hint") is True
    assert hint(remove, "destructive_hint") is True and hint(remove, "idempotent_hint")
    assert hint(listed, "read_only_hint") is True
    assert set(add.input_schema["properties"]) == {"target", "reason"}
    assert add.input_schema["required"] == ["target"]


async def test_add_list_and_remove_normalise_targets(ctx, server):
    async with Client(server) as client:
        added = await ok(client, "add_do_not_call", target="(312) 555-0101", reason="asked")
        again = await ok(client, "add_do_not_call", target="+13125550101", reason="other")
        sip = await ok(client, "add_do_not_call", target="sip:desk@example.com")
        listed = await ok(client, "list_do_not_call")
        removed = await ok(client, "remove_do_not_call", target="312-555-0101")
        missing = await ok(client, "remove_do_not_call", target="+13125550101")
        after = await ok(client, "list_do_not_call")

    assert added["target"] == "+13125550101" and added["reason"] == "asked"
    assert added["already_listed"] is False and added["open_calls"] == 0
    assert again["already_listed"] is True and again["reason"] == "asked"  # first reason stays
    assert sip["target"] == "sip:desk@example.com" and "reason" not in sip
    assert [e["target"] for e in listed["entries"]] == ["+13125550101", "sip:desk@example.com"]
    assert listed["entries"][0]["created_at"]
    assert removed == {"target": "+13125550101", "removed": True}
    assert missing == {"target": "+13125550101", "removed": False}
    assert [e["target"] for e in after["entries"]] == ["sip:desk@example.com"]
    assert do_not_call_service.list_do_not_call(ctx) == ["sip:desk@example.com"]


async def test_bad_targets_are_tool_errors_naming_the_field(ctx, server):
    async with Client(server) as client:
        bad_add = await err(client, "add_do_not_call", target="not a number")
        bad_remove = await err(client, "remove_do_not_call", target="")
        listed = await ok(client, "list_do_not_call")
    assert "target must be a phone number" in bad_add and "'not a number'" in bad_add
    assert "target must be a phone number" in bad_remove
    assert listed == {"entries": [], "next_cursor": None}


async def test_a_listed_number_is_refused_and_an_earlier_call_to_it_is_never_placed(
    ctx, provider, server
):
    async with Client(server) as client:
        assistant = await ok(client, "create_assistant", name="Caller", instructions="Ask.")
        assistant_id = assistant["assistant_id"]
        await ok(client, "assign_phone_number", assistant_id=assistant_id)
        before = await ok(client, "schedule_call", assistant_id=assistant_id, to="+13125550101")
        added = await ok(client, "add_do_not_call", target="+13125550101", reason="asked")
        refused = await err(client, "schedule_call", assistant_id=assistant_id, to="3125550101")
        dispatch(ctx)
        done = await ok(
            client, "get_scheduled_call", scheduled_event_id=before["scheduled_event_id"]
        )

    assert added["open_calls"] == 1
    assert "do-not-call" in refused
    assert done["status"] == "failed" and done["errors"][0]["code"] == "do_not_call"
    assert done["call_attempts"] == [] and provider.placed == []
