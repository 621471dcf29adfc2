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


def _migrated_by_alembic(path):
    """A new SQLite file brought to the head by running every migration."""
    from alembic import command

    from state.migrate import alembic_config

    engine = make_engine(str(path))
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return engine


_CONSTRAINT = ("PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "CHECK", "CONSTRAINT")


def _normalised(statement: str) -> tuple[str, ...]:
    """A statement with the table constraints of a CREATE TABLE in sorted order: Alembic's
    batch migrations on SQLite write a recreated table's constraints in an order that varies
    from run to run (with the hash seed); the columns and everything else must match."""
    head, paren, body = statement.partition("(")
    if not statement.startswith("CREATE TABLE") or not paren:
        return (statement,)
    body = body.rstrip().removesuffix(";").rstrip().removesuffix(")")
    items, depth, current = [], 0, ""
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    columns = [i for i in items if not i.startswith(_CONSTRAINT)]
    constraints = sorted(i for i in items if i.startswith(_CONSTRAINT))
    return (head.strip(), *columns, *constraints)


def _schema(engine):
    from state.migrate import sqlite_schema

    with engine.connect() as conn:
        return [_normalised(s) for s in sqlite_schema(conn)]


def test_a_new_sqlite_database_gets_exactly_the_schema_the_migrations_build(tmp_path):
    migrated = _migrated_by_alembic(tmp_path / "migrated.db")
    created = make_engine(str(tmp_path / "created.db"))
    upgrade(created)
    assert _schema(created) == _schema(migrated)
    assert current_revision(created) == current_revision(migrated) == alembic_head()
    migrated.dispose()
    created.dispose()


def test_the_sqlite_schema_file_is_the_one_the_migrations_write(tmp_path):
    # Fails after a new migration until `python -m state.migrate` rewrites the file.
    from state.migrate import SQLITE_SCHEMA, _split, write_sqlite_schema

    written = tmp_path / "schema_sqlite.sql"
    write_sqlite_schema(written)
    ours, theirs = (
        path.read_text(encoding="utf-8").split("\n", 4) for path in (SQLITE_SCHEMA, written)
    )
    stale = "state/schema_sqlite.sql is not the migrations' schema: run python -m state.migrate"
    assert ours[:4] == theirs[:4], stale  # the header, with the revision
    assert [_normalised(s) for s in _split(ours[4])] == [
        _normalised(s) for s in _split(theirs[4])
    ], stale


def test_a_sqlite_file_that_is_not_empty_is_migrated_not_overwritten(tmp_path):
    from sqlalchemy import text

    engine = make_engine(str(tmp_path / "other.db"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (x INTEGER)"))
        conn.execute(text("INSERT INTO notes VALUES (7)"))
    upgrade(engine)
    assert current_revision(engine) == alembic_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM notes")).scalar() == 7
    engine.dispose()


def test_a_schema_file_behind_the_migrations_is_not_used(tmp_path, monkeypatch):
    # A migration added without rewriting the file: new databases are migrated step by step.
    import state.migrate
    from state.db import upgrade_database

    behind = tmp_path / "behind.sql"
    behind.write_text(
        state.migrate.SQLITE_SCHEMA.read_text(encoding="utf-8").replace(
            f"-- revision: {alembic_head()}", "-- revision: 0001"
        ),
        encoding="utf-8",
    )
    assert "-- revision: 0001" in behind.read_text(encoding="utf-8")
    monkeypatch.setattr(state.migrate, "SQLITE_SCHEMA", behind)
    migrated = _migrated_by_alembic(tmp_path / "migrated.db")
    revision, _ = upgrade_database(str(tmp_path / "new.db"))
    assert revision == alembic_head()
    created = make_engine(str(tmp_path / "new.db"))
    assert _schema(created) == _schema(migrated)
    created.dispose()
    migrated.dispose()
