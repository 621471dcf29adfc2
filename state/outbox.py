"""The mirror outbox is written where the records are: ``capture_outbox(engine)`` makes every
insert into ``missions`` and ``events``, every change of a run's status, result or metadata,
and every assistant linked to a run, through ``engine``, add its ``telnyx_outbox`` row in the
same statement's transaction, whoever wrote it (the ORM in the services, the dispatcher's
batch inserts, the simulated clock's jump events). A record that is committed has its outbox
row; a rolled-back one has none.

The row holds ids only (see ``MirrorOutbox``). Imports nothing of ours but the records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Insert, Update

from state import models as m

OUTBOX = m.MirrorOutbox.__table__
_EVENTS = m.Event.__table__
_MISSIONS = m.Mission.__table__
_RUNS = m.Run.__table__
_RUN_AGENTS = m.RunAgent.__table__
#: The run columns the mirror sends (an update of only others, a call counter, is not sent).
_RUN_MIRRORED = frozenset({"status", "result_summary", "result_payload", "error", "metadata"})
#: The ORM names the primary key parameter of its ``UPDATE runs`` so.
_RUN_KEY = "runs_run_id"


def mission_lane(mission_id: str) -> str:
    return f"mission:{mission_id}"


def _run_row(run_id: str, at: Any) -> dict[str, Any]:
    return {"lane": run_id, "kind": "run", "ref": run_id, "run_id": run_id} | {
        "next_attempt_at": at,
        "created_at": at,
    }


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
        elif table is _RUN_AGENTS and p.get("run_id"):
            rows.append(_run_row(p["run_id"], at))
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
    if not isinstance(clauseelement, Insert | Update):
        return
    table = clauseelement.table
    if isinstance(clauseelement, Update) and table is not _RUNS:
        return
    if isinstance(clauseelement, Insert) and table not in (_EVENTS, _MISSIONS, _RUN_AGENTS):
        return
    parameters: list[Mapping[str, Any]] = []
    for group in (multiparams, params):
        if isinstance(group, Mapping):
            parameters.append(group)
        elif isinstance(group, Sequence):
            parameters += [p for p in group if isinstance(p, Mapping)]
    if isinstance(clauseelement, Update):
        rows = []
        for p in parameters:
            if not p.get(_RUN_KEY) or not _RUN_MIRRORED & set(p):
                continue
            # The run's own time (the service clock's), as written or as it stands.
            at = (
                p.get("updated_at")
                or conn.execute(
                    select(_RUNS.c.updated_at).where(_RUNS.c.run_id == p[_RUN_KEY])
                ).scalar()
            )
            if at is not None:
                rows.append(_run_row(p[_RUN_KEY], at))
        for row in rows:
            row.update(status="pending", attempts=0)
    else:
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
