"""dial_pacing: the account's concurrent-calls limit and dial pace, shared by every worker;
scheduled_events.caller_fixed: a caller number the dispatcher keeps

Revision ID: 0008
Revises: 0005 (in the brief: after 0007; the merger sets the parent where the chain ends)
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import state.types

revision = "0008"
# The revision before this one on the branch it was written on; whoever merges the branches
# sets it to the last revision of the chain.
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dial_pacing",
        sa.Column("pacing_id", sa.Integer(), primary_key=True),
        sa.Column("next_dial_at", state.types.UTCDateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("scheduled_events") as batch:
        batch.add_column(
            sa.Column("caller_fixed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Rows scheduled before this revision keep the number they were given.
    op.execute("UPDATE scheduled_events SET caller_fixed = true")


def downgrade() -> None:
    with op.batch_alter_table("scheduled_events") as batch:
        batch.drop_column("caller_fixed")
    op.drop_table("dial_pacing")
