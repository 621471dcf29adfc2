"""Engine and session factory.

SQLite (the embedded default) gets WAL, a busy timeout and foreign keys on every connection;
PostgreSQL is used when the URL says so (``postgresql+psycopg://…``; plain ``postgresql://``
is accepted and pointed at psycopg 3).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_data_dir

if TYPE_CHECKING:
    # SQLAlchemy loads where an engine is made, SQLModel (and pydantic under it) where
    # sessions are used: `mission db upgrade` of a SQLite file at the head, or new, does
    # without either (``upgrade_database``).
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import OperationalError
    from sqlmodel import Session

from state.errors import DatabaseUnavailable, StateError

APP_NAME = "agent-missions"


def default_db_path() -> Path:
    """Where the embedded SQLite database lives by default."""
    return Path(user_data_dir(APP_NAME, appauthor=False)) / "missions.db"


def normalise_url(url: str | None) -> str:
    """Turn a user-supplied database URL or file path into a SQLAlchemy URL.

    ``None`` means the default SQLite file; a bare path means a SQLite file there;
    ``postgres://`` and ``postgresql://`` use the psycopg 3 driver.

    Raises:
        StateError: the URL names a database kind other than SQLite or PostgreSQL.
    """
    if not url:
        path = default_db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if "://" not in url:
        path = Path(url).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite://", "sqlite+pysqlite://")):
        return url
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise StateError(
            f"MISSION_DB_URL must be a SQLite or PostgreSQL URL, got backend {backend!r}"
        )
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The sqlite3 module's own transaction handling would defeat BEGIN IMMEDIATE; we issue
    # BEGIN ourselves in the "begin" event below.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_READ_ONLY = "mission_read_only"


def reader(engine: Engine) -> Engine:
    """The same database for read-only work. On SQLite its transactions are deferred, so a
    read neither takes the write lock nor queues behind a dispatcher's writes; elsewhere it is
    ``engine`` itself. Writing through it on SQLite may fail with "database is locked"."""
    if engine.dialect.name != "sqlite":
        return engine
    found: Engine | None = getattr(engine, "_mission_reader", None)
    if found is None:
        found = engine.execution_options(**{_READ_ONLY: True})
        engine._mission_reader = found  # type: ignore[attr-defined]
    return found


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: ``MISSION_DB_URL``, else the SQLite file).

    Raises:
        StateError: unsupported database kind.
    """
    from sqlalchemy import create_engine, event

    url = normalise_url(url if url is not None else os.environ.get("MISSION_DB_URL"))
    if url.startswith("sqlite"):
        memory = url in {"sqlite://", "sqlite:///:memory:"}
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if memory:
            from sqlalchemy.pool import StaticPool

            options["poolclass"] = StaticPool
        options.update(kwargs)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Every SQLite transaction that may write takes the write lock up front, so claims
            # are atomic and there is never a lock upgrade deadlock between two writers.
            # Readers (see ``reader``) take a deferred snapshot and never wait for writers.
            if conn.get_execution_options().get(_READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    options = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}
    if kwargs.pop("null_pool", False):
        from sqlalchemy.pool import NullPool

        options = {"poolclass": NullPool}
    options.update(kwargs)
    return create_engine(url, **options)


def create_schema(engine: Engine) -> None:
    """Create every table directly from the models (tests, scratch databases)."""
    from sqlmodel import SQLModel

    import state.models  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine)


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest migration (what ``mission db upgrade`` does).

    Raises:
        DatabaseUnavailable: the database cannot be reached or opened.
    """
    from sqlalchemy.exc import OperationalError

    from state.migrate import upgrade_to_head

    try:
        upgrade_to_head(engine)
    except OperationalError as exc:
        raise unavailable(engine, exc) from None


#: A SQLite URL whose file name SQLAlchemy renders as it is (nothing to percent-encode).
_PLAIN_SQLITE_FILE = re.compile(r"sqlite:///([\w./ ~-]+)", re.ASCII)


def upgrade_database(url: str | None = None) -> tuple[str | None, str]:
    """``upgrade`` the database at ``url`` (default: ``MISSION_DB_URL``, else the SQLite
    file); return its revision and where it is (without a password), for ``mission db
    upgrade``.

    A SQLite file at the head, or new, is handled with the sqlite3 module alone (SQLAlchemy
    takes longer to load than the rest of the command): the same pragmas, the same check of
    ``alembic_version``, the same schema file and lock as ``upgrade``. Anything else goes
    through an engine.

    Raises:
        DatabaseUnavailable: the database cannot be reached or opened.
        StateError: unsupported database kind.
    """
    from state.migrate import current_revision

    url = normalise_url(url if url is not None else os.environ.get("MISSION_DB_URL"))
    plain = _PLAIN_SQLITE_FILE.fullmatch(url)
    if plain is not None:  # the pattern matches no ":memory:" (no colon in a file name)
        revision = _upgrade_sqlite_file(plain.group(1))
        if revision is not None:
            return revision, url
    engine = make_engine(url)
    try:
        upgrade(engine)
        return current_revision(engine), engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()


def _upgrade_sqlite_file(path: str) -> str | None:
    """The revision of the SQLite file at ``path`` once it is at the head, when that needs no
    migration (it is there already, or the file is new and gets ``schema_sqlite.sql``); None
    when it does, or on any error (``upgrade`` then does it, or reports it)."""
    from state.migrate import head_revisions, new_sqlite_schema

    heads = head_revisions()
    if heads is None:
        return None
    revision = ",".join(sorted(heads))
    try:
        with closing(sqlite3.connect(path, timeout=30, check_same_thread=False)) as conn:
            _sqlite_pragmas(conn, None)
            if _sqlite_revisions(conn) == heads:
                return revision
            statements = new_sqlite_schema()
            if statements is None:
                return None
            conn.execute("BEGIN IMMEDIATE")  # as every writer (make_engine): one creates it
            try:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return None  # not new (another process may just have created it)
                for statement in statements:
                    conn.execute(statement)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return revision
    except sqlite3.Error:
        return None


def _sqlite_revisions(conn: sqlite3.Connection) -> set[str] | None:
    try:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.OperationalError:
        return None


def unavailable(engine: Engine, exc: OperationalError) -> DatabaseUnavailable:
    """``exc`` as one line naming the database without its password."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    reason = lines[0].strip()
    if len(reason) > 200:
        reason = reason[:200] + "…"
    return DatabaseUnavailable(engine.url.render_as_string(hide_password=True), reason)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error, so a failed request
    leaves nothing half-written."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
