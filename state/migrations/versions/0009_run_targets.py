"""run_targets: the targets of a planner run, their calls and outcomes (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "run_targets",
        sa.Column("run_id", sa.String(length=64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=200), nullable=False),
        sa.Column("target", _json(), nullable=True),
        sa.Column("step_id", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("scheduled_event_id", sa.String(length=64), nullable=True),
        sa.Column("memo", _json(), nullable=True),
        sa.Column("outcome", _json(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "position"),
    )
    op.create_index("ix_run_targets_run_state", "run_targets", ["run_id", "state", "position"])


def downgrade() -> None:
    op.drop_index("ix_run_targets_run_state", table_name="run_targets")
    op.drop_table("run_targets")
