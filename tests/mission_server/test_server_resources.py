"""The MCP resources and prompts, and a whole negotiation mission driven through the tools
against the simulated world (baseline call, leverage call armed with the best quote so far,
insights, result) — in process, through the SDK's ``Client``."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from mission_server.clock import VirtualClock
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.services.context import Context
from mission_server.settings import PACKAGED_WORLD, Settings
from mission_server.telephony.simulated.provider import SimulatedProvider
from tests.support.contract import RESOURCE_TEMPLATES
from tests.support.mcpkit import ok

pytestmark = pytest.mark.anyio

LAKEFRONT = "+13125550101"
CHICAGO_GRILL = "+13125550102"


NEGOTIATOR = (
    "You are calling {{business_name}} to get a catering quote for a corporate lunch for 50 "
    "people. Ask for their price per person. {{#best_quote}}Another caterer quoted "
    "{{best_quote}}; ask whether they can beat it.{{/best_quote}}"
)


def build_server(ctx: Context, **options: Any):
    from mission_server.mcp.server import build_server as build

    return build(ctx, **options)


@pytest.fixture
def sim_ctx(engine) -> Context:
    """The packaged world on a virtual clock, with offline insight extraction on call end."""
    from mission_server.engine.listeners import install_listeners
    from mission_server.insights.offline import OfflineExtractor

    provider = SimulatedProvider.from_path(PACKAGED_WORLD)
    assert provider.world.start_time is not None
    ctx = Context(
        engine=engine,
        clock=VirtualClock(provider.world.start_time),
        provider=provider,
        settings=Settings(),
        extractor=OfflineExtractor(),
    )
    install_listeners(ctx)
    return ctx


async def read_json(client: Client, uri: str) -> Any:
    result = await client.read_resource(uri)
    [content] = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)


async def negotiate(client: Client, ctx: Context) -> dict[str, Any]:
    """Run the catering mission of the reference guide through the tools; return the ids."""
    quote = await ok(
        client,
        "create_insight",
        name="quote",
        instructions="The final price per person they offered.",
        parameters=[
            {
                "name": "price_per_person",
                "type": "number",
                "required": True,
                "description": "final price per person in dollars",
            }
        ],
    )
    group = await ok(
        client, "create_insight_group", name="Catering quote", insight_ids=[quote["insight_id"]]
    )
    mission = await ok(client, "create_mission", name="Corporate catering quotes")
    run = await ok(client, "start_run", mission_id=mission["mission_id"], input={"guests": 50})
    run_id = run["run_id"]
    await ok(
        client,
        "create_plan",
        run_id=run_id,
        steps=[
            {"step_id": "call-lakefront", "description": "Baseline quote"},
            {"step_id": "call-chicago-grill", "description": "Leverage call"},
        ],
    )
    assistant = await ok(
        client,
        "create_assistant",
        name="Catering Quote Negotiator",
        instructions=NEGOTIATOR,
        greeting="Hi, I'm calling about catering for a corporate event.",
        run_id=run_id,
    )
    settings = await ok(
        client,
        "assign_insight_group",
        assistant_id=assistant["assistant_id"],
        insight_group_id=group["insight_group_id"],
    )
    assert settings["insight_group_id"] == group["insight_group_id"]
    await ok(client, "assign_phone_number", assistant_id=assistant["assistant_id"], run_id=run_id)

    results = {}
    for step_id, target, business in (
        ("call-lakefront", LAKEFRONT, "Lakefront Catering"),
        ("call-chicago-grill", CHICAGO_GRILL, "Chicago Grill Co"),
    ):
        await ok(client, "update_plan_step", run_id=run_id, step_id=step_id, status="in_progress")
        call = await ok(
            client,
            "schedule_call",
            assistant_id=assistant["assistant_id"],
            to=target,
            dynamic_variables={"business_name": business},
            run_id=run_id,
            step_id=step_id,
            idempotency_key=f"{run_id}:{step_id}",
        )
        run_until_idle(Dispatcher(ctx), ctx.clock)
        waited = await ok(
            client, "wait_for_call", scheduled_event_id=call["scheduled_event_id"], timeout_secs=30
        )
        price = waited["insights"][0]["result"]["price_per_person"]
        results[business] = {"price": price, "conversation_id": waited["conversation_id"]}
        await ok(client, "update_plan_step", run_id=run_id, step_id=step_id, status="completed")
        await ok(
            client,
            "set_run_variables",
            run_id=run_id,
            variables={"best_quote": f"${min(r['price'] for r in results.values())} per person"},
        )
    await ok(
        client,
        "update_run",
        run_id=run_id,
        status="succeeded",
        result_summary="| Caterer | Quote |\n|---|---|\n| Chicago Grill Co | $62 |",
        result_payload={"quotes": results, "recommendation": "Chicago Grill Co"},
    )
    return {"mission_id": mission["mission_id"], "run_id": run_id, "results": results}


# --------------------------------------------------------------------------- the whole mission


async def test_a_negotiation_uses_the_baseline_quote_as_leverage(sim_ctx):
    async with Client(build_server(sim_ctx, wait_poll_secs=0.01)) as client:
        mission = await negotiate(client, sim_ctx)
        lakefront = mission["results"]["Lakefront Catering"]
        grill = mission["results"]["Chicago Grill Co"]
        second = await ok(client, "get_conversation", conversation_id=grill["conversation_id"])
        insights = await ok(
            client, "get_conversation_insights", conversation_id=grill["conversation_id"]
        )
        detail = await ok(client, "get_run", run_id=mission["run_id"], detail="full")

    assert lakefront["price"] == 65
    assert grill["price"] == 62  # Chicago Grill beat the $65 baseline it was told about
    spoken = " ".join(m["text"] for m in second["messages"] if m["role"] == "assistant")
    assert "$65 per person" in spoken  # the run variable reached the leverage call
    assert [i["result"] for i in insights["insights"]] == [{"price_per_person": 62}]
    assert [i["status"] for i in second["insights"]] == ["completed"]
    assert detail["status"] == "succeeded"
    assert [s["status"] for s in detail["plan"]] == ["completed", "completed"]
    assert len(detail["conversations"]) == 2
    assert len(detail["scheduled_calls"]) == 2


async def test_a_wait_started_before_the_call_returns_its_insights_in_one_answer(sim_ctx):
    started = anyio.Event()
    seen_completed = threading.Event()
    offline = sim_ctx.extractor

    class ExtractsOnceTheWaitSawTheCallEnd:
        # Holds extraction until wait_for_call has reported the call completed, so the
        # answer can only carry insights if the tool waits for them after the call ends.
        name = "offline"

        def extract(self, definition: Any, transcript: Any, **kwargs: Any) -> Any:
            assert seen_completed.wait(timeout=60)
            return offline.extract(definition, transcript, **kwargs)

    sim_ctx.extractor = ExtractsOnceTheWaitSawTheCallEnd()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        started.set()
        if message and message.startswith("completed"):
            seen_completed.set()

    outcome: dict[str, Any] = {}
    async with Client(build_server(sim_ctx, wait_poll_secs=0.01)) as client:
        quote = await ok(
            client,
            "create_insight",
            name="quote",
            instructions="Their price.",
            parameters=[{"name": "price_per_person", "type": "number", "required": True}],
        )
        group = await ok(
            client, "create_insight_group", name="q", insight_ids=[quote["insight_id"]]
        )
        assistant = await ok(
            client,
            "create_assistant",
            name="Negotiator",
            instructions=NEGOTIATOR,
            insight_group_id=group["insight_group_id"],
        )
        await ok(client, "assign_phone_number", assistant_id=assistant["assistant_id"])
        call = await ok(
            client,
            "schedule_call",
            assistant_id=assistant["assistant_id"],
            to=LAKEFRONT,
            dynamic_variables={"business_name": "Lakefront Catering"},
        )

        async def wait() -> None:
            outcome["result"] = await client.call_tool(
                "wait_for_call",
                {"scheduled_event_id": call["scheduled_event_id"], "timeout_secs": 60},
                progress_callback=on_progress,
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await started.wait()  # the tool is waiting; now the call happens (and ends)
            await anyio.to_thread.run_sync(run_until_idle, Dispatcher(sim_ctx), sim_ctx.clock)

    result = outcome["result"].structured_content
    assert result["status"] == "completed" and result["timed_out"] is False
    assert [i["result"] for i in result["insights"]] == [{"price_per_person": 65}]
    assert any("$65 per person" in m["text"] for m in result["transcript"])


# --------------------------------------------------------------------------- resources


async def test_resources_are_listed(ctx):
    async with Client(build_server(ctx)) as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates

    assert [str(r.uri) for r in resources] == ["mission://missions"]
    assert {t.uri_template for t in templates} == RESOURCE_TEMPLATES
    assert all(t.description for t in templates)
    result = next(t for t in templates if t.uri_template.endswith("/result"))
    assert result.mime_type == "text/markdown"


async def test_every_resource_shows_the_recorded_mission(sim_ctx):
    async with Client(build_server(sim_ctx, wait_poll_secs=0.01)) as client:
        mission = await negotiate(client, sim_ctx)
        run_id = mission["run_id"]
        missions = await read_json(client, "mission://missions")
        one = await read_json(client, f"mission://missions/{mission['mission_id']}")
        run = await read_json(client, f"mission://runs/{run_id}")
        plan = await read_json(client, f"mission://runs/{run_id}/plan")
        events = await read_json(client, f"mission://runs/{run_id}/events")
        calls = await read_json(client, f"mission://runs/{run_id}/calls")
        conversation_id = mission["results"]["Chicago Grill Co"]["conversation_id"]
        conversation = await read_json(client, f"mission://conversations/{conversation_id}")
        result = await client.read_resource(f"mission://runs/{run_id}/result")

    assert [m["mission_id"] for m in missions["missions"]] == [mission["mission_id"]]
    assert [r["run_id"] for r in one["runs"]] == [run_id]
    assert run["status"] == "succeeded" and run["mission_name"] == "Corporate catering quotes"
    assert [s["step_id"] for s in plan["steps"]] == ["call-lakefront", "call-chicago-grill"]
    types = [e["type"] for e in events["events"]]
    assert types[0] == "status_change" and "step_completed" in types
    assert [c["telnyx_end_user_target"] for c in calls["scheduled_calls"]] == [
        LAKEFRONT,
        CHICAGO_GRILL,
    ]
    assert all(c["call_attempts"] for c in calls["scheduled_calls"])
    assert conversation["messages"] and conversation["insights"][0]["result"] == {
        "price_per_person": 62
    }
    [content] = result.contents
    assert content.mime_type == "text/markdown"
    assert "| Chicago Grill Co | $62 |" in content.text
    payload = content.text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(payload)["recommendation"] == "Chicago Grill Co"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("mission://missions/m-404", "mission 'm-404' not found"),
        ("mission://runs/r-404", "run 'r-404' not found"),
        ("mission://runs/r-404/plan", "run 'r-404' not found"),
        ("mission://runs/r-404/events", "run 'r-404' not found"),
        ("mission://runs/r-404/calls", "run 'r-404' not found"),
        ("mission://runs/r-404/result", "run 'r-404' not found"),
        ("mission://conversations/c-404", "conversation 'c-404' not found"),
        ("mission://nothing-here", "Unknown resource"),
    ],
)
async def test_unknown_resources_are_errors_and_the_server_keeps_serving(ctx, uri, message):
    async with Client(build_server(ctx)) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource(uri)
        after = await read_json(client, "mission://missions")

    assert message in str(raised.value)
    assert after == {"missions": [], "next_cursor": None}


async def test_a_run_without_result_says_so(ctx):
    async with Client(build_server(ctx)) as client:
        mission = await ok(client, "create_mission", name="Quotes")
        run = await ok(client, "start_run", mission_id=mission["mission_id"])
        result = await client.read_resource(f"mission://runs/{run['run_id']}/result")

    text = result.contents[0].text
    assert "Status: **running**" in text
    assert "_No result summary recorded yet._" in text


# --------------------------------------------------------------------------- prompts


async def test_prompts_are_listed_with_their_arguments(ctx):
    async with Client(build_server(ctx)) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}

    assert set(prompts) == {"plan_mission", "negotiate_quotes"}
    assert [(a.name, a.required) for a in prompts["plan_mission"].arguments] == [("request", True)]
    assert [(a.name, a.required) for a in prompts["negotiate_quotes"].arguments] == [
        ("service", True),
        ("targets", True),
    ]
    assert all(p.description for p in prompts.values())


async def test_plan_mission_walks_through_the_tools(ctx):
    request = "Find caterers in Chicago for 50 people and get quotes"
    async with Client(build_server(ctx)) as client:
        prompt = await client.get_prompt("plan_mission", {"request": request})

    [message] = prompt.messages
    text = message.content.text
    assert message.role == "user"
    assert request in text
    steps = [
        "server_status",
        "create_mission",
        "start_run",
        "create_plan",
        "create_assistant",
        "assign_phone_number",
        "schedule_call",
        "wait_for_call",
        "set_run_variables",
        "update_run",
    ]
    positions = [text.index(f"`{tool}`") for tool in steps]
    assert positions == sorted(positions)  # in the order an agent should call them


async def test_negotiate_quotes_orders_baseline_then_leverage(ctx):
    targets = "Lakefront Catering (+13125550101), Chicago Grill Co; Prairie Table Events"
    async with Client(build_server(ctx)) as client:
        prompt = await client.get_prompt(
            "negotiate_quotes", {"service": "catering for 50", "targets": targets}
        )
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("negotiate_quotes", {"service": "catering"})

    text = prompt.messages[0].content.text
    assert "catering for 50" in text
    assert "1. Lakefront Catering (+13125550101)" in text
    assert "2. Chicago Grill Co" in text and "3. Prairie Table Events" in text
    assert "Call Lakefront Catering (+13125550101) first for a baseline quote" in text
    assert "Then call Chicago Grill Co, then Prairie Table Events" in text
    assert "set_run_variables" in text and "best_quote" in text
    assert "targets" in str(missing.value)
