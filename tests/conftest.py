"""Shared fixtures: a fresh SQLite database, a virtual clock pinned to a weekday morning in
Chicago, a scripted provider and the service context that ties them together.

PostgreSQL tests use the server on 127.0.0.1:5432 (database ``test``). Outside CI they skip
when it is unreachable; with ``CI=true`` they fail instead, so CI never silently skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mission_server.clock import VirtualClock
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state.db import create_schema, make_engine

#: Tuesday 2026-03-10 15:00 UTC = 10:00 in Chicago (CDT): inside business hours.
T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
#: tests/llm talk to a real model server: only ``make test-llm`` (which sets
#: MISSION_LLM_TESTS=1 and starts one) collects them, never ``make test``.
collect_ignore = [] if os.environ.get("MISSION_LLM_TESTS") == "1" else ["llm"]
PG_ADMIN_URL = os.environ.get(
    "MISSION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    eng = make_engine(str(tmp_path / "missions.db"))
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider(
        numbers=["+13125550100", "+13125550199"], with_conversations=True, duration_secs=120
    )


@pytest.fixture
def ctx(engine, clock, provider) -> Context:
    return Context(engine=engine, clock=clock, provider=provider, settings=Settings())


def _pg_reachable() -> bool:
    try:
        eng = make_engine(PG_ADMIN_URL, null_pool=True)
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema, dropped afterwards."""
    if not _pg_reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_ADMIN_URL, null_pool=True)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    url = f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_engine(pg_url) -> Iterator[Engine]:
    eng = make_engine(pg_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests (multi-process, mostly waiting on their processes) first, so that under
    ``pytest -n 2`` (``make test``) they run beside the rest instead of after it."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many Telnyx requests and answers the SDK oracle checked (this process only: with
    xdist each worker counts its own)."""
    import sys

    oracle = sys.modules.get("tests.support.telnyx_oracle")
    if oracle is not None and oracle.CHECKED["requests"]:
        counts = oracle.CHECKED
        terminalreporter.write_line(
            f"telnyx SDK oracle: {counts['requests']} requests and {counts['answers']} "
            "answers checked against telnyx " + oracle.SDK_VERSION
        )
