"""``mission run`` and ``mission approve``: run a whole mission from the command line.

In the simulated world (the default without ``TELNYX_API_KEY``, or with ``--simulate``) the
mission runs on the discrete-event virtual clock, so five-minute retries take no wall time:
the catering mission finishes in about a second with realistic timestamps. Progress (plan
steps, attempts, retries, deferrals, quotes) streams to stderr; the final summary goes to
stdout, or with ``--json`` only the final run detail as JSON.

Exit codes: 0 the run succeeded; 1 it failed or was cancelled; 2 bad input; 3 the run waits
for approval (``mission approve RUN_ID``).
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from mission_server.cli.common import (
    DbOption,
    ExtractorOption,
    SeedOption,
    SimulateOption,
    WorldOption,
    fail,
    ledger_path_for,
    setup_logging,
    user_errors,
)

log = logging.getLogger("mission_server.run")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3

# Progress lines are not wrapped, so a command they suggest can be copied whole.
_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print only the final run detail as JSON on stdout.")
]

_ICONS = {
    "status_change": "●",
    "step_started": "▶",
    "step_completed": "✔",
    "step_failed": "✖",
    "tool_call": "☎",
    "tool_result": "←",
    "error": "!",
    "custom": "·",
    "message": "»",
}
_STYLES = {"step_failed": "red", "error": "red", "step_completed": "green", "tool_call": "cyan"}


def _setup_logging(verbose: bool) -> None:
    # The live progress display is the output; log records only when asked for.
    setup_logging(logging.INFO if verbose else logging.WARNING)


@contextmanager
def _imports_without_gc() -> Iterator[None]:
    """Importing the planner allocates hundreds of thousands of long-lived objects; garbage
    collections in the middle of that are wasted work. Afterwards everything imported is
    frozen, so later collections (and interpreter shutdown) do not walk it again: together
    about a third of a short ``mission run``'s CPU time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


#: What a run imports anyway, loaded up front under ``_imports_without_gc``. Not Alembic: a new
#: SQLite database is created without it, and one at the head is only checked.
_RUN_MODULES = (
    "mission_server.engine.runner",
    "mission_server.app",
    "mission_server.telephony.simulated.provider",
    "mission_server.services.insights",
    "langgraph.checkpoint.sqlite",
)


def _preload() -> None:
    with _imports_without_gc():
        for name in _RUN_MODULES:
            # A missing module is reported where it is actually used.
            with suppress(ImportError):
                importlib.import_module(name)


class Progress:
    """Streams a run's new events (and its plan, once) to stderr."""

    def __init__(self, ctx: Any, run_id: str, *, enabled: bool) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.enabled = enabled
        self._seen: set[str] = set()
        self._plan_shown = False

    def poll(self) -> None:
        if not self.enabled:
            return
        from mission_server.services import plans

        for event in plans.all_events(self.ctx, self.run_id):
            if event.event_id in self._seen:
                continue
            self._seen.add(event.event_id)
            icon = _ICONS.get(event.type, "·")
            style = _STYLES.get(event.type)
            text = escape(event.summary)
            line = f"[dim]{event.created_at:%H:%M:%S}[/] {icon} " + (
                f"[{style}]{text}[/]" if style else text
            )
            _err.print(line)
            if event.summary.startswith("Plan created") and not self._plan_shown:
                self._show_plan()

    def _show_plan(self) -> None:
        from rich.table import Table

        from mission_server.services import plans

        self._plan_shown = True
        table = Table("#", "step", "description", title="Plan", title_justify="left")
        for step in plans.get_plan(self.ctx, self.run_id):
            table.add_row(str(step.sequence), step.step_id, step.description)
        _err.print(table)


def _full_run_id(db: str | None, run_id: str) -> str:
    """The id of the run ``run_id`` names: the whole id or a start of it no other run shares.
    Exits 2 for an unknown or ambiguous one."""
    from mission_server.app import records_context
    from mission_server.services import missions

    with user_errors():
        return missions.resolve_run_id(records_context(db), run_id)


def _open(
    db: str | None,
    *,
    simulate: bool,
    world: Path | None,
    seed: int | None,
    run_id: str | None = None,
    extractor: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build the service context: virtual clock in the simulated world, real time with
    Telnyx. For an existing run, its recorded world and seed apply unless given."""
    from mission_server.app import build_context
    from mission_server.clock import VirtualClock
    from mission_server.settings import load_settings

    settings = load_settings(extractor=extractor)
    recorded: dict[str, Any] = {}
    if run_id is not None:
        from mission_server.engine.runner import cli_settings_of
        from state.db import make_engine

        engine = make_engine(db if db is not None else settings.db_url)
        try:
            from state.db import upgrade

            upgrade(engine)
            recorded = cli_settings_of(engine, run_id)
        finally:
            engine.dispose()
    if world is None and recorded.get("world"):
        world = Path(recorded["world"])
    if seed is None and recorded.get("seed") is not None:
        seed = int(recorded["seed"])
    simulate = simulate or bool(recorded.get("simulate"))
    simulated = simulate or settings.telnyx_api_key is None
    ctx = build_context(
        settings,
        db_url=db,
        clock="virtual" if simulated else "system",
        simulate=simulate or None,
        world=world,
        seed=seed,
        ledger_path=ledger_path_for(db if db is not None else settings.db_url),
    )
    cli = {
        "world": str((world or settings.world_path).resolve()) if simulated else None,
        "seed": seed,
        "simulate": simulated,
    }
    if run_id is not None and isinstance(ctx.clock, VirtualClock):
        from mission_server.engine.runner import latest_activity

        # A resumed run continues from where its recorded history stops, never earlier.
        latest = latest_activity(ctx, run_id)
        if latest is not None:
            ctx.clock.advance_to(latest)
    return ctx, cli


def _drive(ctx: Any, runner: Any, run_id: str, progress: Progress) -> None:
    from mission_server.clock import VirtualClock
    from mission_server.engine.runner import drive_virtual, run_statuses

    if isinstance(ctx.clock, VirtualClock):
        drive_virtual(ctx, runner, [run_id], on_sweep=progress.poll)
        return
    from mission_server.engine.dispatcher import Dispatcher
    from mission_server.engine.drivers import RealtimeTrigger

    trigger = RealtimeTrigger(Dispatcher(ctx), ctx.clock)
    trigger.start()
    stop = threading.Event()
    try:
        while not stop.is_set():
            progress.poll()
            status = run_statuses(ctx, [run_id]).get(run_id)
            if status in ("succeeded", "failed", "cancelled"):
                break
            if runner.idle() and runner.waiting_for(run_id) == "approval":
                break
            stop.wait(0.5)
    except KeyboardInterrupt:
        _err.print(f"interrupted; continue with: mission run --resume {run_id}")
    finally:
        trigger.stop()
        runner.wait_idle(10.0)
        progress.poll()


def _check_world(provider: Any, spec: dict[str, Any]) -> None:
    # Before any call: a world fact that cannot answer the mission's field of that name.
    from mission_server.telephony.simulated.provider import SimulatedProvider

    if isinstance(provider, SimulatedProvider):
        fields = [(f["name"], f["type"], tuple(f.get("enum") or ())) for f in spec["extract"]]
        provider.world.check_fields(fields)


def _print_accuracy(accuracy: Any) -> None:
    # A rehearsal read by the offline reader or an LLM measures that reader against the truth.
    if not isinstance(accuracy, dict) or accuracy.get("extractors") == ["simulated"]:
        return
    readers = ", ".join(accuracy["extractors"])
    _err.print(
        f"extraction ({readers}) against the rehearsal's truth: {accuracy['right']} of "
        f"{accuracy['stated']} stated values read right, {accuracy['wrong']} wrong, "
        f"{accuracy['missed']} missed"
    )
    for item in accuracy["mismatches"][:5]:
        said = "nothing" if item["said"] is None else json.dumps(item["said"])
        _err.print(
            f"  [red]wrong[/] {escape(item['conversation'])}: {item['field']} read "
            f"{escape(json.dumps(item['read']))}, said {escape(said)}"
        )


def _finish(ctx: Any, runner: Any, run_id: str, as_json: bool, started: float) -> int:
    from mission_server.services import missions

    detail = missions.get_run(ctx, run_id)
    waiting = runner.waiting_for(run_id) if detail.status == "running" else None
    if as_json:
        sys.stdout.write(json.dumps(detail.model_dump(mode="json"), indent=2) + "\n")
    elif detail.result_summary:
        from rich.markdown import Markdown

        _out.print(Markdown(detail.result_summary))
    if not as_json:
        _print_accuracy((detail.result_payload or {}).get("extraction_accuracy"))
    wall = time.monotonic() - started
    if waiting == "approval":
        _err.print(
            f"run [cyan]{run_id}[/] is waiting for approval: "
            f"mission approve {run_id}   (or --reject)"
        )
        return EXIT_WAITING
    _err.print(f"run [cyan]{run_id}[/] {detail.status} ({wall:.2f} s wall time)")
    if detail.error and detail.status != "succeeded":
        _err.print(f"[red]{escape(detail.error)}[/]")
    if detail.status == "succeeded":
        return EXIT_OK
    if detail.status == "running":
        _err.print(f"the run stopped before finishing; continue: mission run --resume {run_id}")
    return EXIT_FAILED


def run(
    spec_or_request: Annotated[
        str | None,
        typer.Argument(
            help="A mission spec file (YAML or JSON), or a request in quotes that lists its "
            "targets with phone numbers (any request, with MISSION_LLM_* set).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    seed: SeedOption = None,
    simulate: SimulateOption = False,
    world: WorldOption = None,
    extractor: ExtractorOption = None,
    db: DbOption = None,
    require_approval: Annotated[
        bool,
        typer.Option(
            "--require-approval",
            help="Plan, then wait for `mission approve RUN_ID` before placing any call.",
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Continue an interrupted run from its last checkpoint."),
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option(
            "--targets",
            help="A CSV file of targets, replacing the spec's: a header row with phone (or "
            "to) and name, optionally timezone and notes; every other column is a per-target "
            "variable. At most 10,000 rows.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Run a mission: plan it, create the assistant, place the calls, compile the result."""
    started = time.monotonic()
    _preload()
    from mission_server.engine.runner import MissionRunner
    from planner.spec import load_spec

    _setup_logging(verbose)
    if (spec_or_request is None) == (resume is None):
        raise fail("give a spec file or request, or --resume RUN_ID (not both)")
    spec = request = None
    spec_file: Path | None = None
    if spec_or_request is not None:
        candidate = Path(spec_or_request)
        looks_like_file = candidate.suffix.lower() in (".yaml", ".yml", ".json")
        if candidate.is_file() or looks_like_file:
            spec_file = candidate
            with user_errors():
                spec = load_spec(candidate, targets).model_dump(mode="json")
        else:
            request = spec_or_request
    if targets is not None and spec_file is None:
        raise fail("--targets needs a spec file (mission run SPEC_FILE --targets FILE)")
    if resume is not None:
        resume = _full_run_id(db, resume)
    with user_errors(ValueError):
        ctx, cli = _open(
            db, simulate=simulate, world=world, seed=seed, run_id=resume, extractor=extractor
        )
        runner = MissionRunner(ctx, mode="inline" if cli["simulate"] else "thread")
    with closing(runner), user_errors():
        if spec is not None:
            _check_world(ctx.provider, spec)
        if resume is not None:
            run_id = resume
            # Calls that ended after the process stopped never had their insights extracted.
            runner.ops.settle_insights(run_id)
            runner.resume(run_id)
            _err.print(f"resuming run [cyan]{run_id}[/]")
        else:
            started_with: Any = spec
            if spec_file is not None:
                # Checked by the service here, so that a refused target of a CSV file is
                # named by its row and column.
                started_with = load_spec(spec_file, targets, check=runner.ops.check_spec)
            run_id = runner.start(
                started_with,
                request,
                True if require_approval else None,
                metadata={"cli": cli},
                checked=spec_file is not None,
            )
            _err.print(f"run [cyan]{run_id}[/] started")
        progress = Progress(ctx, run_id, enabled=True)
        _drive(ctx, runner, run_id, progress)
        code = _finish(ctx, runner, run_id, as_json, started)
    gc.freeze()  # nothing left to collect that matters; spare the shutdown a full walk
    raise typer.Exit(code)


def approve(
    run_id: Annotated[
        str, typer.Argument(help="The run waiting for approval (its id or a unique start of it).")
    ],
    reject: Annotated[
        bool, typer.Option("--reject", help="Refuse: the run is cancelled, no call is placed.")
    ] = False,
    note: Annotated[str | None, typer.Option("--note", help="Why (recorded on the run).")] = None,
    as_json: JsonOption = False,
    seed: SeedOption = None,
    simulate: SimulateOption = False,
    world: WorldOption = None,
    extractor: ExtractorOption = None,
    db: DbOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Approve a run that waits for approval and run it to the end (or --reject it)."""
    started = time.monotonic()
    _preload()
    from mission_server.engine.runner import MissionRunner

    _setup_logging(verbose)
    run_id = _full_run_id(db, run_id)
    with user_errors(ValueError):
        ctx, cli = _open(
            db, simulate=simulate, world=world, seed=seed, run_id=run_id, extractor=extractor
        )
        runner = MissionRunner(ctx, mode="inline" if cli["simulate"] else "thread")
    with closing(runner), user_errors():
        runner.approve(run_id, not reject, note)
        _err.print(f"run [cyan]{run_id}[/] {'rejected' if reject else 'approved'}")
        progress = Progress(ctx, run_id, enabled=True)
        _drive(ctx, runner, run_id, progress)
        code = _finish(ctx, runner, run_id, as_json, started)
    gc.freeze()
    # Rejecting is what was asked for: the command succeeded even though the run did not.
    raise typer.Exit(EXIT_OK if reject and code == EXIT_FAILED else code)
