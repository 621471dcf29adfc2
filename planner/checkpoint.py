"""Durable checkpointers for the planner graph.

SQLite beside the service's SQLite database by default (``missions.db`` →
``missions.checkpoints.db``), PostgreSQL when the database is PostgreSQL (the same database;
LangGraph's tables sit beside the service's), in memory for an in-memory database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy.engine import make_url

__all__ = ["Checkpointer", "checkpointer_for_url", "sqlite_checkpoint_path"]


@dataclass
class Checkpointer:
    """A checkpoint saver and how to release what it holds."""

    saver: BaseCheckpointSaver
    location: str
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    def close(self) -> None:
        self._close()


def sqlite_checkpoint_path(database: Path) -> Path:
    """Where the checkpoints of a SQLite database live: beside it."""
    suffix = database.suffix or ".db"
    return database.with_name(f"{database.stem}.checkpoints{suffix}")


def checkpointer_for_url(url: str) -> Checkpointer:
    """The checkpointer that goes with a database URL (SQLAlchemy form).

    Raises:
        ValueError: the URL is neither SQLite nor PostgreSQL.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            return Checkpointer(InMemorySaver(), "memory")
        return _sqlite(sqlite_checkpoint_path(Path(database)))
    if backend == "postgresql":
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return _postgres(conninfo, parsed.render_as_string(hide_password=True))
    raise ValueError(f"no checkpointer for database backend {backend!r}")


def _sqlite(path: Path) -> Checkpointer:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    # One connection shared by the runner's threads; SqliteSaver serialises its use. WAL and a
    # busy timeout let a second process (a resumed CLI run, a server) use the file too.
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return Checkpointer(saver, str(path), conn.close)


def _postgres(conninfo: str, shown: str) -> Checkpointer:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=8,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=True,
    )
    saver = PostgresSaver(pool)  # type: ignore[arg-type]
    saver.setup()
    return Checkpointer(saver, shown, pool.close)
