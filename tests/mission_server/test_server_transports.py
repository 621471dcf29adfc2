"""``mission serve`` as a separate process: MCP over stdio (with the dispatcher in the server
process placing a simulated call), streamable HTTP with and without the bearer token, DNS-
rebinding protection, and the refusals to start an unsafe HTTP server. Network: 127.0.0.1
only. Readiness is polled with a deadline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from mission_server.errors import ConfigurationError
from mission_server.mcp.http import (
    StaticTokenVerifier,
    check_http_options,
    is_loopback,
)

MISSION = str(Path(sys.executable).with_name("mission"))
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-test-token-7f1c"
READY_DEADLINE_SECS = 60.0
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
JSON_HEADERS = {"Accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"TELNYX_API_KEY", "MISSION_HTTP_TOKEN"}}
    env.update(extra)
    return env


@contextmanager
def http_server(tmp_path: Path, port: int, env: dict[str, str], *args: str) -> Iterator[Path]:
    """Run ``mission serve --http`` until the block ends; yield the stderr log path."""
    log = tmp_path / "server.log"
    out = tmp_path / "server.out"
    with log.open("wb") as stderr, out.open("wb") as stdout:
        process = subprocess.Popen(
            [
                MISSION,
                "serve",
                "--http",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "m.db"),
                "--simulate",
                "--no-dispatcher",
                *args,
            ],
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
        try:
            deadline = time.monotonic() + READY_DEADLINE_SECS
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "server not ready: " + log.read_text()
                    time.sleep(0.1)
            yield log
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert out.read_text() == ""  # logs go to stderr only


def refused(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MISSION, "serve", "--db", "sqlite://", *args],
        capture_output=True,
        text=True,
        env=env or server_env(),
        timeout=120,
    )


# --------------------------------------------------------------------------- stdio


@pytest.mark.slow
@pytest.mark.anyio
async def test_stdio_serves_tools_and_places_a_simulated_call(tmp_path):
    params = StdioServerParameters(
        command=MISSION,
        args=["serve", "--db", str(tmp_path / "m.db"), "--simulate", "--sim-speed", "600"],
    )
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        status = (await client.call_tool("server_status", {})).structured_content
        bad = await client.call_tool("get_run", {"run_id": "r-404"})
        assistant = await client.call_tool(
            "create_assistant",
            {"name": "Negotiator", "instructions": "Ask Lakefront for a catering quote."},
        )
        assistant_id = assistant.structured_content["assistant_id"]
        await client.call_tool("assign_phone_number", {"assistant_id": assistant_id})
        telnyx_name = await client.call_tool(
            "schedule_call",
            {
                "assistant_id": assistant_id,
                "to": "+13125550101",
                "scheduled_at_fixed_datetime": "2026-03-20T16:00:00Z",
            },
        )
        listed = await client.call_tool("list_scheduled_calls", {})
        call = await client.call_tool(
            "schedule_call", {"assistant_id": assistant_id, "to": "+13125550101"}
        )
        waited = await client.call_tool(
            "wait_for_call",
            {
                "scheduled_event_id": call.structured_content["scheduled_event_id"],
                "timeout_secs": 120,
            },
            progress_callback=on_progress,
        )

    assert {"server_status", "get_run", "wait_for_call", "schedule_call"} <= tools
    assert {"run_mission", "approve_run"} <= tools
    assert status["provider"] == "simulated" and status["real_calls"] is False
    assert status["clock"] == "accelerated" and status["sim_speed"] == 600
    assert status["dispatcher_running"] is True
    assert bad.is_error and "run 'r-404' not found" in bad.content[0].text
    # Strict inputs over stdio too: the Telnyx field name is refused, and nothing was scheduled.
    assert telnyx_name.is_error
    assert (
        "unknown argument 'scheduled_at_fixed_datetime'; did you mean 'scheduled_at'?"
        in telnyx_name.content[0].text
    )
    assert listed.structured_content["scheduled_calls"] == []
    result = waited.structured_content
    assert not waited.is_error and result["status"] == "completed", result
    assert result["call_status"] == "completed"
    assert any("Lakefront" in m["text"] for m in result["transcript"])
    assert progress and progress[-1].startswith("completed")


@pytest.mark.slow
@pytest.mark.anyio
async def test_stdio_run_mission_runs_the_catering_mission_to_its_recommendation(tmp_path):
    params = StdioServerParameters(
        command=MISSION,
        args=["serve", "--db", str(tmp_path / "m.db"), "--simulate", "--sim-speed", "3000"],
    )
    spec = (ROOT / "examples" / "catering.yaml").read_text()
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(params) as client:
        started = await client.call_tool("run_mission", {"spec": spec})
        assert not started.is_error, started.content[0].text
        run_id = started.structured_content["run_id"]
        deadline = time.monotonic() + 90
        while True:  # wait_for_run returns at its timeout; an agent calls it again
            waited = await client.call_tool(
                "wait_for_run",
                {"run_id": run_id, "timeout_secs": 30},
                progress_callback=on_progress,
            )
            assert not waited.is_error, waited.content[0].text
            if not waited.structured_content["timed_out"]:
                break
            assert time.monotonic() < deadline, "run still not finished after 90 s"
        compact = await client.call_tool("get_run", {"run_id": run_id})
        full = await client.call_tool("get_run", {"run_id": run_id, "detail": "full"})
        result = await client.read_resource(f"mission://runs/{run_id}/result")

    run = waited.structured_content
    assert run["terminal"] is True and run["status"] == "succeeded", run.get("error")
    assert run["result_payload"]["recommendation"]["name"] == "Chicago Grill Co"
    assert "Chicago Grill Co" in run["result_summary"]
    assert run["progress"]["answered"] == 3 and run["progress"]["attempts"] == 4
    assert any(m and "answered" in m for m in progress), progress
    # The compact view is what an agent polls: small, with each call named by its target.
    view = compact.structured_content
    assert view["detail"] == "compact" and "conversations" not in view
    assert [c["target_name"] for c in view["calls"]] == [
        "Lakefront Catering",
        "Chicago Grill Co",
        "Prairie Table Events",
    ]
    assert len(compact.content[0].text.encode()) < 3000
    assert len(full.structured_content["conversations"]) == 3
    assert any("Chicago Grill Co" in getattr(c, "text", "") for c in result.contents)


# --------------------------------------------------------------------------- HTTP


@pytest.mark.slow
@pytest.mark.anyio
async def test_http_requires_the_bearer_token_and_checks_the_host(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with http_server(tmp_path, port, server_env(MISSION_HTTP_TOKEN=TOKEN)) as log:
        async with httpx.AsyncClient(timeout=30) as raw:
            anonymous = await raw.post(url, json=INITIALIZE, headers=JSON_HEADERS)
            wrong = await raw.post(
                url, json=INITIALIZE, headers={**JSON_HEADERS, "Authorization": "Bearer nope"}
            )
            rebinding = await raw.post(
                url,
                json=INITIALIZE,
                headers={
                    **JSON_HEADERS,
                    "Authorization": f"Bearer {TOKEN}",
                    "Host": "evil.example.com",
                },
            )
        authorised = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"})
        async with (
            authorised,
            Client(streamable_http_client(url, http_client=authorised)) as client,
        ):
            status = (await client.call_tool("server_status", {})).structured_content
            mission = await client.call_tool("create_mission", {"name": "Over HTTP"})
            refused_call = await client.call_tool("create_mission", {"name": ""})
        server_log = log.read_text()

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert rebinding.status_code == 421
    assert status["provider"] == "simulated" and status["dispatcher_running"] is False
    assert not mission.is_error and mission.structured_content["name"] == "Over HTTP"
    assert refused_call.is_error and "name must not be empty" in refused_call.content[0].text
    assert TOKEN not in server_log


@pytest.mark.slow
@pytest.mark.anyio
async def test_http_no_auth_on_loopback_serves_without_a_token(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with http_server(tmp_path, port, server_env(), "--no-auth"):
        async with Client(url) as client:
            status = (await client.call_tool("server_status", {})).structured_content
        async with httpx.AsyncClient(timeout=30) as raw:
            rebinding = await raw.post(
                url, json=INITIALIZE, headers={**JSON_HEADERS, "Origin": "http://evil.example"}
            )

    assert status["provider"] == "simulated"
    assert rebinding.status_code == 403  # DNS-rebinding protection stays on without auth


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--http",), {}, "MISSION_HTTP_TOKEN is not set"),
        (("--http", "--no-auth", "--host", "0.0.0.0"), {}, "--no-auth is only accepted on a"),
        (
            ("--http", "--host", "0.0.0.0"),
            {"MISSION_HTTP_TOKEN": TOKEN},
            "refusing to serve without --allowed-host",
        ),
        (("--sim-speed", "0"), {}, "--sim-speed must be greater than 0, got 0"),
    ],
)
def test_unsafe_or_bad_options_refuse_to_start(args, env, message):
    result = refused(*args, env=server_env(**env))

    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())  # rich wraps long lines
    assert result.stdout == ""


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("mcp.example.com", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.anyio
async def test_the_token_verifier_accepts_exactly_the_token():
    verifier = StaticTokenVerifier(SecretStr(TOKEN))

    assert await verifier.verify_token(TOKEN) is not None
    assert await verifier.verify_token(TOKEN + "x") is None
    assert await verifier.verify_token(TOKEN[:-1]) is None
    assert await verifier.verify_token("") is None


def test_an_empty_token_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="MISSION_HTTP_TOKEN"):
        StaticTokenVerifier(SecretStr(""))
    with pytest.raises(ConfigurationError, match="MISSION_HTTP_TOKEN is not set"):
        check_http_options("127.0.0.1", SecretStr(""), False, None)


def test_allowed_hosts_open_a_non_loopback_bind_with_rebinding_protection():
    settings = check_http_options("0.0.0.0", SecretStr(TOKEN), False, ["mcp.example.com:8765"])

    assert settings.enable_dns_rebinding_protection is True
    assert settings.allowed_hosts == ["mcp.example.com:8765"]
    assert "https://mcp.example.com:8765" in settings.allowed_origins


def test_loopback_allows_only_loopback_names():
    settings = check_http_options("127.0.0.1", None, True, None)
    hosts: list[Any] = settings.allowed_hosts

    assert settings.enable_dns_rebinding_protection is True
    assert set(hosts) == {"127.0.0.1:*", "localhost:*", "[::1]:*"}


@pytest.mark.slow
def test_http_closes_connections_that_send_nothing_or_never_finish_their_headers(tmp_path):
    port = free_port()
    env = server_env(MISSION_HTTP_IDLE_SECS="1")
    with http_server(tmp_path, port, env, "--no-auth"):
        silent = socket.create_connection(("127.0.0.1", port))
        dribbling = socket.create_connection(("127.0.0.1", port))
        dribbling.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed_after = []
        for sock in (silent, dribbling):
            sock.settimeout(10)
            with sock:
                assert sock.recv(100) == b""  # closed by the server, nothing answered
            closed_after.append(time.monotonic() - started)
        answered = httpx.post(
            f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers=JSON_HEADERS, timeout=30
        )

    assert max(closed_after) < 5  # between one and two idle periods
    assert answered.status_code == 200  # a request that arrives whole is served as before
