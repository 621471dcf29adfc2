"""The planner graph against an in-memory MissionOps: it depends on the protocol alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from planner.errors import OperationFailed
from planner.graph import PlannerContext, build_graph
from planner.ops import (
    AttemptInfo,
    CallRequest,
    CallResult,
    MissionOps,
    PlanStepSpec,
    Progress,
    RunTarget,
)
from planner.spec import MissionSpec, load_spec

CATERING = load_spec(Path(__file__).resolve().parents[2] / "examples" / "catering.yaml")
PRICES = {"+13125550101": (65, 65), "+13125550102": (68, 62), "+13125550103": (70, 65)}


class FakeOps:
    """Records every operation; calls finish when the test says so."""

    def __init__(self) -> None:
        self.status = "running"
        self.steps: dict[str, str] = {}
        self.events: dict[str, str] = {}
        self.variables: dict[str, Any] = {}
        self.scheduled: dict[str, dict[str, Any]] = {}  # idempotency key -> call
        self.schedule_requests = 0
        self.results: dict[str, CallResult] = {}
        self.completed: list[dict[str, Any]] = []
        self.fail_number: str | None = None
        self.crash_on_complete = 0
        self.targets: list[RunTarget] = []
        self.outcomes: dict[int, dict[str, Any]] = {}

    def check_spec(self, spec: MissionSpec) -> MissionSpec:
        targets = [t.model_copy(update={"phone": t.phone.replace(" ", "")}) for t in spec.targets]
        return spec.model_copy(update={"targets": targets})

    def create_mission(self, **kw: Any) -> str:
        return "m1"

    def start_run(self, mission_id: str, **kw: Any) -> str:
        return "r1"

    def run_status(self, run_id: str) -> str:
        return self.status

    def create_plan(self, run_id: str, steps: list[PlanStepSpec]) -> None:
        for step in steps:
            self.steps.setdefault(step.step_id, "pending")

    def update_step(self, run_id: str, step_id: str, status: str, metadata=None) -> None:
        if self.steps[step_id] not in ("completed", "skipped", "failed"):
            self.steps[step_id] = status

    def log_event(
        self, run_id, type, summary, *, step_id=None, payload=None, idempotency_key=None
    ) -> None:
        json.dumps(payload)  # events must be storable as JSON
        self.events.setdefault(idempotency_key or f"anon{len(self.events)}", summary)

    def create_insight_group(self, run_id, *, name, instructions, parameters) -> str:
        return "g1"

    def create_assistant(self, run_id, **kw: Any) -> str:
        return "a1"

    def assign_number(self, run_id: str, assistant_id: str) -> str:
        if self.fail_number:
            raise OperationFailed(self.fail_number)
        return "+13125550100"

    def set_run_variables(self, run_id: str, variables: dict[str, Any]) -> None:
        self.variables.update(variables)

    def schedule_call(self, run_id: str, *, idempotency_key: str, to: str, **kw: Any) -> str:
        self.schedule_requests += 1
        call = self.scheduled.setdefault(
            idempotency_key,
            {"id": f"e{len(self.scheduled)}", "to": to, "variables": dict(self.variables)},
        )
        self.results.setdefault(
            call["id"],
            CallResult(call["id"], "pending", None, None),
        )
        return call["id"]

    def finish(self, to: str) -> None:
        call = next(c for c in self.scheduled.values() if c["to"] == to)
        initial, final = PRICES[to]
        self.results[call["id"]] = CallResult(
            call["id"],
            "completed",
            "completed",
            f"conv-{call['id']}",
            attempts=(AttemptInfo(1, "completed", 60.0, 0.05),),
            insight_status="completed",
            insights={"initial_price_per_person": initial, "final_price_per_person": final},
            ready=True,
        )

    # The targets, as the records would hold them.

    def save_targets(self, run_id: str, targets: list) -> None:
        if not self.targets:
            self.targets = [RunTarget(i, t) for i, t in enumerate(targets)]

    def count_targets(self, run_id: str) -> int:
        return len(self.targets)

    def load_targets(self, run_id: str, start: int, stop: int) -> list[RunTarget]:
        return self.targets[start:stop]

    def set_target_steps(self, run_id: str, step_ids: list[str]) -> None:
        self.targets = [
            RunTarget(t.position, t.target, step_id=s)
            for t, s in zip(self.targets, step_ids, strict=True)
        ]

    def schedule_calls(self, run_id: str, *, assistant_id: str, calls: list[CallRequest]):
        results: list = []
        for call in calls:
            try:
                event_id = self.schedule_call(
                    run_id, idempotency_key=call.idempotency_key, to=call.to
                )
            except OperationFailed as exc:
                results.append(exc)
                continue
            results.append(event_id)
            old = self.targets[call.position]
            self.targets[call.position] = RunTarget(
                old.position, old.target, old.step_id, event_id, call.memo
            )
        return results

    def ready_calls(self, run_id: str, limit: int) -> Progress:
        out = [
            t
            for t in self.targets
            if t.scheduled_event_id is not None and t.position not in self.outcomes
        ]
        ready = [t for t in out if self.results[t.scheduled_event_id].ready][:limit]
        return Progress(tuple(ready), len(out))

    def record_outcomes(self, run_id: str, outcomes, *, events=None, moves=None) -> None:
        json.dumps(outcomes)
        self.log_events(run_id, events or [])
        self.update_steps(run_id, moves or [])
        self.outcomes.update(outcomes)

    def load_outcomes(self, run_id: str) -> list[dict[str, Any]]:
        return [self.outcomes[k] for k in sorted(self.outcomes)]

    def get_call_results(self, ids: list[str], *, transcripts: bool = True) -> list[CallResult]:
        return [self.get_call_result(i) for i in ids]

    def log_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.log_event(
                run_id,
                event["type"],
                event["summary"],
                step_id=event.get("step_id"),
                payload=event.get("payload"),
                idempotency_key=event.get("idempotency_key"),
            )

    def update_steps(self, run_id: str, moves) -> None:
        for step_id, status, metadata in moves:
            self.update_step(run_id, step_id, status, metadata)

    def skip_open_steps(self, run_id: str, *, keep: str | None = None) -> None:
        for step_id in self.steps:
            if step_id != keep:
                self.update_step(run_id, step_id, "skipped")

    def get_call_result(self, scheduled_event_id: str) -> CallResult:
        return self.results[scheduled_event_id]

    def complete_run(self, run_id, *, status, summary, payload, error) -> None:
        if self.crash_on_complete:
            self.crash_on_complete -= 1
            raise RuntimeError("simulated crash while compiling")
        self.completed.append({"status": status, "payload": payload, "error": error})
        if self.status == "running":
            self.status = status


def start(ops: FakeOps, spec: MissionSpec, **extra: Any):
    assert isinstance(ops, MissionOps)
    graph = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "r1"}}
    context = PlannerContext(ops=ops)

    def invoke(payload: Any) -> dict[str, Any]:
        return graph.invoke(payload, config, context=context)

    invoke(
        {
            "run_id": "r1",
            "mission_id": "m1",
            "spec": spec.model_dump(mode="json"),
            "request": None,
            **extra,
        }
    )
    return graph, config, invoke


def test_parallel_schedules_each_target_once_however_often_it_is_woken():
    spec = CATERING.model_copy(update={"strategy": "parallel"})
    ops = FakeOps()
    graph, config, invoke = start(ops, spec)
    assert len(ops.scheduled) == 3
    assert graph.get_state(config).interrupts[0].value["kind"] == "calls"
    for _ in range(3):  # spurious wake-ups: nothing finished
        invoke(Command(resume={"kind": "wake"}))
    assert len(ops.scheduled) == 3 and not ops.completed
    ops.finish("+13125550102")
    invoke(Command(resume={"kind": "wake"}))
    assert not ops.completed  # two calls still out
    ops.finish("+13125550101")
    ops.finish("+13125550103")
    invoke(Command(resume={"kind": "wake"}))
    assert ops.completed[-1]["status"] == "succeeded"
    assert ops.completed[-1]["payload"]["recommendation"]["name"] == "Chicago Grill Co"
    assert ops.variables == {}  # a survey carries no leverage
    assert set(ops.steps.values()) == {"completed"}


def test_sequential_arms_each_call_with_the_best_value_so_far():
    ops = FakeOps()
    _graph, _config, invoke = start(ops, CATERING)
    assert [c["to"] for c in ops.scheduled.values()] == ["+13125550101"]
    for number in PRICES:
        ops.finish(number)
        invoke(Command(resume={"kind": "wake"}))
    calls = list(ops.scheduled.values())
    assert calls[0]["variables"] == {}
    assert calls[1]["variables"] == {"best_quote": "65", "best_company": "Lakefront Catering"}
    assert calls[2]["variables"] == {"best_quote": "62", "best_company": "Chicago Grill Co"}
    assert ops.completed[-1]["payload"]["recommendation"]["saving"] == 150


def test_a_crash_while_compiling_is_resumed_from_the_checkpoint_without_redoing_calls():
    ops = FakeOps()
    ops.crash_on_complete = 1
    graph, config, invoke = start(ops, CATERING.model_copy(update={"strategy": "parallel"}))
    for number in PRICES:
        ops.finish(number)
    with pytest.raises(RuntimeError):
        invoke(Command(resume={"kind": "wake"}))
    assert graph.get_state(config).next == ("compile",)
    requests = ops.schedule_requests
    invoke(None)
    assert ops.completed[-1]["status"] == "succeeded"
    assert ops.schedule_requests == requests


def test_rejected_approval_places_nothing():
    ops = FakeOps()
    graph, config, invoke = start(ops, CATERING, require_approval=True)
    assert graph.get_state(config).interrupts[0].value["kind"] == "approval"
    assert ops.steps["approve-calls"] == "in_progress"
    invoke(Command(resume={"approved": False, "note": "too expensive"}))
    assert ops.scheduled == {}
    assert ops.steps["approve-calls"] == "failed"
    assert ops.steps["call-lakefront-catering"] == "skipped"
    assert graph.get_state(config).next == ()


def test_approved_run_goes_on_to_call():
    ops = FakeOps()
    _graph, _config, invoke = start(ops, CATERING, require_approval=True)
    assert ops.scheduled == {}
    invoke(Command(resume={"approved": True}))
    assert len(ops.scheduled) == 1


def test_no_free_number_fails_the_run_with_the_reason_and_skips_the_rest():
    ops = FakeOps()
    ops.fail_number = "no free phone number: buy one"
    start(ops, CATERING)
    assert ops.completed[-1]["status"] == "failed"
    assert "no free phone number" in ops.completed[-1]["error"]
    assert ops.steps["assign-number"] == "failed"
    assert ops.steps["compile-results"] == "skipped"
    assert ops.scheduled == {}


def test_a_request_goes_through_the_llm_in_the_runtime_context():
    class FakeLLM:
        def complete_json(self, *, system, user, schema, name):
            assert "Lakefront" in user
            return CATERING.model_dump(mode="json")

    ops = FakeOps()
    graph = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "r1"}}
    graph.invoke(
        {
            "run_id": "r1",
            "mission_id": "m1",
            "spec": None,
            "request": "Negotiate with Lakefront Catering and friends",
        },
        config,
        context=PlannerContext(ops=ops, llm=FakeLLM()),
    )
    assert [c["to"] for c in ops.scheduled.values()] == ["+13125550101"]


def test_a_request_without_an_llm_fails_the_run():
    ops = FakeOps()
    graph = build_graph().compile(checkpointer=InMemorySaver())
    graph.invoke(
        {"run_id": "r1", "mission_id": "m1", "spec": None, "request": "find caterers"},
        {"configurable": {"thread_id": "r1"}},
        context=PlannerContext(ops=ops),
    )
    assert ops.completed[-1]["status"] == "failed"
    assert "needs an LLM or a spec" in ops.completed[-1]["error"]


def checkpoint_sizes(tmp_path: Path, count: int) -> list[int]:
    """Run a parallel survey of ``count`` targets to the end, its calls finishing ten at a
    time, on the SQLite checkpointer; return the size of every checkpoint written."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    targets = [{"name": f"Venue {i:04d}", "phone": f"+1312555{i:04d}"} for i in range(count)]
    spec = CATERING.model_copy(
        update={
            "strategy": "parallel",
            "targets": [CATERING.targets[0].model_validate(t) for t in targets],
        }
    )
    ops = FakeOps()
    conn = sqlite3.connect(str(tmp_path / f"checkpoints-{count}.db"), check_same_thread=False)
    graph = build_graph().compile(checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "r1"}}
    context = PlannerContext(ops=ops)
    first = {"run_id": "r1", "mission_id": "m1", "spec": None, "request": None}
    ops.save_targets("r1", list(spec.targets))  # as the runner stores them at start
    from planner.spec import spec_header

    graph.invoke({**first, "spec": spec_header(spec)}, config, context=context)
    numbers = [c["to"] for c in ops.scheduled.values()]
    assert len(numbers) == count
    for start in range(0, count, 10):
        for number in numbers[start : start + 10]:
            PRICES.setdefault(number, (60, 60))
            ops.finish(number)
        graph.invoke(Command(resume={"kind": "wake"}), config, context=context)
    assert ops.completed[-1]["status"] == "succeeded"
    sizes = [
        r[0] for r in conn.execute("select length(checkpoint) + length(metadata) from checkpoints")
    ]
    conn.close()
    return sizes


def test_a_checkpoint_does_not_grow_with_the_number_of_targets(tmp_path):
    small = checkpoint_sizes(tmp_path, 50)
    large = checkpoint_sizes(tmp_path, 500)
    # Ten times the targets: ten times the wake-ups (50 against 5, a checkpoint each), but no
    # checkpoint larger than the small run's largest (a few bytes for longer counters aside).
    assert len(large) - len(small) >= 45
    # Ten times the targets adds at most a few digits and ids of varying length: under 1 KB,
    # where state that held the targets would grow by tens of kilobytes.
    assert max(large) <= max(small) + 1024
