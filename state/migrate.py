"""Alembic migrations, driven programmatically (no alembic.ini needed)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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
