"""telnyx_ids: our ids -> Telnyx's (insight templates and groups; generic by kind)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import state.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telnyx_ids",
        sa.Column("kind", sa.String(length=32), primary_key=True),
        sa.Column("local_id", sa.String(length=64), primary_key=True),
        sa.Column("telnyx_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_at", state.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", state.types.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_telnyx_ids_telnyx_id", "telnyx_ids", ["telnyx_id"])


def downgrade() -> None:
    op.drop_index("ix_telnyx_ids_telnyx_id", table_name="telnyx_ids")
    op.drop_table("telnyx_ids")
