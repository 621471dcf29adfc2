"""The composition root: everything the commands run is assembled here, once.

``build_context`` makes the service ``Context`` from settings (database, clock, provider,
extractor). ``MissionApp`` owns one context with its listeners, its mission runner and, when
asked, the dispatcher's real-time trigger, and closes them in order: ``mission serve``,
``mission worker`` and the MCP planner tools all work through it.

The provider is Telnyx when ``TELNYX_API_KEY`` is set and simulation is not forced; otherwise
the simulated world. The choice is logged (stderr) so nobody mistakes a rehearsal for real calls.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from mission_server.clock import AcceleratedClock, Clock, SystemClock, VirtualClock
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import RealtimeTrigger
from mission_server.engine.listeners import install_listeners, shutdown_listeners
from mission_server.engine.simtime import SimTime
from mission_server.errors import ConfigurationError
from mission_server.insights.base import Extractor
from mission_server.secrets import install_logging, scrub_data
from mission_server.services.context import Context
from mission_server.settings import Settings, load_settings
from mission_server.telephony.base import Provider
from state import models as m
from state.db import make_engine, upgrade
from state.outbox import capture_outbox

if TYPE_CHECKING:
    from mission_server.engine.mirror import MirrorLoop
    from mission_server.engine.runner import MissionRunner
    from mission_server.services.mirror import MissionsMirror

log = logging.getLogger("mission_server")


def choose_provider(
    settings: Settings,
    *,
    simulate: bool | None = None,
    world: Path | None = None,
    seed: int | None = None,
    ledger_path: Path | None = None,
) -> Provider:
    """Telnyx when configured and not ``simulate``; else the simulated world.

    Raises:
        ConfigurationError: the world file or Telnyx settings are unusable.
    """
    if settings.telnyx_api_key is not None and not simulate:
        from mission_server.telephony.telnyx.provider import TelnyxProvider

        log.warning("provider: Telnyx (%s) — calls are REAL", settings.telnyx_base_url)
        return TelnyxProvider.from_settings(settings)
    from mission_server.telephony.simulated.provider import SimulatedProvider

    path = world or settings.world_path
    reason = "--simulate given" if simulate else "TELNYX_API_KEY is not set"
    log.warning("provider: simulated world %s (%s) — no real calls are placed", path, reason)
    return SimulatedProvider.from_path(path, seed=seed, ledger_path=ledger_path)


EXTRACTORS: tuple[str, ...] = ("simulated", "offline", "llm")


def make_extractor(
    settings: Settings, provider: Provider, engine: Engine | None = None
) -> Extractor:
    """The extraction backend: ``MISSION_EXTRACTOR`` (``--extractor``) when set, else the one
    that fits the provider.

    - ``simulated``: the ground truth the simulated callee stated (default in the simulated
      world when no LLM is configured); refused with Telnyx, whose calls carry no truth.
    - ``offline``: the transcript text reader, no model.
    - ``llm``: an OpenAI-compatible LLM (``MISSION_LLM_BASE_URL`` and ``MISSION_LLM_MODEL``);
      the default whenever they are set, except with Telnyx.
    - With Telnyx and no choice, the platform's own insight results.

    Raises:
        ConfigurationError: an unknown extractor, ``simulated`` with Telnyx, or ``llm``
            without an LLM configured.
        ValidationError: the configured LLM base URL is not an http(s) URL.
    """
    choice = settings.extractor.strip().lower() if settings.extractor else None
    if choice is not None and choice not in EXTRACTORS:
        raise ConfigurationError(
            f"MISSION_EXTRACTOR (--extractor) must be one of {', '.join(EXTRACTORS)}, "
            f'got "{choice[:40]}"'
        )
    # Not imported for the check: a provider of the simulated world does without the Telnyx
    # modules, and a TelnyxProvider exists only once its module is loaded.
    telnyx_module = sys.modules.get("mission_server.telephony.telnyx.provider")
    telnyx = telnyx_module is not None and isinstance(provider, telnyx_module.TelnyxProvider)
    if choice == "simulated" and telnyx:
        raise ConfigurationError(
            "the simulated extractor reads a rehearsal's ground truth, which real Telnyx calls "
            "do not have; use --extractor offline or llm, or run with --simulate"
        )
    if choice == "llm" and not settings.llm_configured:
        raise ConfigurationError(
            "the llm extractor needs MISSION_LLM_BASE_URL and MISSION_LLM_MODEL to be set"
        )
    if choice is None and telnyx:
        from mission_server.insights.telnyx import TelnyxInsightsExtractor
        from mission_server.insights.wakeup import INSIGHTS_READY
        from mission_server.telephony.telnyx.provider import TelnyxProvider  # loaded already

        assert isinstance(provider, TelnyxProvider)

        # Telnyx's insights webhook ends the wait between polls (mcp.telnyx_webhooks).
        if engine is None:
            return TelnyxInsightsExtractor(
                provider.get_conversation_insights, sleep=INSIGHTS_READY.sleep
            )
        from mission_server.services.insight_sync import remote_insight_id

        # Results are read by the Telnyx id of each insight's template (telnyx_ids).
        return TelnyxInsightsExtractor(
            provider.get_conversation_insights,
            sleep=INSIGHTS_READY.sleep,
            remote_id=lambda insight_id: remote_insight_id(engine, insight_id),
        )
    if choice == "llm" or (choice is None and settings.llm_configured):
        from mission_server.insights.llm import LLMExtractor

        return LLMExtractor.from_settings(settings)
    if choice == "simulated" or (choice is None and provider.name == "simulated"):
        from mission_server.insights.simulated import SimulatedExtractor

        return SimulatedExtractor()
    from mission_server.insights.offline import OfflineExtractor

    return OfflineExtractor()


def mirror_enabled(settings: Settings, provider: Provider) -> bool:
    """Whether records are mirrored to the Telnyx Missions API: a Telnyx key is set, the
    calls are not simulated, and ``MISSION_TELNYX_SYNC`` is not off."""
    key = settings.telnyx_api_key
    return (
        bool(settings.telnyx_sync)
        and key is not None
        and bool(key.get_secret_value().strip())
        and provider.name != "simulated"
    )


def latest_recorded_time(engine: Engine) -> datetime | None:
    """The time of the latest event the database has recorded, if any (read by the primary
    key, so start-up does not scan the table)."""
    events = m.Event.__table__
    query = select(events.c.created_at).order_by(events.c.seq.desc()).limit(1)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def records_context(db_url: str | None = None) -> Context:
    """A context for reading and writing records only (the CLI's inspection commands): its
    provider places no calls, so nothing here needs Telnyx or a simulated world.

    Raises:
        ConfigurationError, StateError.
    """
    from mission_server.telephony.scripted import ScriptedProvider

    return build_context(db_url=db_url, provider=ScriptedProvider(numbers=[]))


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def sim_time(ctx: Context) -> SimTime | None:
    """The simulated time of an accelerated context (shared through its database unless it is
    in memory), which may jump; None for any other clock."""
    clock = ctx.clock
    if not isinstance(clock, AcceleratedClock):
        return None
    return SimTime(ctx.engine, clock, shared=clock.following)


def world_start_time(provider: Provider) -> datetime | None:
    world = getattr(provider, "world", None)
    return getattr(world, "start_time", None)


def _scrub_parameters(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    return statement, scrub_data(parameters)


def scrub_records(engine: Engine) -> None:
    """Scrub every string written through ``engine`` of secrets (``mission_server.secrets``):
    the one choke point of the records, so no table, event payload or error column (a run's
    error, result summary and payload, its events, webhook deliveries) can keep one. JSON
    columns are serialised by then, so their strings are covered too. Idempotent."""
    if not event.contains(engine, "before_cursor_execute", _scrub_parameters):
        event.listen(engine, "before_cursor_execute", _scrub_parameters, retval=True)


def build_context(
    settings: Settings | None = None,
    *,
    db_url: str | None = None,
    provider: Provider | None = None,
    clock: Clock | str = "system",
    simulate: bool | None = None,
    world: Path | None = None,
    seed: int | None = None,
    sim_speed: float | None = None,
    migrate: bool = True,
    ledger_path: Path | None = None,
) -> Context:
    """Assemble a Context.

    ``clock``: a Clock, or ``"system"`` (real time; accelerated from the world's start time when
    the provider is simulated, following the simulated time of the database, see
    ``engine.simtime``), or ``"virtual"`` (discrete-event time from the world's start).

    Raises:
        ConfigurationError, StateError.
    """
    settings = settings or load_settings()
    install_logging()
    engine = make_engine(db_url if db_url is not None else settings.db_url)
    scrub_records(engine)
    if migrate:
        upgrade(engine)
    if provider is None:
        provider = choose_provider(
            settings, simulate=simulate, world=world, seed=seed, ledger_path=ledger_path
        )
    if isinstance(clock, str):
        start = world_start_time(provider) or datetime.now(UTC)
        if clock == "virtual":
            clock = VirtualClock(start)
        elif provider.name == "simulated":
            speed = sim_speed if sim_speed is not None else settings.sim_speed
            # Never behind what is already recorded: a restarted server, or a worker started
            # after the server, carries on from the latest recorded moment instead of going
            # back to the world's start (due times would jump into the future).
            latest = latest_recorded_time(engine)
            begin = max(start, latest) if latest else start
            clock = AcceleratedClock(begin, speed)
            if not _in_memory(engine):
                # Every process on this database keeps to one simulated time.
                SimTime(engine, clock).attach(begin)
        else:
            clock = SystemClock()
    if mirror_enabled(settings, provider):
        # Every mission and event written from here on has its mirror row (same transaction).
        capture_outbox(engine)
    return Context(
        engine=engine,
        clock=clock,
        provider=provider,
        settings=settings,
        extractor=make_extractor(settings, provider, engine),
    )


class MissionApp:
    """One service context with everything that runs on it.

    Args:
        ctx: the context (see ``build_context``).
        background_extraction: extract insights on a thread pool, off the dispatcher's thread
            (long-running processes); otherwise inline.
        runner_mode: how the mission runner executes graph steps (``thread`` in servers).
    """

    def __init__(
        self,
        ctx: Context,
        *,
        background_extraction: bool = False,
        runner_mode: Literal["inline", "thread"] = "thread",
    ) -> None:
        self.ctx = ctx
        self._runner_mode: Literal["inline", "thread"] = runner_mode
        self._runner: MissionRunner | None = None
        self._lock = threading.Lock()
        self.trigger: RealtimeTrigger | None = None
        self.mirror: MirrorLoop | None = None
        install_listeners(ctx, background=background_extraction)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        background_extraction: bool = False,
        runner_mode: Literal["inline", "thread"] = "thread",
        **context_options: Any,
    ) -> MissionApp:
        """Build the context (``build_context(settings, **context_options)``) and the app.

        Raises:
            ConfigurationError, StateError.
        """
        ctx = build_context(settings, **context_options)
        return cls(ctx, background_extraction=background_extraction, runner_mode=runner_mode)

    @property
    def runner(self) -> MissionRunner:
        """The context's mission runner, created on first use (one per app).

        Raises:
            ValidationError: the configured LLM settings are unusable.
        """
        # Imported here, not at the top: the runner brings the planner (LangGraph), which the
        # records-only commands (``mission runs``, ``mission dnc``) must not pay for at start-up.
        from mission_server.engine.runner import MissionRunner

        with self._lock:
            if self._runner is None:
                self._runner = MissionRunner(self.ctx, mode=self._runner_mode)
            return self._runner

    def recover(self) -> list[str]:
        """Resume the runs a stop interrupted; return their ids. Then extract, off this
        thread when extraction is in the background, the insights a stopped process left
        unextracted (its queue was abandoned at shutdown)."""
        from mission_server.services.extraction import settle_unextracted

        resumed = self.runner.recover()
        pool = self.ctx.extraction_pool
        if pool is None:
            settle_unextracted(self.ctx)
        else:
            pool.submit(settle_unextracted, self.ctx)
        return resumed

    def start_dispatching(self, poll_secs: float = 1.0) -> Dispatcher:
        """Place due calls from this process, driven by the real-time trigger."""
        dispatcher = Dispatcher(self.ctx)
        simulated = sim_time(self.ctx) if self.ctx.provider.name == "simulated" else None
        self.trigger = RealtimeTrigger(
            dispatcher,
            self.ctx.clock,
            poll_secs=poll_secs,
            jump=simulated.jump if simulated is not None else None,
            heartbeat=simulated.heartbeat if simulated is not None else None,
        )
        self.trigger.start()
        self.start_mirroring()
        return dispatcher

    def start_mirroring(self, missions: MissionsMirror | None = None) -> MirrorLoop | None:
        """Deliver the Telnyx mirror's outbox from this process (``engine.mirror``) to
        ``missions`` (default: the Telnyx Missions API of the settings), when the mirror is on
        (``mirror_enabled``); None when it is off."""
        if self.mirror is not None or not mirror_enabled(self.ctx.settings, self.ctx.provider):
            return self.mirror
        from mission_server.engine.mirror import MirrorLoop
        from mission_server.telephony.telnyx.missions import TelnyxMissions

        if missions is None:
            missions = TelnyxMissions.from_settings(self.ctx.settings, clock=self.ctx.clock.now)
        self.mirror = MirrorLoop(self.ctx, missions)
        self.mirror.start()
        log.info("mirroring missions to the Telnyx Missions API (MISSION_TELNYX_SYNC=off to stop)")
        return self.mirror

    @property
    def dispatching(self) -> bool:
        return self.trigger is not None and self.trigger.running

    def close(self) -> None:
        """Stop dispatching, finish the extractions in flight, stop the runner, close the
        database: in that order, so nothing in flight loses its record."""
        if self.trigger is not None:
            self.trigger.stop()
        if self.mirror is not None:
            self.mirror.stop()
            close = getattr(self.mirror.mirror, "close", None)
            if close is not None:
                close()
            self.mirror = None
        shutdown_listeners(self.ctx)
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
        simulated = sim_time(self.ctx)
        if simulated is not None:
            try:  # the next process carries on from this moment of the shared time
                simulated.heartbeat(force=True)
            except Exception:
                log.warning("could not record where the shared simulated time stands")
        self.ctx.engine.dispose()

    def __enter__(self) -> MissionApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
