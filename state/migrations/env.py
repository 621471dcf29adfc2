"""Alembic environment: uses the connection handed over by ``state.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import state.models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through state.migrate (mission db upgrade)")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
