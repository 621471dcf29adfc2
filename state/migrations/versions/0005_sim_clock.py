"""sim_clock: the simulated time of a rehearsal database, shared by its processes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import state.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sim_clock",
        sa.Column("clock_id", sa.Integer(), primary_key=True),
        sa.Column("sim_at", state.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("wall_at", sa.Float(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sim_clock")
