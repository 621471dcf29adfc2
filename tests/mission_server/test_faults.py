"""The engine under faults, with real processes: ``mission worker`` and ``mission serve`` are
killed (SIGKILL) or stopped (SIGTERM) mid-run and started again, against a Telnyx fake served
on 127.0.0.1 (``tests.support.telnyx_server``) or the simulator.

What is counted is what a person would notice: calls created *at the provider* (by idempotency
key), rows that end, runs that finish, and how long a stop takes. Every wait polls with a
deadline. These run in CI, never skipped (PostgreSQL included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from mission_server.app import build_context
from mission_server.cli.common import ledger_path_for
from mission_server.services import assistants, insights, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from state import models as m
from tests.support.telnyx import API_KEY, TelnyxAccount, error
from tests.support.telnyx_server import ServedAccount, served

pytestmark = pytest.mark.slow

MISSION = str(Path(sys.executable).with_name("mission"))
EVENTS = m.ScheduledEvent.__table__
CALLER = "+13125550100"
#: Numbers in zones that, between them, are inside calling hours at any hour of the day.
NUMBERS_BY_ZONE = {
    "Europe/London": "+4420794600{:02d}",
    "America/New_York": "+121255501{:02d}",
    "Asia/Tokyo": "+8131234{:04d}",
}
TERMINAL = {"completed", "failed", "cancelled"}
#: Every day, 08:00-21:00 local: the legal bound, which in_hours_target keeps clear of.
WIDE = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "08:00", "end": "21:00"}
#: Businesses of the packaged simulated world that answer.
ANSWERING = ["+13125550101", "+13125550102", "+13125550105"]


def in_hours_target(index: int) -> str:
    """A valid number whose (only) zone is well inside 08:00-21:00 now, with room for the
    test to run: each test keeps to one zone, so the choice is made per call."""
    now = datetime.now(UTC)
    for zone, pattern in NUMBERS_BY_ZONE.items():
        local = now.astimezone(ZoneInfo(zone))
        minutes = local.hour * 60 + local.minute
        if 8 * 60 + 5 <= minutes <= 20 * 60 + 30:
            return pattern.format(index % (100 if "{:02d}" in pattern else 10_000))
    raise AssertionError(f"no zone of {list(NUMBERS_BY_ZONE)} is inside calling hours at {now}")


def wait_until(what: str, predicate: Callable[[], bool], timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(EVENTS))]


def worker_env(server: ServedAccount | None = None, **extra: str) -> dict[str, str]:
    drop = {"TELNYX_API_KEY", "TELNYX_BASE_URL", "MISSION_LLM_BASE_URL", "MISSION_LLM_MODEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if server is not None:
        env.update(TELNYX_API_KEY=API_KEY, TELNYX_BASE_URL=server.base_url)
    env.update(extra)
    return env


class Mission:
    """One ``mission`` process; its stderr goes to ``log``."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("ab")
        self.process = subprocess.Popen(
            [MISSION, *argv], stdout=subprocess.DEVNULL, stderr=self._stderr, env=env
        )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._stderr.close()

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM; the seconds until it exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        took = time.monotonic() - started
        self._stderr.close()
        return took

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._stderr.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class Worker(Mission):
    """``mission worker`` on ``db``, sweeping every half second."""

    def __init__(self, db: str, env: dict[str, str], log: Path, *args: str) -> None:
        super().__init__(["worker", "--db", db, "--poll-secs", "0.5", *args], env, log)


@contextmanager
def workers(db: str, env: dict[str, str], logs: Path, count: int) -> Iterator[list[Worker]]:
    started = [Worker(db, env, logs / f"worker-{n}.log") for n in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.close()


def telnyx_context(server: ServedAccount, db_url: str) -> Context:
    settings = Settings(TELNYX_API_KEY=API_KEY, TELNYX_BASE_URL=server.base_url)
    return build_context(settings, db_url=db_url)


def caller(ctx: Context) -> str:
    assistant = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hello!")
    assistants.assign_phone_number(ctx, assistant.assistant_id, CALLER)
    return assistant.assistant_id


def assert_no_repeated_sweep_error(*logs: str) -> None:
    for text in logs:
        assert text.count("sweep failed") <= 1, text[-3000:]


# -- exactly once -----------------------------------------------------------------------------


def test_three_workers_one_killed_mid_run_place_every_call_exactly_once(pg_url, tmp_path):
    """300 calls, 3 workers on PostgreSQL, a provider taking 0.3-1.5 s per create, a 5 s
    lease; one worker is SIGKILLed mid-run and started again."""
    account = TelnyxAccount([CALLER])
    with served(account, create_delay=(0.3, 1.5)) as server:
        ctx = telnyx_context(server, pg_url)
        assistant_id = caller(ctx)
        scheduled = [
            scheduling.create_scheduled_event(
                ctx,
                assistant_id=assistant_id,
                channel="phone_call",
                to=in_hours_target(i),
                calling_window=WIDE,
            ).scheduled_event_id
            for i in range(300)
        ]
        # Every call may be in progress at once (a Telnyx account's default is 2 lines):
        # what is tested is exactly once under a kill, not the account's limit.
        env = worker_env(server, MISSION_LEASE_SECS="5", MISSION_MAX_CONCURRENT_CALLS="300")
        with workers(pg_url, env, tmp_path, 3) as running:
            wait_until("the first 60 creates", lambda: len(server.creates()) >= 60, 120)
            running[0].kill()
            running[0] = Worker(pg_url, env, tmp_path / "worker-0-restarted.log")
            wait_until(
                "every row to end",
                lambda: all(r["status"] in TERMINAL for r in rows(ctx.engine)),
                300,
                every=1.0,
            )
            logs = [w.text() for w in running] + [(tmp_path / "worker-0.log").read_text()]
        creates = Counter(server.creates())
    final = rows(ctx.engine)
    ctx.engine.dispose()

    assert set(creates) == {f"{event_id}:1" for event_id in scheduled}
    twice = {key: n for key, n in creates.items() if n > 1}
    assert not twice, f"{len(twice)} calls created more than once at the provider: {twice}"
    assert Counter(r["status"] for r in final) == {"completed": 300}
    assert_no_repeated_sweep_error(*logs)


def test_an_unclear_create_then_a_kill_and_a_restart_create_one_call(tmp_path):
    """The create reaches Telnyx but answers 500, and every look-up fails (503): the worker
    cannot know whether the call exists. It is SIGKILLed; a new worker must look the call up,
    and may not create it again while the look-ups keep failing."""
    faults = {"create": True, "lookups": True}
    lookups_seen: list[str] = []

    def outage(request: httpx.Request, account: TelnyxAccount, forward) -> httpx.Response | None:
        path = request.url.path
        if request.method == "POST" and path.endswith("/scheduled_events") and faults["create"]:
            forward(request)  # the event is created...
            return error(500, "10007", "Unexpected error", "internal error")  # ...unanswered
        listing = path.endswith("/scheduled_events") or path.endswith("/ai/conversations")
        if request.method == "GET" and listing and faults["lookups"]:
            lookups_seen.append(path)
            return error(503, "10009", "Service unavailable", "try again later")
        return None

    account = TelnyxAccount([CALLER])
    db = str(tmp_path / "m.db")
    with served(account, faults=outage) as server:
        ctx = telnyx_context(server, db)
        assistant_id = caller(ctx)
        event_id = scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant_id,
            channel="phone_call",
            to=in_hours_target(1),
            calling_window=WIDE,
        ).scheduled_event_id
        env = worker_env(server, MISSION_LEASE_SECS="5")

        first = Worker(db, env, tmp_path / "first.log")
        try:
            # The create went out and its answer was a 500: the row is released, marked as
            # "may have reached the provider" in the database, not only in memory.
            wait_until(
                "the unclear create to be recorded",
                lambda: (r := rows(ctx.engine)[0])["recovered"] and r["lease_owner"] is None,
                90,
            )
        finally:
            first.kill()
        assert server.creates() == [f"{event_id}:1"]
        faults["create"] = False  # from now on a create would succeed: a re-send would show

        # The provider's back-off (a minute) passes.
        with ctx.engine.begin() as conn:
            conn.execute(update(EVENTS).values(due_at=datetime.now(UTC)))
        seen_before = len(lookups_seen)
        second = Worker(db, env, tmp_path / "second.log")
        try:
            wait_until(
                "the new worker to look the call up", lambda: len(lookups_seen) > seen_before, 60
            )
            wait_until(
                "the failed look-up to be recorded",
                lambda: (r := rows(ctx.engine)[0])["lease_owner"] is None and r["recovered"],
                60,
            )
            assert server.creates() == [f"{event_id}:1"]  # not sent again while unsure
            faults["lookups"] = False
            wait_until(
                "the call to be found and to end",
                lambda: rows(ctx.engine)[0]["status"] in TERMINAL,
                90,
            )
            logs = second.text()
        finally:
            second.close()
    final = rows(ctx.engine)[0]
    ctx.engine.dispose()

    assert server.creates() == [f"{event_id}:1"]
    assert final["status"] == "completed" and final["current_attempt"] == 1
    assert_no_repeated_sweep_error(logs, first.text())


# -- never stuck ------------------------------------------------------------------------------


def test_a_call_whose_event_is_gone_after_a_restart_fails_with_the_reason(tmp_path):
    """A worker dies mid-call; when the next one asks, Telnyx answers 404 for the event."""
    account = TelnyxAccount([CALLER])
    db = str(tmp_path / "m.db")
    with served(account) as server:
        ctx = telnyx_context(server, db)
        assistant_id = caller(ctx)
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant_id,
            channel="phone_call",
            to=in_hours_target(2),
            calling_window=WIDE,
        )
        env = worker_env(server, MISSION_LEASE_SECS="5")
        first = Worker(db, env, tmp_path / "first.log")
        try:
            wait_until(
                "the call to be placed",
                lambda: rows(ctx.engine)[0]["in_flight_call_control_id"] is not None,
                60,
            )
        finally:
            first.kill()
        with server.lock:
            account.events.clear()  # Telnyx no longer knows the event: 404
        with ctx.engine.begin() as conn:  # the 15 s poll interval passes
            conn.execute(update(EVENTS).values(due_at=datetime.now(UTC)))
        started = time.monotonic()
        second = Worker(db, env, tmp_path / "second.log")
        try:
            wait_until("the row to end", lambda: rows(ctx.engine)[0]["status"] in TERMINAL, 60)
            took = time.monotonic() - started
            time.sleep(2)  # let a repeated error show, if there is one
            logs = second.text()
        finally:
            second.close()
    final = rows(ctx.engine)[0]
    ctx.engine.dispose()

    assert final["status"] == "failed"
    # The attempt ends with Telnyx's own reason (10005: not found), then the retry rules
    # apply: no retries were allowed.
    reason, verdict = final["errors"]
    assert reason["code"] == "10005" and "404" in reason["detail"], reason
    assert verdict["code"] == "client_error_retry_budget_exhausted", verdict
    assert took < 60
    assert account.keys() == []  # nothing was placed again
    assert_no_repeated_sweep_error(logs)


def _mcp_call(port: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One MCP tool call over streamable HTTP (no auth, loopback)."""
    import anyio
    from mcp.client import Client

    async def call() -> dict[str, Any]:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
            return result.structured_content or {}

    return anyio.run(call)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_serve_simulate_restarted_mid_call_finishes_the_run(stop, tmp_path):
    from tests.mission_server.test_server_transports import ROOT, free_port

    db = tmp_path / "m.db"
    spec = (ROOT / "examples" / "catering.yaml").read_text()
    servers: list[Mission] = []
    SIMULATE = ("--simulate", "--sim-speed", "60")

    def serve() -> int:
        port = free_port()
        server = Mission(
            ["serve", "--http", "--no-auth", "--port", str(port), "--db", str(db), *SIMULATE],
            worker_env(),
            tmp_path / f"serve-{len(servers)}.log",
        )
        servers.append(server)

        def ready() -> bool:
            assert server.process.poll() is None, server.text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                return True
            except httpx.HTTPError:
                return False

        wait_until("the server to listen", ready, 60)
        return port

    engine = build_context(Settings(), db_url=str(db), simulate=True).engine
    runs = m.Run.__table__
    try:
        run_id = _mcp_call(serve(), "run_mission", {"spec": spec})["run_id"]
        wait_until(
            "a call in flight",
            lambda: any(r["status"] == "in_progress" for r in rows(engine)),
            60,
            every=0.05,
        )
        if stop == "SIGKILL":
            servers[0].kill()
        else:
            servers[0].stop(timeout=15)
        serve()

        def finished() -> bool:
            with engine.connect() as conn:
                status = conn.execute(select(runs.c.status).where(runs.c.run_id == run_id))
                return status.scalar() in {"succeeded", "failed", "cancelled"}

        try:
            wait_until("the run to finish", finished, 120, every=0.5)
        except AssertionError as exc:  # say what the servers were doing
            logs = "\n".join(f"--- {s.log.name}\n{s.text()[-4000:]}" for s in servers)
            raise AssertionError(f"{exc}\n{logs}") from None
        with engine.connect() as conn:
            run = dict(conn.execute(select(runs).where(runs.c.run_id == run_id)).one()._mapping)
        final = rows(engine)
    finally:
        engine.dispose()
        for server in servers:
            if server.process.poll() is None:
                server.stop()
            server.close()
    texts = [server.text() for server in servers]

    assert run["status"] == "succeeded", run
    assert all(r["status"] in TERMINAL for r in final), final
    assert_no_repeated_sweep_error(*texts)
    assert "was not placed by the simulator" not in texts[-1]


# -- shutdown ---------------------------------------------------------------------------------


@contextmanager
def hanging_llm() -> Iterator[tuple[str, list[str]]]:
    """An OpenAI-compatible endpoint that takes a minute to answer anything."""
    seen: list[str] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            seen.append(self.path)
            release.wait(60)
            self.send_response(503)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_sigterm_of_a_busy_worker_exits_in_seconds_and_the_next_one_extracts(tmp_path):
    db = str(tmp_path / "m.db")
    ctx = build_context(Settings(), db_url=db, simulate=True, ledger_path=ledger_path_for(db))
    insight = insights.create_insight(
        ctx.engine, name="Quote", instructions="The quoted price.", now=ctx.now()
    )
    group = insights.create_insight_group(ctx.engine, "Quotes", [insight.insight_id], now=ctx.now())
    assistant = assistants.create_assistant(
        ctx, "Caller", "Ask for a quote.", insight_group_id=group.insight_group_id
    )
    assistants.assign_phone_number(ctx, assistant.assistant_id)
    for i in range(12):
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant.assistant_id,
            channel="phone_call",
            to=ANSWERING[i % len(ANSWERING)],
        )
    with hanging_llm() as (llm_url, asked):
        busy = Worker(
            db,
            worker_env(MISSION_LLM_BASE_URL=llm_url, MISSION_LLM_MODEL="slow-model"),
            tmp_path / "busy.log",
            "--simulate",
            "--sim-speed",
            "600",
        )
        try:
            wait_until(
                "the calls to end",
                lambda: all(r["status"] in TERMINAL for r in rows(ctx.engine)),
                120,
            )
            wait_until("extractions to be under way", lambda: len(asked) >= 4, 60)
            took = busy.stop()
        finally:
            busy.close()
    from mission_server.services.extraction import unextracted_conversations

    left = unextracted_conversations(ctx.engine)
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert len(left) == 12  # 4 running and 8 queued: abandoned, none done in a rush
    assert "abandoned" in busy.text()

    later = Worker(db, worker_env(), tmp_path / "later.log", "--simulate")
    try:
        wait_until(
            "the next worker to extract them",
            lambda: not unextracted_conversations(ctx.engine),
            60,
        )
    finally:
        later.close()
    with ctx.engine.connect() as conn:
        results = conn.execute(select(m.InsightResult.__table__)).all()
    ctx.engine.dispose()
    assert len(results) == 12
