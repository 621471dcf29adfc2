"""The mission planner: a LangGraph ``StateGraph`` over the ``MissionOps`` protocol.

    intake → plan → approval? → setup (assistant) → assign (number)
           → dispatch ⇄ wait ⇄ record … → compile → END

* ``intake`` resolves the spec (a request goes through the optional LLM); ``plan`` creates the
  plan steps. ``approval`` is an ``interrupt()`` when the run requires approval: nothing is
  scheduled before a person resumes it (rejection ends the run, already cancelled).
* ``dispatch`` schedules the next call (``sequential_leverage``) or the next batch of
  ``BATCH`` calls (``parallel``, back to ``dispatch`` until every target's call is scheduled)
  with the run's current variables, all of a batch in one ``MissionOps.schedule_calls``;
  ``wait`` asks the records which calls are ready (``ready_calls``) and is an ``interrupt()``
  that the service resumes when a call is terminal and its insights are extracted; it turns
  each ready call into the target's outcome, stored in the records (``record_outcomes``), and,
  in sequential mode, carries the best value so far into the run variables for the next call
  (``record`` does the same for ready calls a checkpoint of an earlier version handed it). A
  wake-up is two steps: the ``wait`` that reads and records, and an ``armed`` ``wait`` that
  stops at once.
* ``compile`` writes the result summary and payload and finishes the run.

Every node may run again from its start (after ``interrupt()`` and after a crash), so each is
idempotent: creations go through idempotent ``MissionOps`` methods, calls are scheduled with
idempotency keys derived from the run and the target, events with idempotency keys, and
``wait`` re-reads the calls' state instead of trusting the resume value. The runner
checkpoints when the graph stops (``durability="exit"``), so a crash replays every node since
the last stop: the best value so far is then read back from the recorded outcomes.

Scale: the checkpointed state holds the spec without its targets and a few counters, never
a per-target list; the targets, their calls and outcomes live in the records, and a step
reads at most ``BATCH`` of them (``RECORD_BATCH`` when recording). Only ``plan`` (once) and
``compile`` (once) read every target.

Size: about 540 lines, one module on purpose: the nodes are short and each reads the state the
node before it wrote, so the graph reads top to bottom in the order it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from planner.errors import LLMError, OperationFailed, SpecError
from planner.llm import LLM, spec_from_request
from planner.ops import CallRequest, MissionOps, PlanStepSpec, RunTarget
from planner.result import (
    build_outcome,
    compile_result,
    describe_outcome,
    format_value,
    is_better,
    is_usable,
    not_called_outcome,
    variable_value,
)
from planner.spec import MissionSpec, Target, parse_header, parse_spec, spec_header

__all__ = ["BATCH", "RECORD_BATCH", "MissionState", "PlannerContext", "build_graph", "plan_steps"]

TERMINAL_RUN = frozenset({"succeeded", "failed", "cancelled"})

#: How many calls one ``dispatch`` step schedules: a step's cost is bounded by it, whatever
#: the number of targets.
BATCH = 200
#: How many finished calls one ``record`` step records (``wait`` keeps them in the state for
#: ``record``, so this bounds the checkpoint too).
RECORD_BATCH = 100


class MissionState(TypedDict):
    """The checkpointed state of one run (thread id = run id).

    Its size does not depend on the number of targets: ``spec`` is the spec *header* (the
    spec without its targets, ``planner.spec.spec_header``) once ``intake`` has run; the
    targets, their calls and their outcomes live in the records (``MissionOps.load_targets``,
    ``ready_calls``, ``record_outcomes``), and ``ready`` holds at most ``RECORD_BATCH``
    entries.

    The graph's input may carry a whole spec (``spec`` with its targets, which ``intake``
    stores through ``save_targets``), a header whose targets are already stored, or a
    ``request`` and no spec.
    """

    run_id: str
    mission_id: str
    spec: dict[str, Any] | None
    request: NotRequired[str | None]
    require_approval: NotRequired[bool | None]
    target_count: NotRequired[int]
    steps: dict[str, str]
    assistant_id: str
    insight_group_id: NotRequired[str | None]
    from_number: NotRequired[str]
    cursor: NotRequired[int]
    outstanding: NotRequired[int]
    best: NotRequired[dict[str, Any] | None]
    ready: NotRequired[list[dict[str, Any]]]
    armed: NotRequired[bool]
    finished: NotRequired[bool]
    final_status: NotRequired[str]


@dataclass
class PlannerContext:
    """What the graph is handed at run time (LangGraph ``context_schema``): the service and
    the optional language model."""

    ops: MissionOps
    llm: LLM | None = None


# --------------------------------------------------------------------------- plan


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60].strip("-") or "target"


def plan_steps(
    spec: MissionSpec, require_approval: bool, targets: list[Target] | None = None
) -> tuple[list[PlanStepSpec], dict[str, Any]]:
    """The plan of a spec and the step ids of each role (approval, assistant, number, one
    per target, compile). ``targets`` defaults to the spec's own."""
    targets = spec.targets if targets is None else targets
    steps: list[PlanStepSpec] = []
    ids: dict[str, Any] = {}
    if require_approval:
        ids["approval"] = "approve-calls"
        steps.append(PlanStepSpec("approve-calls", "Wait for approval before placing any call"))
    ids["assistant"] = "create-assistant"
    steps.append(
        PlanStepSpec(
            "create-assistant",
            f"Create the “{spec.assistant.name}” assistant with dynamic variable placeholders",
        )
    )
    ids["number"] = "assign-number"
    steps.append(
        PlanStepSpec("assign-number", "Assign a phone number to the assistant for outbound calls")
    )
    label = spec.leverage.label.lower() if spec.leverage else "result"
    used: set[str] = set(ids.values())
    target_ids: list[str] = []
    for index, target in enumerate(targets):
        base = f"call-{_slug(target.name)}"
        step_id, n = base, 2
        while step_id in used:
            step_id, n = f"{base}-{n}", n + 1
        used.add(step_id)
        target_ids.append(step_id)
        if spec.strategy == "sequential_leverage":
            how = "baseline, no leverage" if index == 0 else f"with the best {label} so far"
            description = f"Call {target.name} ({how})"
        else:
            description = f"Call {target.name}"
        steps.append(
            PlanStepSpec(step_id, description, {"target": target.name, "phone": target.phone})
        )
    ids["targets"] = target_ids
    ids["compile"] = "compile-results"
    if spec.leverage is not None:
        compile_text = f"Compare {label}s and recommend the best option"
    else:
        compile_text = "Compile the results"
    steps.append(PlanStepSpec("compile-results", compile_text))
    return steps, ids


# --------------------------------------------------------------------------- helpers


def _ops(runtime: Runtime[PlannerContext]) -> MissionOps:
    return runtime.context.ops


_HEADERS: dict[str, MissionSpec] = {}


def _spec(state: MissionState) -> MissionSpec:
    """The spec header of the state, parsed (cached per header text: a step does not
    re-validate what the step before it validated)."""
    data = state["spec"] or {}
    key = repr(sorted(data.items()))
    spec = _HEADERS.get(key)
    if spec is None:
        spec = parse_header(data)
        if len(_HEADERS) > 256:
            _HEADERS.clear()
        _HEADERS[key] = spec
    return spec


def _fail(
    ops: MissionOps, state: MissionState, reason: str, *, step: str | None = None
) -> dict[str, Any]:
    """End the run as failed: the failing step is marked, the rest skipped."""
    run_id = state["run_id"]
    if step is not None:
        ops.update_step(run_id, step, "failed", {"error": reason})
    if state.get("steps"):
        ops.skip_open_steps(run_id, keep=step)
    ops.log_event(
        run_id,
        "error",
        f"Mission failed: {reason}",
        step_id=step,
        idempotency_key=f"{run_id}:failed",
    )
    name = (state.get("spec") or {}).get("name", "mission")
    summary = f"**Mission failed: {name}**\n\n{reason}\n"
    ops.complete_run(
        run_id, status="failed", summary=summary, payload={"error": reason}, error=reason
    )
    return {"finished": True, "final_status": "failed"}


def _stopped(ops: MissionOps, state: MissionState) -> dict[str, Any] | None:
    """If someone finished the run from outside (cancelled it), stop quietly."""
    status = ops.run_status(state["run_id"])
    if status in TERMINAL_RUN:
        if state.get("steps"):
            ops.skip_open_steps(state["run_id"])
        return {"finished": True, "final_status": status}
    return None


# --------------------------------------------------------------------------- nodes


def intake(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Resolve the spec: given (with its targets, or as a header whose targets are already
    stored), or read from the request by the LLM. The targets go to the records; the state
    keeps the header."""
    ops = _ops(runtime)
    run_id = state["run_id"]
    given = state.get("spec")
    if given is not None and not given.get("targets"):
        spec = parse_header(given)
        count = ops.count_targets(run_id)
        if count == 0:
            return _fail(ops, state, "the run has no targets stored")
    else:
        if given is not None:
            spec = ops.check_spec(parse_spec(given))
        else:
            llm = runtime.context.llm
            request = state.get("request") or ""
            if llm is None:
                return _fail(ops, state, "a request in natural language needs an LLM or a spec")
            try:
                spec = spec_from_request(llm, request, ops.check_spec)
            except (LLMError, SpecError) as exc:
                return _fail(ops, state, f"could not turn the request into a mission spec: {exc}")
        ops.save_targets(run_id, list(spec.targets))
        count = len(spec.targets)
    require = state.get("require_approval")
    return {
        "spec": spec_header(spec),
        "target_count": count,
        "require_approval": spec.require_approval if require is None else bool(require),
    }


def plan(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Create the plan steps and log the mission's shape (the one step that reads every
    target, once)."""
    ops = _ops(runtime)
    spec = _spec(state)
    run_id = state["run_id"]
    count = state.get("target_count", 0)
    targets = [t.target for t in ops.load_targets(run_id, 0, count)]
    steps, ids = plan_steps(spec, bool(state.get("require_approval")), targets)
    ops.log_event(
        run_id,
        "custom",
        f"Mission “{spec.name}”: {count} target(s), strategy {spec.strategy}",
        payload={"spec": state["spec"], "targets": count},
        idempotency_key=f"{run_id}:intake",
    )
    ops.create_plan(run_id, steps)
    ops.set_target_steps(run_id, ids.pop("targets"))
    return {"steps": ids, "cursor": 0, "best": None, "ready": [], "outstanding": 0}


def approval(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Hold everything until a person approves (``Command(resume={"approved": ...})``)."""
    if not state.get("require_approval"):
        return {}
    ops = _ops(runtime)
    run_id = state["run_id"]
    step = state["steps"]["approval"]
    ops.update_step(run_id, step, "in_progress")
    decision = interrupt({"kind": "approval", "run_id": run_id})
    approved = isinstance(decision, dict) and decision.get("approved") is True
    note = decision.get("note") if isinstance(decision, dict) else None
    if approved:
        ops.update_step(run_id, step, "completed", {"note": note} if note else None)
        return {}
    ops.update_step(run_id, step, "failed", {"note": note or "approval refused"})
    ops.skip_open_steps(run_id, keep=step)
    ops.log_event(
        run_id,
        "custom",
        "Approval refused: no call was placed" + (f" ({note})" if note else ""),
        step_id=step,
        idempotency_key=f"{run_id}:refused",
    )
    return {"finished": True, "final_status": "cancelled"}


def setup(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Define the insight to extract and create the assistant, linked to the run."""
    ops = _ops(runtime)
    stopped = _stopped(ops, state)
    if stopped:
        return stopped
    spec = _spec(state)
    run_id = state["run_id"]
    step = state["steps"]["assistant"]
    ops.update_step(run_id, step, "in_progress")
    try:
        group = ops.create_insight_group(
            run_id,
            name=f"{spec.name} — extraction",
            instructions=f"Extract what this call established. Mission: {spec.objective}",
            parameters=spec.extract_parameters(),
        )
        assistant_id = ops.create_assistant(
            run_id,
            name=spec.assistant.name,
            instructions=spec.assistant.instructions,
            greeting=spec.assistant.greeting,
            dynamic_variables=dict(spec.assistant.variables),
            insight_group_id=group,
            model=spec.assistant.model,
            voice=spec.assistant.voice,
        )
    except OperationFailed as exc:
        return _fail(ops, state, f"could not create the assistant: {exc}", step=step)
    ops.update_step(run_id, step, "completed", {"assistant_id": assistant_id})
    return {"assistant_id": assistant_id, "insight_group_id": group}


def assign(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Give the assistant a caller ID."""
    ops = _ops(runtime)
    run_id = state["run_id"]
    step = state["steps"]["number"]
    ops.update_step(run_id, step, "in_progress")
    try:
        number = ops.assign_number(run_id, state["assistant_id"])
    except OperationFailed as exc:
        return _fail(ops, state, f"could not assign a phone number: {exc}", step=step)
    ops.update_step(run_id, step, "completed", {"phone_number": number})
    return {"from_number": number}


def _call_request(
    spec: MissionSpec, run_id: str, entry: RunTarget, offered: dict[str, Any] | None
) -> CallRequest:
    target = entry.target
    variables: dict[str, Any] = {"target_name": target.name, **target.variables}
    if target.notes:
        variables["target_notes"] = target.notes
    role = "call"
    if spec.strategy == "sequential_leverage":
        role = "baseline quote" if offered is None else "negotiation"
    return CallRequest(
        position=entry.position,
        step_id=entry.step_id or "",
        to=target.phone,
        timezone=target.timezone,
        dynamic_variables=variables,
        conversation_metadata={
            "conversation_name": f"{target.name} — {role}",
            "run_id": run_id,
            "target": target.name,
        },
        max_retries_client_errors=spec.retry.max_retries_client_errors,
        retry_interval_secs=spec.retry.retry_interval_secs,
        calling_window=spec.calling_window.as_dict() if spec.calling_window else None,
        idempotency_key=f"{run_id}:call:{entry.position}",
        memo={"offered": offered},
    )


def dispatch(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Schedule the next call (sequential) or the next batch of calls (parallel; the graph
    comes back here until every target's call is scheduled)."""
    ops = _ops(runtime)
    stopped = _stopped(ops, state)
    if stopped:
        return stopped
    spec = _spec(state)
    run_id = state["run_id"]
    cursor = state.get("cursor", 0)
    sequential = spec.strategy == "sequential_leverage"
    stop = min(cursor + (1 if sequential else BATCH), state.get("target_count", 0))
    entries = ops.load_targets(run_id, cursor, stop)
    best = state.get("best") if sequential else None
    offered = {"name": best["name"], "value": best["value"]} if best else None
    ops.update_steps(
        run_id,
        [
            (e.step_id or "", "in_progress", {"leverage": offered} if offered else None)
            for e in entries
        ],
    )
    requests = [_call_request(spec, run_id, e, offered) for e in entries]
    results = ops.schedule_calls(run_id, assistant_id=state["assistant_id"], calls=requests)
    refused: dict[int, dict[str, Any]] = {}
    failed_moves: list[tuple[str, Any, dict[str, Any] | None]] = []
    events: list[dict[str, Any]] = []
    for entry, result in zip(entries, results, strict=True):
        if not isinstance(result, OperationFailed):
            continue
        outcome = not_called_outcome(
            spec, entry.position, str(result), code=result.code, target=entry.target
        )
        refused[entry.position] = outcome
        failed_moves.append((entry.step_id or "", "failed", {"error": str(result)}))
        events.append(
            {
                "type": "error",
                "summary": describe_outcome(outcome, spec),
                "step_id": entry.step_id,
                "idempotency_key": f"{run_id}:outcome:{entry.position}",
            }
        )
    if refused:
        ops.record_outcomes(run_id, refused, events=events, moves=failed_moves)
    return {"cursor": stop, "outstanding": len(entries) - len(refused), "armed": False}


def wait(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Wait for outstanding calls: an ``interrupt()`` resumed when one is terminal and its
    insights are extracted. The resume value is not trusted; the records are re-read, and
    the calls found ready are recorded in this step.

    ``armed``: the step before (a ``wait`` of the same wake-up) has just read the records and
    recorded every ready call, so this one stops at once; a call that settles after that read
    wakes the run again."""
    ops = _ops(runtime)
    run_id = state["run_id"]
    if state.get("armed") and state.get("outstanding", 0) > 0:
        interrupt({"kind": "calls", "run_id": run_id, "waiting_for": state.get("outstanding")})
    progress = ops.ready_calls(run_id, RECORD_BATCH)
    update: dict[str, Any] = {}
    if (
        progress.outstanding < state.get("outstanding", 0)
        and (state.get("spec") or {}).get("strategy") == "sequential_leverage"
    ):
        # Outcomes recorded that this state has not seen (it was saved before them, and the
        # process stopped): the best value so far comes from the records.
        update["best"] = _recovered_best(ops, _spec(state), state)
    if progress.ready:
        ready = [
            {
                "position": r.position,
                "scheduled_event_id": r.scheduled_event_id,
                "step_id": r.step_id,
                "offered": (r.memo or {}).get("offered"),
                "name": r.target.name,
                "phone": r.target.phone,
            }
            for r in progress.ready
        ]
        # Recorded here, in the step that found them: one step (and one checkpoint) per
        # wake-up fewer than handing them to ``record`` through the state.
        seen = cast(MissionState, {**state, **update, "outstanding": progress.outstanding})
        recorded = _record(ops, _spec(state), seen, ready)
        # A full batch may leave more ready calls: then the next step reads again.
        return {**update, **recorded, "armed": len(ready) < RECORD_BATCH}
    if not progress.outstanding:
        return {**update, "ready": [], "outstanding": 0, "armed": False}
    if ops.run_status(run_id) in TERMINAL_RUN:
        # Cancelled with calls still queued: they will never finish, so stop waiting.
        return _stopped(ops, state) or update
    if not state.get("armed"):
        interrupt({"kind": "calls", "run_id": run_id, "waiting_for": progress.outstanding})
    return {**update, "ready": [], "outstanding": progress.outstanding, "armed": True}


def record(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Record the calls ``wait`` left in the state (``_record``). ``wait`` records what it
    finds itself; this node finishes the work of a checkpoint saved between the two."""
    ops = _ops(runtime)
    return _record(ops, _spec(state), state, state.get("ready") or [])


def _record(
    ops: MissionOps, spec: MissionSpec, state: MissionState, ready: list[dict[str, Any]]
) -> dict[str, Any]:
    """Record each finished call's outcome (all in one ``record_outcomes``); carry the best
    value so far into the run."""
    run_id = state["run_id"]
    leverage = spec.leverage
    best = state.get("best")
    outcomes: dict[int, dict[str, Any]] = {}
    moves: list[tuple[str, Any, dict[str, Any] | None]] = []
    # The transcripts tell whether a call mentioned the leverage it carried; nothing else
    # needs them.
    results = ops.get_call_results(
        [entry["scheduled_event_id"] for entry in ready],
        transcripts=any(entry["offered"] for entry in ready),
    )
    events: list[dict[str, Any]] = []
    for entry, result in zip(ready, results, strict=True):
        index = entry["position"]
        step = entry["step_id"]
        target = Target.model_construct(name=entry["name"], phone=entry["phone"])
        outcome = build_outcome(spec, index, result, offered=entry["offered"], target=target)
        outcomes[index] = outcome
        usable = is_usable(outcome, spec)
        events.append(
            {
                "type": "tool_result" if usable else "error",
                "summary": describe_outcome(outcome, spec),
                "step_id": step,
                "payload": {"outcome": outcome},
                "idempotency_key": f"{run_id}:outcome:{index}",
            }
        )
        moves.append(
            (
                step,
                "completed" if usable else "failed",
                {
                    "status": outcome["status"],
                    "outcome": outcome["outcome"],
                    "reason": outcome["reason"],
                    "attempts": outcome["attempts"],
                    "final_value": outcome["final_value"],
                    "conversation_id": outcome["conversation_id"],
                },
            )
        )
        if (
            leverage is not None
            and usable
            and is_better(outcome["final_value"], best["value"] if best else None, leverage)
        ):
            best = {"index": index, "name": outcome["name"], "value": outcome["final_value"]}
    ops.record_outcomes(run_id, outcomes, events=events, moves=moves)
    if best != state.get("best"):
        _carry_leverage(ops, spec, run_id, best)
    return {
        "best": best,
        "ready": [],
        "outstanding": max(0, state.get("outstanding", 0) - len(outcomes)),
        "armed": False,
    }


def _carry_leverage(
    ops: MissionOps, spec: MissionSpec, run_id: str, best: dict[str, Any] | None
) -> None:
    """Carry a new best value into the run's variables (sequential leverage only): the next
    call renders the assistant's {{#best_quote}} section with it."""
    leverage = spec.leverage
    if leverage is None or spec.strategy != "sequential_leverage" or best is None:
        return
    variables = {leverage.variable: variable_value(best["value"])}
    if leverage.name_variable:
        variables[leverage.name_variable] = best["name"]
    ops.set_run_variables(run_id, variables)
    ops.log_event(
        run_id,
        "custom",
        f"Leverage updated: best {leverage.label.lower()} so far "
        f"{format_value(best['value'], leverage)} from {best['name']}",
        payload={"variables": variables},
        idempotency_key=f"{run_id}:leverage:{best['index']}",
    )


def _recovered_best(
    ops: MissionOps, spec: MissionSpec, state: MissionState
) -> dict[str, Any] | None:
    """The best value so far as the recorded outcomes say (sequential leverage), carried into
    the run again. For a state saved before its last outcomes were recorded: the runner
    checkpoints a wake-up when it ends, so a process stopped in between resumes from the
    state before it, with the outcomes already in the records."""
    leverage = spec.leverage
    best: dict[str, Any] | None = None
    if leverage is None:
        return None
    for outcome in ops.load_outcomes(state["run_id"]):
        if is_usable(outcome, spec) and is_better(
            outcome["final_value"], best["value"] if best else None, leverage
        ):
            best = {
                "index": outcome["index"],
                "name": outcome["name"],
                "value": outcome["final_value"],
            }
    if best != state.get("best"):
        _carry_leverage(ops, spec, state["run_id"], best)
    return best


def compile_node(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Compare, recommend, write the result and finish the run (reads every outcome, once)."""
    ops = _ops(runtime)
    spec = _spec(state)
    run_id = state["run_id"]
    step = state["steps"]["compile"]
    ops.update_step(run_id, step, "in_progress")
    outcomes = ops.load_outcomes(run_id)
    result = compile_result(
        spec,
        outcomes,
        run_id=run_id,
        run_status=ops.run_status(run_id),
        target_count=state.get("target_count"),
    )
    ops.update_step(
        run_id,
        step,
        "completed" if result.status == "succeeded" else "failed",
        {"recommendation": result.payload.get("recommendation")},
    )
    ops.complete_run(
        run_id,
        status=result.status,
        summary=result.summary,
        payload=result.payload,
        error=result.error,
    )
    # The run's end releases its assistant's number (services.missions.update_run).
    return {"finished": True, "final_status": result.status}


# --------------------------------------------------------------------------- routing


def _more_to_dispatch(state: MissionState) -> bool:
    return state.get("cursor", 0) < state.get("target_count", 0)


def _parallel(state: MissionState) -> bool:
    return (state.get("spec") or {}).get("strategy") == "parallel"


def _after_calls(state: MissionState) -> str:
    """After ``dispatch`` or ``record``: a parallel mission schedules its next batch first;
    otherwise ``wait`` reads from the records what is outstanding."""
    if state.get("finished"):
        return END
    if _parallel(state) and _more_to_dispatch(state):
        return "dispatch"
    return "wait"


def _after_wait(state: MissionState) -> str:
    if state.get("finished"):
        return END
    if state.get("ready"):
        return "record"
    if _parallel(state) and _more_to_dispatch(state):
        return "dispatch"
    if state.get("outstanding", 0) > 0:
        return "wait"
    return "dispatch" if _more_to_dispatch(state) else "compile"


def _or_end(next_node: str):  # type: ignore[no-untyped-def]
    def route(state: MissionState) -> str:
        return END if state.get("finished") else next_node

    route.__name__ = f"to_{next_node}"
    return route


def build_graph() -> StateGraph[MissionState, PlannerContext]:
    """The uncompiled graph; compile it with a checkpointer (interrupts need one)."""
    graph = StateGraph(MissionState, context_schema=PlannerContext)
    graph.add_node("intake", intake)
    graph.add_node("plan", plan)
    graph.add_node("approval", approval)
    graph.add_node("setup", setup)
    graph.add_node("assign", assign)
    graph.add_node("dispatch", dispatch)
    graph.add_node("wait", wait)
    graph.add_node("record", record)
    graph.add_node("compile", compile_node)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", _or_end("plan"), ["plan", END])
    graph.add_edge("plan", "approval")
    graph.add_conditional_edges("approval", _or_end("setup"), ["setup", END])
    graph.add_conditional_edges("setup", _or_end("assign"), ["assign", END])
    graph.add_conditional_edges("assign", _or_end("dispatch"), ["dispatch", END])
    graph.add_conditional_edges("dispatch", _after_calls, ["dispatch", "wait", END])
    graph.add_conditional_edges("record", _after_calls, ["dispatch", "wait", END])
    graph.add_conditional_edges("wait", _after_wait, ["record", "wait", "dispatch", "compile", END])
    graph.add_edge("compile", END)
    return graph
