"""The mission planner: a LangGraph ``StateGraph`` over the ``MissionOps`` protocol.

    intake → plan → approval? → setup (assistant) → assign (number)
           → dispatch ⇄ wait ⇄ record … → compile → END

* ``intake`` resolves the spec (a request goes through the optional LLM); ``plan`` creates the
  plan steps. ``approval`` is an ``interrupt()`` when the run requires approval: nothing is
  scheduled before a person resumes it (rejection ends the run, already cancelled).
* ``dispatch`` schedules the next call (``sequential_leverage``) or every call (``parallel``)
  with the run's current variables; ``wait`` is an ``interrupt()`` that the service resumes
  when a call is terminal and its insights are extracted; ``record`` turns each finished call
  into the target's outcome and, in sequential mode, carries the best value so far into the
  run variables for the next call.
* ``compile`` writes the result summary and payload and finishes the run.

Every node may run again from its start (after ``interrupt()`` and after a crash), so each is
idempotent: creations go through idempotent ``MissionOps`` methods, calls are scheduled with
idempotency keys derived from the run and the target, events with idempotency keys, and
``wait`` re-reads the calls' state instead of trusting the resume value.

Size: about 540 lines, one module on purpose: the nodes are short and each reads the state the
node before it wrote, so the graph reads top to bottom in the order it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from planner.errors import LLMError, OperationFailed, SpecError
from planner.llm import LLM, spec_from_request
from planner.ops import MissionOps, PlanStepSpec
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
from planner.spec import MissionSpec, parse_spec

__all__ = ["MissionState", "PlannerContext", "build_graph", "plan_steps"]

TERMINAL_RUN = frozenset({"succeeded", "failed", "cancelled"})


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class MissionState(TypedDict):
    """The checkpointed state of one run (thread id = run id).

    Required keys are the ones the nodes index directly: ``run_id``, ``mission_id`` and
    ``spec`` come with the graph's input; ``steps`` (written by ``plan``), ``assistant_id``
    (``setup``) and ``calls`` (``dispatch``) are written before any node that indexes them
    runs. The code that may run earlier (``_fail``, ``_stopped``, ``compile``) reads them
    with ``.get``, as it does every ``NotRequired`` key.
    """

    run_id: str
    mission_id: str
    spec: dict[str, Any] | None
    request: NotRequired[str | None]
    require_approval: NotRequired[bool | None]
    steps: dict[str, Any]
    assistant_id: str
    insight_group_id: NotRequired[str | None]
    from_number: NotRequired[str]
    cursor: NotRequired[int]
    calls: Annotated[dict[str, dict[str, Any]], _merge]
    outcomes: NotRequired[Annotated[dict[str, dict[str, Any]], _merge]]
    best: NotRequired[dict[str, Any] | None]
    ready: NotRequired[list[str]]
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


def plan_steps(spec: MissionSpec, require_approval: bool) -> tuple[list[PlanStepSpec], dict]:
    """The plan of a spec and the step ids of each role (approval, assistant, number, one
    per target, compile)."""
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
    for index, target in enumerate(spec.targets):
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


def _spec(state: MissionState) -> MissionSpec:
    return parse_spec(state["spec"])


def _all_step_ids(steps: dict[str, Any]) -> list[str]:
    ids = [steps[k] for k in ("approval", "assistant", "number") if k in steps]
    return [*ids, *steps.get("targets", []), steps["compile"]]


def _fail(
    ops: MissionOps, state: MissionState, reason: str, *, step: str | None = None
) -> dict[str, Any]:
    """End the run as failed: the failing step is marked, the rest skipped."""
    run_id = state["run_id"]
    steps = state.get("steps") or {}
    if step is not None:
        ops.update_step(run_id, step, "failed", {"error": reason})
    for step_id in _all_step_ids(steps) if steps else []:
        if step_id != step:
            ops.update_step(run_id, step_id, "skipped")
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
        for step_id in _all_step_ids(state.get("steps") or {}):
            ops.update_step(state["run_id"], step_id, "skipped")
        return {"finished": True, "final_status": status}
    return None


# --------------------------------------------------------------------------- nodes


def intake(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Resolve the spec: given, or read from the request by the LLM."""
    ops = _ops(runtime)
    if state.get("spec") is not None:
        spec = ops.check_spec(parse_spec(state["spec"]))
    else:
        llm = runtime.context.llm
        request = state.get("request") or ""
        if llm is None:
            return _fail(ops, state, "a request in natural language needs an LLM or a spec")
        try:
            spec = spec_from_request(llm, request, ops.check_spec)
        except (LLMError, SpecError) as exc:
            return _fail(ops, state, f"could not turn the request into a mission spec: {exc}")
    require = state.get("require_approval")
    return {
        "spec": spec.model_dump(mode="json"),
        "require_approval": spec.require_approval if require is None else bool(require),
    }


def plan(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Create the plan steps and log the mission's shape."""
    ops = _ops(runtime)
    spec = _spec(state)
    run_id = state["run_id"]
    steps, ids = plan_steps(spec, bool(state.get("require_approval")))
    ops.log_event(
        run_id,
        "custom",
        f"Mission “{spec.name}”: {len(spec.targets)} target(s), strategy {spec.strategy}",
        payload={"spec": state["spec"]},
        idempotency_key=f"{run_id}:intake",
    )
    ops.create_plan(run_id, steps)
    return {"steps": ids, "cursor": 0, "best": None, "ready": []}


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
    for step_id in _all_step_ids(state["steps"]):
        if step_id != step:
            ops.update_step(run_id, step_id, "skipped")
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


def dispatch(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Schedule the next call (sequential) or all calls (parallel)."""
    ops = _ops(runtime)
    stopped = _stopped(ops, state)
    if stopped:
        return stopped
    spec = _spec(state)
    run_id = state["run_id"]
    cursor = state.get("cursor", 0)
    sequential = spec.strategy == "sequential_leverage"
    indices = [cursor] if sequential else list(range(cursor, len(spec.targets)))
    best = state.get("best") if sequential else None
    calls: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    for index in indices:
        target = spec.targets[index]
        step = state["steps"]["targets"][index]
        offered = {"name": best["name"], "value": best["value"]} if best else None
        ops.update_step(run_id, step, "in_progress", {"leverage": offered} if offered else None)
        variables: dict[str, Any] = {"target_name": target.name, **target.variables}
        if target.notes:
            variables["target_notes"] = target.notes
        role = "call"
        if sequential:
            role = "baseline quote" if offered is None else "negotiation"
        try:
            event_id = ops.schedule_call(
                run_id,
                assistant_id=state["assistant_id"],
                step_id=step,
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
                idempotency_key=f"{run_id}:call:{index}",
            )
        except OperationFailed as exc:
            outcome = not_called_outcome(spec, index, str(exc), code=exc.code)
            outcomes[str(index)] = outcome
            ops.update_step(run_id, step, "failed", {"error": str(exc)})
            ops.log_event(
                run_id,
                "error",
                describe_outcome(outcome, spec),
                step_id=step,
                idempotency_key=f"{run_id}:outcome:{index}",
            )
            continue
        calls[str(index)] = {"scheduled_event_id": event_id, "offered": offered}
    return {"calls": calls, "outcomes": outcomes, "cursor": indices[-1] + 1}


def wait(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Wait for outstanding calls: an ``interrupt()`` resumed when one is terminal and its
    insights are extracted. The resume value is not trusted; the calls are re-read."""
    ops = _ops(runtime)
    outcomes = state.get("outcomes") or {}
    pending = {k: c for k, c in (state.get("calls") or {}).items() if k not in outcomes}
    if not pending:
        return {"ready": []}
    ready = sorted(
        (k for k, c in pending.items() if ops.get_call_result(c["scheduled_event_id"]).ready),
        key=int,
    )
    if ready:
        return {"ready": ready}
    if ops.run_status(state["run_id"]) in TERMINAL_RUN:
        # Cancelled with calls still queued: they will never finish, so stop waiting.
        return _stopped(ops, state) or {}
    interrupt(
        {
            "kind": "calls",
            "run_id": state["run_id"],
            "waiting_for": sorted(c["scheduled_event_id"] for c in pending.values()),
        }
    )
    return {"ready": []}


def record(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Record each finished call's outcome; carry the best value so far into the run."""
    ops = _ops(runtime)
    spec = _spec(state)
    run_id = state["run_id"]
    leverage = spec.leverage
    best = state.get("best")
    outcomes: dict[str, dict[str, Any]] = {}
    for key in state.get("ready") or []:
        index = int(key)
        call = state["calls"][key]
        step = state["steps"]["targets"][index]
        result = ops.get_call_result(call["scheduled_event_id"])
        outcome = build_outcome(spec, index, result, offered=call["offered"])
        outcomes[key] = outcome
        usable = is_usable(outcome, spec)
        ops.log_event(
            run_id,
            "tool_result" if usable else "error",
            describe_outcome(outcome, spec),
            step_id=step,
            payload={"outcome": outcome},
            idempotency_key=f"{run_id}:outcome:{index}",
        )
        ops.update_step(
            run_id,
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
        if (
            leverage is not None
            and usable
            and is_better(outcome["final_value"], best["value"] if best else None, leverage)
        ):
            best = {"index": index, "name": outcome["name"], "value": outcome["final_value"]}
    if (
        leverage is not None
        and spec.strategy == "sequential_leverage"
        and best is not None
        and best != state.get("best")
    ):
        # The next call renders the assistant's {{#best_quote}} section with this.
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
    return {"outcomes": outcomes, "best": best, "ready": []}


def compile_node(state: MissionState, runtime: Runtime[PlannerContext]) -> dict[str, Any]:
    """Compare, recommend, write the result and finish the run."""
    ops = _ops(runtime)
    spec = _spec(state)
    run_id = state["run_id"]
    step = state["steps"]["compile"]
    ops.update_step(run_id, step, "in_progress")
    outcomes = list((state.get("outcomes") or {}).values())
    result = compile_result(spec, outcomes, run_id=run_id, run_status=ops.run_status(run_id))
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


def _next(state: MissionState) -> str:
    if state.get("finished"):
        return END
    if state.get("ready"):
        return "record"
    outcomes = state.get("outcomes") or {}
    if any(k not in outcomes for k in state.get("calls") or {}):
        return "wait"
    spec = state.get("spec") or {}
    if state.get("cursor", 0) < len(spec.get("targets", [])):
        return "dispatch"
    return "compile"


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
    targets = ["record", "wait", "dispatch", "compile", END]
    for node in ("dispatch", "wait", "record"):
        graph.add_conditional_edges(node, _next, targets)
    graph.add_edge("compile", END)
    return graph
