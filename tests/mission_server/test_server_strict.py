"""Strict inputs over MCP (in process, the SDK's ``Client``): every tool takes exactly its
arguments — an unknown one is refused, named with the closest known name, and nothing is
written; enumerated values are enums in the input schemas; a finished run takes no more plan,
variables or calls; and errors show values as the agent wrote them (ISO times, JSON), short.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client import Client
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from mission_server.mcp.server import build_server
from mission_server.services.context import Context
from tests.support.mcpkit import err, ok
from tests.support.missionkit import catering

pytestmark = pytest.mark.anyio

CHICAGO = "+13125550101"


@pytest.fixture
def server(ctx):
    return build_server(ctx, wait_poll_secs=0.01)


def rows(ctx: Context) -> dict[str, int]:
    """How many rows every table holds: what "nothing was written" is checked against."""
    with Session(ctx.engine) as session:
        return {
            name: session.exec(select(func.count()).select_from(table)).one()
            for name, table in SQLModel.metadata.tables.items()
        }


async def new_run(client: Client) -> str:
    mission = await ok(client, "create_mission", name="Catering quotes")
    run = await ok(client, "start_run", mission_id=mission["mission_id"])
    return run["run_id"]


async def caller(client: Client) -> str:
    assistant = await ok(client, "create_assistant", name="Negotiator", instructions="Ask.")
    await ok(client, "assign_phone_number", assistant_id=assistant["assistant_id"])
    return assistant["assistant_id"]


def enum_of(schema: dict[str, Any], name: str) -> list[str]:
    """The enum of input property ``name`` (directly, or in the non-null arm of an anyOf)."""
    prop = schema["properties"][name]
    for arm in [prop, *prop.get("anyOf", [])]:
        if "enum" in arm:
            return arm["enum"]
    raise AssertionError(f"{name} has no enum: {prop}")


# --------------------------------------------------------------------------- unknown arguments


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        (
            "create_mission",
            {"name": "Quotes", "instruction": "Get quotes"},
            "unknown argument 'instruction'; did you mean 'instructions'? (got 'Get quotes')",
        ),
        (
            "start_run",
            {"mission_id": "{mission_id}", "inputs": {"guests": 50}},
            "unknown argument 'inputs'; did you mean 'input'? (got {\"guests\": 50})",
        ),
        (
            "create_plan",
            {"run_id": "{run_id}", "steps": [{"step_id": "a", "description": "A"}], "plan": 1},
            "unknown argument 'plan'; create_plan takes run_id, steps (got 1)",
        ),
        (
            "set_run_variables",
            {"run_id": "{run_id}", "variable": {"best_quote": "$65"}},
            "unknown argument 'variable'; did you mean 'variables'?",
        ),
        (
            "log_event",
            {"run_id": "{run_id}", "type": "custom", "summary": "x", "details": {"a": 1}},
            "unknown argument 'details'",
        ),
        (
            "create_assistant",
            {"name": "N", "instructions": "Ask.", "greting": "Hi"},
            "unknown argument 'greting'; did you mean 'greeting'?",
        ),
        (
            "update_run",
            {"run_id": "{run_id}", "status": "succeeded", "summary": "Done"},
            "unknown argument 'summary'; did you mean 'result_summary'?",
        ),
    ],
)
async def test_an_unknown_argument_is_refused_by_name_and_writes_nothing(
    server, ctx, tool, arguments, message
):
    async with Client(server) as client:
        mission = await ok(client, "create_mission", name="Catering quotes")
        run = await ok(client, "start_run", mission_id=mission["mission_id"])
        ids = {"mission_id": mission["mission_id"], "run_id": run["run_id"]}
        filled = {k: v.format(**ids) if isinstance(v, str) else v for k, v in arguments.items()}
        before = rows(ctx)
        refused = await err(client, tool, **filled)
        after = rows(ctx)
        got = await ok(client, "get_run", run_id=run["run_id"], detail="full")

    assert message in refused
    assert refused.endswith("Nothing was done.")
    assert after == before
    assert got["status"] == "running" and got["variables"] == {}


async def test_schedule_call_refuses_the_telnyx_field_name_instead_of_calling_now(server, ctx):
    async with Client(server) as client:
        assistant_id = await caller(client)
        before = rows(ctx)
        refused = await err(
            client,
            "schedule_call",
            assistant_id=assistant_id,
            to=CHICAGO,
            scheduled_at_fixed_datetime="2026-03-20T16:00:00Z",
        )
        listed = await ok(client, "list_scheduled_calls")

    assert (
        "unknown argument 'scheduled_at_fixed_datetime'; did you mean 'scheduled_at'? "
        "(got '2026-03-20T16:00:00Z')"
    ) in refused
    assert listed["scheduled_calls"] == []
    assert rows(ctx) == before


@pytest.mark.parametrize(
    "retry",
    [
        {"max_retries_client_errors": 2, "retry_interval_secs": 300},
        {"max_retries_client_errors": 0},
        {"retry_interval_secs": 300},
    ],
)
async def test_schedule_sms_refuses_the_retry_arguments(server, ctx, retry):
    async with Client(server) as client:
        assistant_id = await caller(client)
        before = rows(ctx)
        refused = await err(
            client, "schedule_sms", assistant_id=assistant_id, to=CHICAGO, text="Hi", **retry
        )
        listed = await ok(client, "list_scheduled_calls")

    for name in retry:
        assert f"unknown argument '{name}': SMS is not retried" in refused
    assert "did you mean" not in refused
    assert listed["scheduled_calls"] == []
    assert rows(ctx) == before


# --------------------------------------------------------------------------- schemas


async def test_input_schemas_refuse_extra_properties_and_list_enumerated_values(server):
    async with Client(server) as client:
        tools = {t.name: t.input_schema for t in (await client.list_tools()).tools}

    for name, schema in tools.items():
        assert schema.get("additionalProperties") is False, name
    runs = ["pending", "running", "paused", "succeeded", "failed", "cancelled"]
    calls = ["pending", "in_progress", "completed", "failed", "cancelled"]
    assert enum_of(tools["list_runs"], "status") == runs
    assert enum_of(tools["update_run"], "status") == runs[1:]
    assert enum_of(tools["list_scheduled_calls"], "status") == calls
    assert enum_of(tools["update_plan_step"], "status") == [
        "pending",
        "in_progress",
        "completed",
        "skipped",
        "failed",
    ]
    assert "step_completed" in enum_of(tools["log_event"], "type")
    assert enum_of(tools["list_events"], "type") == enum_of(tools["log_event"], "type")
    assert enum_of(tools["list_webhook_deliveries"], "status") == ["failed", "delivered"]
    # Nested objects are closed too.
    step = tools["create_plan"]["$defs"]["PlanStepSpec"]
    assert step["additionalProperties"] is False


async def test_a_value_outside_an_enum_names_the_choices(server, ctx):
    async with Client(server) as client:
        run_id = await new_run(client)
        before = rows(ctx)
        refused = await err(client, "update_run", run_id=run_id, status="done")
        bad_filter = await err(client, "list_scheduled_calls", status="queued")

    assert "status must be one of 'running', 'paused', 'succeeded'" in refused
    assert "got 'done'" in refused
    assert "got 'queued'" in bad_filter
    assert rows(ctx) == before


# --------------------------------------------------------------------------- finished runs


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
async def test_a_finished_run_takes_no_more_variables_plan_or_calls(server, ctx, status):
    async with Client(server) as client:
        assistant_id = await caller(client)
        run_id = await new_run(client)
        await ok(client, "set_run_variables", run_id=run_id, variables={"best_quote": "$70"})
        await ok(client, "update_run", run_id=run_id, status=status)
        before = rows(ctx)
        variables = await err(
            client, "set_run_variables", run_id=run_id, variables={"best_quote": "$65"}
        )
        plan = await err(
            client, "create_plan", run_id=run_id, steps=[{"step_id": "a", "description": "A"}]
        )
        step = await err(client, "add_plan_step", run_id=run_id, step_id="b", description="B")
        call = await err(
            client, "schedule_call", assistant_id=assistant_id, to=CHICAGO, run_id=run_id
        )
        got = await ok(client, "get_run", run_id=run_id, detail="full")

    finished = f"run_id '{run_id}' names a finished run (status {status}): a finished run cannot"
    assert f"{finished} set run variables" in variables
    assert f"{finished} change its plan" in plan
    assert f"{finished} change its plan" in step
    assert f"{finished} schedule calls" in call
    assert rows(ctx) == before
    assert got["variables"] == {"best_quote": "$70"}
    assert got["plan"] == [] and got["scheduled_calls"] == []


# --------------------------------------------------------------------------- short errors


async def test_times_in_errors_are_shown_as_written_not_as_python_values(server, ctx):
    async with Client(server) as client:
        assistant_id = await caller(client)
        arguments: dict[str, Any] = {"assistant_id": assistant_id, "to": CHICAGO}
        naive = await err(client, "schedule_call", scheduled_at="2026-03-10T15:00:00", **arguments)
        past = await err(client, "schedule_call", scheduled_at="2026-03-10T14:00:00Z", **arguments)

    assert naive == (
        "Error executing tool schedule_call: scheduled_at must include a timezone offset "
        "(e.g. Z or +00:00), got '2026-03-10T15:00:00'"
    )
    assert "scheduled_at must be in the future (server time is 2026-03-10T15:00:00+00:00), " in past
    assert "got '2026-03-10T14:00:00+00:00'" in past
    for message in (naive, past):
        assert "datetime" not in message and "tzinfo" not in message


async def test_a_spec_with_too_many_targets_is_refused_in_a_short_message(sim):
    ctx, runner = sim
    server = build_server(ctx, runner=lambda: runner)
    targets = [
        {"name": f"Caterer {i}", "phone": f"+1312555{i:04d}", "notes": "x" * 40}
        for i in range(12_000)
    ]
    async with Client(server) as client:
        before = rows(ctx)
        refused = await err(client, "run_mission", spec=catering(targets=targets))

    assert "targets must have at most 10000 targets, got 12000" in refused
    assert len(refused) < 400, refused[:400]
    assert "Caterer" not in refused  # the list is not echoed
    assert rows(ctx) == before
