"""The account's concurrent-calls limit across worker processes on the real PostgreSQL: four
``mission worker --simulate`` processes share one database with MISSION_MAX_CONCURRENT_CALLS=3.

What is counted is what a person would notice: the calls in progress, sampled from the records
while the workers run, and every call placed exactly once. Every wait polls with a deadline.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from mission_server.app import build_context
from mission_server.services import assistants, scheduling
from mission_server.settings import Settings
from state import models as m
from tests.mission_server.test_faults import ANSWERING, TERMINAL, WIDE, Worker, rows, worker_env

pytestmark = pytest.mark.slow

EVENTS = m.ScheduledEvent.__table__
ATTEMPTS = m.CallAttempt.__table__
LIMIT = 3
CALLS = 12


def test_four_workers_never_have_more_calls_in_progress_than_the_limit(pg_url, tmp_path):
    # The simulator's placement ledger lives in the user data directory with PostgreSQL:
    # one for this test, shared by its processes.
    data_home = tmp_path / "data"
    ledger = data_home / "agent-missions" / "sim-ledger.jsonl"
    ledger.parent.mkdir(parents=True)
    ctx = build_context(Settings(), db_url=pg_url, simulate=True, ledger_path=ledger)
    assistant = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hi!")
    assistants.assign_phone_number(ctx, assistant.assistant_id)
    ids = [
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant.assistant_id,
            channel="phone_call",
            to=ANSWERING[i % len(ANSWERING)],
            calling_window=WIDE,
        ).scheduled_event_id
        for i in range(CALLS)
    ]
    env = worker_env(MISSION_MAX_CONCURRENT_CALLS=str(LIMIT), XDG_DATA_HOME=str(data_home))
    in_progress = select(func.count()).select_from(EVENTS).where(EVENTS.c.status == "in_progress")
    samples: list[int] = []
    simulate = ("--simulate", "--sim-speed", "30")
    running = [Worker(pg_url, env, tmp_path / f"worker-{n}.log", *simulate) for n in range(4)]
    try:
        deadline = time.monotonic() + 240
        while True:
            with ctx.engine.connect() as conn:
                samples.append(int(conn.execute(in_progress).scalar_one()))
            if all(r["status"] in TERMINAL for r in rows(ctx.engine)):
                break
            if time.monotonic() > deadline:
                left = [r for r in rows(ctx.engine) if r["status"] not in TERMINAL]
                tails = "\n".join(w.text()[-1500:] for w in running)
                raise AssertionError(f"calls did not all end within 240 s: {left}\n{tails}")
            time.sleep(0.05)
    finally:
        for worker in running:
            worker.close()
    logs = [w.text()[-2000:] for w in running]
    with ctx.engine.connect() as conn:
        attempts = Counter(
            event_id for (event_id,) in conn.execute(select(ATTEMPTS.c.scheduled_event_id))
        )
    final = rows(ctx.engine)
    placed = Counter(ctx.provider.placements)  # type: ignore[attr-defined]
    ctx.engine.dispose()

    assert max(samples) <= LIMIT, f"more than {LIMIT} calls in progress at once: {max(samples)}"
    # The limit was reached (the sampling saw the lines full), so it was what held calls back.
    assert LIMIT in samples, Counter(samples)
    assert Counter(r["status"] for r in final) == {"completed": CALLS}, logs
    assert placed == Counter(f"{event_id}:1" for event_id in ids)
    assert attempts == Counter(ids)  # one attempt each: waiting for a line charged none
