"""telnyx_outbox and telnyx_mirror_ids: the mirror of missions to the Telnyx Missions API

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import state.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telnyx_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lane", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", state.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", state.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", state.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", state.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_telnyx_outbox_lane", "telnyx_outbox", ["lane", "status", "id"])
    op.create_index("ix_telnyx_outbox_status", "telnyx_outbox", ["status", "next_attempt_at"])
    op.create_table(
        "telnyx_mirror_ids",
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("local_id", sa.String(length=200), primary_key=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("sent", sa.String(length=64), nullable=True),
        sa.Column("updated_at", state.types.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("telnyx_mirror_ids")
    op.drop_index("ix_telnyx_outbox_status", table_name="telnyx_outbox")
    op.drop_index("ix_telnyx_outbox_lane", table_name="telnyx_outbox")
    op.drop_table("telnyx_outbox")
