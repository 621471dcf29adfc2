"""run_targets: a target whose call has ended is marked ``ended`` by a trigger (issue 16)

The planner reads the calls to record on the targets' state index instead of scanning every
outstanding target for an ended call (a step's cost grew with the targets).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

from alembic import op

from state import triggers

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_targets_scheduled_event_id", "run_targets", ["scheduled_event_id"])
    triggers.create_call_ended(op.get_bind())
    op.execute(triggers.BACKFILL)


def downgrade() -> None:
    for statement in triggers.DROP[op.get_bind().dialect.name]:
        op.execute(statement)
    op.execute("UPDATE run_targets SET state = 'scheduled' WHERE state = 'ended'")
    op.drop_index("ix_run_targets_scheduled_event_id", table_name="run_targets")
