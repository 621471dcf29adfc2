"""Load generation shared by the dispatch benchmarks and the multi-worker test.

``seed_due_calls`` bulk-inserts N scheduled calls that are due now, each to a SIP target in a
fixed-offset zone where it is midday, open every day 08:00-21:00 (what the service stores for a
SIP target with that timezone), so every one is placeable at once whenever this runs.
``python bench/loadgen.py worker --db URL --out FILE`` runs one dispatcher worker with an
instantly-completing scripted provider until no call is left pending, writing every
idempotency key it placed to FILE (one per line) so a caller can check that no call was placed
twice.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mission_server.clock import SystemClock
from mission_server.engine.dispatcher import Dispatcher
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state import models as m
from state.db import make_engine

AGENT_NUMBER = "+13125550100"
ALL_WEEK = {
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "08:00",
    "end": "21:00",
}


def zone_near_noon(moment: datetime) -> str:
    """A fixed-offset IANA zone in which ``moment`` is between 12:00 and 13:00."""
    offset = 12 - moment.hour
    if offset < -12:
        offset += 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3


def seed_due_calls(
    engine: Engine, count: int, due_at: datetime | None = None, spread_secs: float = 0.0
) -> list[str]:
    """Insert ``count`` pending phone calls due at ``due_at`` (spread over ``spread_secs``)."""
    now = datetime.now(UTC)
    due_at = due_at or now - timedelta(seconds=1)
    assistant_id = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(count)]
    zone = zone_near_noon(due_at)
    rows = []
    for index, event_id in enumerate(ids):
        when = due_at + timedelta(seconds=spread_secs * index / max(count, 1))
        rows.append(
            {
                "scheduled_event_id": event_id,
                "assistant_id": assistant_id,
                "run_id": None,
                "step_id": None,
                "telnyx_conversation_channel": "phone_call",
                "telnyx_end_user_target": f"sip:load-{index:06d}@bench.example",
                "telnyx_agent_target": AGENT_NUMBER,
                "scheduled_at_fixed_datetime": when,
                "requested_at": when,
                "due_at": when,
                "text": None,
                "dynamic_variables": {},
                "conversation_metadata": {},
                "max_retries_client_errors": 0,
                "retry_interval_secs": None,
                "status": "pending",
                "call_status": None,
                "conversation_id": None,
                "errors": [],
                "idempotency_key": None,
                "timezones": [zone],
                "calling_window": ALL_WEEK,
                "deferrals": [],
                "hold_reason": None,
                "current_attempt": 0,
                "in_flight_call_control_id": None,
                "in_flight_placed_at": None,
                "in_flight_context": None,
                "recovered": False,
                "lease_owner": None,
                "lease_expires_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(
            insert(m.Assistant.__table__),
            [
                {  # type: ignore[attr-defined]
                    "assistant_id": assistant_id,
                    "name": "Bench",
                    "instructions": "Say hello.",
                    "greeting": None,
                    "model": None,
                    "voice": None,
                    "dynamic_variables": {},
                    "insight_group_id": None,
                    "webhook_url": None,
                    "provider": "scripted",
                    "provider_ref": "bench",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        for start in range(0, len(rows), 1000):
            conn.execute(insert(m.ScheduledEvent.__table__), rows[start : start + 1000])  # type: ignore[attr-defined]
    return ids


def unfinished(engine: Engine) -> int:
    table = m.ScheduledEvent.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.status.in_(("pending", "in_progress")))
            ).scalar_one()
        )


def work_until_empty(
    engine: Engine, provider: ScriptedProvider, deadline_secs: float = 120.0, batch_size: int = 200
) -> int:
    """Sweep until no call is left pending; return how many calls this worker placed."""
    ctx = Context(engine=engine, clock=SystemClock(), provider=provider, settings=Settings())
    dispatcher = Dispatcher(ctx, batch_size=batch_size)
    deadline = time.monotonic() + deadline_secs
    while time.monotonic() < deadline:
        report = dispatcher.sweep()
        if report.claimed == 0:
            if unfinished(engine) == 0:
                break
            time.sleep(0.005)  # another worker holds the rest; look again shortly
    return len(provider.placed)


def _worker_main(args: argparse.Namespace) -> None:
    engine = make_engine(args.db)
    provider = ScriptedProvider(duration_secs=0, numbers=[AGENT_NUMBER])
    unfinished(engine)  # connect (and warm up) before the clock starts
    if args.start_file:
        # Say we are ready, then wait for the go signal so every worker starts together.
        Path(f"{args.out}.ready").touch()
        while not Path(args.start_file).exists():
            time.sleep(0.001)
    work_until_empty(engine, provider, batch_size=args.batch_size)
    finished = time.time()
    lines = [*provider.placed, f"#finished {finished}"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    engine.dispose()


def read_worker_output(path: Path) -> tuple[list[str], float]:
    """The keys a worker placed and the wall time (epoch seconds) it finished."""
    keys, finished = [], 0.0
    for line in path.read_text().split("\n"):
        if line.startswith("#finished "):
            finished = float(line.split()[1])
        elif line:
            keys.append(line)
    return keys, finished


def start_workers(db_url: str, folder: Path, count: int, batch_size: int) -> tuple[list, Path]:
    """Start ``count`` worker processes and wait until each is connected and ready."""
    import subprocess

    go = folder / "go"
    procs = []
    for index in range(count):
        out = folder / f"worker{index}.txt"
        procs.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "worker",
                        "--db",
                        db_url,
                        "--out",
                        str(out),
                        "--start-file",
                        str(go),
                        "--batch-size",
                        str(batch_size),
                    ]
                ),
                out,
            )
        )
    deadline = time.monotonic() + 120
    while not all(Path(f"{out}.ready").exists() for _, out in procs):
        if time.monotonic() > deadline or any(p.poll() is not None for p, _ in procs):
            raise RuntimeError("a worker did not become ready")
        time.sleep(0.01)
    return procs, go


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--db", required=True)
    worker.add_argument("--out", required=True)
    worker.add_argument("--start-file")
    worker.add_argument("--batch-size", type=int, default=200)
    _worker_main(parser.parse_args())
