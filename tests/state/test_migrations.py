"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from state import models as m  # noqa: F401
from state.db import make_engine, upgrade
from state.migrate import current_revision


def test_upgrade_on_a_fresh_sqlite_file_matches_the_models(tmp_path):
    engine = make_engine(str(tmp_path / "fresh.db"))
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) is not None
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
