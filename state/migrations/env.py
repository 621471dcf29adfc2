"""Alembic environment: uses the connection handed over by ``state.migrate``."""

from __future__ import annotations

from typing import Any

from alembic import context


def _metadata() -> Any:
    """The models' tables, for ``alembic revision --autogenerate`` only: an upgrade runs the
    migration scripts, which need no models (and loading them costs most of a start-up)."""
    from sqlmodel import SQLModel

    import state.models  # noqa: F401  (registers the tables)

    return SQLModel.metadata


autogenerate = bool(getattr(context.config.cmd_opts, "autogenerate", False))
target_metadata = _metadata() if autogenerate else None
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
