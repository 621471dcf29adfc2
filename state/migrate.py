"""Alembic migrations, driven programmatically (no alembic.ini needed).

A new, empty SQLite database is not migrated step by step: it is created from
``schema_sqlite.sql``, the schema the migrations build (what SQLite itself recorded in
``sqlite_master`` after running them), in one transaction. Loading Alembic and running every
migration costs more than the rest of ``mission db upgrade``; the result is the same schema,
which tests/state/test_migrations.py checks. After adding a migration, rewrite the file with
``python -m state.migrate``; until then new databases go through Alembic.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_SCHEMA = Path(__file__).with_name("schema_sqlite.sql")


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration not yet applied to ``engine``'s database.

    A database already at the newest revision is told apart without Alembic (which takes
    longer to load than most commands take to run): its ``alembic_version`` rows are compared
    with the heads read from the migration files. Anything else goes through Alembic."""
    if _at_head(engine):
        return
    if engine.dialect.name == "sqlite" and _create_new_sqlite(engine):
        return
    from alembic import command

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (several heads joined by commas); None when it has
    none."""
    found = sorted(_revisions(engine) or ())
    return ",".join(found) if found else None


def _revisions(engine: Engine) -> set[str] | None:
    """The ``alembic_version`` rows; None when there is no such table (a new database)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            return set(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
    except DBAPIError:
        return None


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


@cache
def head_revisions() -> frozenset[str] | None:
    """The revisions no migration file builds on, read from the files' ``revision`` and
    ``down_revision`` lines; None when a file does not say them plainly."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"].strip())
            down = ast.literal_eval(found["down_revision"].strip())
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else (down or ()))
    heads = revisions - parents
    return frozenset(heads) if heads else None


def _at_head(engine: Engine) -> bool:
    heads = head_revisions()
    return heads is not None and _revisions(engine) == heads


def sqlite_schema(connection: Connection) -> list[str]:
    """The statements that recreate the SQLite database's schema as SQLite recorded it, tables
    first, then indexes, triggers and views (its own ``sqlite_*`` objects come by themselves),
    and the rows of ``alembic_version``."""
    rows = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'trigger' THEN 2 "
        "ELSE 3 END, name"
    ).scalars()
    statements = [f"{sql.strip()};" for sql in rows]
    with_version = connection.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).scalar()
    if with_version:
        for version in sorted(
            connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
        ):
            statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{version}');")
    return statements


def _split(script: str) -> list[str]:
    """``script``'s statements (``--`` comment lines dropped)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"{SQLITE_SCHEMA.name} ends inside a statement")
    return statements


_REVISION_LINE = re.compile(r"^-- revision: (\S+)$", re.MULTILINE)


def sqlite_schema_file() -> tuple[frozenset[str], list[str]] | None:
    """The revisions ``schema_sqlite.sql`` is at and its statements; None without the file."""
    try:
        script = SQLITE_SCHEMA.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    found = _REVISION_LINE.search(script)
    if found is None:
        return None
    return frozenset(found.group(1).split(",")), _split(script)


def new_sqlite_schema() -> list[str] | None:
    """The statements of ``schema_sqlite.sql`` when it is at the migrations' head (a new
    SQLite database can be created from it); None otherwise."""
    snapshot = sqlite_schema_file()
    if snapshot is None or snapshot[0] != head_revisions():
        return None
    return snapshot[1]


def _create_new_sqlite(engine: Engine) -> bool:
    """Create the schema of an empty SQLite database from ``schema_sqlite.sql`` when that file
    is at the migrations' head; False (nothing done) otherwise."""
    statements = new_sqlite_schema()
    if statements is None:
        return False
    with engine.begin() as connection:  # BEGIN IMMEDIATE: one process creates it
        if connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
            return False
        for statement in statements:
            connection.exec_driver_sql(statement)
    return True


def write_sqlite_schema(path: Path = SQLITE_SCHEMA) -> None:
    """Run every migration on a new in-memory SQLite database and write its schema to
    ``path``."""
    from alembic import command
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        statements = sqlite_schema(connection)
        revision = ",".join(
            sorted(connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
        )
    header = (
        "-- Written by `python -m state.migrate`: the schema the migrations build on SQLite, as\n"
        "-- SQLite recorded it. A new SQLite database is created from it (state/migrate.py).\n"
        "-- Do not edit; rewrite it after adding a migration.\n"
        f"-- revision: {revision}\n"
    )
    path.write_text(header + "\n".join(statements) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - the maintainers' tool
    write_sqlite_schema(Path(sys.argv[1]) if len(sys.argv) > 1 else SQLITE_SCHEMA)
