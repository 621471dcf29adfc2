"""Running missions: the planner graph driven by the service.

``MissionRunner.start`` validates a spec (or a request), creates the mission and its run, and
returns the run id at once; the planner graph (thread id = run id) then advances in a worker
thread until it waits — for approval, or for a call. The dispatcher resumes it: a settled
listener (told once the call's insights are recorded) queues the run, and a worker thread
advances it, so the dispatcher is never blocked by planning. ``MissionRunner.approve`` resumes
a run waiting for approval (a rejection cancels it). ``app.MissionApp`` owns one runner per
context.

Two modes:

* ``thread`` (servers): graph steps run in a small thread pool; call listeners only queue.
* ``inline`` (``mission run`` under the virtual clock): starts, approvals and wake-ups are
  queued and advance when the driver calls ``drain()`` (before and after each dispatcher
  sweep); ``drive_virtual`` is that loop.

Crash tests: ``MISSION_TEST_CRASH_AT=<point>[:<n>]`` makes the process SIGKILL itself the
n-th time (default first) it reaches a point: ``planning`` (plan written, graph step not yet
checkpointed), ``dispatched`` (a call placed, its outcome not yet recorded), ``call_finished``
(outcome recorded, planner not yet resumed), ``compiling`` (result computed, not yet stored).
Unset, it does nothing.

Size: about 540 lines, kept in one module on purpose: the queueing, the resume protocol and
the recovery after a restart share one lock and one set of per-run structures, and reading
them apart would hide the invariants between them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import yaml
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.engine.listeners import install_listeners
from mission_server.engine.pool import DaemonPool
from mission_server.engine.queue import RUNS
from mission_server.errors import ConflictError, ValidationError
from mission_server.net.openai import OpenAICompatibleLLM
from mission_server.services import missions
from mission_server.services.context import CallFinished, Context
from mission_server.services.ops import ServiceOps
from mission_server.services.schemas import RunOut
from mission_server.settings import Settings
from planner.checkpoint import Checkpointer, checkpointer_for_url
from planner.errors import LLMError, SpecError
from planner.graph import PlannerContext, build_graph
from planner.llm import LLM
from planner.spec import MissionSpec, parse_spec, spec_header
from state import models as m
from state import repo
from state.db import reader, session_scope
from state.transitions import TERMINAL_RUN

__all__ = [
    "CRASH_ENV",
    "MissionRunner",
    "crash_point",
    "drive_virtual",
    "llm_from_settings",
]

log = logging.getLogger(__name__)

CRASH_ENV = "MISSION_TEST_CRASH_AT"
PLANNER_KEY = "planner"
_crash_counts: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process when ``MISSION_TEST_CRASH_AT`` names this point (tests only)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _crash_counts[name] += 1
    if _crash_counts[name] == int(nth or 1):
        sys.stderr.write(f"{CRASH_ENV}: killing process {os.getpid()} at {name}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def llm_from_settings(settings: Settings) -> LLM | None:
    """The OpenAI-compatible model of ``MISSION_LLM_*``, or None when not configured.

    Raises:
        ValidationError: the configured base URL or model is unusable.
    """
    if not settings.llm_configured:
        return None
    try:
        return OpenAICompatibleLLM(
            settings.llm_base_url or "", settings.llm_model or "", settings.llm_api_key
        )
    except LLMError as exc:
        raise ValidationError("MISSION_LLM_BASE_URL", str(exc), show_value=False) from None


def _as_validation(exc: SpecError) -> ValidationError:
    return ValidationError(exc.field, exc.rule, exc.value, show_value=exc.show_value)


class MissionRunner:
    """Drives planner graphs for one service context.

    Args:
        ctx: the service context (its database also holds the checkpoints, or sits beside
            them).
        mode: ``thread`` (graph steps in worker threads) or ``inline`` (``drain()`` runs them).
        workers: threads in ``thread`` mode.
        llm: the model for natural-language requests (default: from settings, if configured).
        checkpointer: default: SQLite beside a SQLite database, PostgreSQL with PostgreSQL.

    Raises:
        ValidationError: the configured LLM settings are unusable.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        mode: Literal["inline", "thread"] = "thread",
        workers: int = 4,
        llm: LLM | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.ctx = ctx
        self.mode = mode
        self.closed = False
        self.llm = llm if llm is not None else llm_from_settings(ctx.settings)
        self.ops = ServiceOps(ctx, checkpoint=crash_point, extract_on_demand=mode == "inline")
        self.checkpointer = checkpointer or checkpointer_for_url(
            ctx.engine.url.render_as_string(hide_password=False)
        )
        # build_graph() returns a bare StateGraph, whose context type defaults to None.
        self.graph: CompiledStateGraph[Any, Any, Any, Any] = build_graph().compile(
            checkpointer=self.checkpointer.saver
        )
        self._guard = threading.Lock()
        self._queued: dict[str, deque[dict[str, Any] | None]] = {}
        self._active: set[str] = set()
        self._known: dict[str, bool] = {}
        #: What each run's graph stopped at when this process last advanced it (``calls`` or
        #: ``approval``); absent when unknown (read from the checkpoint then).
        self._waiting: dict[str, str | None] = {}
        self._executor = (
            DaemonPool(workers, name="planner", what="planner step") if mode == "thread" else None
        )
        install_listeners(ctx)
        ctx.settled_listeners.append(self._on_call_finished)

    # ------------------------------------------------------------------ public

    def start(
        self,
        spec: MissionSpec | Mapping[str, Any] | str | None = None,
        request: str | None = None,
        require_approval: bool | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        checked: bool = False,
    ) -> str:
        """Validate, create the mission and run, and queue the planner; return the run id at
        once. In ``thread`` mode a worker advances it; in ``inline`` mode ``drain()`` does.
        ``checked``: ``spec`` is a ``MissionSpec`` that ``ops.check_spec`` already returned.

        ``spec`` is a spec (mapping, or YAML/JSON text); ``request`` natural language, read by
        the LLM when one is configured, else deterministically (targets with phone numbers).

        Raises:
            ValidationError: neither or both of spec and request, or an invalid spec
                (the field is named, e.g. ``targets[1].phone``), or a request that needs a
                spec file or an LLM.
        """
        if (spec is None) == (request is None or not str(request).strip()):
            raise ValidationError(
                "spec", "or request is required (give exactly one of them)", show_value=False
            )
        if require_approval is not None and not isinstance(require_approval, bool):
            raise ValidationError("require_approval", "must be true or false", require_approval)
        resolved: MissionSpec | None = None
        try:
            if spec is not None:
                if isinstance(spec, str):
                    text = spec
                    try:
                        spec = yaml.safe_load(text)
                    except yaml.YAMLError:
                        raise SpecError("spec", "must be valid YAML or JSON", text) from None
                    if isinstance(spec, str):
                        raise SpecError(
                            "spec",
                            "must be the mission spec itself (an object, or its YAML/JSON "
                            "text); a file name is not read, pass the file's contents",
                            text,
                        )
                if checked and isinstance(spec, MissionSpec):
                    resolved = spec
                else:
                    resolved = self.ops.check_spec(parse_spec(spec))
            elif self.llm is None:
                # Loaded here: a run from a spec file does without the request reader.
                from planner.request import spec_from_request_text

                resolved = self.ops.check_spec(spec_from_request_text(request or ""))
        except SpecError as exc:
            raise _as_validation(exc) from None
        approval = (
            require_approval
            if require_approval is not None
            else bool(resolved.require_approval)
            if resolved is not None
            else False
        )
        if resolved is not None:
            name, instructions = resolved.name, resolved.objective
        else:
            text = " ".join((request or "").split())
            name, instructions = (text[:77] + "…" if len(text) > 78 else text), text
        mission_id = self.ops.create_mission(
            name=name,
            instructions=instructions,
            description=None,
            metadata={"strategy": resolved.strategy if resolved else None},
        )
        # The run's input holds the spec without its targets (its size does not grow with
        # the mission); the targets are stored beside it, one record each.
        run_input = {
            "spec": spec_header(resolved) if resolved is not None else None,
            "targets": len(resolved.targets) if resolved is not None else None,
            "request": request,
            "require_approval": require_approval,
        }
        run_id = self.ops.start_run(
            mission_id,
            input=run_input,
            metadata={PLANNER_KEY: {"graph": "mission", "version": 2, **(metadata or {})}},
            call_budget=resolved.call_budget if resolved is not None else None,
            require_approval=approval,
        )
        if resolved is not None:
            self.ops.save_targets(run_id, list(resolved.targets))
        self._known[run_id] = True
        log.info("run %s of mission %s started", run_id, mission_id)
        self._submit(run_id, None)
        return run_id

    def approve(self, run_id: str, approved: bool, note: str | None = None) -> RunOut:
        """Answer a run that waits for approval: approval lets it schedule its calls;
        rejection cancels it (nothing was dispatched).

        Raises:
            NotFound: unknown run. ConflictError: the run is not waiting for approval.
            ValidationError: a bad note.
        """
        missions.get_run_record(self.ctx, run_id)  # NotFound first
        if not self._is_planner_run(run_id):
            # A run driven by an outside agent: only its dispatcher gate is held.
            return missions.approve_calls(self.ctx, run_id, approved, note)
        # A run started a moment ago may still be planning on its way to the approval step.
        if self.mode == "inline":
            self.drain()
        else:
            self._wait_for(run_id, timeout=30.0)
        if self.waiting_for(run_id) != "approval":
            raise ConflictError(
                f"run {run_id} is not waiting for approval (status {self.ops.run_status(run_id)})"
            )
        out = missions.approve_calls(self.ctx, run_id, approved, note)
        self._submit(run_id, {"approved": bool(approved), "note": note})
        return out

    def cancel(self, run_id: str, reason: str | None = None) -> RunOut:
        """Cancel a run (its pending calls too) and let its planner wind down: a run waiting
        for calls that will now never be placed stops waiting and marks its steps skipped.

        Raises:
            NotFound, IllegalTransition (the run already finished).
        """
        out = missions.cancel_run(self.ctx, run_id, reason)
        if self._is_planner_run(run_id) and self.waiting_for(run_id) == "calls":
            self._submit(run_id, None)
        return out

    def resume(self, run_id: str) -> None:
        """Continue a run from its last checkpoint (after a crash or restart). A run that
        waits for approval keeps waiting; a finished run is left alone.

        Raises:
            NotFound: unknown run. ValidationError: the run was not started by the planner.
        """
        missions.get_run_record(self.ctx, run_id)
        if not self._is_planner_run(run_id):
            raise ValidationError(
                "run_id", "must name a run started by `mission run` or run_mission", run_id
            )
        self._submit(run_id, None)

    def recover(self) -> list[str]:
        """Resume every unfinished planner run; return their ids. Call on server start,
        before the dispatcher starts: calls that ended while the service was down get their
        insights extracted here (their call listeners never ran)."""
        with session_scope(self.ctx.engine) as session:
            rows = session.exec(
                select(m.Run).where(col(m.Run.status).in_(("running", "paused", "pending")))
            ).all()
            ids = [r.run_id for r in rows if (r.meta or {}).get(PLANNER_KEY)]
        for run_id in ids:
            self._known[run_id] = True
            self.ops.settle_insights(run_id)
            self.resume(run_id)
        return ids

    def waiting_for(self, run_id: str) -> str | None:
        """``approval`` or ``calls`` when the run's graph waits at an interrupt, else None."""
        return _interrupt_kind(self.graph.get_state(self._config(run_id)).interrupts)

    def waiting_here(self, run_id: str) -> str | None:
        """What the run's graph stopped at when this process last advanced it (``calls``,
        ``approval``), None when unknown; unlike ``waiting_for`` it reads no checkpoint."""
        return self._waiting.get(run_id)

    def drain(self) -> int:
        """Advance every queued run (``inline`` mode); return how many advanced."""
        count = 0
        while True:
            with self._guard:
                if not self._queued:
                    return count
                run_id = next(iter(self._queued))
                queue = self._queued.pop(run_id)
            for resume in queue:
                self._advance_safely(run_id, resume)
                count += 1

    def _wait_for(self, run_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._guard:
                if run_id not in self._active and run_id not in self._queued:
                    return
            time.sleep(0.005)

    def idle(self) -> bool:
        with self._guard:
            return not self._queued and not self._active

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait (polling) until no run is queued or advancing; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()

    def close(self) -> None:
        """Stop listening, give the steps in progress a short grace, release the checkpointer.

        Bounded: queued wake-ups are dropped and a step still running after the grace is
        abandoned, as in a crash. Nothing is lost: every step is checkpointed, and the next
        process resumes each unfinished run (``recover``), an approval it recorded included.
        """
        if self.closed:
            return
        self.closed = True
        if self._on_call_finished in self.ctx.settled_listeners:
            self.ctx.settled_listeners.remove(self._on_call_finished)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.checkpointer.close()
        close_llm = getattr(self.llm, "close", None)
        if callable(close_llm):
            close_llm()

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _config(run_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": run_id}}

    def _is_planner_run(self, run_id: str) -> bool:
        known = self._known.get(run_id)
        if known is None:
            try:
                known = bool(self.ops.run_metadata(run_id).get(PLANNER_KEY))
            except Exception:  # an unknown run is simply not ours
                known = False
            self._known[run_id] = known
        return known

    def _on_call_finished(self, event: CallFinished) -> None:
        # Runs in the dispatcher's or an extraction thread: only queue, never plan here.
        if event.run_id is None or not self._is_planner_run(event.run_id):
            return
        crash_point("call_finished")
        self._submit(event.run_id, None)

    def _submit(self, run_id: str, resume: dict[str, Any] | None) -> None:
        with self._guard:
            queue = self._queued.setdefault(run_id, deque())
            if resume is not None or not queue or queue[-1] is not None:
                queue.append(resume)  # consecutive wake-ups collapse into one
            if self._executor is None or run_id in self._active:
                return
            self._active.add(run_id)
        self._executor.submit(self._work, run_id)

    def _work(self, run_id: str) -> None:
        while True:
            with self._guard:
                queue = self._queued.get(run_id)
                if not queue or (self._executor is not None and self._executor.stopping):
                    self._queued.pop(run_id, None)
                    self._active.discard(run_id)
                    return
                resume = queue.popleft()
            self._advance_safely(run_id, resume)

    def _advance_safely(self, run_id: str, resume: dict[str, Any] | None) -> None:
        try:
            self._advance(run_id, resume)
        except Exception as exc:
            # A planner bug or an outage must not kill the worker thread or the dispatcher;
            # the run records what went wrong and fails.
            log.exception("planner failed on run %s", run_id)
            try:
                if self.ops.run_status(run_id) not in TERMINAL_RUN:
                    missions.update_run(
                        self.ctx,
                        run_id,
                        status="failed",
                        error=f"planner error: {type(exc).__name__}: {exc}",
                    )
            except Exception:
                log.exception("could not record the planner failure of run %s", run_id)

    def _advance(self, run_id: str, resume: dict[str, Any] | None) -> None:
        config = self._config(run_id)
        payload: Any
        durability: Literal["sync", "exit"] = "exit"
        if resume is None and self._waiting.get(run_id) == "calls":
            # This process saw the graph stop at its wait for calls: a wake-up, without
            # reading the checkpoint first.
            payload = Command(resume={"kind": "wake"})
        elif resume is not None:
            payload = Command(resume=resume)
        else:
            snapshot = self.graph.get_state(config)
            if snapshot.interrupts:
                if _interrupt_kind(snapshot.interrupts) == "approval":
                    if missions.get_run_record(self.ctx, run_id).approved_at is None:
                        return  # only a person's decision resumes it
                    # Approved, but the process stopped before the graph heard of it.
                    payload = Command(resume={"approved": True, "note": None})
                else:
                    payload = Command(resume={"kind": "wake"})
            elif snapshot.next:
                payload = None  # interrupted mid-step (a crash): continue from the checkpoint
            elif snapshot.values:
                return  # finished
            else:
                payload = self._initial_input(run_id)
                if payload.get("spec") is None:
                    # A request read by the LLM: its answer is checkpointed at once, so a
                    # resumed run goes on with the same spec.
                    durability = "sync"
        self._waiting.pop(run_id, None)
        # ``exit``: one checkpoint when the graph stops (at an interrupt or the end), not one
        # per step; a process stopped in between resumes from the previous stop, and every
        # node is idempotent (``planner.graph``).
        out = self.graph.invoke(
            payload,
            config,
            context=PlannerContext(ops=self.ops, llm=self.llm),
            durability=durability,
        )
        interrupts = out.get("__interrupt__") if isinstance(out, dict) else None
        if interrupts:
            self._waiting[run_id] = _interrupt_kind(interrupts)

    def _initial_input(self, run_id: str) -> dict[str, Any]:
        run = missions.get_run_record(self.ctx, run_id)
        data = run.input or {}
        return {
            "run_id": run_id,
            "mission_id": run.mission_id,
            "spec": data.get("spec"),
            "request": data.get("request"),
            "require_approval": data.get("require_approval"),
        }


def _interrupt_kind(interrupts: Iterable[Any]) -> str | None:
    """``approval`` or ``calls`` for the interrupts a graph stopped at, None for none."""
    kinds = {i.value.get("kind") for i in interrupts if isinstance(i.value, dict)}
    if "approval" in kinds:
        return "approval"
    return "calls" if kinds else None


# ---------------------------------------------------------------------- service functions


# ---------------------------------------------------------------------- virtual-time driver


#: ``run_statuses``' read, built once: the virtual-time driver asks after every sweep.
_STATUSES = sa_select(RUNS.c.run_id, RUNS.c.status).where(
    RUNS.c.run_id.in_(bindparam("ids", expanding=True))
)


def run_statuses(ctx: Context, run_ids: Iterable[str]) -> dict[str, str]:
    ids = list(run_ids)
    statuses: dict[str, str] = {}
    with reader(ctx.engine).connect() as conn:
        for start in range(0, len(ids), 500):
            for run_id, status in conn.execute(_STATUSES, {"ids": ids[start : start + 500]}):
                statuses[run_id] = status
    return statuses


def latest_activity(ctx: Context, run_id: str) -> datetime | None:
    """The time of the run's last recorded event (where a resumed virtual clock starts),
    however many events the run has."""
    with session_scope(ctx.engine) as session:
        repo.load_run(session, run_id)
        return session.exec(
            select(func.max(m.Event.created_at)).where(m.Event.run_id == run_id)
        ).one()


def drive_virtual(
    ctx: Context,
    runner: MissionRunner,
    run_ids: Iterable[str],
    *,
    on_sweep: Callable[[], None] | None = None,
) -> dict[str, str]:
    """Run the dispatcher under the context's ``VirtualClock`` until every given run has
    finished or nothing is left to do (a run waiting for approval); return their statuses.

    Raises:
        ValidationError: the context's clock is not a ``VirtualClock``.
    """
    from mission_server.clock import VirtualClock
    from mission_server.services.scheduling import list_scheduled_events

    clock = ctx.clock
    if not isinstance(clock, VirtualClock):
        raise ValidationError(
            "clock",
            "must be a VirtualClock to drive missions in virtual time",
            type(clock).__name__,
        )
    ids = list(run_ids)
    dispatcher = Dispatcher(ctx)
    crash_test = os.environ.get(CRASH_ENV, "").startswith("dispatched")

    def after_sweep() -> None:
        runner.drain()
        if crash_test and any(
            list_scheduled_events(ctx, run_id=r, status="in_progress") for r in ids
        ):
            crash_point("dispatched")
        if on_sweep is not None:
            on_sweep()

    def finished() -> bool:
        if any(runner.waiting_here(r) == "calls" for r in ids):
            # A run whose graph this process saw stop at its wait for calls has not
            # finished (a cancellation through the runner wakes it first): no need to ask the
            # records after every sweep. At worst the loop runs until nothing is due.
            return False
        return all(s in TERMINAL_RUN for s in run_statuses(ctx, ids).values())

    runner.drain()
    if on_sweep is not None:
        on_sweep()
    if not finished():
        run_until_idle(dispatcher, clock, after_sweep=after_sweep, stop=finished)
    return run_statuses(ctx, ids)


def cli_settings_of(engine: Any, run_id: str) -> dict[str, Any]:
    """What a CLI run was started with (simulated world, seed), for ``--resume``/``approve``.

    Raises:
        NotFound: unknown run.
    """
    with session_scope(engine) as session:
        run = repo.load_run(session, run_id)
        return dict(((run.meta or {}).get(PLANNER_KEY) or {}).get("cli") or {})
