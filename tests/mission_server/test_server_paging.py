"""Paging over MCP (in process, the SDK's ``Client``): every list tool and list resource takes
``cursor`` and ``limit`` and returns ``next_cursor``; paging returns every row exactly once, in
a stable order, while other rows are being inserted; bad cursors and limits are refused with
errors naming the field.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from mission_server.clock import VirtualClock
from mission_server.mcp.server import build_server
from mission_server.services import do_not_call as do_not_call_service
from mission_server.services import missions as mission_service
from mission_server.services import plans
from mission_server.services.context import Context
from mission_server.services.paging import MAX_LIMIT
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state.db import session_scope
from state.repo import append_event
from tests.support.mcpkit import err, ok

pytestmark = pytest.mark.anyio

CHICAGO = "+13125550101"
#: The arguments a list tool cannot go without (the rest are optional filters).
REQUIRED: dict[str, dict[str, Any]] = {
    "list_events": {"run_id": "{run_id}"},
    "list_prior_conversations": {"target": CHICAGO},
}
#: The field of each list tool's page that holds its rows.
ROWS = {
    "list_missions": "missions",
    "list_runs": "runs",
    "list_events": "events",
    "list_assistants": "assistants",
    "list_phone_numbers": "phone_numbers",
    "list_scheduled_calls": "scheduled_calls",
    "list_do_not_call": "entries",
    "list_prior_conversations": "conversations",
    "list_webhook_deliveries": "deliveries",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ctx(request, clock: VirtualClock, provider: ScriptedProvider) -> Context:
    """The service context on the SQLite file database or (marked postgres) a fresh
    PostgreSQL schema."""
    engine = request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")
    return Context(engine=engine, clock=clock, provider=provider, settings=Settings())


@pytest.fixture
def server(ctx):
    return build_server(ctx, wait_poll_secs=0.01)


async def new_run(client: Client) -> str:
    mission = await ok(client, "create_mission", name="Catering quotes")
    run = await ok(client, "start_run", mission_id=mission["mission_id"])
    return run["run_id"]


def arguments_of(tool: str, run_id: str, **extra: Any) -> dict[str, Any]:
    required = {k: v.format(run_id=run_id) for k, v in REQUIRED.get(tool, {}).items()}
    return {**required, **extra}


async def page_through(client: Client, tool: str, limit: int, **arguments: Any) -> list[Any]:
    """Every row of a list tool, page after page (each page at most ``limit`` rows)."""
    rows: list[Any] = []
    cursor = None
    while True:
        page = await ok(client, tool, limit=limit, cursor=cursor, **arguments)
        assert len(page[ROWS[tool]]) <= limit
        rows.extend(page[ROWS[tool]])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


# --------------------------------------------------------------------------- the contract


async def test_every_list_tool_takes_cursor_and_limit_and_returns_next_cursor(server):
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    listing = {t.name: t for t in tools if t.name.startswith("list_")}

    assert set(listing) == set(ROWS)  # a new list tool needs paging (and a line in ROWS)
    for tool in listing.values():
        inputs = tool.input_schema["properties"]
        assert {"cursor", "limit"} <= inputs.keys(), tool.name
        assert tool.output_schema is not None, tool.name
        output = tool.output_schema["properties"]
        assert "next_cursor" in output, tool.name
        assert "null on the last page" in output["next_cursor"]["description"], tool.name
        assert ROWS[tool.name] in output, tool.name
        assert "next_cursor" in (tool.description or ""), tool.name


@pytest.mark.parametrize("tool", sorted(ROWS))
async def test_a_bad_cursor_or_limit_is_refused_naming_the_field(server, tool):
    async with Client(server) as client:
        run_id = await new_run(client)
        garbage = await err(client, tool, **arguments_of(tool, run_id, cursor="nope"))
        zero = await err(client, tool, **arguments_of(tool, run_id, limit=0))
        too_many = await err(client, tool, **arguments_of(tool, run_id, limit=MAX_LIMIT + 1))
        text = await err(client, tool, **arguments_of(tool, run_id, limit="5"))
        first = await ok(client, tool, **arguments_of(tool, run_id, limit=1))

    assert f"cursor must be a next_cursor from a previous page of {tool}, got 'nope'" in garbage
    assert "limit must be between 1 and" in zero and "got 0" in zero
    assert "limit must be between 1 and" in too_many and f"got {MAX_LIMIT + 1}" in too_many
    assert "limit" in text and "integer" in text
    for message in (garbage, zero, too_many, text):
        assert "datetime" not in message and "Traceback" not in message
    assert len(first[ROWS[tool]]) <= 1


async def test_a_cursor_of_another_list_or_other_filters_is_refused(server, ctx):
    async with Client(server) as client:
        run_a = await new_run(client)
        run_b = await new_run(client)
        for run_id in (run_a, run_b):
            for i in range(3):
                await ok(client, "log_event", run_id=run_id, type="custom", summary=f"e{i}")
        runs_page = await ok(client, "list_runs", limit=1)
        events_page = await ok(client, "list_events", run_id=run_a, limit=1)
        foreign = await err(client, "list_events", run_id=run_a, cursor=runs_page["next_cursor"])
        other_run = await err(
            client, "list_events", run_id=run_b, cursor=events_page["next_cursor"]
        )
        other_type = await err(
            client, "list_events", run_id=run_a, type="custom", cursor=events_page["next_cursor"]
        )
        altered = await err(
            client, "list_events", run_id=run_a, cursor=events_page["next_cursor"][:-3] + "AAA"
        )

    assert runs_page["next_cursor"] and events_page["next_cursor"]
    assert "cursor is a next_cursor of list_runs, not of list_events" in foreign
    assert "cursor was issued for other filters" in other_run
    assert "cursor was issued for other filters" in other_type
    assert "cursor" in altered and "list_events" in altered


# --------------------------------------------------------------------------- events


async def test_paging_500_events_while_another_thread_inserts_returns_each_once(any_ctx):
    """Pages of 50 over a run's 500 events while a thread keeps logging events into the same
    run: every original event comes back exactly once, in order, followed only by events that
    were logged meanwhile (also once each, in order)."""
    ctx = any_ctx
    server = build_server(ctx, wait_poll_secs=0.01)
    async with Client(server) as client:
        run_id = await new_run(client)
        existing = len(plans.all_events(ctx, run_id))
        with session_scope(ctx.engine) as session:
            for i in range(500 - existing):
                append_event(session, run_id, "custom", f"original {i}", ctx.now())
        originals = [e.event_id for e in plans.all_events(ctx, run_id)]
        assert len(originals) == 500

        inserted: list[str] = []
        batches_done = 0
        ticks = threading.Semaphore(0)
        stop = threading.Event()
        lock = threading.Lock()

        def writer() -> None:
            nonlocal batches_done
            while not stop.is_set():
                if not ticks.acquire(timeout=0.05):
                    continue
                for i in range(5):
                    event = plans.log_event(
                        ctx, run_id, "custom", f"later {len(inserted) + i}", agent_id="writer"
                    )
                    with lock:
                        inserted.append(event.event_id)
                with lock:
                    batches_done += 1

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        seen: list[str] = []
        pages = 0
        cursor = None
        try:
            while True:
                # The batch started after the page before last has landed: inserts happen
                # between every two fetches, and the one after the last page runs during this
                # fetch.
                with anyio.fail_after(30):
                    while batches_done < pages - 1:
                        await anyio.sleep(0.005)
                page = await ok(client, "list_events", run_id=run_id, limit=50, cursor=cursor)
                pages += 1
                assert len(page["events"]) <= 50
                seen.extend(e["event_id"] for e in page["events"])
                ticks.release()  # the writer logs 5 more events while the next page is read
                cursor = page["next_cursor"]
                if cursor is None:
                    break
        finally:
            stop.set()
            thread.join(timeout=30)

    with lock:
        later = list(inserted)
    assert len(seen) == len(set(seen)), "an event came back twice"
    assert seen[:500] == originals
    assert seen[500:] == later[: len(seen) - 500]  # only later ones, in the order logged
    assert len(seen) > 500 and pages > 10  # events logged while paging were paged too
    assert set(later) <= {e.event_id for e in plans.all_events(ctx, run_id)}


async def test_events_page_by_type_and_step_with_the_same_filters(server):
    async with Client(server) as client:
        run_id = await new_run(client)
        for i in range(7):
            await ok(client, "log_event", run_id=run_id, type="message", summary=f"m{i}")
            await ok(client, "log_event", run_id=run_id, type="custom", summary=f"c{i}")
        messages = await page_through(client, "list_events", 3, run_id=run_id, type="message")

    assert [e["summary"] for e in messages] == [f"m{i}" for i in range(7)]


# --------------------------------------------------------------------------- newest first


async def test_newest_first_lists_never_repeat_or_skip_while_rows_are_added(server, clock):
    """Runs created while a client pages (newer than its first page) are not seen; the runs
    that were there are each seen exactly once."""
    async with Client(server) as client:
        mission = await ok(client, "create_mission", name="Quotes")
        before = []
        for _ in range(7):
            run = await ok(client, "start_run", mission_id=mission["mission_id"])
            before.append(run["run_id"])
            clock.advance(1)
        seen: list[str] = []
        added = []
        cursor = None
        while True:
            page = await ok(client, "list_runs", limit=2, cursor=cursor)
            seen.extend(r["run_id"] for r in page["runs"])
            clock.advance(1)
            run = await ok(client, "start_run", mission_id=mission["mission_id"])
            added.append(run["run_id"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        again = await ok(client, "list_runs", limit=MAX_LIMIT)

    assert seen == list(reversed(before))
    assert [r["run_id"] for r in again["runs"]] == list(reversed(before + added))


async def test_runs_in_the_same_instant_are_paged_in_a_total_order(server):
    """The virtual clock stands still: every run has the same created_at, and the id decides."""
    async with Client(server) as client:
        run_ids = [await new_run(client) for _ in range(5)]
        paged = await page_through(client, "list_runs", 2)
        mission_ids = [r["mission_id"] for r in paged]
        missions = await page_through(client, "list_missions", 2)

    assert sorted(r["run_id"] for r in paged) == sorted(run_ids)
    assert [r["run_id"] for r in paged] == sorted(run_ids, reverse=True)
    assert [m["mission_id"] for m in missions] == sorted(mission_ids, reverse=True)


# --------------------------------------------------------------------------- the other lists


async def test_assistants_numbers_calls_and_do_not_call_page_each_row_once(server, ctx, clock):
    async with Client(server) as client:
        run_id = await new_run(client)
        assistants = []
        for i in range(3):
            created = await ok(
                client, "create_assistant", name=f"Negotiator {i}", instructions="Ask."
            )
            assistants.append(created["assistant_id"])
            clock.advance(1)
        await ok(client, "assign_phone_number", assistant_id=assistants[0], run_id=run_id)
        calls = []
        for i in range(5):
            call = await ok(
                client,
                "schedule_call",
                assistant_id=assistants[0],
                to=f"+1312555010{i}",
                run_id=run_id,
            )
            calls.append(call["scheduled_event_id"])
            clock.advance(1)
        for target in ("+13125550177", "+13125550155", "+13125550166"):
            await ok(client, "add_do_not_call", target=target, reason="asked")

        paged_assistants = await page_through(client, "list_assistants", 2)
        paged_numbers = await page_through(client, "list_phone_numbers", 1)
        paged_calls = await page_through(client, "list_scheduled_calls", 2, run_id=run_id)
        paged_dnc = await page_through(client, "list_do_not_call", 2)

    assert [a["assistant_id"] for a in paged_assistants] == list(reversed(assistants))
    assert [n["phone_number"] for n in paged_numbers] == ["+13125550100", "+13125550199"]
    assert [c["scheduled_event_id"] for c in paged_calls] == calls
    assert [e["target"] for e in paged_dnc] == ["+13125550155", "+13125550166", "+13125550177"]
    assert do_not_call_service.list_do_not_call(ctx) == [e["target"] for e in paged_dnc]


# --------------------------------------------------------------------------- resources


async def test_list_resources_take_cursor_and_limit_query_parameters(server, ctx):
    async with Client(server) as client:
        run_id = await new_run(client)
        for i in range(4):
            await ok(client, "log_event", run_id=run_id, type="custom", summary=f"e{i}")
        await new_run(client)
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        events: list[str] = []
        uri = f"mission://runs/{run_id}/events?limit=2"
        while True:
            page = await read_json(client, uri)
            assert len(page["events"]) <= 2
            events.extend(e["summary"] for e in page["events"])
            if page["next_cursor"] is None:
                break
            uri = f"mission://runs/{run_id}/events?cursor={page['next_cursor']}&limit=2"
        first = await read_json(client, "mission://missions")
        one = await read_json(client, "mission://missions?limit=1")
        two = await read_json(client, f"mission://missions?limit=1&cursor={one['next_cursor']}")
        calls = await read_json(client, f"mission://runs/{run_id}/calls?limit=3")
        bad_cursor = await read_error(client, f"mission://runs/{run_id}/events?cursor=nope")
        bad_limit = await read_error(client, f"mission://runs/{run_id}/events?limit=501")
        not_a_number = await read_error(client, "mission://missions?limit=many")

    assert "mission://runs/{run_id}/events{?cursor,limit}" in templates
    assert "mission://runs/{run_id}/calls{?cursor,limit}" in templates
    assert "mission://missions{?cursor,limit}" in templates
    logged = [e.summary for e in plans.all_events(ctx, run_id)]
    assert events == logged and [f"e{i}" for i in range(4)] == logged[-4:]
    assert len(first["missions"]) == 2 and first["next_cursor"] is None
    assert len(one["missions"]) == 1 and len(two["missions"]) == 1
    assert one["missions"][0]["mission_id"] != two["missions"][0]["mission_id"]
    assert two["next_cursor"] is None
    assert calls == {"scheduled_calls": [], "next_cursor": None}
    assert "cursor must be a next_cursor from a previous page of list_events" in bad_cursor
    assert "limit must be between 1 and 500, got 501" in bad_limit
    assert "limit must be an integer, got 'many'" in not_a_number
    assert mission_service.list_missions(ctx, limit=1).next_cursor == one["next_cursor"]


async def read_json(client: Client, uri: str) -> dict[str, Any]:
    result = await client.read_resource(uri)
    return json.loads(result.contents[0].text)  # type: ignore[union-attr]


async def read_error(client: Client, uri: str) -> str:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri)
    return str(caught.value)
