"""Campaign scale: one parallel mission of 1,000 and of 10,000 targets on SQLite.

Each size runs in its own process (so peak RSS is that size's), twice:

* ``planner``: ``MissionRunner.start`` with a parallel availability survey, driven on the
  virtual clock (``drive_virtual``) until the run has finished;
* ``baseline``: the same calls without the planner — an assistant with the same insight,
  every call scheduled directly through the service as the planner schedules them (``BATCH``
  at a time with ``create_scheduled_events``), dispatched on the virtual clock with the same
  insight extraction.

The simulated world is generated here: fictional 555-01xx numbers over area codes in the
Eastern and Central zones; every 10th target is busy on the first attempt (answers on the
retry), every 20th is not in the world at all (rings out, unreachable), the others answer,
half of them available.

Printed per size: wall time, CPU per target, peak RSS, the checkpoint bytes per step (mean
and largest, from the SQLite checkpoint file), and the planner's own CPU per target (the
planner run's CPU minus the baseline's, divided by the targets). Targets (issue 16):
10,000 targets in ≤ 60 s wall; cost per target at the largest size within 1.3× of the
smallest; ≤ 2 ms planner CPU per target.

Last line: one JSON object.

    python bench/campaign.py [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WALL_TARGET_S = 60.0
LINEAR_TARGET = 1.3
PLANNER_CPU_TARGET_MS = 2.0
#: Calls scheduled per ``create_scheduled_events`` in the baseline: ``planner.graph.BATCH``,
#: what a parallel run schedules at a time (not imported: the planner's imports would count
#: in the baseline's peak RSS).
BATCH = 200
START = "2026-03-10T16:00:00Z"  # Tuesday, 11:00 in New York, 10:00 in Chicago
ZONES = {"America/New_York", "America/Chicago"}


def _area_codes(needed: int) -> list[str]:
    """Area codes whose fictional 555-01xx numbers map to one Eastern or Central zone."""
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    codes: list[str] = []
    for code in range(201, 990):
        probe = phonenumbers.parse(f"+1{code}2000000", None)
        zones = set(pn_timezone.time_zones_for_number(probe))
        if len(zones) == 1 and zones <= ZONES and code != 312:  # 312: the caller IDs
            codes.append(str(code))
        if len(codes) * 100 >= needed:
            return codes
    raise SystemExit(f"not enough area codes for {needed} fictional numbers")


def phones(count: int) -> list[str]:
    codes = _area_codes(count)
    return [f"+1{codes[i // 100]}55501{i % 100:02d}" for i in range(count)]


def world_and_spec(count: int, directory: Path) -> tuple[Path, dict[str, Any]]:
    numbers = phones(count)
    businesses = []
    targets = []
    for index, phone in enumerate(numbers):
        name = f"Venue {index:05d}"
        targets.append({"name": name, "phone": phone})
        if index % 20 == 19:
            continue  # not in the world: rings out
        business: dict[str, Any] = {
            "name": name,
            "phone": phone,
            "availability": {"available": index % 2 == 0},
        }
        if index % 10 == 3:
            business["answers"] = ["busy", "answer"]
        businesses.append(business)
    world = {
        "seed": 7,
        "start_time": START,
        "numbers": ["+13125550100", "+13125550198"],
        "businesses": businesses,
    }
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    spec = {
        "name": f"Availability survey of {count} venues",
        "objective": "Ask every venue whether it can host a 60-guest reception on Friday.",
        "strategy": "parallel",
        "assistant": {
            "name": "Venue Availability Checker",
            "greeting": "Hi, I'm calling to check your availability for an event.",
            "instructions": "You are calling {{target_name}}. Ask whether they have "
            "availability for a reception on Friday.",
        },
        "targets": targets,
        "extract": [
            {
                "name": "available",
                "type": "boolean",
                "required": True,
                "description": "Whether the venue can host the reception",
            }
        ],
        "retry": {"max_retries_client_errors": 1, "retry_interval_secs": 600},
    }
    return path, spec


def checkpoint_figures(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"checkpoints": 0}
    conn = sqlite3.connect(str(path))
    try:
        rows = conn.execute(
            "SELECT length(checkpoint) + length(metadata) FROM checkpoints"
        ).fetchall()
        writes = conn.execute(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM writes"
        ).fetchone()
    finally:
        conn.close()
    sizes = [r[0] for r in rows]
    return {
        "checkpoints": len(sizes),
        "checkpoint_bytes_mean": round(sum(sizes) / len(sizes)) if sizes else 0,
        "checkpoint_bytes_max": max(sizes, default=0),
        "writes": writes[0],
        "write_bytes_mean": round(writes[1] / writes[0]) if writes[0] else 0,
    }


def run_planner(count: int) -> dict[str, Any]:
    import logging

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    from mission_server.app import build_context
    from mission_server.engine.runner import MissionRunner, drive_virtual
    from mission_server.services import missions as service

    directory = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    world, spec = world_and_spec(count, directory)
    ctx = build_context(db_url=str(directory / "m.db"), clock="virtual", simulate=True, world=world)
    runner = MissionRunner(ctx, mode="inline")
    started, cpu = time.perf_counter(), time.process_time()
    run_id = runner.start(spec)
    statuses = drive_virtual(ctx, runner, [run_id])
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    payload = service.get_run_record(ctx, run_id).result_payload or {}
    totals = payload.get("totals", {})
    runner.close()
    ctx.engine.dispose()
    return {
        "status": statuses[run_id],
        "usable": totals.get("usable"),
        "unreachable": totals.get("unreachable"),
        "calls_placed": totals.get("calls_placed"),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        **checkpoint_figures(directory / "m.checkpoints.db"),
    }


def run_baseline(count: int) -> dict[str, Any]:
    import logging

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    from mission_server.app import build_context
    from mission_server.clock import VirtualClock
    from mission_server.engine.dispatcher import Dispatcher
    from mission_server.engine.drivers import run_until_idle
    from mission_server.engine.listeners import install_listeners
    from mission_server.errors import MissionError
    from mission_server.services import assistants, insights, scheduling

    directory = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    world, spec = world_and_spec(count, directory)
    ctx = build_context(db_url=str(directory / "m.db"), clock="virtual", simulate=True, world=world)
    install_listeners(ctx)
    started, cpu = time.perf_counter(), time.process_time()
    insight = insights.create_insight(
        ctx.engine,
        name="extraction",
        instructions=spec["objective"],
        parameters=[{**spec["extract"][0]}],
        now=ctx.now(),
    )
    group = insights.create_insight_group(
        ctx.engine, "extraction", [insight.insight_id], now=ctx.now()
    )
    assistant = assistants.create_assistant(
        ctx,
        spec["assistant"]["name"],
        spec["assistant"]["instructions"],
        greeting=spec["assistant"]["greeting"],
        insight_group_id=group.insight_group_id,
    )
    assistants.assign_phone_number(ctx, assistant.assistant_id)
    # Scheduled as a campaign schedules them: BATCH calls at a time in one transaction
    # (``create_scheduled_events``, what the planner's ``schedule_calls`` uses).
    requests = [
        {
            "assistant_id": assistant.assistant_id,
            "channel": "phone_call",
            "to": target["phone"],
            "dynamic_variables": {"target_name": target["name"]},
            "conversation_metadata": {"conversation_name": f"{target['name']} — call"},
            "max_retries_client_errors": 1,
            "retry_interval_secs": 600,
        }
        for target in spec["targets"]
    ]
    for start in range(0, len(requests), BATCH):
        for result in scheduling.create_scheduled_events(ctx, requests[start : start + BATCH]):
            if isinstance(result, MissionError):
                raise result
    clock = ctx.clock
    assert isinstance(clock, VirtualClock)
    report = run_until_idle(Dispatcher(ctx), clock)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    ctx.engine.dispose()
    return {"placed": report.placed, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}


def one(count: int, mode: str) -> dict[str, Any]:
    figures = run_planner(count) if mode == "planner" else run_baseline(count)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def measure(count: int, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--one", str(count), "--mode", mode],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} run of {count} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("planner", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.mode or "planner")))
        return
    sizes: dict[str, Any] = {}
    for count in args.sizes:
        planner = measure(count, "planner")
        baseline = measure(count, "baseline")
        planner_cpu_ms = (planner["cpu_s"] - baseline["cpu_s"]) * 1000 / count
        figures = {
            "targets": count,
            "planner": planner,
            "baseline_calls_only": baseline,
            "cpu_ms_per_target": round(planner["cpu_s"] * 1000 / count, 3),
            "baseline_cpu_ms_per_target": round(baseline["cpu_s"] * 1000 / count, 3),
            "planner_cpu_ms_per_target": round(planner_cpu_ms, 3),
            "ratio_to_baseline_wall": round(planner["wall_s"] / baseline["wall_s"], 2),
        }
        sizes[str(count)] = figures
        print(f"{count} targets: {json.dumps(figures)}", file=sys.stderr)
    smallest, largest = str(min(args.sizes)), str(max(args.sizes))
    linear = sizes[largest]["cpu_ms_per_target"] / sizes[smallest]["cpu_ms_per_target"]
    big = sizes[largest]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(
        json.dumps(
            {
                "bench": "campaign",
                "sizes": sizes,
                "cost_per_target_ratio": round(linear, 3),
                "targets": {
                    "wall_s": WALL_TARGET_S,
                    "linear": LINEAR_TARGET,
                    "planner_cpu_ms_per_target": PLANNER_CPU_TARGET_MS,
                },
                "met": {
                    "wall": big["planner"]["wall_s"] <= WALL_TARGET_S,
                    "linear": linear <= LINEAR_TARGET,
                    "planner_cpu": big["planner_cpu_ms_per_target"] <= PLANNER_CPU_TARGET_MS,
                },
                "load_avg_1m": load,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
