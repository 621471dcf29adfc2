"""The published tool schemas (``mcp.schemas``): portable (no ``type`` lists, nothing
unconstrained), slim (no generated titles), and true: every result a tool returns in a catering
rehearsal validates against the output schema it publishes, with optional fields that have no
value left out and a required nullable field (``next_cursor``) sent as null."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp.client import Client
from pydantic import BaseModel, Field

from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.mcp.schemas import ANY_JSON, result_content, slim, type_lists
from mission_server.mcp.server import build_server
from tests.support.mcpkit import ok
from tests.support.missionkit import catering, make_ctx

pytestmark = pytest.mark.anyio


class Inner(BaseModel):
    when: str | None = None
    n: int


class Sample(BaseModel):
    note: str | None = None
    cursor: str | None = Field(description="Required, and may be null.")
    inner: Inner | None = None
    items: list[Inner] = Field(default_factory=list)
    free: dict[str, Any] = Field(default_factory=dict)
    anything: Any = None


def test_optional_fields_are_their_type_and_a_required_nullable_keeps_null() -> None:
    schema = slim(Sample.model_json_schema(), output=True)
    props = schema["properties"]
    assert props["note"] == {"type": "string"}
    assert props["cursor"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert set(schema["required"]) == {"cursor"}
    assert props["anything"] == ANY_JSON
    assert type_lists(schema) == [] and '"title"' not in json.dumps(schema)
    Draft202012Validator.check_schema(schema)


def test_a_result_leaves_out_optional_nulls_but_keeps_nulls_inside_free_values() -> None:
    sample = Sample(
        cursor=None,
        items=[Inner(n=1)],
        free={"leverage_offered": None},
        inner=Inner(when="now", n=2),
    )
    content = result_content(sample)
    assert content == {
        "cursor": None,
        "inner": {"when": "now", "n": 2},
        "items": [{"n": 1}],
        "free": {"leverage_offered": None},
    }
    schema = slim(Sample.model_json_schema(), output=True)
    assert list(Draft202012Validator(schema).iter_errors(content)) == []
    # The same content with a null where the schema says "absent or a string" is refused:
    # the schema is not looser than the results.
    assert list(Draft202012Validator(schema).iter_errors({**content, "note": None}))


async def test_every_published_schema_is_portable_and_every_result_matches_it(tmp_path) -> None:
    ctx = make_ctx(str(tmp_path / "m.db"), tmp_path)
    runner = MissionRunner(ctx, mode="inline")
    try:
        run_id = runner.start(catering())
        drive_virtual(ctx, runner, [run_id])
        async with Client(build_server(ctx, wait_poll_secs=0.01)) as client:
            listed = await client.list_tools()
            tools = {t.name: t for t in listed.tools}
            full = await ok(client, "get_run", run_id=run_id, detail="full")
            call = full["scheduled_calls"][0]
            results = {
                "get_run": [await ok(client, "get_run", run_id=run_id), full],
                "wait_for_run": [await ok(client, "wait_for_run", run_id=run_id)],
                "list_runs": [await ok(client, "list_runs")],
                "list_events": [await ok(client, "list_events", run_id=run_id, limit=5)],
                "list_scheduled_calls": [await ok(client, "list_scheduled_calls")],
                "get_scheduled_call": [
                    await ok(
                        client, "get_scheduled_call", scheduled_event_id=call["scheduled_event_id"]
                    )
                ],
                "get_conversation": [
                    await ok(
                        client,
                        "get_conversation",
                        conversation_id=full["conversations"][0]["conversation_id"],
                    )
                ],
                "server_status": [await ok(client, "server_status")],
                "list_assistants": [await ok(client, "list_assistants")],
            }
    finally:
        runner.close()
        ctx.engine.dispose()

    for tool in tools.values():
        for schema in (tool.input_schema, tool.output_schema):
            assert schema is not None, tool.name
            assert type_lists(schema) == [], tool.name
            assert '"title"' not in json.dumps(schema), tool.name
            Draft202012Validator.check_schema(schema)
        assert tool.input_schema["additionalProperties"] is False, tool.name
    for name, answers in results.items():
        validator = Draft202012Validator(tools[name].output_schema)
        for answer in answers:
            problems = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(answer)]
            assert problems == [], (name, problems[:3])
    # A page says where the next one starts, or null: never left out.
    assert results["list_events"][0]["next_cursor"] is not None
    assert results["list_runs"][0]["next_cursor"] is None
    compact, full_view = results["get_run"]
    assert compact["detail"] == "compact" and full_view["detail"] == "full"
    assert compact["progress"] == full_view["progress"]
    assert len(json.dumps(compact, separators=(",", ":")).encode()) < 3000
    # What an agent reads before its first call (issue 14): tools/list as sent, under 80 KB.
    assert len(listed.model_dump_json(by_alias=True, exclude_none=True).encode()) < 80_000
