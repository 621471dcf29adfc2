"""The SQLite engine's locking: writers take the write lock up front, readers never wait."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from state.db import create_schema, make_engine, reader


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(str(tmp_path / "lock.db"))
    create_schema(eng)
    yield eng
    eng.dispose()


def test_a_reader_sees_the_last_commit_while_a_writer_holds_the_lock(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as writer:
        writer.begin()
        writer.execute(text("INSERT INTO t VALUES (2)"))  # holds the write lock, uncommitted
        with reader(engine).connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
        # A second writer does wait for the lock (here: gives up at once).
        other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
        writer.rollback()


def test_reader_is_the_engine_itself_elsewhere(pg_engine) -> None:
    assert reader(pg_engine) is pg_engine
