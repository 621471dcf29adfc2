"""Phone numbers come back: when a run ends its assistants' numbers are released (recorded as
events), unless the assistant keeps its number; release_phone_number frees one at once; the
refusal of assign_phone_number names the runs that hold the numbers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mcp.client import Client
from typer.testing import CliRunner

from mission_server.cli.main import app
from mission_server.clock import VirtualClock
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.errors import ConflictError, ProviderError
from mission_server.insights.simulated import SimulatedExtractor
from mission_server.services import assistants, missions, plans
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.simulated.provider import SimulatedProvider
from mission_server.telephony.telnyx.provider import TelnyxProvider
from state.db import create_schema, make_engine
from tests.conftest import T0
from tests.support.mcpkit import err, ok
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount

NUMBERS = ["+13125550100", "+13125550101"]

WORLD: dict[str, Any] = {
    "seed": 3,
    "start_time": "2026-03-10T15:00:00Z",  # Tuesday, 10:00 in Chicago
    "numbers": NUMBERS,
    "businesses": [
        {"name": "Ace Movers", "phone": "+13125550201", "facts": {"total_price": 1480}},
    ],
}

SPEC: dict[str, Any] = {
    "name": "Movers",
    "objective": "Find out what the move costs",
    "strategy": "parallel",
    "assistant": {
        "name": "Movers caller",
        "greeting": "Hi, do you have a minute for a quick question?",
        "instructions": "Ask {{target_name}} what moving a two-bedroom apartment costs.",
    },
    "targets": [{"name": "Ace Movers", "phone": "+13125550201"}],
    "calling_window": {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    },
    "extract": [
        {
            "name": "total_price",
            "type": "number",
            "required": True,
            "description": "The total price for the whole move, in dollars",
        }
    ],
}


def releases(ctx: Context, run_id: str) -> list[dict[str, Any]]:
    """The payloads of the run's number events (released or kept)."""
    return [
        e.payload for e in plans.list_events(ctx, run_id) if e.payload and "released" in e.payload
    ]


def free(ctx: Context) -> list[str]:
    return [n.phone_number for n in assistants.list_phone_numbers(ctx, available_only=True)]


@pytest.fixture
def world_ctx(tmp_path: Path) -> Context:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(WORLD), encoding="utf-8")
    provider = SimulatedProvider.from_path(path)
    assert provider.world.start_time is not None
    engine = make_engine(str(tmp_path / "numbers.db"))
    create_schema(engine)
    return Context(
        engine=engine,
        clock=VirtualClock(provider.world.start_time),
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        extractor=SimulatedExtractor(),
    )


def test_ten_missions_in_a_row_run_on_two_numbers_each_releasing_its_number(
    world_ctx: Context,
) -> None:
    runner = MissionRunner(world_ctx, mode="inline")
    try:
        for _ in range(10):
            run_id = runner.start(SPEC)
            drive_virtual(world_ctx, runner, [run_id])
            detail = missions.get_run(world_ctx, run_id)

            assert detail.status == "succeeded", detail.error
            assert free(world_ctx) == NUMBERS
            (released,) = releases(world_ctx, run_id)
            assert released["released"] is True and released["phone_number"] in NUMBERS
            assert released["reason"] == "run succeeded"
    finally:
        runner.close()


def _run_with_caller(ctx: Context, **assistant: Any) -> tuple[str, str, str]:
    """A run (the MCP way: no planner) with an assistant that has a number."""
    mission = missions.create_mission(ctx, "Quotes")
    run_id = missions.start_run(ctx, mission.mission_id).run_id
    created = assistants.create_assistant(
        ctx, "Caller", "Ask for a quote.", run_id=run_id, **assistant
    )
    number = assistants.assign_phone_number(ctx, created.assistant_id, run_id=run_id)
    return run_id, created.assistant_id, number.phone_number


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_run_that_ends_releases_its_assistants_number_and_records_it(
    ctx: Context, status: str
) -> None:
    run_id, assistant_id, number = _run_with_caller(ctx)
    assert number not in free(ctx)

    missions.update_run(ctx, run_id, status=status)

    assert number in free(ctx)
    assert assistants.get_assistant(ctx, assistant_id).phone_numbers == []
    assert releases(ctx, run_id) == [
        {
            "phone_number": number,
            "assistant_id": assistant_id,
            "released": True,
            "reason": f"run {status}",
        }
    ]
    assert ctx.provider.list_phone_numbers()[0].assistant_ref is None  # the provider, too


def test_keep_number_keeps_it_when_the_run_ends_and_says_so(ctx: Context) -> None:
    run_id, assistant_id, number = _run_with_caller(ctx, keep_number=True)

    missions.update_run(ctx, run_id, status="succeeded")

    assert assistants.get_assistant(ctx, assistant_id).phone_numbers == [number]
    assert assistants.get_assistant(ctx, assistant_id).keep_number is True
    assert number not in free(ctx)
    (kept,) = releases(ctx, run_id)
    assert kept["released"] is False and kept["reason"] == "keep_number"


def test_an_assistant_shared_with_a_run_still_going_keeps_its_number(ctx: Context) -> None:
    first, assistant_id, number = _run_with_caller(ctx)
    mission = missions.create_mission(ctx, "More quotes")
    second = missions.start_run(ctx, mission.mission_id).run_id
    assistants.assign_phone_number(ctx, assistant_id, run_id=second)  # links it to the run

    missions.update_run(ctx, first, status="succeeded")
    assert assistants.get_assistant(ctx, assistant_id).phone_numbers == [number]
    assert releases(ctx, first)[0]["reason"] == f"run {second} still uses it"

    missions.update_run(ctx, second, status="succeeded")
    assert number in free(ctx)


def test_assign_phone_number_refusals_name_the_runs_holding_the_numbers(ctx: Context) -> None:
    first, first_assistant, first_number = _run_with_caller(ctx)
    second, _, _ = _run_with_caller(ctx)
    third = assistants.create_assistant(ctx, "Third", "Ask.")

    with pytest.raises(ProviderError) as none_free:
        assistants.assign_phone_number(ctx, third.assistant_id)
    with pytest.raises(ConflictError) as taken:
        assistants.assign_phone_number(ctx, third.assistant_id, first_number)

    assert f"{first} running" in str(none_free.value)
    assert f"{second} running" in str(none_free.value)
    assert "release_phone_number" in str(none_free.value)
    assert (
        f"phone_number {first_number} is already assigned to assistant {first_assistant} "
        f"'Caller' (runs: {first} running)"
    ) in str(taken.value)


def test_release_phone_number_frees_a_kept_number_and_records_it_in_its_runs(
    ctx: Context,
) -> None:
    run_id, assistant_id, number = _run_with_caller(ctx, keep_number=True)
    missions.update_run(ctx, run_id, status="succeeded")

    out = assistants.release_phone_number(ctx, number)
    again = assistants.release_phone_number(ctx, number)  # already free: as is

    assert out.available and again.available
    assert number in free(ctx)
    assert releases(ctx, run_id)[-1] == {
        "phone_number": number,
        "assistant_id": assistant_id,
        "released": True,
        "reason": "released on request",
    }
    assert len(releases(ctx, run_id)) == 2  # kept, then released once


def test_a_provider_that_refuses_the_release_leaves_the_number_and_records_an_error(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, assistant_id, number = _run_with_caller(ctx)

    def refuse(*_: Any) -> None:
        raise ProviderError("Telnyx refused the update (503)")

    monkeypatch.setattr(ctx.provider, "release_phone_number", refuse)
    ended = missions.update_run(ctx, run_id, status="succeeded")

    assert ended.status == "succeeded"
    assert assistants.get_assistant(ctx, assistant_id).phone_numbers == [number]
    (error,) = [e for e in plans.list_events(ctx, run_id) if e.type == "error"]
    assert "could not be released" in error.summary and "503" in error.summary


# --------------------------------------------------------------------------- Telnyx


def test_on_telnyx_a_run_that_ends_unassigns_its_number_from_the_connection(
    tmp_path: Path,
) -> None:
    account = TelnyxAccount(NUMBERS, clock=lambda: T0)
    api = FakeTelnyx(fallback=account)
    provider = TelnyxProvider(
        API_KEY,
        transport=httpx.MockTransport(api),
        sleep=lambda _: None,
        clock=lambda: T0,
        rng=random.Random(0),
    )
    engine = make_engine(str(tmp_path / "telnyx.db"))
    create_schema(engine)
    ctx = Context(engine=engine, clock=VirtualClock(T0), provider=provider, settings=Settings())
    try:
        run_id, _, number = _run_with_caller(ctx)
        routed = next(n for n in account.numbers if n["phone_number"] == number)
        assert routed["connection_id"]  # the assistant's TeXML application

        missions.update_run(ctx, run_id, status="succeeded")

        assert routed["connection_id"] == ""
        assert [n.assistant_ref for n in provider.list_phone_numbers()] == [None, None]
        assert number in free(ctx)
    finally:
        provider.close()
        engine.dispose()


# --------------------------------------------------------------------------- MCP and CLI


@pytest.mark.anyio
async def test_release_phone_number_tool_frees_the_number_for_the_next_assistant(
    ctx: Context,
) -> None:
    from mission_server.mcp.server import build_server

    async with Client(build_server(ctx, wait_poll_secs=0.01)) as client:
        mission = await ok(client, "create_mission", name="Quotes")
        run = await ok(client, "start_run", mission_id=mission["mission_id"])
        names = ("First", "Second", "Third")
        created = [
            await ok(
                client,
                "create_assistant",
                name=name,
                instructions="Ask.",
                run_id=run["run_id"],
                keep_number=True,
            )
            for name in names
        ]
        for assistant in created[:2]:
            await ok(client, "assign_phone_number", assistant_id=assistant["assistant_id"])
        refused = await err(client, "assign_phone_number", assistant_id=created[2]["assistant_id"])
        released = await ok(client, "release_phone_number", phone_number=NUMBERS[0])
        given = await ok(client, "assign_phone_number", assistant_id=created[2]["assistant_id"])
        unknown = await err(client, "release_phone_number", phone_number="+13125559999")

    assert f"runs: {run['run_id']} running" in refused
    assert released["available"] is True
    assert given["phone_number"] == NUMBERS[0]
    assert "+13125559999" in unknown and "not found" in unknown


def test_cli_numbers_release_frees_the_number(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    world = tmp_path / "world.yaml"
    world.write_text(yaml.safe_dump(WORLD), encoding="utf-8")
    from mission_server.app import build_context
    from mission_server.cli.common import ledger_path_for

    ctx = build_context(
        Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        db_url=db,
        simulate=True,
        world=world,
        ledger_path=ledger_path_for(db),
    )
    _, _, number = _run_with_caller(ctx, keep_number=True)
    ctx.engine.dispose()

    result = CliRunner().invoke(
        app, ["numbers", "release", number, "--db", db, "--simulate", "--world", str(world)]
    )
    listed = CliRunner().invoke(
        app,
        ["numbers", "release", number, "--db", db, "--simulate", "--world", str(world), "--json"],
    )

    assert result.exit_code == 0, result.output
    assert f"{number} is free" in result.stderr
    assert json.loads(listed.stdout)["available"] is True
