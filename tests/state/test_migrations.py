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


def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    from state.migrate import alembic_config

    (head,) = ScriptDirectory.from_config(alembic_config()).get_heads()
    return head


def test_the_heads_read_from_the_files_are_alembics():
    from state.migrate import head_revisions

    assert head_revisions() == {alembic_head()}


def test_a_database_behind_the_head_is_upgraded_and_one_at_the_head_left_alone(tmp_path):
    from alembic import command
    from sqlalchemy import text

    from state.migrate import alembic_config

    engine = make_engine(str(tmp_path / "old.db"))
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    assert current_revision(engine) == "0004"
    upgrade(engine)
    assert current_revision(engine) == alembic_head()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dial_pacing (pacing_id) VALUES (1)"))
    upgrade(engine)  # at the head: nothing is run again, nothing is lost
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM dial_pacing")).scalar() == 1
    engine.dispose()
