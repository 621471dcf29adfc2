"""The mirror outbox is written where the records are: ``capture_outbox(engine)`` makes every
insert into ``missions`` and ``events`` through ``engine`` add its ``telnyx_outbox`` row in
the same statement's transaction, whoever wrote it (the ORM in the services, the dispatcher's
batch inserts, the simulated clock's jump events). A record that is committed has its outbox
row; a rolled-back one has none.

The row holds ids only (see ``MirrorOutbox``). Imports nothing of ours but the records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Insert

from state import models as m

OUTBOX = m.MirrorOutbox.__table__
_EVENTS = m.Event.__table__
_MISSIONS = m.Mission.__table__


def mission_lane(mission_id: str) -> str:
    return f"mission:{mission_id}"


def _rows(table: Any, parameters: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in parameters:
        at = p.get("created_at")
        if at is None:
            continue  # not one of our writers (every one of them stamps created_at)
        if table is _EVENTS and p.get("event_id") and p.get("run_id"):
            rows.append(
                {"lane": p["run_id"], "kind": "event", "ref": p["event_id"], "run_id": p["run_id"]}
                | {"next_attempt_at": at, "created_at": at}
            )
        elif table is _MISSIONS and p.get("mission_id"):
            rows.append(
                {"lane": mission_lane(p["mission_id"]), "kind": "mission", "ref": p["mission_id"]}
                | {"run_id": None, "next_attempt_at": at, "created_at": at}
            )
    for row in rows:
        row.update(status="pending", attempts=0)
    return rows


def _capture(
    conn: Connection,
    clauseelement: Any,
    multiparams: Any,
    params: Any,
    execution_options: Any,
    result: Any,
) -> None:
    if not isinstance(clauseelement, Insert):
        return
    table = clauseelement.table
    if table is not _EVENTS and table is not _MISSIONS:
        return
    parameters: list[Mapping[str, Any]] = []
    for group in (multiparams, params):
        if isinstance(group, Mapping):
            parameters.append(group)
        elif isinstance(group, Sequence):
            parameters += [p for p in group if isinstance(p, Mapping)]
    rows = _rows(table, parameters)
    if rows:
        conn.execute(insert(OUTBOX), rows)


def capture_outbox(engine: Engine) -> None:
    """Enqueue a mirror row for every mission and event written through ``engine``
    (idempotent)."""
    if not event.contains(engine, "after_execute", _capture):
        event.listen(engine, "after_execute", _capture)


def stop_capture(engine: Engine) -> None:
    if event.contains(engine, "after_execute", _capture):
        event.remove(engine, "after_execute", _capture)
