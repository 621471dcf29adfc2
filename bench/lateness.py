"""Real-time lateness: APScheduler drives the sweep; 1,000 calls fall due at spread times over
10 seconds; report p50 and p99 of placed-minus-due. Last line: one JSON object.

    python bench/lateness.py [--calls 1000] [--spread 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import AGENT_NUMBER, seed_due_calls, unfinished

from mission_server.clock import SystemClock
from mission_server.context import Context
from mission_server.dispatcher import Dispatcher, RealtimeTrigger
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state import models as m
from state.db import create_schema, make_engine


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=10.0)
    args = parser.parse_args()

    path = os.path.join(tempfile.mkdtemp(prefix="bench-lateness-"), "lateness.db")
    engine = make_engine(path)
    create_schema(engine)
    first_due = datetime.now(UTC) + timedelta(seconds=2)
    seed_due_calls(engine, args.calls, due_at=first_due, spread_secs=args.spread)
    provider = ScriptedProvider(duration_secs=0, numbers=[AGENT_NUMBER])
    ctx = Context(engine=engine, clock=SystemClock(), provider=provider, settings=Settings())
    trigger = RealtimeTrigger(Dispatcher(ctx), ctx.clock, poll_secs=1.0)
    trigger.start()
    deadline = time.monotonic() + args.spread + 30
    try:
        while unfinished(engine) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        trigger.stop()
    events, attempts = m.ScheduledEvent.__table__, m.CallAttempt.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.requested_at, attempts.c.attempted_at).join(
                attempts, attempts.c.scheduled_event_id == events.c.scheduled_event_id
            )
        ).all()
    lateness_ms = [
        (placed.replace(tzinfo=UTC) - due.replace(tzinfo=UTC)).total_seconds() * 1000
        for due, placed in rows
    ]
    if len(lateness_ms) != args.calls:
        raise SystemExit(f"only {len(lateness_ms)} of {args.calls} calls were placed in time")
    result = {
        "calls": args.calls,
        "spread_secs": args.spread,
        "sweeps": trigger.sweeps,
        "lateness_p50_ms": round(percentile(lateness_ms, 50), 2),
        "lateness_p99_ms": round(percentile(lateness_ms, 99), 2),
        "lateness_max_ms": round(max(lateness_ms), 2),
        "lateness_mean_ms": round(statistics.fmean(lateness_ms), 2),
        "early_calls": sum(1 for x in lateness_ms if x < 0),
        "target_p99_ms": 100,
    }
    print(f"placed {args.calls} calls due over {args.spread:.0f} s in {trigger.sweeps} sweeps")
    print(
        f"lateness p50 {result['lateness_p50_ms']} ms, p99 {result['lateness_p99_ms']} ms, "
        f"max {result['lateness_max_ms']} ms, early {result['early_calls']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
