"""The one rule the database itself keeps: a planner target whose call has ended says so.

When a scheduled event reaches a terminal status (``state.transitions.TERMINAL_EVENT``), the
``run_targets`` row holding it moves from ``scheduled`` to ``ended``, in the same statement,
whichever code path (dispatcher, cancellation, expiry, another process) ended it. The planner
then finds the calls it has to record on the targets' state index, in as many rows as it
records, instead of scanning every outstanding target for a call that has ended.

The same trigger is made by ``create_schema`` (the models' ``after_create``) and by migration
0010. Migrations keep this text as it is: a change is a new migration. SQLite drops a table's
triggers when Alembic's batch mode rebuilds the table, so a migration that rebuilds
``scheduled_events`` must create the trigger again (``create_call_ended``).
"""

from __future__ import annotations

from typing import Any

#: The terminal statuses, as in ``state.transitions.TERMINAL_EVENT`` (a test keeps them equal).
TERMINAL = ("cancelled", "completed", "failed")
_IN = "(" + ", ".join(f"'{s}'" for s in TERMINAL) + ")"
_MARK = (
    "UPDATE run_targets SET state = 'ended' "
    "WHERE scheduled_event_id = NEW.scheduled_event_id AND state = 'scheduled'"
)
NAME = "trg_run_targets_call_ended"

SQLITE = [
    f"CREATE TRIGGER {NAME} AFTER UPDATE OF status ON scheduled_events "
    f"FOR EACH ROW WHEN NEW.status IN {_IN} AND OLD.status NOT IN {_IN} "
    f"BEGIN {_MARK}; END"
]
POSTGRESQL = [
    "CREATE OR REPLACE FUNCTION run_targets_call_ended() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN {_MARK}; RETURN NULL; END $$",
    f"CREATE TRIGGER {NAME} AFTER UPDATE OF status ON scheduled_events "
    f"FOR EACH ROW WHEN (NEW.status IN {_IN} AND OLD.status NOT IN {_IN}) "
    "EXECUTE FUNCTION run_targets_call_ended()",
]
DROP = {
    "sqlite": [f"DROP TRIGGER IF EXISTS {NAME}"],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {NAME} ON scheduled_events",
        "DROP FUNCTION IF EXISTS run_targets_call_ended()",
    ],
}
#: Targets whose call ended before the trigger existed.
BACKFILL = (
    "UPDATE run_targets SET state = 'ended' WHERE state = 'scheduled' AND scheduled_event_id IN "
    f"(SELECT scheduled_event_id FROM scheduled_events WHERE status IN {_IN})"
)


def statements(dialect: str) -> list[str]:
    """The statements that create the trigger on ``dialect`` (``sqlite`` or ``postgresql``)."""
    if dialect == "sqlite":
        return SQLITE
    if dialect == "postgresql":
        return POSTGRESQL
    raise ValueError(f"no call-ended trigger for the {dialect} dialect")


def create_call_ended(connection: Any) -> None:
    """Create the trigger on a SQLAlchemy connection (its dialect's form), replacing one
    already there."""
    from sqlalchemy import text

    dialect = connection.dialect.name
    for statement in [*DROP.get(dialect, []), *statements(dialect)]:
        connection.execute(text(statement))
