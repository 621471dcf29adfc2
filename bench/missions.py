"""Mission wall time: one catering mission end to end, and many missions at once.

1. ``mission run examples/catering.yaml --json`` as a subprocess on a fresh SQLite database:
   wall time from spawning the process to its exit (interpreter start, imports, migrations,
   the whole mission on the virtual clock, JSON output), ``--repeat`` times; also the CPU time
   the process used, which does not depend on how loaded the machine is. Target (issue 16):
   ≤ 1.2 s.
2. ``--missions`` catering missions started together in one process (one service context,
   the virtual clock, the inline runner) and driven until every one has finished: wall time
   from the first start to the last result. The simulated world gets one caller ID per
   mission (an assistant keeps its number for the run); also the CPU time it used. Target
   (issue 16): ≤ 5 s for 100.

Last line: one JSON object.

    python bench/missions.py [--repeat 3] [--missions 100]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CATERING = ROOT / "examples" / "catering.yaml"
WORLD = ROOT / "examples" / "world.yaml"
MISSION = Path(sys.executable).with_name("mission")
SINGLE_TARGET_S = 1.2
CONCURRENT_TARGET_S = 5.0


def _clean_env() -> dict[str, str]:
    drop = {
        "TELNYX_API_KEY",
        "MISSION_DB_URL",
        "MISSION_LLM_BASE_URL",
        "MISSION_LLM_MODEL",
        "MISSION_TEST_CRASH_AT",
    }
    return {k: v for k, v in os.environ.items() if k not in drop}


def single(repeat: int) -> dict[str, Any]:
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):
        db = Path(tempfile.mkdtemp(prefix="bench-missions-")) / "m.db"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [str(MISSION), "run", str(CATERING), "--json", "--db", str(db), "--world", str(WORLD)],
            env=_clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if done.returncode != 0:
            raise SystemExit(f"mission run failed ({done.returncode}): {done.stderr[-2000:]}")
        detail = json.loads(done.stdout)
        assert detail["result_payload"]["recommendation"]["name"] == "Chicago Grill Co"
    startup: list[float] = []
    for _ in range(repeat):
        db = Path(tempfile.mkdtemp(prefix="bench-missions-")) / "m.db"
        started = time.perf_counter()
        subprocess.run(
            [str(MISSION), "db", "upgrade", "--db", str(db)],
            env=_clean_env(),
            capture_output=True,
            check=True,
        )
        startup.append(time.perf_counter() - started)
    return {
        "runs": repeat,
        "baseline_startup_s_median": round(statistics.median(startup), 3),
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_min": round(min(walls), 3),
        "cpu_s_median": round(statistics.median(cpus), 3),
        "target_s": SINGLE_TARGET_S,
        "met": statistics.median(walls) <= SINGLE_TARGET_S,
    }


def _world_with_numbers(count: int, directory: Path) -> Path:
    world = yaml.safe_load(WORLD.read_text(encoding="utf-8"))
    # Fictional NANP numbers (555-01xx) in a few Chicago-area codes: one caller ID each.
    codes = ("630", "708", "847", "224", "331", "779")
    numbers = [f"+1{codes[i // 100]}55501{i % 100:02d}" for i in range(count)]
    world["numbers"] = numbers
    path = directory / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    return path


def concurrent(missions: int) -> dict[str, Any]:
    from mission_server.app import build_context
    from mission_server.engine.runner import MissionRunner, drive_virtual
    from mission_server.services import missions as service
    from planner.spec import load_spec

    directory = Path(tempfile.mkdtemp(prefix="bench-missions-"))
    world = _world_with_numbers(missions, directory)
    ctx = build_context(
        db_url=str(directory / "m.db"),
        clock="virtual",
        simulate=True,
        world=world,
    )
    runner = MissionRunner(ctx, mode="inline")
    spec = load_spec(CATERING).model_dump(mode="json")
    started = time.perf_counter()
    cpu = time.process_time()
    run_ids = [runner.start(spec) for _ in range(missions)]
    statuses = drive_virtual(ctx, runner, run_ids)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    succeeded = sum(1 for s in statuses.values() if s == "succeeded")
    placed = 0
    recommended = set()
    for run_id in run_ids:
        payload = service.get_run(ctx, run_id).result_payload or {}
        placed += payload.get("totals", {}).get("calls_placed", 0)
        recommended.add((payload.get("recommendation") or {}).get("name"))
    runner.close()
    ctx.engine.dispose()
    return {
        "missions": missions,
        "succeeded": succeeded,
        "calls_placed": placed,
        "recommended": sorted(str(r) for r in recommended),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "target_s": CONCURRENT_TARGET_S * missions / 100,
        "met": wall <= CONCURRENT_TARGET_S * missions / 100 and succeeded == missions,
    }


def calls_only(missions: int) -> dict[str, Any]:
    """The concurrent missions' calls without the planner: scheduled directly, dispatched."""
    from mission_server.app import build_context
    from mission_server.engine.dispatcher import Dispatcher
    from mission_server.engine.drivers import run_until_idle
    from mission_server.services import assistants, scheduling
    from planner.spec import load_spec

    directory = Path(tempfile.mkdtemp(prefix="bench-missions-"))
    world = _world_with_numbers(missions, directory)
    ctx = build_context(db_url=str(directory / "m.db"), clock="virtual", simulate=True, world=world)
    spec = load_spec(CATERING)
    started = time.perf_counter()
    for _ in range(missions):
        assistant = assistants.create_assistant(
            ctx, spec.assistant.name, spec.assistant.instructions
        )
        assistants.assign_phone_number(ctx, assistant.assistant_id)
        for target in spec.targets:
            scheduling.create_scheduled_event(
                ctx,
                assistant_id=assistant.assistant_id,
                channel="phone_call",
                to=target.phone,
                dynamic_variables={"business_name": target.name},
                max_retries_client_errors=spec.retry.max_retries_client_errors,
                retry_interval_secs=spec.retry.retry_interval_secs,
            )
    report = run_until_idle(Dispatcher(ctx), ctx.clock)
    wall = time.perf_counter() - started
    ctx.engine.dispose()
    calls = missions * len(spec.targets)
    return {"calls": calls, "placed": report.placed, "wall_s": round(wall, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="single-mission repetitions")
    parser.add_argument("--missions", type=int, default=100, help="concurrent missions")
    args = parser.parse_args()
    if not 1 <= args.missions <= 600:
        parser.error("--missions must be between 1 and 600 (one caller ID each)")
    import logging

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    one = single(args.repeat)
    print(f"single catering mission (process start included): {one}", file=sys.stderr)
    many = concurrent(args.missions)
    print(f"{args.missions} concurrent missions: {many}", file=sys.stderr)
    many["baseline_calls_only"] = calls_only(args.missions)
    print(
        f"baseline, the same calls without the planner: {many['baseline_calls_only']}",
        file=sys.stderr,
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(
        json.dumps(
            {
                "bench": "missions",
                "single": one,
                "concurrent": many,
                "load_avg_1m": load,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
