"""``ServiceOps``: the planner's ``MissionOps`` protocol on top of the service functions.

Nothing here re-implements a rule: every check and every write goes through the same service
function the MCP tools call (missions, assistants, scheduling, insights). What this adapter
adds is what the planner needs because its nodes may run again after a crash or an
``interrupt()``: creations that find what an earlier attempt already created, step moves
that never go backwards, variables that are only written when they change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import bindparam, case, func, insert, literal_column, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from mission_server.domain.calling_hours import CallingWindow
from mission_server.domain.targets import normalise_target, timezones_for_target
from mission_server.domain.templating import validate_variable_names
from mission_server.errors import GuardrailError, MissionError, ValidationError
from mission_server.insights.schema import parse_parameters
from mission_server.services import (
    assistants,
    conversations,
    extraction,
    insights,
    missions,
    plans,
    scheduling,
)
from mission_server.services.context import Context
from mission_server.services.do_not_call import is_do_not_call
from mission_server.services.paging import MAX_LIMIT, every
from mission_server.services.schemas import ScheduledEventOut
from planner.errors import OperationFailed, SpecError
from planner.ops import (
    AttemptInfo,
    CallRequest,
    CallResult,
    EventType,
    PlanStepSpec,
    Progress,
    RunTarget,
    StepStatus,
)
from planner.spec import MissionSpec, Target
from state import models as m
from state import repo
from state.db import reader, session_scope
from state.errors import NotFound
from state.transitions import TERMINAL_EVENT, TERMINAL_RUN

__all__ = ["ServiceOps", "spec_error"]

log = logging.getLogger(__name__)

#: Plan step statuses the planner never moves a step out of (a re-run node must not undo).
_FINAL_STEP = frozenset({"completed", "skipped", "failed"})
_INSIGHT_DONE = frozenset({"completed", "failed"})


def spec_error(exc: ValidationError, prefix: str | None = None) -> SpecError:
    """The service's validation error as the planner's, optionally under a field prefix."""
    field = exc.field
    if prefix and not field.startswith(f"{prefix}."):
        field = f"{prefix}.{field}"
    return SpecError(field, exc.rule, exc.value)


class ServiceOps:
    """``MissionOps`` for one service context.

    Args:
        ctx: the service context.
        checkpoint: called with a named point (``planning``, ``compiling``) as the planner
            passes it; the runner uses it for crash tests.
        extract_on_demand: extract a finished call's insights when they are missing or left
            half-done, instead of waiting for the call listener to extract them. Right for the
            single-threaded virtual-clock driver (where missing results can only be left over
            from a crash); in a server the dispatcher's listener is extracting them at that
            very moment, so there the planner waits (and ``settle_insights`` covers restarts).
    """

    def __init__(
        self,
        ctx: Context,
        *,
        checkpoint: Callable[[str], None] | None = None,
        extract_on_demand: bool = False,
    ) -> None:
        self.ctx = ctx
        self._checkpoint = checkpoint or (lambda point: None)
        self.extract_on_demand = extract_on_demand

    # ------------------------------------------------------------------ spec

    def check_spec(self, spec: MissionSpec) -> MissionSpec:
        """Raises: SpecError naming the field (``targets[1].phone``), rule and value."""
        targets = []
        seen: dict[str, int] = {}
        for index, target in enumerate(spec.targets):
            try:
                phone = normalise_target(target.phone, f"targets[{index}].phone")
                # A target whose local time cannot be known (a SIP URI) needs a timezone.
                timezones_for_target(phone, target.timezone, f"targets[{index}].timezone")
                validate_variable_names(target.variables, field=f"targets[{index}].variables")
            except ValidationError as exc:
                raise spec_error(exc) from None
            if phone in seen:
                raise SpecError(
                    f"targets[{index}].phone",
                    f"must be unique; targets[{seen[phone]}] already has it",
                    phone,
                )
            seen[phone] = index
            targets.append(target.model_copy(update={"phone": phone}))
        try:
            validate_variable_names(spec.assistant.variables, field="assistant.variables")
        except ValidationError as exc:
            raise spec_error(exc) from None
        try:
            scheduling.validate_retry_policy(
                "phone_call",
                spec.retry.max_retries_client_errors,
                spec.retry.retry_interval_secs,
            )
        except ValidationError as exc:
            raise spec_error(exc, "retry") from None
        if spec.calling_window is not None:
            try:
                CallingWindow.from_dict(spec.calling_window.as_dict(), "calling_window")
            except ValidationError as exc:
                raise spec_error(exc) from None
        try:
            parse_parameters(spec.extract_parameters(), "extract")
        except ValidationError as exc:
            raise spec_error(exc) from None
        return spec.model_copy(update={"targets": targets})

    # ------------------------------------------------------------------ missions and runs

    def create_mission(
        self,
        *,
        name: str,
        instructions: str | None,
        description: str | None,
        metadata: dict[str, Any],
    ) -> str:
        """Create a managed mission; return its id. Raises: ValidationError."""
        return missions.create_mission(
            self.ctx,
            name,
            instructions=instructions,
            description=description,
            metadata=metadata,
            execution_mode="managed",
        ).mission_id

    def start_run(
        self,
        mission_id: str,
        *,
        input: dict[str, Any],
        metadata: dict[str, Any],
        call_budget: int | None,
        require_approval: bool,
    ) -> str:
        """Start a run (status running); return its id. Raises: NotFound, ValidationError."""
        return missions.start_run(
            self.ctx,
            mission_id,
            input=input,
            metadata=metadata,
            call_budget=call_budget,
            require_approval=require_approval,
        ).run_id

    def run_status(self, run_id: str) -> str:
        """The run's status (one column read). Raises: NotFound."""
        with reader(self.ctx.engine).connect() as conn:
            status = conn.execute(_RUN_STATUS, {"s_run": run_id}).scalar_one_or_none()
        if status is None:
            raise NotFound("run", run_id)
        return str(status)

    def run_metadata(self, run_id: str) -> dict[str, Any]:
        """The run's metadata (one column read). Raises: NotFound."""
        with reader(self.ctx.engine).connect() as conn:
            row = conn.execute(_RUN_METADATA, {"s_run": run_id}).first()
        if row is None:
            raise NotFound("run", run_id)
        return dict(row[0] or {})

    def _merge_planner_metadata(self, run_id: str, values: dict[str, Any]) -> None:
        current = self.run_metadata(run_id).get("planner") or {}
        missions.update_run(self.ctx, run_id, metadata={"planner": {**current, **values}})

    def create_plan(self, run_id: str, steps: list[PlanStepSpec]) -> None:
        """Add the steps not yet in the run's plan; nothing on a run someone finished from
        outside (the graph stops at its next check). Raises: NotFound, ValidationError."""
        if self.run_status(run_id) in TERMINAL_RUN:
            return
        steps_table = m.PlanStep.__table__  # type: ignore[attr-defined]
        with reader(self.ctx.engine).connect() as conn:
            existing = set(
                conn.execute(
                    sa_select(steps_table.c.step_id).where(steps_table.c.run_id == run_id)
                ).scalars()
            )
        fresh = [
            {"step_id": s.step_id, "description": s.description, "metadata": s.metadata}
            for s in steps
            if s.step_id not in existing
        ]
        if fresh:
            plans.create_plan(self.ctx, run_id, fresh)
        self._checkpoint("planning")

    def update_step(
        self,
        run_id: str,
        step_id: str,
        status: StepStatus,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Move a step unless it already finished (a node that runs again after a crash
        repeats its step moves; a finished step stays as it finished). Raises: NotFound,
        IllegalTransition, ValidationError."""
        plans.update_plan_steps(self.ctx, run_id, [(step_id, status, metadata)], keep_finished=True)

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
        """Append an event (idempotent on the key). Raises: NotFound, ValidationError."""
        plans.log_events(
            self.ctx,
            run_id,
            [
                {
                    "type": type,
                    "summary": summary,
                    "step_id": step_id,
                    "payload": payload,
                    "idempotency_key": idempotency_key,
                }
            ],
        )

    def set_run_variables(self, run_id: str, variables: dict[str, Any]) -> None:
        """Merge variables into the run, writing only on change. Raises: NotFound,
        ValidationError. Nothing on a run someone finished from outside (the graph stops at
        its next check)."""
        with reader(self.ctx.engine).connect() as conn:
            row = conn.execute(plans.RUN_VARIABLES, {"r_run": run_id}).first()
        if row is None:
            raise NotFound("run", run_id)
        if row.status in TERMINAL_RUN:
            return
        current = dict(row.variables or {})
        if all(current.get(k) == v for k, v in variables.items()):
            return
        plans.set_run_variables(self.ctx, run_id, variables)

    def complete_run(
        self,
        run_id: str,
        *,
        status: Literal["succeeded", "failed"],
        summary: str,
        payload: dict[str, Any],
        error: str | None,
    ) -> None:
        """Record the result and finish the run (a finished run keeps its status).

        Raises:
            NotFound, ValidationError.
        """
        self._checkpoint("compiling")
        accuracy = extraction.extraction_accuracy(self.ctx.engine, run_id)
        if accuracy is not None:
            # A rehearsal measures its reader: what was read against what was said.
            payload = {**payload, "extraction_accuracy": accuracy}
        current = self.run_status(run_id)
        if current in ("succeeded", "failed", "cancelled"):
            missions.update_run(self.ctx, run_id, result_summary=summary, result_payload=payload)
            return
        if current == "paused":
            # Paused while its last call was in flight: nothing is left to hold back.
            missions.update_run(self.ctx, run_id, status="running")
        missions.update_run(
            self.ctx,
            run_id,
            status=status,
            result_summary=summary,
            result_payload=payload,
            error=error,
        )

    # ------------------------------------------------------------------ assistant and number

    def create_insight_group(
        self,
        run_id: str,
        *,
        name: str,
        instructions: str,
        parameters: list[dict[str, Any]],
    ) -> str | None:
        """Define the run's extraction insight and its group, once per run; return the
        group id. Raises: OperationFailed (invalid parameters), NotFound."""
        known = (self.run_metadata(run_id).get("planner") or {}).get("insight_group_id")
        if known:
            return str(known)
        now = self.ctx.now()
        try:
            insight = insights.create_insight(
                self.ctx.engine,
                name=name,
                instructions=instructions,
                parameters=parameters,
                now=now,
            )
            group = insights.create_insight_group(
                self.ctx.engine, name, [insight.insight_id], now=now
            )
        except MissionError as exc:
            raise OperationFailed(str(exc)) from None
        self._merge_planner_metadata(
            run_id,
            {"insight_group_id": group.insight_group_id, "insight_id": insight.insight_id},
        )
        return group.insight_group_id

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
        """The run's assistant of that name, created (and linked to the run) if missing.
        Raises: OperationFailed (invalid settings, provider refusal)."""
        linked = every(
            lambda cursor: assistants.list_assistants(
                self.ctx, run_id=run_id, limit=MAX_LIMIT, cursor=cursor
            )
        )
        for existing in linked:
            if existing.name == name.strip():
                return existing.assistant_id
        try:
            return assistants.create_assistant(
                self.ctx,
                name,
                instructions,
                greeting=greeting,
                model=model,
                voice=voice,
                dynamic_variables=dynamic_variables,
                insight_group_id=insight_group_id,
                run_id=run_id,
            ).assistant_id
        except MissionError as exc:
            raise OperationFailed(str(exc)) from None

    def assign_number(self, run_id: str, assistant_id: str) -> str:
        """The assistant's caller ID, assigning a free one if it has none.
        Raises: OperationFailed (no free number: the message says how to get one)."""
        try:
            return assistants.assign_phone_number(
                self.ctx, assistant_id, run_id=run_id
            ).phone_number
        except MissionError as exc:
            raise OperationFailed(str(exc)) from None

    # ------------------------------------------------------------------ calls

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
        """Schedule a phone call as soon as calling hours allow (idempotent on the key).
        Raises: OperationFailed (a rule or guardrail refused it: do-not-call, finished run)."""
        try:
            event = scheduling.create_scheduled_event(
                self.ctx,
                assistant_id=assistant_id,
                channel="phone_call",
                to=to,
                dynamic_variables=dynamic_variables,
                conversation_metadata=conversation_metadata,
                max_retries_client_errors=max_retries_client_errors,
                retry_interval_secs=retry_interval_secs,
                run_id=run_id,
                step_id=step_id,
                idempotency_key=idempotency_key,
                timezone=timezone,
                calling_window=calling_window,
            )
        except MissionError as exc:
            raise OperationFailed(str(exc), code=self._refusal_code(exc, run_id, to)) from None
        return event.scheduled_event_id

    def _refusal_code(self, exc: MissionError, run_id: str, to: str) -> str | None:
        """Which rule refused a call, read from the records (the do-not-call list, the run's
        status) or the validation error's field and rule; None when it is none of these."""
        if isinstance(exc, ValidationError):
            if exc.field == "timezone" and exc.rule.startswith("has no calling hours"):
                return "no_calling_hours"
            return None
        if not isinstance(exc, GuardrailError):
            return None
        try:
            target = normalise_target(to)
        except ValidationError:
            target = to
        with session_scope(self.ctx.engine) as session:
            if is_do_not_call(session, target):
                return "do_not_call"
            if repo.load_run(session, run_id).status in ("succeeded", "failed", "cancelled"):
                return "run_finished"
        return None

    def get_call_result(self, scheduled_event_id: str) -> CallResult:
        """The call's state, attempts and structured insight. Raises: NotFound."""
        event = scheduling.get_scheduled_event(self.ctx, scheduled_event_id)
        name, transcript = None, None
        if event.conversation_id is not None:
            try:
                conversation = conversations.get_conversation(self.ctx, event.conversation_id)
            except NotFound:
                conversation = None
            if conversation is not None:
                name = conversation.name
                transcript = tuple((msg.role, msg.text) for msg in conversation.messages)
        insight = None
        if event.status in TERMINAL_EVENT and event.conversation_id is not None:
            insight = self._insights(event.conversation_id)
        return self._call_result(event, name, transcript, insight)

    def get_call_results(
        self, scheduled_event_ids: list[str], *, transcripts: bool = True
    ) -> list[CallResult]:
        """``get_call_result`` of each call, read together (a batch of calls to record costs
        a few queries, not a few per call); ``transcripts`` false leaves out the messages
        (the planner reads them only to tell whether a call mentioned the leverage).
        Raises: NotFound."""
        if not scheduled_event_ids:
            return []
        ids = list(dict.fromkeys(scheduled_event_ids))
        events: dict[str, Any] = {}
        attempts: dict[str, list[AttemptInfo]] = {}
        names: dict[str, str | None] = {}
        messages: dict[str, list[tuple[str, str]]] = {}
        results: dict[str, list[Any]] = {}
        with reader(self.ctx.engine).connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for row in conn.execute(_CALLS_WITH_ATTEMPTS, {"c_ids": chunk}):
                    events.setdefault(row.scheduled_event_id, row)
                    if row.attempt_number is not None:
                        attempts.setdefault(row.scheduled_event_id, []).append(
                            AttemptInfo(
                                attempt_number=row.attempt_number,
                                call_status=row.attempt_status,
                                duration_secs=row.call_duration,
                                cost=row.cost,
                                voicemail=bool(row.voicemail),
                            )
                        )
            missing = [i for i in ids if i not in events]
            if missing:
                raise NotFound("scheduled event", missing[0])
            conversations = [
                e.conversation_id for e in events.values() if e.conversation_id is not None
            ]
            for start in range(0, len(conversations), 500):
                chunk = conversations[start : start + 500]
                if transcripts:
                    for row in conn.execute(_TRANSCRIPTS, {"c_ids": chunk}):
                        names[row.conversation_id] = row.name
                        said = messages.setdefault(row.conversation_id, [])
                        if row.role is not None:
                            said.append((row.role, row.text))
                else:
                    for row in conn.execute(_CONVERSATION_NAMES, {"c_ids": chunk}):
                        names[row.conversation_id] = row.name
                for row in conn.execute(_RESULTS_OF, {"c_ids": chunk}):
                    results.setdefault(row.conversation_id, []).append(row)
        simulated = self.ctx.provider.name == "simulated"
        out: list[CallResult] = []
        for event_id in scheduled_event_ids:
            event = events[event_id]
            conversation = event.conversation_id
            insight = None
            if event.status in TERMINAL_EVENT and conversation is not None:
                settled = results.get(conversation) or []
                if settled and all(r.status in _INSIGHT_DONE for r in settled):
                    insight = _insight_of(settled)
                else:
                    insight = self._insights(conversation)
            known = conversation is not None and conversation in names
            out.append(
                _result_of_row(
                    event,
                    tuple(attempts.get(event_id, ())),
                    names.get(conversation) if known and conversation else None,
                    tuple(messages[conversation])
                    if transcripts and known and conversation
                    else None,
                    insight,
                    simulated,
                )
            )
        return out

    def _call_result(
        self,
        event: ScheduledEventOut,
        name: str | None,
        transcript: tuple[tuple[str, str], ...] | None,
        insight: tuple[str | None, dict[str, Any] | None, str | None] | None,
    ) -> CallResult:
        attempts = tuple(
            AttemptInfo(
                attempt_number=a.attempt_number,
                call_status=a.call_status,
                duration_secs=a.call_duration,
                cost=a.cost,
                voicemail=a.voicemail,
            )
            for a in event.call_attempts
        )
        simulated = self.ctx.provider.name == "simulated"
        return _result_of_row(event, attempts, name, transcript, insight, simulated)

    # ------------------------------------------------------------------ targets

    def save_targets(self, run_id: str, targets: list[Target]) -> None:
        """Store the run's targets in one transaction, unless it already has them.
        Raises: NotFound."""
        with session_scope(self.ctx.engine) as session:
            repo.load_run(session, run_id)
            stored = session.exec(
                select(func.count()).select_from(m.RunTarget).where(m.RunTarget.run_id == run_id)
            ).one()
            if stored:
                return
            rows = [
                {
                    "run_id": run_id,
                    "position": index,
                    "name": target.name,
                    "phone": target.phone,
                    "target": target.model_dump(mode="json", exclude={"name", "phone"}),
                    "state": "new",
                }
                for index, target in enumerate(targets)
            ]
            if rows:
                session.exec(insert(m.RunTarget), params=rows)

    def count_targets(self, run_id: str) -> int:
        with session_scope(self.ctx.engine) as session:
            return int(
                session.exec(
                    select(func.count())
                    .select_from(m.RunTarget)
                    .where(m.RunTarget.run_id == run_id)
                ).one()
            )

    @staticmethod
    def _run_target(row: Any) -> RunTarget:
        target = Target.model_validate({"name": row.name, "phone": row.phone, **(row.target or {})})
        return RunTarget(
            position=row.position,
            target=target,
            step_id=row.step_id,
            scheduled_event_id=row.scheduled_event_id,
            memo=row.memo,
        )

    def load_targets(self, run_id: str, start: int, stop: int) -> list[RunTarget]:
        with reader(self.ctx.engine).connect() as conn:
            rows = conn.execute(
                _TARGETS_BETWEEN, {"t_run": run_id, "t_start": start, "t_stop": stop}
            ).all()
        return [self._run_target(r) for r in rows]

    def set_target_steps(self, run_id: str, step_ids: list[str]) -> None:
        rows = [
            {"run_id": run_id, "position": index, "step_id": step_id}
            for index, step_id in enumerate(step_ids)
        ]
        if not rows:
            return
        with session_scope(self.ctx.engine) as session:
            session.exec(update(m.RunTarget), params=rows)

    def schedule_calls(
        self, run_id: str, *, assistant_id: str, calls: list[CallRequest]
    ) -> list[str | OperationFailed]:
        """Schedule the calls in one transaction (``scheduling.create_scheduled_events``, the
        rules of ``schedule_call`` for each), noting the scheduled ones on their targets in the
        same transaction. Raises: NotFound."""

        def note(
            conn: Connection, outs: list[ScheduledEventOut | MissionError], committed: bool
        ) -> None:
            noted = [
                {
                    "b_position": call.position,
                    "b_event": out.scheduled_event_id,
                    "b_memo": call.memo,
                }
                for call, out in zip(calls, outs, strict=True)
                if not isinstance(out, MissionError)
            ]
            if noted:
                _note_targets(conn, run_id, noted, lock=committed)

        outs = scheduling.create_scheduled_events(
            self.ctx,
            [
                {
                    "assistant_id": assistant_id,
                    "channel": "phone_call",
                    "to": call.to,
                    "dynamic_variables": call.dynamic_variables,
                    "conversation_metadata": call.conversation_metadata,
                    "max_retries_client_errors": call.max_retries_client_errors,
                    "retry_interval_secs": call.retry_interval_secs,
                    "run_id": run_id,
                    "step_id": call.step_id,
                    "idempotency_key": call.idempotency_key,
                    "timezone": call.timezone,
                    "calling_window": call.calling_window,
                }
                for call in calls
            ],
            then=note,
        )
        results: list[str | OperationFailed] = []
        for call, out in zip(calls, outs, strict=True):
            if isinstance(out, MissionError):
                code = self._refusal_code(out, run_id, call.to)
                results.append(OperationFailed(str(out), code=code))
            else:
                results.append(out.scheduled_event_id)
        return results

    def ready_calls(self, run_id: str, limit: int) -> Progress:
        """Outstanding targets (a call scheduled, no outcome) whose call has ended and whose
        insights have settled, oldest position first.

        The targets whose call has ended are ``ended`` (the database's trigger marks them in
        the statement that ends the call, ``state.triggers``), so a step reads them on the
        targets' state index, one statement per ``limit`` rows, never the calls still out:
        its cost does not grow with the targets. It reads further only past calls whose
        insights are still being extracted."""
        ready: list[RunTarget] = []
        outstanding: int | None = None
        after = -1
        with reader(self.ctx.engine).connect() as conn:
            while len(ready) < limit:
                rows = conn.execute(
                    _READY_PAGE, {"r_run": run_id, "after": after, "r_limit": limit}
                ).all()
                if rows and outstanding is None:
                    outstanding = int(rows[0].outstanding)
                for row in rows:
                    if len(ready) >= limit:
                        break
                    after = row.position
                    if row.conversation_id is not None and (not row.results or row.unsettled):
                        # Not extracted yet (or half-done): the full rule, extracting on demand.
                        status = self._insights(row.conversation_id)[0]
                        if status not in _INSIGHT_DONE and status is not None:
                            continue
                    ready.append(self._run_target(row))
                if len(rows) < limit:
                    break
            if outstanding is None:
                outstanding = int(conn.execute(_OUTSTANDING, {"r_run": run_id}).scalar_one())
        return Progress(tuple(ready), outstanding)

    def record_outcomes(
        self,
        run_id: str,
        outcomes: dict[int, dict[str, Any]],
        *,
        events: list[dict[str, Any]] | None = None,
        moves: list[tuple[str, StepStatus, dict[str, Any] | None]] | None = None,
    ) -> None:
        """The outcomes, their events and step moves in one transaction (a step already
        finished stays so; an event key already logged writes nothing). Raises: NotFound,
        ValidationError."""
        checked_events = plans.check_events(events or [])
        checked_moves = plans.check_step_moves(list(moves or []))
        rows = [
            {"b_position": position, "b_outcome": outcome} for position, outcome in outcomes.items()
        ]
        if not rows and not checked_events and not checked_moves:
            return
        now = self.ctx.now()
        with self.ctx.engine.begin() as conn:
            plans.require_run(conn, run_id)
            plans.append_events(conn, run_id, checked_events, now)
            plans.move_steps(conn, run_id, checked_moves, now, keep_finished=True)
            if rows:
                conn.execute(_RECORD_OUTCOME, [{**r, "b_run": run_id} for r in rows])

    def load_outcomes(self, run_id: str) -> list[dict[str, Any]]:
        with session_scope(self.ctx.engine) as session:
            rows = session.exec(
                select(m.RunTarget.outcome)
                .where(m.RunTarget.run_id == run_id, m.RunTarget.state == "recorded")
                .order_by(col(m.RunTarget.position))
            ).all()
            return [dict(r) for r in rows if r]

    def log_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Append events in one transaction (idempotent on each key). Raises: NotFound,
        ValidationError."""
        plans.log_events(self.ctx, run_id, events)

    def update_steps(
        self, run_id: str, moves: list[tuple[str, StepStatus, dict[str, Any] | None]]
    ) -> None:
        """One transaction; a step already finished stays as it finished (a node run
        again). Raises: NotFound, IllegalTransition, ValidationError."""
        plans.update_plan_steps(self.ctx, run_id, list(moves), keep_finished=True)

    def skip_open_steps(self, run_id: str, *, keep: str | None = None) -> None:
        """Every unfinished step skipped (one step event each), in one transaction.
        Raises: NotFound."""
        moves: list[tuple[str, str, dict[str, Any] | None]] = [
            (step.step_id, "skipped", None)
            for step in plans.get_plan(self.ctx, run_id)
            if step.step_id != keep and step.status not in _FINAL_STEP
        ]
        plans.update_plan_steps(self.ctx, run_id, moves, keep_finished=True)

    def settle_insights(self, run_id: str) -> int:
        """Extract the insights of the run's finished calls that have none or were left
        half-done (a process stopped between a call's end and its extraction); return how many
        conversations were extracted. Call before the dispatcher starts, when nothing else
        can be extracting them."""
        count = 0
        for event in scheduling.all_scheduled_events(self.ctx, run_id):
            if event.status not in TERMINAL_EVENT or event.conversation_id is None:
                continue
            if self._insights(event.conversation_id, extract=True)[0] is not None:
                count += 1
        return count

    def _insights(
        self, conversation_id: str, *, extract: bool | None = None
    ) -> tuple[str | None, dict[str, Any] | None, str | None]:
        """(status, structured result, error) of the conversation's structured insight.
        Status ``pending`` means not extracted yet (or still being extracted)."""
        extract = self.extract_on_demand if extract is None else extract
        if self.ctx.extractor is None:
            extract = False
        results = extraction.get_conversation_insights(self.ctx.engine, conversation_id)
        unsettled = not results or any(r.status not in _INSIGHT_DONE for r in results)
        if unsettled and extract:
            results = extraction.extract_insights(self.ctx, conversation_id)
        elif not results and self.ctx.extractor is None:
            return None, None, None  # nothing will ever extract them
        if not results or any(r.status not in _INSIGHT_DONE for r in results):
            return "pending", None, None
        return _insight_of(results)


_RUNS = m.Run.__table__  # type: ignore[attr-defined]
_TARGETS = m.RunTarget.__table__  # type: ignore[attr-defined]
_EVENTS = m.ScheduledEvent.__table__  # type: ignore[attr-defined]
_ATTEMPTS = m.CallAttempt.__table__  # type: ignore[attr-defined]
_CONVERSATIONS = m.Conversation.__table__  # type: ignore[attr-defined]
_MESSAGES = m.Message.__table__  # type: ignore[attr-defined]
_RESULTS = m.InsightResult.__table__  # type: ignore[attr-defined]
_INSIGHTS = m.Insight.__table__  # type: ignore[attr-defined]
_TERMINAL_EVENTS = tuple(sorted(TERMINAL_EVENT))
#: What ``ServiceOps._run_target`` reads of a target row.
_TARGET_COLUMNS = tuple(
    _TARGETS.c[name]
    for name in ("position", "name", "phone", "target", "step_id", "scheduled_event_id", "memo")
)
_INSIGHT_DONE_STATUSES = tuple(sorted(_INSIGHT_DONE))

# Statements of the planner's per-step reads, built once (building a statement and its cache
# key costs about as much as running it).
_RUN_STATUS = sa_select(_RUNS.c.status).where(_RUNS.c.run_id == bindparam("s_run"))
_RUN_METADATA = sa_select(_RUNS.c["metadata"]).where(_RUNS.c.run_id == bindparam("s_run"))
_RECORD_OUTCOME = (
    update(_TARGETS)
    .where(
        _TARGETS.c.run_id == bindparam("b_run"),
        _TARGETS.c.position == bindparam("b_position"),
    )
    .values(outcome=bindparam("b_outcome"), state="recorded")
)
_TARGETS_BETWEEN = (
    sa_select(*_TARGET_COLUMNS)
    .where(
        _TARGETS.c.run_id == bindparam("t_run"),
        _TARGETS.c.position >= bindparam("t_start"),
        _TARGETS.c.position < bindparam("t_stop"),
    )
    .order_by(_TARGETS.c.position)
)
#: The run's outstanding targets (a call scheduled, no outcome recorded).
_OUTSTANDING = (
    sa_select(func.count())
    .select_from(_TARGETS)
    .where(
        _TARGETS.c.run_id == bindparam("r_run"),
        _TARGETS.c.state.in_([literal_column("'scheduled'"), literal_column("'ended'")]),
    )
)
_RESULTS_OF_CALL = (
    sa_select(func.count())
    .select_from(_RESULTS)
    .where(_RESULTS.c.conversation_id == _EVENTS.c.conversation_id)
)
#: ``get_call_results``' reads, each for a chunk of ids (``c_ids``).
_CALLS_WITH_ATTEMPTS = (
    sa_select(
        _EVENTS.c.scheduled_event_id,
        _EVENTS.c.status,
        _EVENTS.c.call_status,
        _EVENTS.c.conversation_id,
        _EVENTS.c.errors,
        _EVENTS.c.deferrals,
        _ATTEMPTS.c.attempt_number,
        _ATTEMPTS.c.call_status.label("attempt_status"),
        _ATTEMPTS.c.call_duration,
        _ATTEMPTS.c.cost,
        _ATTEMPTS.c.voicemail,
    )
    .outerjoin(_ATTEMPTS, _ATTEMPTS.c.scheduled_event_id == _EVENTS.c.scheduled_event_id)
    .where(_EVENTS.c.scheduled_event_id.in_(bindparam("c_ids", expanding=True)))
    .order_by(_EVENTS.c.scheduled_event_id, _ATTEMPTS.c.attempt_number)
)
_TRANSCRIPTS = (
    sa_select(
        _CONVERSATIONS.c.conversation_id,
        _CONVERSATIONS.c.name,
        _MESSAGES.c.role,
        _MESSAGES.c.text,
    )
    .outerjoin(_MESSAGES, _MESSAGES.c.conversation_id == _CONVERSATIONS.c.conversation_id)
    .where(_CONVERSATIONS.c.conversation_id.in_(bindparam("c_ids", expanding=True)))
    .order_by(_CONVERSATIONS.c.conversation_id, _MESSAGES.c.seq)
)
_CONVERSATION_NAMES = sa_select(_CONVERSATIONS.c.conversation_id, _CONVERSATIONS.c.name).where(
    _CONVERSATIONS.c.conversation_id.in_(bindparam("c_ids", expanding=True))
)
_RESULTS_OF = (
    sa_select(_RESULTS.c.conversation_id, _RESULTS.c.status, _RESULTS.c.result, _RESULTS.c.error)
    .join(_INSIGHTS, _INSIGHTS.c.insight_id == _RESULTS.c.insight_id)
    .where(_RESULTS.c.conversation_id.in_(bindparam("c_ids", expanding=True)))
    .order_by(_RESULTS.c.id)
)
#: ``ready_calls``' page: up to ``r_limit`` targets whose call has ended, past ``after``.
_READY_PAGE = (
    sa_select(
        *_TARGET_COLUMNS,
        _EVENTS.c.conversation_id,
        _OUTSTANDING.correlate(None).scalar_subquery().label("outstanding"),
        _RESULTS_OF_CALL.scalar_subquery().label("results"),
        _RESULTS_OF_CALL.where(_RESULTS.c.status.not_in(_INSIGHT_DONE_STATUSES))
        .scalar_subquery()
        .label("unsettled"),
    )
    .join(_EVENTS, _EVENTS.c.scheduled_event_id == _TARGETS.c.scheduled_event_id)
    .where(
        _TARGETS.c.run_id == bindparam("r_run"),
        _TARGETS.c.state == "ended",
        _TARGETS.c.position > bindparam("after"),
    )
    .order_by(_TARGETS.c.position)
    .limit(bindparam("r_limit"))
)


def _note_targets(
    conn: Connection, run_id: str, noted: list[dict[str, Any]], *, lock: bool
) -> None:
    """Note each scheduled call (``b_event``, with the planner's ``b_memo``) on its target
    (``b_position``). A target whose call has ended or whose outcome is recorded (a node run
    again) stays so; a call that has already ended (scheduled before, by the same key) is
    noted ``ended`` (after that, the database's trigger marks it: ``state.triggers``).

    ``lock``: the calls were committed before this transaction, so a call may be ending
    meanwhile; their rows are locked first (PostgreSQL; SQLite has one writer), so it is seen
    ended here or, ended after this commits, marked by the trigger, never neither."""
    if lock:
        conn.execute(
            sa_select(_EVENTS.c.scheduled_event_id)
            .where(_EVENTS.c.scheduled_event_id.in_(sorted(n["b_event"] for n in noted)))
            .order_by(_EVENTS.c.scheduled_event_id)
            .with_for_update(read=True)
        ).all()
    conn.execute(_NOTE_TARGET, [{**n, "b_run": run_id} for n in noted])


#: ``_note_targets``' update (an executemany cannot expand a list parameter: literal statuses).
_NOTE_TARGET = (
    update(_TARGETS)
    .where(
        _TARGETS.c.run_id == bindparam("b_run"),
        _TARGETS.c.position == bindparam("b_position"),
        _TARGETS.c.state != "recorded",
        _TARGETS.c.state != "ended",
    )
    .values(
        scheduled_event_id=bindparam("b_event"),
        memo=bindparam("b_memo"),
        state=case(
            (
                sa_select(_EVENTS.c.status)
                .where(_EVENTS.c.scheduled_event_id == bindparam("b_event"))
                .scalar_subquery()
                .in_([literal_column(f"'{status}'") for status in _TERMINAL_EVENTS]),
                "ended",
            ),
            else_="scheduled",
        ),
    )
)


def _result_of_row(
    event: Any,
    attempts: tuple[AttemptInfo, ...],
    name: str | None,
    transcript: tuple[tuple[str, str], ...] | None,
    insight: tuple[str | None, dict[str, Any] | None, str | None] | None,
    simulated: bool,
) -> CallResult:
    """The call result of a scheduled event (a row, or a ``ScheduledEventOut``) with its
    attempts, conversation name, transcript and insight."""
    raw_errors = event.errors or []
    errors = tuple(
        str(e.get("detail") or e.get("code") or e) if isinstance(e, dict) else str(e)
        for e in raw_errors
    )
    codes = tuple(str(e["code"]) for e in raw_errors if isinstance(e, dict) and e.get("code"))
    terminal = event.status in TERMINAL_EVENT
    status, insights, error = insight if insight is not None else (None, None, None)
    ready = terminal
    if terminal and event.conversation_id is not None:
        ready = status in _INSIGHT_DONE or status is None
    return CallResult(
        scheduled_event_id=event.scheduled_event_id,
        status=event.status,
        call_status=event.call_status,
        conversation_id=event.conversation_id,
        attempts=attempts,
        errors=errors,
        deferrals=len(event.deferrals or []),
        insight_status=status,
        insights=insights,
        insight_error=error,
        ready=ready,
        error_codes=codes,
        conversation_name=name,
        transcript=transcript,
        cost_basis="simulated" if simulated else "provider",
    )


def _insight_of(results: list[Any]) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """(status, structured result, error) of a conversation's settled insight results."""
    for result in results:
        if result.status == "completed" and isinstance(result.result, dict):
            return "completed", dict(result.result), None
    failed = next((r for r in results if r.status == "failed"), results[0])
    return "failed", None, failed.error or "no structured insight was extracted"
