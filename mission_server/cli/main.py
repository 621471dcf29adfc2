"""The ``mission`` command line (typer + rich).

Commands: ``run`` (a whole mission), ``approve``, ``serve`` (MCP server), ``worker``
(dispatcher only), ``runs list|show|events|transcript``, ``dnc add|remove|list`` (the
do-not-call list), ``numbers release`` (free a phone number), ``db upgrade``,
``insights test``.
Logs go to stderr; ``--json`` output goes to stdout alone.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from mission_server.cli.common import (
    CursorOption,
    DbOption,
    ExtractorOption,
    LimitOption,
    SeedOption,
    SimulateOption,
    WorldOption,
    err_console,
    ledger_path_for,
    more_pages,
    out_console,
    print_json,
    setup_logging,
    user_errors,
)
from mission_server.cli.insights import insights_app
from mission_server.cli.run import approve as approve_command
from mission_server.cli.run import run as run_command
from mission_server.cli.serve import serve
from mission_server.cli.sync import sync_app
from mission_server.cli.ui import ui

app = typer.Typer(
    name="mission",
    help="Agent missions: plan, schedule and run phone-call missions; serve them over MCP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect recorded runs.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
dnc_app = typer.Typer(
    help="The do-not-call list: targets that are never called or texted.", no_args_is_help=True
)
app.add_typer(runs_app, name="runs")
app.add_typer(dnc_app, name="dnc")
app.add_typer(db_app, name="db")
numbers_app = typer.Typer(help="The account's phone numbers.", no_args_is_help=True)
app.add_typer(numbers_app, name="numbers")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the database schema to the newest revision."""
    from state.db import upgrade_database

    setup_logging()
    with user_errors():
        revision, where = upgrade_database(db)
    err_console.print(f"database at revision {revision} ({where})")


RunIdArgument = Annotated[
    str, typer.Argument(help="The run: its id, or the start of it that no other run shares.")
]


@runs_app.command("list")
def runs_list(
    db: DbOption = None,
    mission_id: Annotated[str | None, typer.Option(help="Only runs of this mission.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first, one page at a time (stderr says how to get the next page).

    The run column is the shortest start of each id that no other run shares (``runs show``
    takes it); --json has the full ids. ``created`` is the wall-clock time, ``simulated`` the
    service clock's when it differs (a rehearsal's virtual time).
    """
    from mission_server.app import records_context
    from mission_server.services import missions

    with user_errors():
        ctx = records_context(db)
        runs = missions.list_runs(
            ctx, mission_id=mission_id, status=status, limit=limit, cursor=cursor
        )
        short = missions.short_run_ids(ctx, [r.run_id for r in runs])
    if as_json:
        print_json([r.model_dump(mode="json") for r in runs])
    else:
        from mission_server.cli.display import render_runs

        render_runs(out_console, runs, short)
    more_pages(runs.next_cursor)


@runs_app.command("show")
def runs_show(
    run_id: RunIdArgument,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run: plan, calls (every attempt and deferral), insight results and result.

    --json adds the transcripts and the event log (``runs transcript``, ``runs events``).
    """
    from mission_server.app import records_context
    from mission_server.services import missions

    with user_errors():
        ctx = records_context(db)
        detail = missions.get_run(ctx, missions.resolve_run_id(ctx, run_id))
    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    from mission_server.cli.display import render_run_detail

    render_run_detail(out_console, detail)


@runs_app.command("events")
def runs_events(
    run_id: RunIdArgument,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a run's event log (its audit trail), oldest first: every event."""
    from mission_server.app import records_context
    from mission_server.services import missions, plans

    with user_errors():
        ctx = records_context(db)
        events = plans.all_events(ctx, missions.resolve_run_id(ctx, run_id))
    if as_json:
        print_json([e.model_dump(mode="json") for e in events])
        return
    from mission_server.cli.display import render_events

    render_events(out_console, events)


@runs_app.command("transcript")
def runs_transcript(
    run_id: RunIdArgument,
    target: Annotated[
        str | None,
        typer.Argument(help="Only the conversations with this target: its name or number."),
    ] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the transcripts of a run's conversations, in time order."""
    from mission_server.app import records_context
    from mission_server.services import missions

    with user_errors():
        ctx = records_context(db)
        conversations = missions.run_transcripts(ctx, missions.resolve_run_id(ctx, run_id), target)
    if as_json:
        print_json([c.model_dump(mode="json") for c in conversations])
        return
    from mission_server.cli.display import render_transcripts

    render_transcripts(out_console, conversations)


TargetArgument = Annotated[
    str,
    typer.Argument(
        help="Phone number (E.164, e.g. +13125550101; without + it is read as US/Canada) "
        "or SIP URI."
    ),
]


@dnc_app.command("add")
def dnc_add(
    target: TargetArgument,
    db: DbOption = None,
    reason: Annotated[str | None, typer.Option(help="Why it must not be contacted.")] = None,
) -> None:
    """Put a target on the do-not-call list: no call or SMS to it is scheduled or placed."""
    from mission_server.app import records_context
    from mission_server.services import do_not_call as do_not_call_service

    with user_errors():
        ctx = records_context(db)
        entry, already = do_not_call_service.put_do_not_call(ctx, target, reason)
        open_calls = do_not_call_service.open_calls_to(ctx, entry.target)
    if already:
        err_console.print(f"{entry.target} was already on the do-not-call list")
    else:
        err_console.print(f"{entry.target} added to the do-not-call list")
    if open_calls:
        err_console.print(
            f"{open_calls} scheduled call(s) to it will not be placed (they fail with "
            "do_not_call when due)"
        )


@dnc_app.command("remove")
def dnc_remove(target: TargetArgument, db: DbOption = None) -> None:
    """Take a target off the do-not-call list."""
    from mission_server.app import records_context
    from mission_server.domain.targets import normalise_target
    from mission_server.services import do_not_call as do_not_call_service

    with user_errors():
        ctx = records_context(db)
        removed = do_not_call_service.remove_do_not_call(ctx, target)
    normalised = normalise_target(target, "target")
    if removed:
        err_console.print(f"{normalised} removed from the do-not-call list")
    else:
        err_console.print(f"{normalised} was not on the do-not-call list")


@dnc_app.command("list")
def dnc_list(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the do-not-call list: every entry."""
    from mission_server.app import records_context
    from mission_server.services import do_not_call as do_not_call_service

    with user_errors():
        entries = do_not_call_service.do_not_call_entries(records_context(db))
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    from rich.table import Table

    table = Table("target", "reason", "added")
    for entry in entries:
        table.add_row(entry.target, entry.reason or "", str(entry.created_at or ""))
    out_console.print(table)


@numbers_app.command("release")
def numbers_release(
    phone_number: Annotated[str, typer.Argument(help="The number to free (E.164).")],
    db: DbOption = None,
    simulate: SimulateOption = False,
    world: WorldOption = None,
    run_id: Annotated[
        str | None, typer.Option(help="Record the release in this run's events.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Free a phone number: unassign it from its assistant (at the provider too), so the next
    mission can call from it. Numbers are released by themselves when their run ends."""
    from mission_server.app import build_context
    from mission_server.services import assistants as assistant_service
    from mission_server.settings import load_settings

    setup_logging()
    with user_errors():
        settings = load_settings()
        ctx = build_context(
            settings,
            db_url=db,
            simulate=simulate or None,
            world=world,
            # The simulator's routes live in its ledger: the release must reach the same one.
            ledger_path=ledger_path_for(db if db is not None else settings.db_url),
        )
        number = assistant_service.release_phone_number(ctx, phone_number, run_id=run_id)
    if as_json:
        print_json(number.model_dump(mode="json"))
        return
    err_console.print(f"{number.phone_number} is free")


@app.command()
def worker(
    db: DbOption = None,
    simulate: SimulateOption = False,
    world: WorldOption = None,
    sim_speed: Annotated[
        float | None,
        typer.Option(
            help="Simulated seconds per wall-clock second (default 60, or MISSION_SIM_SPEED).",
            min=0.001,
        ),
    ] = None,
    seed: SeedOption = None,
    extractor: ExtractorOption = None,
    poll_secs: Annotated[float, typer.Option(help="Safety sweep interval (seconds).")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Sweep once and exit.")] = False,
) -> None:
    """Run the dispatcher: place due calls, record outcomes, retry.

    Several workers may share one PostgreSQL database.

    A worker also advances the mission runs whose calls it finishes.
    """
    from mission_server.app import MissionApp
    from mission_server.engine.dispatcher import Dispatcher
    from mission_server.settings import load_settings

    setup_logging()
    with user_errors():
        settings = load_settings(extractor=extractor)
        mission_app = MissionApp.open(
            settings,
            background_extraction=not once,
            db_url=db,
            simulate=simulate or None,
            world=world,
            seed=seed,
            sim_speed=sim_speed,
            # Placements survive a restart: the next process resolves calls in flight.
            ledger_path=ledger_path_for(db if db is not None else settings.db_url),
        )
    try:
        if once:
            err_console.print(Dispatcher(mission_app.ctx).sweep())
            return
        with user_errors():
            mission_app.recover()  # runs interrupted by a stop continue where they were
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        dispatcher = mission_app.start_dispatching(poll_secs)
        err_console.print(
            f"worker {dispatcher.worker_id} running (provider {mission_app.ctx.provider.name}); "
            "Ctrl-C to stop"
        )
        stop.wait()
    finally:
        mission_app.close()


app.command("serve")(serve)
app.command("ui")(ui)
app.command("run")(run_command)
app.command("approve")(approve_command)
app.add_typer(insights_app, name="insights")
app.add_typer(sync_app, name="sync")


def main() -> None:  # pragma: no cover - console entry
    app()
