"""The ``MissionOps`` protocol: everything the planner asks of the mission service.

The planner never imports the service, its storage or telephony; it is handed an object that
implements this protocol (``mission_server.services.ops.ServiceOps`` in production, a fake in
tests).
Every method either succeeds, raises ``OperationFailed`` for a refusal the run should report
(no free number, a do-not-call target), or raises anything else for a bug or an outage.

Idempotency: graph nodes re-run from their start after a crash or an ``interrupt()``, so the
methods that create things are idempotent where the planner relies on it (noted per method).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from planner.errors import OperationFailed
from planner.spec import MissionSpec, Target

StepStatus = Literal["pending", "in_progress", "completed", "skipped", "failed"]
EventType = Literal["custom", "tool_call", "tool_result", "message", "error"]


@dataclass(frozen=True)
class PlanStepSpec:
    """One step of the plan the planner creates."""

    step_id: str
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptInfo:
    attempt_number: int
    call_status: str
    duration_secs: float | None = None
    cost: float | None = None
    voicemail: bool = False


@dataclass(frozen=True)
class CallResult:
    """What the service knows about one scheduled call.

    ``ready`` is true once the call is terminal (completed, failed or cancelled) and, when a
    conversation happened, its insights have been extracted: the planner then records it.
    """

    scheduled_event_id: str
    status: str  # pending in_progress completed failed cancelled
    call_status: str | None
    conversation_id: str | None
    attempts: tuple[AttemptInfo, ...] = ()
    errors: tuple[str, ...] = ()
    deferrals: int = 0
    insight_status: str | None = None  # completed, failed, pending, or None without insights
    insights: dict[str, Any] | None = None
    insight_error: str | None = None
    ready: bool = False
    #: The machine-readable code of each error in ``errors`` (``do_not_call``,
    #: ``call_budget_exhausted``, ``run_finished``, …), where the service recorded one.
    error_codes: tuple[str, ...] = ()
    #: The recorded conversation's name and transcript (``(role, text)`` in order), when a
    #: conversation happened. The simulator names a conversation in which the business
    #: declined "<Business> — declined" and one that asked to be called back
    #: "<Business> — call back requested <when>".
    conversation_name: str | None = None
    transcript: tuple[tuple[str, str], ...] | None = None
    #: Where the attempts' costs come from: ``simulated`` (the simulated world's rates) or
    #: ``provider`` (as the telephony provider reported them); None when unknown.
    cost_basis: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @property
    def voicemail(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].voicemail


@dataclass(frozen=True)
class RunTarget:
    """One target of a run as the records hold it: its place in the spec, its plan step, the
    call placed for it (if any) and what the planner noted about that call (``memo``)."""

    position: int
    target: Target
    step_id: str | None = None
    scheduled_event_id: str | None = None
    memo: dict[str, Any] | None = None


@dataclass(frozen=True)
class CallRequest:
    """One call of a batch (``MissionOps.schedule_calls``), for the target at ``position``."""

    position: int
    step_id: str
    to: str
    timezone: str | None
    dynamic_variables: dict[str, Any]
    conversation_metadata: dict[str, Any]
    max_retries_client_errors: int
    retry_interval_secs: int | None
    calling_window: dict[str, Any] | None
    idempotency_key: str
    memo: dict[str, Any] | None = None


@dataclass(frozen=True)
class Progress:
    """The run's calls as ``MissionOps.ready_calls`` sees them: up to ``limit`` targets whose
    call is ready to record (terminal, insights settled), oldest position first, and how many
    scheduled calls have no outcome recorded yet (``ready`` included)."""

    ready: tuple[RunTarget, ...]
    outstanding: int


@runtime_checkable
class MissionOps(Protocol):
    """The mission service as the planner sees it."""

    def check_spec(self, spec: MissionSpec) -> MissionSpec:
        """Apply the service's own rules to a structurally valid spec (phone numbers,
        timezones, retry policy, calling window, insight parameters); return the spec with
        phone numbers normalised.

        Raises:
            SpecError: naming the field (``targets[1].phone``), the rule and the value.
        """
        ...

    def create_mission(
        self,
        *,
        name: str,
        instructions: str | None,
        description: str | None,
        metadata: dict[str, Any],
    ) -> str:
        """Create a mission; return its id."""
        ...

    def start_run(
        self,
        mission_id: str,
        *,
        input: dict[str, Any],
        metadata: dict[str, Any],
        call_budget: int | None,
        require_approval: bool,
    ) -> str:
        """Start a run (status ``running``); return its id."""
        ...

    def run_status(self, run_id: str) -> str:
        """The run's current status."""
        ...

    def create_plan(self, run_id: str, steps: list[PlanStepSpec]) -> None:
        """Create the run's plan. Idempotent: steps already in the plan are left alone."""
        ...

    def update_step(
        self,
        run_id: str,
        step_id: str,
        status: StepStatus,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Move a plan step (logs the step event). Repeating the current status is a no-op."""
        ...

    def log_event(
        self,
        run_id: str,
        type: EventType,
        summary: str,
        *,
        step_id: str | None = None,
        payload: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Append to the run's event log; a repeated idempotency key writes nothing."""
        ...

    def create_insight_group(
        self,
        run_id: str,
        *,
        name: str,
        instructions: str,
        parameters: list[dict[str, Any]],
    ) -> str | None:
        """Define the structured insight extracted from every call of the run and a group
        holding it; return the group id (None when the service has no insights). Idempotent
        per run."""
        ...

    def create_assistant(
        self,
        run_id: str,
        *,
        name: str,
        instructions: str,
        greeting: str | None,
        dynamic_variables: dict[str, Any],
        insight_group_id: str | None,
        model: str | None = None,
        voice: str | None = None,
    ) -> str:
        """Create the run's assistant and link it to the run; return its id. Idempotent per
        run and name."""
        ...

    def assign_number(self, run_id: str, assistant_id: str) -> str:
        """Give the assistant a caller ID; return the number. Idempotent.

        Raises:
            OperationFailed: no free number (the message says how to get one).
        """
        ...

    def set_run_variables(self, run_id: str, variables: dict[str, Any]) -> None:
        """Merge into the run's variables (rendered into every later dispatch). Setting the
        values already there writes nothing."""
        ...

    def schedule_call(
        self,
        run_id: str,
        *,
        assistant_id: str,
        step_id: str,
        to: str,
        timezone: str | None,
        dynamic_variables: dict[str, Any],
        conversation_metadata: dict[str, Any],
        max_retries_client_errors: int,
        retry_interval_secs: int | None,
        calling_window: dict[str, Any] | None,
        idempotency_key: str,
    ) -> str:
        """Schedule a call as soon as calling hours allow; return the scheduled event id.
        The same idempotency key returns the first event.

        Raises:
            OperationFailed: a guardrail refused the call (do-not-call list, finished run,
                no calling hours); its ``code`` says which where known.
        """
        ...

    def get_call_result(self, scheduled_event_id: str) -> CallResult:
        """The call's status, attempts and extracted insights (extracting them first if the
        call ended without them, e.g. after a crash)."""
        ...

    # -------------------------------------------------------------- targets, in the records
    #
    # The planner's checkpointed state never holds the targets, their calls or outcomes:
    # these methods keep them in the records, so a checkpoint and a step cost the same for
    # ten targets as for ten thousand.

    def save_targets(self, run_id: str, targets: list[Target]) -> None:
        """Store the run's targets (positions 0, 1, …). Idempotent: a run that already has
        its targets keeps them."""
        ...

    def count_targets(self, run_id: str) -> int:
        """How many targets the run has."""
        ...

    def load_targets(self, run_id: str, start: int, stop: int) -> list[RunTarget]:
        """The targets at positions ``start`` ≤ position < ``stop``, in order."""
        ...

    def set_target_steps(self, run_id: str, step_ids: list[str]) -> None:
        """Link each target (by position) to its plan step."""
        ...

    def schedule_calls(
        self, run_id: str, *, assistant_id: str, calls: list[CallRequest]
    ) -> list[str | OperationFailed]:
        """Schedule a batch of calls (as ``schedule_call`` each, idempotent on each key) and
        note each scheduled one on its target with its ``memo``; return, in order, the
        scheduled event id or the refusal of each."""
        ...

    def ready_calls(self, run_id: str, limit: int) -> Progress:
        """The targets whose call is ready to record, and how many are still outstanding."""
        ...

    def record_outcomes(
        self,
        run_id: str,
        outcomes: dict[int, dict[str, Any]],
        *,
        events: list[dict[str, Any]] | None = None,
        moves: list[tuple[str, StepStatus, dict[str, Any] | None]] | None = None,
    ) -> None:
        """Store each target's outcome (by position; it is no longer outstanding), with the
        ``events`` to log (as ``log_events``) and the step ``moves`` (as ``update_steps``)
        that go with them, all written together."""
        ...

    def load_outcomes(self, run_id: str) -> list[dict[str, Any]]:
        """Every recorded outcome of the run, by position."""
        ...

    def get_call_results(
        self, scheduled_event_ids: list[str], *, transcripts: bool = True
    ) -> list[CallResult]:
        """``get_call_result`` of each call, in order, read together; without their
        transcripts (``transcript`` None) when ``transcripts`` is false."""
        ...

    def log_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """``log_event`` for each event (a mapping of its arguments: ``type``, ``summary``,
        ``step_id``, ``payload``, ``idempotency_key``), written together."""
        ...

    def update_steps(
        self, run_id: str, moves: list[tuple[str, StepStatus, dict[str, Any] | None]]
    ) -> None:
        """``update_step`` for each ``(step_id, status, metadata)``, in order."""
        ...

    def skip_open_steps(self, run_id: str, *, keep: str | None = None) -> None:
        """Mark every step of the plan that has not finished skipped (except ``keep``)."""
        ...

    def complete_run(
        self,
        run_id: str,
        *,
        status: Literal["succeeded", "failed"],
        summary: str,
        payload: dict[str, Any],
        error: str | None,
    ) -> None:
        """Record the result and finish the run. A run already finished (e.g. cancelled)
        keeps its status; the result is still recorded."""
        ...
