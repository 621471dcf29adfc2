"""Real-time lateness: APScheduler drives the sweep; 1,000 calls fall due at spread times over
10 seconds; report p50 and p99 of placed-minus-due, "placed" being the wall-clock moment the
dispatcher hands the call to the provider. Last line: one JSON object.

Baseline, in the same run: bare APScheduler with one date job per due time and a job that
only notes the time, i.e. the lateness the scheduler alone adds on this machine.

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
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import RealtimeTrigger
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state import models as m
from state.db import create_schema, make_engine


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class TimedProvider(ScriptedProvider):
    """Notes the wall-clock moment each call is actually handed to the provider, so lateness
    includes claiming, rendering and everything else before the call goes out."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.handed_over: dict[str, datetime] = {}

    def place_call(self, request):  # type: ignore[no-untyped-def]
        self.handed_over[request.scheduled_event_id] = datetime.now(UTC)
        return super().place_call(request)


def scheduler_baseline(offsets_secs: list[float]) -> list[float]:
    """Fire-minus-due (ms) of bare APScheduler date jobs at the same offsets."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=UTC)
    fired: list[float] = []
    start = datetime.now(UTC) + timedelta(seconds=2)
    for offset in offsets_secs:
        due = start + timedelta(seconds=offset)
        scheduler.add_job(
            lambda due=due: fired.append((datetime.now(UTC) - due).total_seconds() * 1000),
            "date",
            run_date=due,
            misfire_grace_time=None,
        )
    scheduler.start()
    deadline = time.monotonic() + max(offsets_secs, default=0) + 30
    try:
        while len(fired) < len(offsets_secs) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=False)
    return fired


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
    provider = TimedProvider(duration_secs=0, numbers=[AGENT_NUMBER])
    ctx = Context(engine=engine, clock=SystemClock(), provider=provider, settings=Settings())
    trigger = RealtimeTrigger(Dispatcher(ctx), ctx.clock, poll_secs=1.0)
    trigger.start()
    deadline = time.monotonic() + args.spread + 30
    try:
        while unfinished(engine) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        trigger.stop()
    events = m.ScheduledEvent.__table__
    with engine.connect() as conn:
        query = select(events.c.scheduled_event_id, events.c.requested_at)
        due_times = {event_id: due for event_id, due in conn.execute(query)}
    rows = [
        (due_times[event_id].replace(tzinfo=UTC), placed)
        for event_id, placed in provider.handed_over.items()
    ]
    lateness_ms = [(placed - due).total_seconds() * 1000 for due, placed in rows]
    if len(lateness_ms) != args.calls:
        raise SystemExit(f"only {len(lateness_ms)} of {args.calls} calls were placed in time")
    first = min(due for due, _ in rows)
    baseline_ms = scheduler_baseline([(due - first).total_seconds() for due, _ in rows])
    result = {
        "calls": args.calls,
        "spread_secs": args.spread,
        "sweeps": trigger.sweeps,
        "lateness_p50_ms": round(percentile(lateness_ms, 50), 2),
        "lateness_p99_ms": round(percentile(lateness_ms, 99), 2),
        "lateness_max_ms": round(max(lateness_ms), 2),
        "lateness_mean_ms": round(statistics.fmean(lateness_ms), 2),
        "early_calls": sum(1 for x in lateness_ms if x < 0),
        "baseline_apscheduler_p50_ms": round(percentile(baseline_ms, 50), 2),
        "baseline_apscheduler_p99_ms": round(percentile(baseline_ms, 99), 2),
        "target_p99_ms": 100,
    }
    result["pass"] = result["lateness_p99_ms"] <= 100 and result["early_calls"] == 0
    print(f"placed {args.calls} calls due over {args.spread:.0f} s in {trigger.sweeps} sweeps")
    print(
        f"lateness p50 {result['lateness_p50_ms']} ms, p99 {result['lateness_p99_ms']} ms, "
        f"max {result['lateness_max_ms']} ms, early {result['early_calls']}"
    )
    print(
        "baseline (bare APScheduler date jobs at the same times): p50 "
        f"{result['baseline_apscheduler_p50_ms']} ms, "
        f"p99 {result['baseline_apscheduler_p99_ms']} ms"
    )
    print(f"target p99 <= 100 ms -> {'pass' if result['pass'] else 'FAIL'}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
