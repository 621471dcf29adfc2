"""The Telnyx Portal mirror's cost on the write path, and its delivery rate.

1. Writing run events as the dispatcher does (``insert(events)`` in batches of 50, one
   transaction each) and as the services do (``append_event``, one transaction each), with the
   outbox capture on and, as the baseline in the same run, off.
2. Delivering the outbox of one run (its events) to an in-process fake Missions API
   (``httpx.MockTransport``): rows per second, so the HTTP of a real Telnyx is left out.

SQLite files in a temporary directory; medians of ``--repeat`` runs. Last line: one JSON object.

    python bench/mirror.py [--events 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mission_server.clock import VirtualClock
from mission_server.services.mirror import deliver_due
from mission_server.settings import Settings
from mission_server.telephony.telnyx.missions import TelnyxMissions
from state import models as m
from state.db import create_schema, make_engine, session_scope
from state.outbox import capture_outbox
from state.repo import append_event
from tests.support.telnyx_missions import API_KEY, BASE_URL, FakeMissionsApi

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
BATCH = 50


def _database(folder: Path, name: str, capture: bool):  # type: ignore[no-untyped-def]
    engine = make_engine(str(folder / f"{name}.db"))
    create_schema(engine)
    if capture:
        capture_outbox(engine)
    with session_scope(engine) as session:
        mission = m.Mission(name="bench", created_at=T0, updated_at=T0)
        session.add(mission)
        session.flush()
        run = m.Run(mission_id=mission.mission_id, status="running", created_at=T0, updated_at=T0)
        session.add(run)
    return engine, run.run_id


def batch_inserts(folder: Path, events: int, capture: bool) -> float:
    engine, run_id = _database(folder, f"batch-{capture}-{uuid.uuid4().hex[:6]}", capture)
    rows = [
        {
            "event_id": str(uuid.uuid4()),
            "run_id": run_id,
            "type": "custom",
            "summary": f"event {i}",
            "step_id": None,
            "agent_id": None,
            "payload": {"i": i},
            "idempotency_key": None,
            "created_at": T0,
        }
        for i in range(events)
    ]
    started = time.perf_counter()
    for i in range(0, events, BATCH):
        with engine.begin() as conn:
            conn.execute(insert(m.Event.__table__), rows[i : i + BATCH])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return events / elapsed


def single_events(folder: Path, events: int, capture: bool) -> float:
    engine, run_id = _database(folder, f"single-{capture}-{uuid.uuid4().hex[:6]}", capture)
    started = time.perf_counter()
    for i in range(events):
        with session_scope(engine) as session:
            append_event(session, run_id, "custom", f"event {i}", T0, payload={"i": i})
    elapsed = time.perf_counter() - started
    engine.dispose()
    return events / elapsed


def delivery(folder: Path, events: int) -> float:
    engine, run_id = _database(folder, f"deliver-{uuid.uuid4().hex[:6]}", True)
    with session_scope(engine) as session:
        for i in range(events):
            append_event(session, run_id, "custom", f"event {i}", T0)
    clock = VirtualClock(T0)
    api = TelnyxMissions.from_settings(
        Settings(TELNYX_API_KEY=API_KEY, TELNYX_BASE_URL=BASE_URL),
        transport=httpx.MockTransport(FakeMissionsApi()),
        clock=clock.now,
    )
    started = time.perf_counter()
    delivered = 0
    while True:
        report = deliver_due(engine, api, clock, limit=10_000)
        delivered += report.delivered
        if report.delivered == 0:
            break
    elapsed = time.perf_counter() - started
    engine.dispose()
    assert delivered == events + 1, delivered  # the events and the mission
    return delivered / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, measure in (
            ("batch_events_per_s", batch_inserts),
            ("single_events_per_s", single_events),
        ):
            for capture in (False, True):
                key = f"{name}_{'with_outbox' if capture else 'baseline'}"
                figures[key] = statistics.median(
                    measure(folder, args.events, capture) for _ in range(args.repeat)
                )
                print(f"{key}: {figures[key]:.0f}")
        figures["delivered_rows_per_s"] = statistics.median(
            delivery(folder, min(args.events, 500)) for _ in range(args.repeat)
        )
        print(f"delivered_rows_per_s (fake Missions API): {figures['delivered_rows_per_s']:.0f}")
    for name in ("batch_events_per_s", "single_events_per_s"):
        base, withit = figures[f"{name}_baseline"], figures[f"{name}_with_outbox"]
        figures[f"{name}_overhead_pct"] = round(100 * (base - withit) / base, 1)
    print(json.dumps({k: round(v, 1) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
