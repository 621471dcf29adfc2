"""MCP round-trip latency over stdio: ``get_run`` against a database of 10,000 runs, beside a
trivial tool (``server_status``) and the protocol's own ``ping``.

The runs (each with a plan of 3 steps and 3 events) are seeded with SQL inserts into a
temporary SQLite database; ``mission serve --no-dispatcher --simulate`` is started as a
subprocess and driven with the SDK ``Client`` over stdio, one call at a time, the tools
interleaved so drift hits both alike. ``get_run`` reads a random run each time.

Targets: p50 <= 5 ms and p99 <= 20 ms for both tools, and get_run's p50 within 2x the
trivial tool's. Prints the figures; the last line is one JSON object.

    python bench/mcp_latency.py [--runs 10000] [--calls 2000] [--warmup 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPDeprecationWarning

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from state import models as m
from state.db import make_engine, upgrade

TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0
TARGET_RATIO = 2.0
STEPS = ("create-assistant", "call-baseline", "compare")


def seed(path: Path, runs: int, rng: random.Random) -> list[str]:
    """Create the schema and insert ``runs`` runs of one mission; return the run ids."""
    engine = make_engine(str(path))
    upgrade(engine)
    start = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    mission_id = str(uuid.uuid4())
    run_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(runs)]
    run_rows, step_rows, event_rows = [], [], []
    for i, run_id in enumerate(run_ids):
        at = start + timedelta(seconds=i)
        run_rows.append(
            {
                "run_id": run_id,
                "mission_id": mission_id,
                "status": "succeeded" if i % 3 else "running",
                "input": {"guests": 50, "city": "Chicago"},
                "metadata": {},
                "variables": {"best_quote": "$65 per person"},
                "result_summary": "Chicago Grill Co at $62 per person." if i % 3 else None,
                "result_payload": {"recommendation": "Chicago Grill Co"} if i % 3 else None,
                "calls_placed": 0,
                "approval_required": False,
                "created_at": at,
                "started_at": at,
                "updated_at": at,
            }
        )
        for n, step_id in enumerate(STEPS, 1):
            step_rows.append(
                {
                    "run_id": run_id,
                    "step_id": step_id,
                    "description": f"Step {n}: {step_id}",
                    "sequence": n,
                    "status": "completed",
                    "metadata": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )
            event_rows.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "run_id": run_id,
                    "type": "step_completed",
                    "summary": f"Step {step_id} completed",
                    "step_id": step_id,
                    "payload": {},
                    "created_at": at,
                }
            )
    with engine.begin() as conn:
        conn.execute(
            m.Mission.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "mission_id": mission_id,
                    "name": "Catering quotes",
                    "metadata": {},
                    "execution_mode": "external",
                    "created_at": start,
                    "updated_at": start,
                }
            ],
        )
        conn.execute(m.Run.__table__.insert(), run_rows)  # type: ignore[attr-defined]
        conn.execute(m.PlanStep.__table__.insert(), step_rows)  # type: ignore[attr-defined]
        conn.execute(m.Event.__table__.insert(), event_rows)  # type: ignore[attr-defined]
    engine.dispose()
    return run_ids


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 0.50), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "max_ms": round(max(samples), 3),
    }


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def measure(
    db: Path,
    run_ids: list[str],
    calls: int,
    warmup: int,
    rng: random.Random,
    mode: str,
    detail: str,
) -> dict[str, list[float]]:
    mission = Path(sys.executable).with_name("mission")
    params = StdioServerParameters(
        command=str(mission),
        args=["serve", "--db", str(db), "--simulate", "--no-dispatcher"],
    )
    samples: dict[str, list[float]] = {"server_status": [], "get_run": []}
    with_ping = mode == "legacy"
    if with_ping:
        samples["ping"] = []
    async with Client(params, mode=mode) as client:

        async def status() -> None:
            result = await client.call_tool("server_status", {})
            assert not result.is_error, result.content

        async def get_run() -> None:
            run_id = rng.choice(run_ids)
            result = await client.call_tool("get_run", {"run_id": run_id, "detail": detail})
            assert not result.is_error, result.content
            steps = "steps" if detail == "compact" else "plan"
            assert len(result.structured_content[steps]) == len(STEPS)

        for _ in range(warmup):
            await status()
            await get_run()
            if with_ping:
                await client.send_ping()
        for _ in range(calls):
            samples["server_status"].append(await timed(status))
            samples["get_run"].append(await timed(get_run))
            if with_ping:
                samples["ping"].append(await timed(client.send_ping))
    return samples


async def measure_in_process(
    db: Path, run_ids: list[str], calls: int, rng: random.Random, detail: str
) -> dict[str, list[float]]:
    """The same tools called on the server object directly: the server's own share (service
    work, validation, serialisation), without transport or client."""
    from mission_server.app import build_context
    from mission_server.mcp.server import build_server
    from mission_server.telephony.scripted import ScriptedProvider

    ctx = build_context(db_url=str(db), provider=ScriptedProvider(), clock="virtual")
    server = build_server(ctx)
    samples: dict[str, list[float]] = {"server_status": [], "get_run": []}
    for _ in range(calls):
        samples["server_status"].append(await timed(lambda: server.call_tool("server_status", {})))
        run_id = rng.choice(run_ids)
        samples["get_run"].append(
            await timed(
                lambda: server.call_tool("get_run", {"run_id": run_id, "detail": detail})  # noqa: B023
            )
        )
    ctx.engine.dispose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mode",
        default="legacy",
        help="Client protocol mode: 'legacy' (initialize handshake, what today's desktop "
        "clients speak; default) or 'auto' (2026-07-28 where the server offers it; it has no "
        "ping, so ping is not measured).",
    )
    parser.add_argument(
        "--detail",
        choices=("compact", "full"),
        default="compact",
        help="get_run's view: 'compact' (its default, what an agent polls) or 'full'.",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        db = Path(tmp) / "bench.db"
        started = time.perf_counter()
        run_ids = seed(db, args.runs, rng)
        seeded_secs = time.perf_counter() - started
        print(
            f"seeded {args.runs} runs (+{len(STEPS)} steps, {len(STEPS)} events each) "
            f"in {seeded_secs:.2f} s",
            file=sys.stderr,
        )
        with warnings.catch_warnings():
            # ping is deprecated in the 2026-07-28 protocol; in legacy mode it is still the
            # protocol's own no-op, the floor the tools are compared with.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            samples = anyio.run(
                measure, db, run_ids, args.calls, args.warmup, rng, args.mode, args.detail
            )
        local = anyio.run(measure_in_process, db, run_ids, args.calls, rng, args.detail)

    results = {name: summary(values) for name, values in samples.items()}
    in_process = {name: summary(values) for name, values in local.items()}
    trivial, get_run = results["server_status"], results["get_run"]
    ratio = round(get_run["p50_ms"] / trivial["p50_ms"], 2)
    checks = {
        "p50_within_target": max(trivial["p50_ms"], get_run["p50_ms"]) <= TARGET_P50_MS,
        "p99_within_target": max(trivial["p99_ms"], get_run["p99_ms"]) <= TARGET_P99_MS,
        "get_run_within_2x_trivial": ratio <= TARGET_RATIO,
    }
    print(
        f"MCP over stdio ({args.mode} protocol mode), {args.calls} calls each, "
        f"{args.runs} runs in SQLite"
    )
    for name in ("ping", "server_status", "get_run"):
        if name not in results:
            continue
        r = results[name]
        print(
            f"  {name:<14} p50 {r['p50_ms']:7.3f} ms   p99 {r['p99_ms']:7.3f} ms   "
            f"mean {r['mean_ms']:7.3f} ms   max {r['max_ms']:7.3f} ms"
        )
    print("  server side only (in process, no transport or client):")
    for name, r in in_process.items():
        print(f"    {name:<12} p50 {r['p50_ms']:7.3f} ms   p99 {r['p99_ms']:7.3f} ms")
    print(f"  get_run p50 / server_status p50 = {ratio}  (target <= {TARGET_RATIO})")
    print(
        f"  targets: p50 <= {TARGET_P50_MS} ms, p99 <= {TARGET_P99_MS} ms -> "
        + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in checks.items())
    )
    print(
        json.dumps(
            {
                "bench": "mcp_latency",
                "transport": "stdio",
                "mode": args.mode,
                "detail": args.detail,
                "database": "sqlite",
                "runs": args.runs,
                "calls": args.calls,
                **{name: values for name, values in results.items()},
                "in_process": in_process,
                "get_run_over_trivial_p50": ratio,
                "targets": {
                    "p50_ms": TARGET_P50_MS,
                    "p99_ms": TARGET_P99_MS,
                    "get_run_over_trivial": TARGET_RATIO,
                },
                **checks,
                "pass": all(checks.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
