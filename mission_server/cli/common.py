"""What every ``mission`` command shares: the consoles, logging, and the one error path.

Everything a command logs goes to stderr (stdout carries results and, for ``mission serve`` on
stdio, the protocol); chatty libraries are held at WARNING. A user error (``USER_ERRORS``) ends
the command with its message and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from mission_server.errors import USER_ERRORS
from mission_server.secrets import install_logging, scrub

EXIT_USAGE = 2
_NOISY = ("httpx", "httpcore", "apscheduler", "alembic")

# The options several commands share, spelled and explained once.
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite file (default: MISSION_DB_URL, else the user data dir).",
    ),
]
SimulateOption = Annotated[
    bool,
    typer.Option("--simulate", help="Use the simulated world even when TELNYX_API_KEY is set."),
]
WorldOption = Annotated[
    Path | None, typer.Option("--world", help="Simulated world file (default: the packaged one).")
]
SeedOption = Annotated[
    int | None, typer.Option("--seed", help="Seed of the simulated world (reproducible calls).")
]
ExtractorOption = Annotated[
    str | None,
    typer.Option(
        "--extractor",
        help="What reads the conversations: simulated (the rehearsal's ground truth), offline "
        "(the text reader) or llm (default: MISSION_EXTRACTOR, else llm when MISSION_LLM_* is "
        "set, else simulated in the simulated world).",
    ),
]

LimitOption = Annotated[
    int | None, typer.Option(help="Page size, 1-500 (default 50).", show_default=False)
]
CursorOption = Annotated[
    str | None,
    typer.Option(help="Show the next page: the cursor the previous page printed (same filters)."),
]

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console()


def more_pages(next_cursor: str | None) -> None:
    """Say on stderr how to get the next page, when there is one (stdout stays the data)."""
    if next_cursor is not None:
        err_console.print(f"more: add --cursor {next_cursor}", highlight=False, soft_wrap=True)


def setup_logging(level: int = logging.INFO) -> None:
    """Send log records at ``level`` and above to stderr, every one scrubbed of secrets."""
    install_logging()
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` as an error on stderr; return the ``typer.Exit`` to raise."""
    err_console.print(f"[bold red]error:[/] {escape(scrub(message))}", highlight=False)
    return typer.Exit(code)


@contextmanager
def user_errors(*also: type[Exception], code: int = EXIT_USAGE) -> Iterator[None]:
    """Turn a user error (and any of ``also``) raised inside the block into ``fail``."""
    try:
        yield
    except (*USER_ERRORS, *also) as exc:
        raise fail(str(exc), code) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def ledger_path_for(db: str | None) -> Path | None:
    """Where the simulator's placement ledger lives: beside a SQLite database, in the user
    data directory with PostgreSQL, nowhere for an in-memory database."""
    from sqlalchemy.engine import make_url

    from state.db import default_db_path, normalise_url

    url = make_url(normalise_url(db))
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        path = Path(url.database)
        return path.with_name(f"{path.stem}.sim-ledger.jsonl")
    return default_db_path().parent / "sim-ledger.jsonl"
