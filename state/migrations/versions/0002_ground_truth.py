"""ground truth: what each simulated utterance states, and the truth beside each result

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("facts", _JSON, nullable=True))
    with op.batch_alter_table("insight_results") as batch:
        batch.add_column(sa.Column("truth", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("insight_results") as batch:
        batch.drop_column("truth")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("facts")
