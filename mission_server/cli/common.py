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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

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

try:  # typer's own coercion, to stand in for it (see QuickGroup); absent, typer does it all
    from typer._coercion import RuntimeParam as _RuntimeParam
    from typer._coercion import build_runtime_param as _build_runtime_param
except ImportError:  # pragma: no cover - another typer
    _RuntimeParam = _build_runtime_param = None  # type: ignore[assignment]


class QuickGroup(TyperGroup):
    """A command group whose ``str`` and ``bool`` parameter values are taken as given when they
    already are one (or None), as typer would, without building a pydantic TypeAdapter for each
    parameter first: typer (0.29) coerces every value, even an option not given, through
    pydantic, and loading it takes about a fifth of ``mission db upgrade``, which needs it for
    nothing else. Any other value (or type) goes to typer's own coercion, built when first
    needed. The groups and commands on the way to ``db upgrade`` use it (``QuickCommand``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _take_as_given(self.get_params(ctx))
        return super().parse_args(ctx, args)


class QuickCommand(TyperCommand):
    """A command whose parameters are coerced as ``QuickGroup``'s are."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _take_as_given(self.get_params(ctx))
        return super().parse_args(ctx, args)


if _RuntimeParam is not None:

    @dataclass(frozen=True)
    class _AsGiven(_RuntimeParam):
        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if type(value) is self.annotation:
                return value  # what typer's coercion returns for it
            assert _build_runtime_param is not None
            typer_own = _build_runtime_param(self.descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def _take_as_given(params: list[Any]) -> None:
    if _RuntimeParam is None:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", "unknown") is not None:
            continue  # not typer's, or built already
        info = descriptor.parameter_info
        plain = descriptor.file_annotation is None and info.parser is None
        if plain and descriptor.annotation in (str, bool):
            param._runtime_param = _AsGiven(
                parameter_info=info, annotation=descriptor.annotation, descriptor=descriptor
            )


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
