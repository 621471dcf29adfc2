"""The skill (skills/missions) only names tools and arguments the server has: an agent that
follows it never calls a tool that does not exist or passes an argument the tool refuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from mission_server.services.context import Context
from tests.support.contract import TOOLS

pytestmark = pytest.mark.anyio

SKILL = Path(__file__).resolve().parents[2] / "skills" / "missions"
PAGES = [SKILL / "SKILL.md", *sorted((SKILL / "references").glob("*.md"))]

#: The verbs the server's tool names start with. A backticked `verb_something` in the skill
#: is taken to be a tool name (so `wait_for_run` is caught if no such tool exists).
VERBS = {name.split("_", 1)[0] for name in TOOLS} - {"run", "server"}
CODE = re.compile(r"`([^`]+)`")
TOOLISH = re.compile(rf"^(?:{'|'.join(sorted(VERBS))})_[a-z_]+$")
#: `name=value` or `name: value` inside backticks: an argument given a value.
ASSIGNED = re.compile(r"^([a-z_]+)\s*(?:=|:\s)")


def _chunks(text: str) -> list[str]:
    """Paragraphs, list items and table rows: the unit a tool and its arguments share."""
    chunks: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        chunks.extend(re.split(r"\n(?=\s*(?:[-|]|\d+\.)\s)", block))
    return chunks


async def _schemas(ctx: Context) -> dict[str, Any]:
    from mission_server.mcp.server import build_server

    async with Client(build_server(ctx, wait_poll_secs=0.01)) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


def _names(schema: dict[str, Any] | None) -> set[str]:
    return set((schema or {}).get("properties", {}))


async def test_every_tool_the_skill_names_exists(ctx: Context) -> None:
    tools = await _schemas(ctx)
    named = {
        (page.name, token)
        for page in PAGES
        for token in CODE.findall(page.read_text(encoding="utf-8"))
        if TOOLISH.match(token)
    }

    assert {name for _, name in named} >= {"release_phone_number", "get_run", "schedule_call"}
    missing = sorted((page, name) for page, name in named if name not in tools)
    assert not missing, f"the skill names tools the server does not have: {missing}"


async def test_every_argument_the_skill_gives_a_tool_is_one_of_its_arguments(
    ctx: Context,
) -> None:
    tools = await _schemas(ctx)
    wrong: list[tuple[str, str, list[str]]] = []
    checked = 0
    for page in PAGES:
        for chunk in _chunks(page.read_text(encoding="utf-8")):
            tokens = CODE.findall(chunk)
            mentioned = [t for t in tokens if t in tools]
            if chunk.lstrip().startswith("|") and mentioned:
                # A table row of tools.md: `tool` | use | `arg`, `arg?` | returns.
                cells = chunk.split("|")
                if len(cells) < 5:
                    continue
                tool = mentioned[0]
                # Values and remarks in parentheses are not arguments: `status?` (`failed`).
                listed = re.sub(r"\([^)]*\)", "", cells[3])
                arguments = [a.rstrip("?") for a in CODE.findall(listed)]
                arguments = [re.split(r"[:\s(\[]", a)[0] for a in arguments]
                accepted = _names(tools[tool].input_schema)
                for argument in arguments:
                    if re.fullmatch(r"[a-z_]+", argument):
                        checked += 1
                        if argument not in accepted:
                            wrong.append((page.name, argument, [tool]))
                continue
            # Prose: an argument given a value must belong to a tool named beside it (or be a
            # field that tool returns, as in `provider: "simulated"`).
            for token in tokens:
                found = ASSIGNED.match(token)
                if not found or not mentioned:
                    continue
                argument = found.group(1)
                checked += 1
                known = set().union(
                    *(
                        _names(tools[t].input_schema) | _names(tools[t].output_schema)
                        for t in mentioned
                    )
                )
                if argument not in known:
                    wrong.append((page.name, argument, mentioned))

    assert checked > 40  # the parser reads the tables and the recipes
    assert not wrong, f"arguments no tool beside them takes: {wrong}"


async def test_the_skill_teaches_a_new_key_per_attempt_and_number_release() -> None:
    text = (SKILL / "SKILL.md").read_text(encoding="utf-8")

    assert 'idempotency_key="<run_id>:<step_id>"' not in text  # the key that replays a failure
    assert "<run_id>:<step_id>:2" in text
    # Waiting on a run: wait_for_run, again while it timed out (no blind polling loop).
    assert "`wait_for_run`" in text and "`timed_out`" in text
    assert "`release_phone_number`" in text and "`keep_number: true`" in text
