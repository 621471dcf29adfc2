"""``run_mission`` and ``approve_run`` over MCP (in process, the SDK's ``Client``): the same
planner as ``mission run``, started by an agent, held for approval, approved or rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from mission_server.engine.runner import drive_virtual
from mission_server.mcp.server import build_server
from mission_server.services import missions, scheduling
from tests.support.mcpkit import err, hint, ok
from tests.support.missionkit import EXAMPLES, catering

pytestmark = pytest.mark.anyio


@pytest.fixture
def planner_server(sim):
    ctx, runner = sim
    return build_server(ctx, runner=lambda: runner)


async def test_an_agent_runs_the_catering_mission_after_approving_it(sim, planner_server):
    ctx, runner = sim
    async with Client(planner_server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        started = await ok(client, "run_mission", spec=catering(), require_approval=True)
        run_id = started["run_id"]
        drive_virtual(ctx, runner, [run_id])  # nothing may move before approval
        held = await ok(client, "get_run", run_id=run_id, detail="full")
        approved = await ok(client, "approve_run", run_id=run_id, approved=True, note="go")
        drive_virtual(ctx, runner, [run_id])
        finished = await ok(client, "get_run", run_id=run_id, detail="full")

    assert hint(tools["run_mission"], "open_world_hint") is True
    assert "approve_run" in tools
    assert started["status"] == "running" and started["approval_required"] is True
    assert held["status"] == "running" and held["conversations"] == []
    assert all(c["status"] == "pending" for c in held["scheduled_calls"])
    assert approved["approved_at"] is not None
    assert finished["status"] == "succeeded"
    recommendation = finished["result_payload"]["recommendation"]
    assert recommendation["name"] == "Chicago Grill Co"
    assert "Chicago Grill Co" in finished["result_summary"]


async def test_wait_for_run_stops_at_approval_at_its_timeout_and_at_the_result(sim, planner_server):
    ctx, runner = sim
    messages: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    async def wait(client: Client, **arguments: Any) -> dict[str, Any]:
        result = await client.call_tool("wait_for_run", arguments, progress_callback=on_progress)
        assert not result.is_error, result.content[0].text
        assert result.structured_content is not None
        return result.structured_content

    async with Client(planner_server) as client:
        started = await ok(client, "run_mission", spec=catering(), require_approval=True)
        run_id = started["run_id"]
        held = await wait(client, run_id=run_id, timeout_secs=30)
        await ok(client, "approve_run", run_id=run_id, approved=True)
        unfinished = await wait(client, run_id=run_id, timeout_secs=0)
        drive_virtual(ctx, runner, [run_id])
        done = await wait(client, run_id=run_id, timeout_secs=30)
        unknown = await err(client, "wait_for_run", run_id="r-404")
        too_long = await err(client, "wait_for_run", run_id=run_id, timeout_secs=301)

    # Awaiting approval ends the wait at once: the agent has to act.
    assert held["awaiting_approval_stop"] is True and held["timed_out"] is False
    assert held["awaiting_approval"] is True and held["terminal"] is False
    assert unfinished["timed_out"] is True and unfinished["status"] == "running"
    assert "result_payload" not in unfinished
    assert done["terminal"] is True and done["timed_out"] is False
    assert done["status"] == "succeeded"
    assert done["result_payload"]["recommendation"]["name"] == "Chicago Grill Co"
    assert done["variables"]["best_company"] == "Chicago Grill Co"
    assert done["progress"] == {
        "steps": {"completed": 7},  # the six of the mission and the approval
        "calls": {"completed": 3},
        "attempts": 4,
        "answered": 3,
    }
    assert messages[0] and messages[0].startswith("running (awaiting approval)")
    assert messages[-1] and "3 of 3 finished, 4 attempts placed, 3 answered" in messages[-1]
    assert "best_company=Chicago Grill Co" in messages[-1]
    assert "run 'r-404' not found" in unknown
    assert "timeout_secs must be between 0 and 300 seconds, got 301" in too_long


async def test_a_yaml_spec_text_and_a_rejection_cancel_without_a_call(sim, planner_server):
    ctx, runner = sim
    text = (EXAMPLES / "catering.yaml").read_text()
    async with Client(planner_server) as client:
        started = await ok(client, "run_mission", spec=text, require_approval=True)
        run_id = started["run_id"]
        rejected = await ok(
            client, "approve_run", run_id=run_id, approved=False, note="over budget"
        )
        drive_virtual(ctx, runner, [run_id])
        again = await err(client, "approve_run", run_id=run_id, approved=True)

    assert rejected["status"] == "cancelled" and rejected["error"] == "over budget"
    assert not missions.get_run(ctx, run_id).conversations
    assert {c.status for c in scheduling.list_scheduled_events(ctx, run_id=run_id)} <= {"cancelled"}
    assert run_id in again and "not waiting for approval" in again


async def test_bad_missions_are_tool_errors_naming_the_field_and_write_nothing(
    sim, planner_server, tmp_path: Path
):
    ctx, _runner = sim
    broken: dict[str, Any] = catering()
    broken["targets"][1]["phone"] = "not a number"
    async with Client(planner_server) as client:
        neither = await err(client, "run_mission")
        bad_target = await err(client, "run_mission", spec=broken)
        bad_yaml = await err(client, "run_mission", spec="name: [unclosed")
        vague = await err(client, "run_mission", request="find me a cheap caterer")
        unknown = await err(client, "approve_run", run_id="no-such-run", approved=True)
        status = await ok(client, "server_status")

    assert "spec" in neither and "request" in neither
    assert "targets[1].phone" in bad_target and "not a number" in bad_target
    assert "spec" in bad_yaml and "YAML" in bad_yaml
    assert "spec file or an LLM" in vague
    assert "no-such-run" in unknown
    assert status["provider"] == "simulated"
    assert missions.list_runs(ctx) == []


async def test_a_file_name_as_spec_says_to_pass_the_contents(planner_server):
    async with Client(planner_server) as client:
        message = await err(client, "run_mission", spec="examples/catering.yaml")
    assert "spec must be the mission spec itself" in message
    assert "examples/catering.yaml" in message
