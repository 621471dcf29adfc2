"""The MCP tools, driven in process through the SDK's ``Client``: each tool's behaviour as an
agent sees it (structured results), and every error path as an ``isError`` result whose text
names the field, the rule and the value — after which the server keeps serving and nothing
partial was written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from mcp.client import Client

from mission_server.clock import AcceleratedClock
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.insights.offline import OfflineExtractor
from mission_server.services import assistants
from mission_server.services import do_not_call as do_not_call_service
from mission_server.services.context import Context
from mission_server.settings import Settings
from tests.support.contract import TOOLS
from tests.support.mcpkit import err, hint, ok

pytestmark = pytest.mark.anyio

CHICAGO = "+13125550101"
T0_ISO = "2026-03-10T15:00:00Z"


def build_server(ctx: Context, **options: Any):
    from mission_server.mcp.server import build_server as build

    return build(ctx, **options)


@pytest.fixture
def server(ctx):
    return build_server(ctx, wait_poll_secs=0.01)


def dispatch(ctx: Context) -> None:
    run_until_idle(Dispatcher(ctx), ctx.clock)


async def new_run(client: Client) -> str:
    mission = await ok(client, "create_mission", name="Catering quotes")
    run = await ok(client, "start_run", mission_id=mission["mission_id"])
    return run["run_id"]


async def caller(client: Client, run_id: str | None = None, **extra: Any) -> str:
    arguments: dict[str, Any] = {"name": "Negotiator", "instructions": "Ask for a quote."}
    if run_id:
        arguments["run_id"] = run_id
    arguments.update(extra)
    assistant = await ok(client, "create_assistant", **arguments)
    await ok(client, "assign_phone_number", assistant_id=assistant["assistant_id"])
    return assistant["assistant_id"]


# --------------------------------------------------------------------------- listing


async def test_every_tool_is_listed_with_an_output_schema_and_annotations(server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}

    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.title and tool.annotations is not None
    assert hint(tools["get_run"], "read_only_hint") is True
    assert hint(tools["wait_for_call"], "read_only_hint") is True
    assert hint(tools["cancel_run"], "destructive_hint") is True
    assert hint(tools["cancel_scheduled_call"], "destructive_hint") is True
    assert hint(tools["cancel_scheduled_call"], "idempotent_hint") is True
    assert hint(tools["create_mission"], "read_only_hint") is False
    assert hint(tools["create_mission"], "destructive_hint") is False
    assert hint(tools["log_event"], "idempotent_hint") is False
    assert hint(tools["update_plan_step"], "idempotent_hint") is True
    assert hint(tools["schedule_call"], "open_world_hint") is True
    assert hint(tools["get_run"], "open_world_hint") is False
    # Flat parameters: an agent passes run_id, not {"args": {"run_id": ...}}.
    assert set(tools["get_run"].input_schema["properties"]) == {"run_id", "detail"}
    for name in ("list_prior_conversations", "list_webhook_deliveries"):
        assert hint(tools[name], "read_only_hint") is True, name
        assert hint(tools[name], "open_world_hint") is False, name
    redeliver = tools["redeliver_webhook"]
    assert (
        hint(redeliver, "read_only_hint") is False and hint(redeliver, "destructive_hint") is False
    )
    assert hint(redeliver, "idempotent_hint") is False  # every call is a new delivery
    assert hint(redeliver, "open_world_hint") is True  # it POSTs to an outside endpoint


async def test_wait_for_call_shows_its_default_and_range_in_the_input_schema(server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    timeout = tools["wait_for_call"].input_schema["properties"]["timeout_secs"]
    assert timeout["default"] == 60
    assert timeout["minimum"] == 0 and timeout["maximum"] == 300
    assert "timeout_secs" not in tools["wait_for_call"].input_schema.get("required", [])


# --------------------------------------------------------------------------- status


async def test_server_status_says_provider_time_database_and_dispatcher(ctx):
    ctx.extractor = OfflineExtractor()
    server = build_server(ctx, dispatcher_running=lambda: True)
    async with Client(server) as client:
        status = await ok(client, "server_status")

    assert status["provider"] == "scripted"
    assert status["real_calls"] is False
    assert status["server_time"] == T0_ISO
    assert status["clock"] == "virtual"
    assert "sim_speed" not in status  # no value outside simulation: left out
    assert status["database"] == "sqlite"
    assert status["extractor"] == "offline"
    assert status["dispatcher_running"] is True


async def test_server_status_in_simulation_reports_the_speed(engine, provider):
    start = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    ctx = Context(
        engine=engine,
        clock=AcceleratedClock(start, speed=60),
        provider=provider,
        settings=Settings(),
    )
    async with Client(build_server(ctx)) as client:
        status = await ok(client, "server_status")

    assert status["clock"] == "accelerated"
    assert status["sim_speed"] == 60
    assert status["dispatcher_running"] is False
    assert datetime.fromisoformat(status["server_time"]) >= start


# --------------------------------------------------------------------------- missions, runs


async def test_missions_are_created_read_and_paged(server, clock):
    async with Client(server) as client:
        first = await ok(client, "create_mission", name="First", metadata={"team": "ops"})
        clock.advance(60)
        second = await ok(
            client, "create_mission", name="Second", instructions="Call three caterers."
        )
        got = await ok(client, "get_mission", mission_id=first["mission_id"])
        page1 = await ok(client, "list_missions", limit=1)
        page2 = await ok(client, "list_missions", limit=1, cursor=page1["next_cursor"])

    assert got["name"] == "First" and got["metadata"] == {"team": "ops"}
    assert [m["mission_id"] for m in page1["missions"]] == [second["mission_id"]]
    assert [m["mission_id"] for m in page2["missions"]] == [first["mission_id"]]
    assert page2["next_cursor"] is None


async def test_mission_errors_name_field_rule_and_value(server):
    async with Client(server) as client:
        empty = await err(client, "create_mission", name="   ")
        unknown = await err(client, "get_mission", mission_id="m-404")
        bad_limit = await err(client, "list_missions", limit=0)
        bad_cursor = await err(client, "list_missions", cursor="nope")
        wrong_type = await err(client, "create_mission", name="x", metadata=["a"])
        missing = await err(client, "create_mission")
        page = await ok(client, "list_missions")

    assert "name must not be empty" in empty
    assert "mission 'm-404' not found" in unknown
    assert "limit must be between 1 and 500, got 0" in bad_limit
    assert "cursor must be a next_cursor from a previous page of list_missions" in bad_cursor
    assert "got 'nope'" in bad_cursor
    assert "metadata" in wrong_type and '["a"]' in wrong_type
    assert "name is required" in missing
    assert page["missions"] == []  # none of the refused calls wrote anything


async def test_runs_start_list_and_detail(server):
    async with Client(server) as client:
        mission = await ok(client, "create_mission", name="Quotes")
        run = await ok(client, "start_run", mission_id=mission["mission_id"], input={"guests": 50})
        other = await ok(client, "start_run", mission_id=mission["mission_id"])
        await ok(client, "cancel_run", run_id=other["run_id"], reason="duplicate")
        detail = await ok(client, "get_run", run_id=run["run_id"], detail="full")
        running = await ok(client, "list_runs", status="running")
        of_mission = await ok(client, "list_runs", mission_id=mission["mission_id"])
        unknown_mission = await err(client, "start_run", mission_id="m-404")
        bad_status = await err(client, "list_runs", status="done")
        unknown_run = await err(client, "get_run", run_id="r-404")

    assert run["status"] == "running"
    assert detail["mission_name"] == "Quotes"
    assert detail["input"] == {"guests": 50}
    assert detail["plan"] == [] and detail["scheduled_calls"] == []
    assert [r["run_id"] for r in running["runs"]] == [run["run_id"]]
    assert {r["run_id"] for r in of_mission["runs"]} == {run["run_id"], other["run_id"]}
    assert "mission 'm-404' not found" in unknown_mission
    assert "status must be one of" in bad_status and "got 'done'" in bad_status
    assert "run 'r-404' not found" in unknown_run


async def test_update_run_records_the_result_and_refuses_illegal_moves_without_writing(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        done = await ok(
            client,
            "update_run",
            run_id=run_id,
            status="succeeded",
            result_summary="**Chicago Grill Co** at $62 per person.",
            result_payload={"recommendation": "Chicago Grill Co", "price": 62},
        )
        refused = await err(
            client, "update_run", run_id=run_id, status="running", result_summary="overwritten"
        )
        unknown_status = await err(client, "update_run", run_id=run_id, status="finished")
        after = await ok(client, "get_run", run_id=run_id, detail="full")

    assert done["status"] == "succeeded" and done["finished_at"] is not None
    assert "cannot move from 'succeeded' to 'running'" in refused
    assert "status must be one of" in unknown_status and "'finished'" in unknown_status
    assert after["status"] == "succeeded"
    assert after["result_summary"] == "**Chicago Grill Co** at $62 per person."
    assert after["result_payload"] == {"recommendation": "Chicago Grill Co", "price": 62}


async def test_cancel_run_cancels_its_pending_calls(server, ctx, provider):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id)
        call = await ok(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, run_id=run_id
        )
        run = await ok(client, "cancel_run", run_id=run_id, reason="user changed their mind")
        dispatch(ctx)
        after = await ok(
            client, "get_scheduled_call", scheduled_event_id=call["scheduled_event_id"]
        )
        again = await err(client, "pause_run", run_id=run_id)

    assert run["status"] == "cancelled" and run["error"] == "user changed their mind"
    assert after["status"] == "cancelled"
    assert provider.placed == []
    assert "cannot move from 'cancelled' to 'paused'" in again


async def test_pause_holds_calls_and_resume_releases_them(server, ctx, provider):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id)
        paused = await ok(client, "pause_run", run_id=run_id)
        call = await ok(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, run_id=run_id
        )
        dispatch(ctx)
        held = await ok(client, "get_scheduled_call", scheduled_event_id=call["scheduled_event_id"])
        resumed = await ok(client, "resume_run", run_id=run_id)
        dispatch(ctx)
        done = await ok(client, "get_scheduled_call", scheduled_event_id=call["scheduled_event_id"])

    assert paused["status"] == "paused"
    assert held["status"] == "pending" and held["hold_reason"] == "paused"
    assert resumed["status"] == "running"
    assert done["status"] == "completed"
    assert len(provider.placed) == 1


# --------------------------------------------------------------------------- plan and events


async def test_plan_steps_move_and_log_their_own_events(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        plan = await ok(
            client,
            "create_plan",
            run_id=run_id,
            steps=[
                {"step_id": "create-assistant", "description": "Create the assistant"},
                {"step_id": "call-lakefront", "description": "Baseline call"},
            ],
        )
        extra = await ok(
            client,
            "add_plan_step",
            run_id=run_id,
            step_id="compare",
            description="Compare and recommend",
        )
        await ok(
            client,
            "update_plan_step",
            run_id=run_id,
            step_id="call-lakefront",
            status="in_progress",
        )
        step = await ok(
            client,
            "update_plan_step",
            run_id=run_id,
            step_id="call-lakefront",
            status="completed",
            metadata={"price": 65},
        )
        started = await ok(client, "list_events", run_id=run_id, type="step_started")
        of_step = await ok(client, "list_events", run_id=run_id, step_id="call-lakefront")
        detail = await ok(client, "get_run", run_id=run_id, detail="full")

    assert [s["step_id"] for s in plan["steps"]] == ["create-assistant", "call-lakefront"]
    assert all(s["status"] == "pending" for s in plan["steps"])
    assert extra["sequence"] > plan["steps"][-1]["sequence"]
    assert step["status"] == "completed" and step["metadata"] == {"price": 65}
    assert [e["step_id"] for e in started["events"]] == ["call-lakefront"]
    assert [e["type"] for e in of_step["events"]] == ["step_started", "step_completed"]
    assert [s["step_id"] for s in detail["plan"]] == [
        "create-assistant",
        "call-lakefront",
        "compare",
    ]


async def test_plan_errors_name_the_step_field_and_write_nothing(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        await ok(
            client,
            "create_plan",
            run_id=run_id,
            steps=[{"step_id": "first", "description": "First"}],
        )
        bad_slug = await err(
            client,
            "create_plan",
            run_id=run_id,
            steps=[
                {"step_id": "ok-step", "description": "Fine"},
                {"step_id": "Bad Step", "description": "Not a slug"},
            ],
        )
        duplicate = await err(
            client,
            "create_plan",
            run_id=run_id,
            steps=[{"step_id": "a", "description": "A"}, {"step_id": "a", "description": "B"}],
        )
        missing = await err(client, "create_plan", run_id=run_id, steps=[{"step_id": "x"}])
        extra_field = await err(
            client,
            "create_plan",
            run_id=run_id,
            steps=[{"step_id": "x", "description": "X", "owner": "me"}],
        )
        empty = await err(client, "create_plan", run_id=run_id, steps=[])
        unknown_step = await err(
            client, "update_plan_step", run_id=run_id, step_id="nope", status="completed"
        )
        await ok(client, "update_plan_step", run_id=run_id, step_id="first", status="completed")
        backwards = await err(
            client, "update_plan_step", run_id=run_id, step_id="first", status="in_progress"
        )
        bad_status = await err(
            client, "update_plan_step", run_id=run_id, step_id="first", status="done"
        )
        plan = await ok(client, "get_run", run_id=run_id, detail="full")

    assert "steps[1].step_id must be a slug" in bad_slug and "got 'Bad Step'" in bad_slug
    assert 'steps must have unique step_id values, got ["a"]' in duplicate
    assert "steps.0.description is required" in missing
    assert "steps.0.owner extra inputs are not permitted, got 'me'" in extra_field
    assert "steps must be a non-empty list" in empty
    assert f"plan step '{run_id}/nope' not found" in unknown_step
    assert "cannot move from 'completed' to 'in_progress'" in backwards
    assert "status must be one of" in bad_status and "got 'done'" in bad_status
    # The refused plans left nothing behind: "ok-step" of the half-valid plan is not there.
    assert [s["step_id"] for s in plan["plan"]] == ["first"]


async def test_log_event_with_a_repeated_key_returns_the_first_event(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        first = await ok(
            client,
            "log_event",
            run_id=run_id,
            type="message",
            summary="Baseline is $65",
            payload={"price": 65},
            idempotency_key="baseline",
        )
        again = await ok(
            client,
            "log_event",
            run_id=run_id,
            type="message",
            summary="Different text",
            idempotency_key="baseline",
        )
        messages = await ok(client, "list_events", run_id=run_id, type="message")
        bad_type = await err(client, "log_event", run_id=run_id, type="note", summary="x")
        empty = await err(client, "log_event", run_id=run_id, type="custom", summary="")
        unknown_run = await err(client, "log_event", run_id="r-404", type="custom", summary="x")
        unknown_list = await err(client, "list_events", run_id="r-404")
        bad_limit = await err(client, "list_events", run_id=run_id, limit=501)

    assert again["event_id"] == first["event_id"]
    assert again["summary"] == "Baseline is $65"
    assert [e["summary"] for e in messages["events"]] == ["Baseline is $65"]
    assert "type must be one of" in bad_type and "got 'note'" in bad_type
    assert "summary must not be empty" in empty
    assert "run 'r-404' not found" in unknown_run and "run 'r-404' not found" in unknown_list
    assert "limit must be between 1 and 500, got 501" in bad_limit


# --------------------------------------------------------------------------- assistants, numbers


async def test_assistants_and_phone_numbers(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        created = await ok(
            client,
            "create_assistant",
            name="Negotiator",
            instructions="Ask for a quote.",
            greeting="Hi!",
            dynamic_variables={"event": "lunch"},
            run_id=run_id,
        )
        assistant_id = created["assistant_id"]
        before = await ok(client, "list_phone_numbers", available_only=True)
        number = await ok(client, "assign_phone_number", assistant_id=assistant_id)
        same = await ok(client, "assign_phone_number", assistant_id=assistant_id)
        after = await ok(client, "list_phone_numbers", available_only=True)
        everything = await ok(client, "list_phone_numbers")
        updated = await ok(
            client, "update_assistant", assistant_id=assistant_id, greeting="Hello there!"
        )
        of_run = await ok(client, "list_assistants", run_id=run_id)
        detail = await ok(client, "get_run", run_id=run_id, detail="full")

    assert created["provider"] == "scripted" and created["provider_ref"]
    assert len(before["phone_numbers"]) == 2
    assert same["phone_number"] == number["phone_number"]
    assert [n["phone_number"] for n in after["phone_numbers"]] != [number["phone_number"]]
    assert len(after["phone_numbers"]) == 1
    assert {n.get("assistant_id") for n in everything["phone_numbers"]} == {assistant_id, None}
    assert updated["greeting"] == "Hello there!"
    assert updated["instructions"] == "Ask for a quote."  # untouched fields stay
    assert updated["phone_numbers"] == [number["phone_number"]]
    assert [a["assistant_id"] for a in of_run["assistants"]] == [assistant_id]
    assert [a["assistant_id"] for a in detail["assistants"]] == [assistant_id]


async def test_assistant_and_number_errors(server):
    async with Client(server) as client:
        first = await caller(client)
        taken = (await ok(client, "get_run", run_id=await new_run(client), detail="full"))[
            "assistants"
        ]
        second = await ok(client, "create_assistant", name="Other", instructions="Hi")
        numbers = await ok(client, "list_phone_numbers")
        mine = next(n for n in numbers["phone_numbers"] if n["assistant_id"] == first)
        conflict = await err(
            client,
            "assign_phone_number",
            assistant_id=second["assistant_id"],
            phone_number=mine["phone_number"],
        )
        not_ours = await err(
            client,
            "assign_phone_number",
            assistant_id=second["assistant_id"],
            phone_number="+13125559999",
        )
        bad_number = await err(
            client,
            "assign_phone_number",
            assistant_id=second["assistant_id"],
            phone_number="call me",
        )
        unknown = await err(client, "update_assistant", assistant_id="a-404", name="x")
        unknown_run = await err(
            client, "create_assistant", name="Ghost", instructions="Hi", run_id="r-404"
        )
        no_instructions = await err(client, "create_assistant", name="X", instructions=" ")
        unknown_group = await err(
            client, "create_assistant", name="X", instructions="Hi", insight_group_id="g-404"
        )
        listed = await ok(client, "list_assistants")

    assert taken == []
    assert f"already assigned to assistant {first}" in conflict
    assert "phone_number must be one of the account's numbers" in not_ours
    assert "+13125559999" in not_ours
    assert "phone_number" in bad_number and "call me" in bad_number
    assert "assistant 'a-404' not found" in unknown
    assert "run 'r-404' not found" in unknown_run
    assert "instructions must not be empty" in no_instructions
    assert "insight group 'g-404' not found" in unknown_group
    assert {a["name"] for a in listed["assistants"]} == {"Negotiator", "Other"}


async def test_assign_phone_number_says_how_to_get_one_when_none_is_free(server):
    async with Client(server) as client:
        await caller(client)
        await caller(client)
        third = await ok(client, "create_assistant", name="Third", instructions="Hi")
        refused = await err(client, "assign_phone_number", assistant_id=third["assistant_id"])

    assert "no free phone number" in refused
    assert "portal.telnyx.com" in refused


# --------------------------------------------------------------------------- scheduled calls


async def test_schedule_call_inside_calling_hours_is_due_at_once(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id)
        call = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            run_id=run_id,
            max_retries_client_errors=2,
            retry_interval_secs=300,
            conversation_metadata={"business": "Lakefront"},
        )

    assert call["status"] == "pending"
    assert call["telnyx_conversation_channel"] == "phone_call"
    assert call["telnyx_end_user_target"] == CHICAGO
    assert call["scheduled_at_fixed_datetime"] == T0_ISO
    assert call["max_retries_client_errors"] == 2 and call["retry_interval_secs"] == 300
    assert call["deferrals"] == [] and call["call_attempts"] == []
    assert call["timezones"] == ["America/Chicago"]


async def test_a_time_outside_calling_hours_is_moved_and_the_reason_is_given(server, ctx):
    async with Client(server) as client:
        assistant_id = await caller(client)
        # 03:00 in Chicago on Wednesday: moved to 09:00 local (14:00 UTC).
        call = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            scheduled_at="2026-03-11T08:00:00Z",
        )
        dispatch(ctx)
        waited = await ok(
            client,
            "wait_for_call",
            scheduled_event_id=call["scheduled_event_id"],
            timeout_secs=5,
        )

    assert call["scheduled_at_fixed_datetime"] == "2026-03-11T14:00:00Z"
    assert call["requested_at"] == "2026-03-11T08:00:00Z"
    [deferral] = call["deferrals"]
    assert deferral["moved_to"] == "2026-03-11T14:00:00Z"
    assert "outside calling hours" in deferral["reason"]
    assert waited["status"] == "completed"
    assert waited["call_attempts"][0]["attempted_at"] == "2026-03-11T14:00:00Z"
    assert "2026-03-11T14:00:00+00:00" in waited["calling_hours_note"]
    assert "outside calling hours" in waited["calling_hours_note"]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"max_retries_client_errors": 3}, "retry_interval_secs is required when"),
        ({"retry_interval_secs": 300}, "retry_interval_secs is only allowed when"),
        (
            {"max_retries_client_errors": 11, "retry_interval_secs": 300},
            "max_retries_client_errors must be between 0 and 10, got 11",
        ),
        (
            {"max_retries_client_errors": 2, "retry_interval_secs": 59},
            "retry_interval_secs must be between 60 and 86400, got 59",
        ),
        ({"scheduled_at": "2026-03-10T14:00:00Z"}, "must be in the future"),
        ({"scheduled_at": "tomorrow"}, "must be an ISO-8601 timestamp, got 'tomorrow'"),
        ({"scheduled_at": "2026-03-11T10:00:00"}, "must include a timezone offset"),
        ({"to": "not a number"}, "not a number"),
        ({"from_number": "+13125550199"}, "from_number must be a number assigned to this"),
        ({"run_id": "r-404"}, "run 'r-404' not found"),
        ({"assistant_id": "a-404"}, "assistant 'a-404' not found"),
        ({"max_retries_client_errors": "many"}, "max_retries_client_errors"),
    ],
)
async def test_schedule_call_refusals_name_the_rule_and_write_nothing(server, arguments, fragment):
    async with Client(server) as client:
        assistant_id = await caller(client)
        message = await err(
            client, "schedule_call", **{"assistant_id": assistant_id, "to": CHICAGO, **arguments}
        )
        listed = await ok(client, "list_scheduled_calls")

    assert fragment in message
    assert listed["scheduled_calls"] == []


async def test_schedule_call_guardrails(server, ctx):
    do_not_call_service.add_do_not_call(ctx, "+13125550111", reason="asked not to be called")
    async with Client(server) as client:
        no_number = await ok(client, "create_assistant", name="No number", instructions="Hi")
        needs_number = await err(
            client, "schedule_call", assistant_id=no_number["assistant_id"], to=CHICAGO
        )
        assistant_id = await caller(client)
        blocked = await err(client, "schedule_call", assistant_id=assistant_id, to="+13125550111")
        run_id = await new_run(client)
        await ok(client, "update_run", run_id=run_id, status="succeeded")
        finished = await err(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, run_id=run_id
        )
        no_step = await err(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            run_id=await new_run(client),
            step_id="call-x",
        )
        listed = await ok(client, "list_scheduled_calls")

    assert "from_number is required" in needs_number and "assign_phone_number" in needs_number
    assert "+13125550111 is on the do-not-call list" in blocked
    assert f"run_id '{run_id}' names a finished run (status succeeded)" in finished
    assert "step_id must name a step of the run's plan, got 'call-x'" in no_step
    assert listed["scheduled_calls"] == []


async def test_schedule_call_with_a_repeated_idempotency_key_returns_the_first_event(server):
    async with Client(server) as client:
        assistant_id = await caller(client)
        first = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            idempotency_key="run-1:call-lakefront",
        )
        again = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            idempotency_key="run-1:call-lakefront",
        )
        conflict = await err(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to="+13125550102",
            idempotency_key="run-1:call-lakefront",
        )
        listed = await ok(client, "list_scheduled_calls")

    assert again["scheduled_event_id"] == first["scheduled_event_id"]
    assert "run-1:call-lakefront" in conflict and "different parameters" in conflict
    assert len(listed["scheduled_calls"]) == 1


async def test_schedule_sms(server, ctx):
    async with Client(server) as client:
        assistant_id = await caller(client)
        sms = await ok(
            client,
            "schedule_sms",
            assistant_id=assistant_id,
            to=CHICAGO,
            text="Thanks for the quote!",
        )
        no_text = await err(client, "schedule_sms", assistant_id=assistant_id, to=CHICAGO)
        blank = await err(client, "schedule_sms", assistant_id=assistant_id, to=CHICAGO, text="  ")
        dispatch(ctx)
        done = await ok(client, "get_scheduled_call", scheduled_event_id=sms["scheduled_event_id"])

    assert sms["telnyx_conversation_channel"] == "sms_chat"
    assert sms["text"] == "Thanks for the quote!"
    assert sms["max_retries_client_errors"] == 0 and "retry_interval_secs" not in sms
    assert "text is required" in no_text
    assert "text must not be empty" in blank
    assert done["status"] == "completed"


async def test_scheduled_calls_are_read_listed_and_cancelled(server, ctx, provider):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id)
        now_call = await ok(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, run_id=run_id
        )
        later = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to="+13125550102",
            scheduled_at="2026-03-10T18:00:00Z",
            run_id=run_id,
        )
        cancelled = await ok(
            client, "cancel_scheduled_call", scheduled_event_id=later["scheduled_event_id"]
        )
        dispatch(ctx)
        done = await ok(
            client, "get_scheduled_call", scheduled_event_id=now_call["scheduled_event_id"]
        )
        too_late = await err(
            client, "cancel_scheduled_call", scheduled_event_id=now_call["scheduled_event_id"]
        )
        of_run = await ok(client, "list_scheduled_calls", run_id=run_id)
        only_cancelled = await ok(client, "list_scheduled_calls", status="cancelled")
        bad_status = await err(client, "list_scheduled_calls", status="done")
        unknown = await err(client, "get_scheduled_call", scheduled_event_id="e-404")
        unknown_cancel = await err(client, "cancel_scheduled_call", scheduled_event_id="e-404")

    assert cancelled["status"] == "cancelled"
    assert done["status"] == "completed" and done["call_status"] == "completed"
    assert len(provider.placed) == 1  # the cancelled call was never placed
    assert "cannot move from 'completed' to 'cancelled'" in too_late
    assert len(of_run["scheduled_calls"]) == 2
    assert [c["scheduled_event_id"] for c in only_cancelled["scheduled_calls"]] == [
        later["scheduled_event_id"]
    ]
    assert "status must be one of" in bad_status
    assert "scheduled event 'e-404' not found" in unknown
    assert "scheduled event 'e-404' not found" in unknown_cancel


async def test_cancelling_a_cancelled_call_again_returns_the_same_event_and_writes_nothing(
    server, ctx
):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id)
        later = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            scheduled_at="2026-03-10T18:00:00Z",
            run_id=run_id,
        )
        first = await ok(
            client, "cancel_scheduled_call", scheduled_event_id=later["scheduled_event_id"]
        )
        events_after_first = await ok(client, "list_events", run_id=run_id)
        ctx.clock.advance(60)
        again = await ok(
            client, "cancel_scheduled_call", scheduled_event_id=later["scheduled_event_id"]
        )
        events_after_again = await ok(client, "list_events", run_id=run_id)
        # A null timeout means the default; a cancelled call is terminal, so no wait.
        waited = await ok(
            client,
            "wait_for_call",
            scheduled_event_id=later["scheduled_event_id"],
            timeout_secs=None,
        )

    assert first["status"] == "cancelled"
    assert again == first  # same event, same updated_at: nothing was written
    assert events_after_again == events_after_first
    assert waited["terminal"] is True and waited["timed_out"] is False


# --------------------------------------------------------------------------- wait_for_call


async def test_wait_for_call_returns_attempts_conversation_and_transcript(server, ctx, provider):
    provider.outcomes[CHICAGO] = ["busy", "completed"]
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id, greeting="Hi, I'm calling about catering.")
        call = await ok(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            run_id=run_id,
            max_retries_client_errors=2,
            retry_interval_secs=300,
        )
        dispatch(ctx)
        result = await ok(
            client,
            "wait_for_call",
            scheduled_event_id=call["scheduled_event_id"],
            timeout_secs=5,
        )

    assert result["status"] == "completed" and result["call_status"] == "completed"
    assert result["terminal"] is True and result["timed_out"] is False
    assert [a["call_status"] for a in result["call_attempts"]] == ["busy", "completed"]
    # The retry waited retry_interval_secs after the busy attempt ended.
    assert result["call_attempts"][1]["attempted_at"] > result["call_attempts"][0]["attempted_at"]
    assert result["conversation_id"]
    assert result["transcript"][0] == {
        "role": "assistant",
        "text": "Hi, I'm calling about catering.",
        "sent_at": result["transcript"][0]["sent_at"],
    }
    assert "calling_hours_note" not in result


async def test_wait_for_call_waits_and_sends_progress(server, ctx):
    progress: list[tuple[float, float | None, str | None]] = []
    waiting = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))
        waiting.set()

    outcome: dict[str, Any] = {}
    async with Client(server) as client:
        assistant_id = await caller(client)
        call = await ok(client, "schedule_call", assistant_id=assistant_id, to=CHICAGO)

        async def wait() -> None:
            result = await client.call_tool(
                "wait_for_call",
                {"scheduled_event_id": call["scheduled_event_id"], "timeout_secs": 60},
                progress_callback=on_progress,
            )
            outcome["result"] = result

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await waiting.wait()  # the tool is waiting: now let the call happen
            await anyio.to_thread.run_sync(dispatch, ctx)

    result = outcome["result"]
    assert not result.is_error
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["timed_out"] is False
    assert progress[0][1] == 60
    assert progress[0][2].startswith("pending")
    assert progress[-1][2].startswith("completed")
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)


async def test_wait_for_call_times_out_with_the_current_state(server):
    async with Client(server) as client:
        assistant_id = await caller(client)
        call = await ok(client, "schedule_call", assistant_id=assistant_id, to=CHICAGO)
        result = await ok(
            client,
            "wait_for_call",
            scheduled_event_id=call["scheduled_event_id"],
            timeout_secs=0,
        )

    assert result["status"] == "pending"
    assert result["terminal"] is False and result["timed_out"] is True
    assert result["transcript"] == [] and result["insights"] == []
    assert result["server_time"] == T0_ISO


async def test_wait_for_call_errors(server):
    async with Client(server) as client:
        too_long = await err(client, "wait_for_call", scheduled_event_id="e-1", timeout_secs=301)
        negative = await err(client, "wait_for_call", scheduled_event_id="e-1", timeout_secs=-1)
        unknown = await err(client, "wait_for_call", scheduled_event_id="e-404", timeout_secs=1)

    assert "timeout_secs must be between 0 and 300 seconds, got 301" in too_long
    assert "timeout_secs must be between 0 and 300 seconds, got -1" in negative
    assert "scheduled event 'e-404' not found" in unknown


# --------------------------------------------------------------------------- run variables


async def test_run_variables_reach_every_later_call(server, ctx):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(
            client,
            run_id,
            greeting="Hello{{#best_quote}}, we were quoted {{best_quote}}{{/best_quote}}.",
        )
        baseline = await ok(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, run_id=run_id
        )
        dispatch(ctx)
        variables = await ok(
            client,
            "set_run_variables",
            run_id=run_id,
            variables={"best_quote": "$65 per person", "round": 2},
        )
        leverage = await ok(
            client, "schedule_call", assistant_id=assistant_id, to="+13125550102", run_id=run_id
        )
        dispatch(ctx)
        first = await ok(
            client,
            "wait_for_call",
            scheduled_event_id=baseline["scheduled_event_id"],
            timeout_secs=5,
        )
        second = await ok(
            client,
            "wait_for_call",
            scheduled_event_id=leverage["scheduled_event_id"],
            timeout_secs=5,
        )
        removed = await ok(client, "set_run_variables", run_id=run_id, variables={"round": None})
        read = await ok(client, "get_run_variables", run_id=run_id)

    assert variables["variables"] == {"best_quote": "$65 per person", "round": 2}
    assert first["transcript"][0]["text"] == "Hello."
    assert second["transcript"][0]["text"] == "Hello, we were quoted $65 per person."
    assert removed["variables"] == {"best_quote": "$65 per person"}
    assert read == {"run_id": run_id, "variables": {"best_quote": "$65 per person"}}


async def test_run_variable_errors(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        nested = await err(
            client, "set_run_variables", run_id=run_id, variables={"quote": {"price": 65}}
        )
        bad_key = await err(
            client, "set_run_variables", run_id=run_id, variables={"best quote": "$65"}
        )
        unknown = await err(client, "get_run_variables", run_id="r-404")
        unknown_set = await err(client, "set_run_variables", run_id="r-404", variables={"a": "b"})
        read = await ok(client, "get_run_variables", run_id=run_id)

    assert 'variables.quote must be a string, number or boolean, got {"price": 65}' in nested
    assert "variables keys must be names without spaces or braces, got 'best quote'" in bad_key
    assert "run 'r-404' not found" in unknown and "run 'r-404' not found" in unknown_set
    assert read["variables"] == {}


# --------------------------------------------------------------------------- conversations


async def test_get_conversation_has_the_transcript(server, ctx):
    async with Client(server) as client:
        assistant_id = await caller(client, greeting="Good morning!")
        call = await ok(client, "schedule_call", assistant_id=assistant_id, to=CHICAGO)
        dispatch(ctx)
        event = await ok(
            client, "get_scheduled_call", scheduled_event_id=call["scheduled_event_id"]
        )
        conversation = await ok(
            client, "get_conversation", conversation_id=event["conversation_id"]
        )
        unknown = await err(client, "get_conversation", conversation_id="c-404")
        unknown_insights = await err(client, "get_conversation_insights", conversation_id="c-404")

    assert conversation["scheduled_event_id"] == call["scheduled_event_id"]
    assert conversation["end_user_target"] == CHICAGO
    assert conversation["call_status"] == "completed"
    assert [m["role"] for m in conversation["messages"]] == ["assistant", "user"]
    assert conversation["messages"][0]["text"] == "Good morning!"
    assert "conversation 'c-404' not found" in unknown
    assert "conversation 'c-404' not found" in unknown_insights


async def test_insight_definition_errors(server):
    async with Client(server) as client:
        bad_type = await err(
            client,
            "create_insight",
            name="quote",
            instructions="Price?",
            parameters=[{"name": "price", "type": "money"}],
        )
        unknown_member = await err(client, "create_insight_group", name="g", insight_ids=["i-404"])
        insight = await ok(client, "create_insight", name="quote", instructions="The price.")
        group = await ok(
            client, "create_insight_group", name="g", insight_ids=[insight["insight_id"]]
        )
        unknown_assistant = await err(
            client,
            "assign_insight_group",
            assistant_id="a-404",
            insight_group_id=group["insight_group_id"],
        )
        bad_url = await err(
            client,
            "create_insight_group",
            name="h",
            insight_ids=[insight["insight_id"]],
            webhook_url="ftp://example.com/hook",
        )

    assert "parameters[0].type" in bad_type and "money" in bad_type
    assert "i-404" in unknown_member
    assert insight["structured"] is False
    assert group["insight_ids"] == [insight["insight_id"]]
    assert "assistant 'a-404' not found" in unknown_assistant
    assert "webhook_url" in bad_url and "ftp://example.com/hook" in bad_url


async def test_an_unexpected_failure_is_an_error_result_and_the_server_keeps_serving(
    server, ctx, monkeypatch
):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(assistants, "list_assistants", broken)
    async with Client(server) as client:
        message = await err(client, "list_assistants")
        status = await ok(client, "server_status")

    assert "list_assistants" in message
    assert "hunter2" not in message  # internals of a crash never reach the client
    assert status["provider"] == "scripted"


async def test_a_registered_tool_gets_the_error_mapping_and_annotations(ctx):
    from mission_server.errors import ValidationError
    from mission_server.mcp.registrar import ToolRegistrar

    def approve_calls(run_id: str, approved: bool) -> dict[str, str]:
        """Approve the run's calls."""
        if not approved:
            raise ValidationError("approved", "must be true in this test", approved)
        return {"run_id": run_id}

    server = build_server(ctx)
    ToolRegistrar(server).add(approve_calls, title="Approve calls", idempotent=True)
    async with Client(server) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        approved = await ok(client, "approve_calls", run_id="r-1", approved=True)
        refused = await err(client, "approve_calls", run_id="r-1", approved=False)

    assert hint(listed["approve_calls"], "idempotent_hint") is True
    assert approved == {"run_id": "r-1"}
    assert "approved must be true in this test, got false" in refused


async def test_a_megabyte_of_bad_input_is_not_echoed_back(server, caplog):
    huge = "x" * 1_000_000
    async with Client(server) as client:
        service_error = await err(client, "create_mission", name="ok", description=1, metadata=huge)
        argument_error = await err(client, "list_runs", limit=huge)

    for message in (service_error, argument_error):
        assert len(message) < 400, message[:400]
        assert "1000000 characters" in message or "characters)" in message
    assert all(len(r.getMessage()) < 2_000 for r in caplog.records)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries_client_errors", "2"),
        ("max_retries_client_errors", True),
        ("retry_interval_secs", "300"),
        ("retry_interval_secs", 300.5),
    ],
)
async def test_counts_must_be_integers_not_strings_or_booleans(server, ctx, field, value):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistant_id = await caller(client, run_id)
        arguments = {"max_retries_client_errors": 2, "retry_interval_secs": 300, field: value}
        message = await err(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, **arguments
        )
        listed = await err(client, "list_runs", limit="5")
        calls = await ok(client, "list_scheduled_calls", run_id=run_id)

    assert field in message and "integer" in message.lower(), message
    assert "limit" in listed
    assert calls["scheduled_calls"] == []
