"""Against the real PostgreSQL on 127.0.0.1:5432: migrations, and four worker processes
sweeping one table of 2,000 due calls place every call exactly once."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlmodel import SQLModel

from state import models as m
from state.db import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

pytestmark = pytest.mark.postgres


def test_migrations_build_the_models_schema_on_postgres(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    engine.dispose()


@pytest.mark.slow
def test_four_workers_place_every_call_exactly_once(pg_engine, pg_url, tmp_path):
    from loadgen import read_worker_output, seed_due_calls, start_workers

    ids = seed_due_calls(pg_engine, 2000)
    procs, go = start_workers(pg_url, tmp_path, 4, batch_size=50)
    go.touch()
    placed: list[str] = []
    per_worker = []
    deadline = time.monotonic() + 120
    for proc, out in procs:
        assert proc.wait(timeout=max(1, deadline - time.monotonic())) == 0
        keys, _ = read_worker_output(out)
        placed.extend(keys)
        per_worker.append(len(keys))
    counts = Counter(placed)
    assert [key for key, n in counts.items() if n > 1] == []
    assert sorted(key.split(":")[0] for key in placed) == sorted(ids)
    assert sum(1 for n in per_worker if n) >= 2, f"work was not shared: {per_worker}"
    table = m.CallAttempt.__table__
    events = m.ScheduledEvent.__table__
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 2000
        statuses = dict(
            conn.execute(select(events.c.status, func.count()).group_by(events.c.status)).all()
        )
    assert statuses == {"completed": 2000}
