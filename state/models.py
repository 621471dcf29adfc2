"""The system of record: SQLModel tables mirroring the Telnyx Missions, Assistants, Scheduled
Events, Conversations and Insights APIs.

Python attribute ``meta`` is stored in a column named ``metadata`` (SQLAlchemy reserves the
attribute name); the service layer exposes it as ``metadata``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import Column, Index, Integer, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from state.types import JSONType, UTCDateTime, new_id


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default: Any = None, name: str | None = None) -> Any:
    factory = (
        (lambda: dict(default))
        if isinstance(default, dict)
        else ((lambda: list(default)) if isinstance(default, list) else (lambda: default))
    )
    col = Column(name, JSONType, nullable=True) if name else Column(JSONType, nullable=True)
    return Field(default_factory=factory, sa_column=col)


def _text(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Text, nullable=nullable))


class TableModel(SQLModel):
    """The base of every table: it declares, for the type checker, the two class attributes
    SQLModel sets on a ``table=True`` class. It adds no field and no behaviour.

    SQLModel declares ``__tablename__`` as ``ClassVar[str | Callable[..., str]]`` and then
    defines it as a ``@declared_attr`` method (the default name), so pyright takes it to be a
    ``declared_attr`` and rejects ``__tablename__ = "missions"``
    (https://github.com/fastapi/sqlmodel/issues/98, not fixed upstream). Redeclaring it here as
    the plain string the tables assign takes one ignore instead of one per table. ``__table__``
    is set by SQLAlchemy's declarative mapping and SQLModel does not declare it at all.
    """

    __tablename__: ClassVar[str]  # pyright: ignore[reportIncompatibleVariableOverride]
    __table__: ClassVar[sa.Table]


class Mission(TableModel, table=True):
    __tablename__ = "missions"

    mission_id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    description: str | None = _text()
    instructions: str | None = _text()
    meta: dict[str, Any] | None = _json({}, "metadata")
    execution_mode: str = Field(default="external", max_length=16)
    created_at: datetime = _ts(False, index=True)
    updated_at: datetime = _ts(False)


class Run(TableModel, table=True):
    __tablename__ = "runs"

    run_id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    mission_id: str = Field(foreign_key="missions.mission_id", index=True, max_length=64)
    status: str = Field(default="pending", max_length=16, index=True)
    input: dict[str, Any] | None = _json({})
    meta: dict[str, Any] | None = _json({}, "metadata")
    variables: dict[str, Any] | None = _json({})
    result_summary: str | None = _text()
    result_payload: dict[str, Any] | None = _json(None)
    error: str | None = _text()
    # Guardrails
    call_budget: int | None = Field(default=None)
    calls_placed: int = Field(default=0)
    approval_required: bool = Field(default=False)
    approved_at: datetime | None = _ts()
    created_at: datetime = _ts(False, index=True)  # the service clock (simulated in rehearsals)
    recorded_at: datetime | None = _ts()  # the wall clock, whatever the service clock is
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    updated_at: datetime = _ts(False)


class PlanStep(TableModel, table=True):
    __tablename__ = "plan_steps"
    __table_args__ = (UniqueConstraint("run_id", "step_id", name="uq_plan_steps_run_step"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    run_id: str = Field(foreign_key="runs.run_id", index=True, max_length=64)
    step_id: str = Field(max_length=100)
    description: str = Field(sa_column=Column(Text, nullable=False))
    sequence: int = Field(default=0)
    parent_step_id: str | None = Field(default=None, max_length=100)
    status: str = Field(default="pending", max_length=16)
    meta: dict[str, Any] | None = _json({}, "metadata")
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


class RunTarget(TableModel, table=True):
    """One target of a planner run: who to call, the call placed for it and its outcome.

    The planner's checkpointed state holds none of this (its size must not grow with the
    mission); it reads the rows it needs. ``state``: ``new`` (not scheduled yet),
    ``scheduled`` (a call is out), ``ended`` (the call has ended: set by the database's
    trigger, ``state.triggers``, in the statement that ends it), ``recorded`` (the outcome
    is written). ``memo`` is what the planner keeps about the call (the leverage it carried).
    """

    __tablename__ = "run_targets"
    __table_args__ = (
        Index("ix_run_targets_run_state", "run_id", "state", "position"),
        Index("ix_run_targets_scheduled_event_id", "scheduled_event_id"),
    )

    run_id: str = Field(foreign_key="runs.run_id", primary_key=True, max_length=64)
    position: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = Field(max_length=200)
    phone: str = Field(max_length=200)
    target: dict[str, Any] | None = _json({})
    step_id: str | None = Field(default=None, max_length=100)
    state: str = Field(default="new", max_length=16)
    scheduled_event_id: str | None = Field(default=None, max_length=64)
    memo: dict[str, Any] | None = _json(None)
    outcome: dict[str, Any] | None = _json(None)


class Event(TableModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("run_id", "idempotency_key", name="uq_events_run_idempotency"),
        Index("ix_events_run_seq", "run_id", "seq"),
    )

    seq: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    event_id: str = Field(default_factory=new_id, unique=True, max_length=64)
    run_id: str = Field(foreign_key="runs.run_id", max_length=64)
    type: str = Field(max_length=32)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    step_id: str | None = Field(default=None, max_length=100)
    agent_id: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any] | None = _json({})
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts(False)


class Assistant(TableModel, table=True):
    __tablename__ = "assistants"

    assistant_id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    greeting: str | None = _text()
    model: str | None = Field(default=None, max_length=200)
    voice: str | None = Field(default=None, max_length=200)
    dynamic_variables: dict[str, Any] | None = _json({})
    insight_group_id: str | None = Field(default=None, max_length=64)
    webhook_url: str | None = _text()  # per-assistant override of the insight group's webhook
    provider: str = Field(default="simulated", max_length=32)
    provider_ref: str | None = Field(default=None, max_length=200)
    #: Keep the phone number when the runs it is linked to end (otherwise it is released).
    keep_number: bool = Field(
        default=False, sa_column=Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


class RunAgent(TableModel, table=True):
    """Links a run to the assistants it created or used."""

    __tablename__ = "run_agents"

    run_id: str = Field(foreign_key="runs.run_id", primary_key=True, max_length=64)
    assistant_id: str = Field(
        foreign_key="assistants.assistant_id", primary_key=True, max_length=64
    )
    created_at: datetime = _ts(False)


class PhoneNumber(TableModel, table=True):
    __tablename__ = "phone_numbers"

    phone_number: str = Field(primary_key=True, max_length=32)  # E.164
    number_id: str = Field(unique=True, max_length=100)
    assistant_id: str | None = Field(
        default=None, foreign_key="assistants.assistant_id", max_length=64
    )
    hd_voice: bool = Field(default=False)
    provider: str = Field(default="simulated", max_length=32)
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


class DoNotCall(TableModel, table=True):
    __tablename__ = "do_not_call"

    target: str = Field(primary_key=True, max_length=200)  # E.164 or SIP URI
    reason: str | None = _text()
    created_at: datetime = _ts(False)


class ScheduledEvent(TableModel, table=True):
    """A call or SMS to be dispatched. This table is the durable outbox.

    ``scheduled_at_fixed_datetime`` is the reference's field: when the next attempt is meant to
    happen (after calling-hours deferral). ``due_at`` is when the dispatcher must next look at
    the row: the scheduled time while pending, the next outcome check while in progress.
    """

    __tablename__ = "scheduled_events"
    __table_args__ = (Index("ix_scheduled_events_claim", "status", "due_at"),)

    scheduled_event_id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    assistant_id: str = Field(foreign_key="assistants.assistant_id", index=True, max_length=64)
    run_id: str | None = Field(default=None, foreign_key="runs.run_id", index=True, max_length=64)
    step_id: str | None = Field(default=None, max_length=100)
    telnyx_conversation_channel: str = Field(max_length=16)
    telnyx_end_user_target: str = Field(max_length=200)
    telnyx_agent_target: str = Field(max_length=200)
    scheduled_at_fixed_datetime: datetime = _ts(False)
    requested_at: datetime = _ts(False)  # what the caller asked for, before deferral
    due_at: datetime = _ts(False)
    text: str | None = _text()
    dynamic_variables: dict[str, Any] | None = _json({})
    conversation_metadata: dict[str, Any] | None = _json({})
    max_retries_client_errors: int = Field(default=0)
    retry_interval_secs: int | None = Field(default=None)
    status: str = Field(default="pending", max_length=16)
    call_status: str | None = Field(default=None, max_length=16)
    conversation_id: str | None = Field(default=None, max_length=200)
    errors: list[Any] | None = _json([])
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    # Calling hours: resolved zones of the target and the window policy that applied.
    timezones: list[str] | None = _json([])
    calling_window: dict[str, Any] | None = _json(None)
    deferrals: list[Any] | None = _json([])
    hold_reason: str | None = Field(default=None, max_length=32)  # awaiting_approval, paused
    # The attempt in flight (placed, outcome not yet known).
    current_attempt: int = Field(default=0)
    in_flight_call_control_id: str | None = Field(default=None, max_length=200)
    in_flight_placed_at: datetime | None = _ts()
    # What the in-flight attempt was given (rendered text, variables), kept until it ends so the
    # conversation record shows exactly what the assistant was told.
    in_flight_context: dict[str, Any] | None = _json(None)
    # The next attempt may already have reached the provider (a claim took over an abandoned
    # lease, or a create went unanswered): it is looked up before it is placed. Cleared once
    # the provider has been asked.
    recovered: bool = Field(default=False)
    # The caller asked for this ``telnyx_agent_target``: it is kept. Otherwise the dispatcher
    # may dial from any of the assistant's numbers, the one with the fewest calls in progress.
    caller_fixed: bool = Field(
        default=False, sa_column=Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    # Dispatcher lease.
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _ts()
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


class CallAttempt(TableModel, table=True):
    """One terminal dispatch of a scheduled event (the reference's ``call_attempts`` entry)."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        UniqueConstraint("scheduled_event_id", "attempt_number", name="uq_call_attempts_event"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    scheduled_event_id: str = Field(
        foreign_key="scheduled_events.scheduled_event_id", index=True, max_length=64
    )
    attempt_number: int
    attempted_at: datetime = _ts(False)
    ended_at: datetime | None = _ts()
    call_status: str = Field(max_length=16)
    call_duration: float | None = None
    telnyx_call_control_id: str | None = Field(default=None, max_length=200)
    conversation_id: str | None = Field(default=None, max_length=200)
    cost: float | None = None
    voicemail: bool = Field(default=False)


class Conversation(TableModel, table=True):
    __tablename__ = "conversations"

    conversation_id: str = Field(primary_key=True, max_length=200)
    name: str | None = Field(default=None, max_length=300)
    run_id: str | None = Field(default=None, foreign_key="runs.run_id", index=True, max_length=64)
    assistant_id: str | None = Field(
        default=None, foreign_key="assistants.assistant_id", index=True, max_length=64
    )
    scheduled_event_id: str | None = Field(default=None, index=True, max_length=64)
    attempt_number: int | None = None
    channel: str = Field(default="phone_call", max_length=16)
    end_user_target: str | None = Field(default=None, max_length=200, index=True)
    agent_target: str | None = Field(default=None, max_length=200)
    instructions: str | None = _text()  # rendered
    greeting: str | None = _text()  # rendered
    dynamic_variables: dict[str, Any] | None = _json({})
    meta: dict[str, Any] | None = _json({}, "metadata")
    call_status: str | None = Field(default=None, max_length=16)
    duration_secs: float | None = None
    cost: float | None = None
    started_at: datetime | None = _ts()
    ended_at: datetime | None = _ts()
    created_at: datetime = _ts(False)


class Message(TableModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_seq", "conversation_id", "seq"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    conversation_id: str = Field(foreign_key="conversations.conversation_id", max_length=200)
    seq: int
    role: str = Field(max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    sent_at: datetime | None = _ts()
    #: Ground truth where the provider knows it (the simulator): what this utterance states,
    #: insight field name -> value. None on real calls.
    facts: dict[str, Any] | None = _json(None)


class Insight(TableModel, table=True):
    """An insight definition: free text (``parameters`` is None) or a structured schema."""

    __tablename__ = "insights"

    insight_id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    parameters: list[Any] | None = _json(None)
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


class InsightGroup(TableModel, table=True):
    __tablename__ = "insight_groups"

    insight_group_id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    webhook_url: str | None = _text()
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


class InsightGroupMember(TableModel, table=True):
    __tablename__ = "insight_group_members"

    insight_group_id: str = Field(
        foreign_key="insight_groups.insight_group_id", primary_key=True, max_length=64
    )
    insight_id: str = Field(foreign_key="insights.insight_id", primary_key=True, max_length=64)
    position: int = Field(default=0)


class InsightResult(TableModel, table=True):
    __tablename__ = "insight_results"
    __table_args__ = (
        UniqueConstraint("conversation_id", "insight_id", name="uq_insight_results_conv"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    conversation_id: str = Field(
        foreign_key="conversations.conversation_id", index=True, max_length=200
    )
    insight_id: str = Field(foreign_key="insights.insight_id", max_length=64)
    status: str = Field(default="pending", max_length=16)
    result: Any = _json(None)
    error: str | None = _text()
    extractor: str | None = Field(default=None, max_length=32)
    #: Where the conversation's truth is known (a rehearsal): the values that were said, per
    #: field, beside ``result`` (what the extractor read). None on real calls.
    truth: dict[str, Any] | None = _json(None)
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


class WebhookDelivery(TableModel, table=True):
    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    delivery_id: str = Field(default_factory=new_id, max_length=64, index=True)
    conversation_id: str = Field(max_length=200, index=True)
    insight_group_id: str | None = Field(default=None, max_length=64)
    url: str = Field(sa_column=Column(Text, nullable=False))
    attempt: int = Field(default=1)
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = _text()
    delivered: bool = Field(default=False)
    created_at: datetime = _ts(False)


ALL_TABLES = [
    Mission,
    Run,
    PlanStep,
    Event,
    Assistant,
    RunAgent,
    PhoneNumber,
    DoNotCall,
    ScheduledEvent,
    CallAttempt,
    Conversation,
    Message,
    Insight,
    InsightGroup,
    InsightGroupMember,
    InsightResult,
    WebhookDelivery,
]


class SimClock(TableModel, table=True):
    """The simulated time of a rehearsal database, shared by every process on it (one row,
    ``clock_id`` 1): simulated time ``sim_at`` at wall time ``wall_at`` (Unix seconds), running
    ``speed`` times faster than wall time. ``seen_at`` is when a process last used it (wall)."""

    __tablename__ = "sim_clock"

    clock_id: int = Field(default=1, sa_column=Column(Integer, primary_key=True))
    sim_at: datetime = _ts(False)
    wall_at: float = Field(sa_column=Column(sa.Float, nullable=False))
    speed: float = Field(sa_column=Column(sa.Float, nullable=False))
    seen_at: float = Field(sa_column=Column(sa.Float, nullable=False))


class TelnyxId(TableModel, table=True):
    """Our id of a record -> its id at Telnyx, one row per (``kind``, ``local_id``): an
    ``insight`` is an insight template, an ``insight_group`` an insight group. ``fingerprint``
    is a digest of what was last sent, so a changed definition is sent again and an unchanged
    one is not."""

    __tablename__ = "telnyx_ids"

    kind: str = Field(primary_key=True, max_length=32)
    local_id: str = Field(primary_key=True, max_length=64)
    telnyx_id: str = Field(max_length=128, index=True)
    fingerprint: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts(False)
    updated_at: datetime = _ts(False)


# --------------------------------------------------------------------------- the Telnyx mirror
# The outbox of the mirror of our missions to the Telnyx Missions API (migration 0007). Rows hold
# only ids: what is sent is read from the records when it is delivered, so nothing here can
# hold a secret, and nothing is sent that the records do not say.


class MirrorOutbox(TableModel, table=True):
    """One record to mirror: a mission (``kind`` mission, ``ref`` its id) or a run event
    (``kind`` event, ``ref`` its event id; delivering it also brings the run, its plan and its
    linked assistants up to date first). Written in the transaction that wrote the record.

    ``lane`` orders delivery: the rows of one lane (a run's id, or ``mission:<id>``) go out in
    ``id`` order, one at a time. ``status`` pending → delivered | failed; ``next_attempt_at``
    is when a pending row may next be tried (the service clock), ``lease_until`` keeps two
    processes from sending one row at once.
    """

    __tablename__ = "telnyx_outbox"
    __table_args__ = (
        Index("ix_telnyx_outbox_lane", "lane", "status", "id"),
        Index("ix_telnyx_outbox_status", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    lane: str = Field(max_length=80)
    kind: str = Field(max_length=16)
    ref: str = Field(max_length=64)
    run_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _ts(False)
    lease_until: datetime | None = _ts()
    last_error: str | None = _text()
    remote_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts(False)
    delivered_at: datetime | None = _ts()


class MirrorId(TableModel, table=True):
    """Our id → the Telnyx id of the same record (``kind`` mission, run, step, agent, event;
    a step is ``<run_id>/<step_id>``, an agent link ``<run_id>/<assistant_id>``); kinds
    ``run_status`` and ``step_status`` keep in ``sent`` the status Telnyx was last sent.
    ``remote_id`` is None while a create may have reached Telnyx without an answer (it is
    looked up before anything is sent again); ``sent`` is a digest of the fields last sent, so
    an unchanged record is not sent twice."""

    __tablename__ = "telnyx_mirror_ids"

    kind: str = Field(primary_key=True, max_length=16)
    local_id: str = Field(primary_key=True, max_length=200)
    remote_id: str | None = Field(default=None, max_length=200)
    sent: str | None = Field(default=None, max_length=64)
    updated_at: datetime = _ts(False)


class DialPacing(TableModel, table=True):
    """The account's dial pacing, shared by every dispatcher on the database (one row,
    ``pacing_id`` 1): the earliest moment the next call may be claimed for dialling
    (``MISSION_CALLS_PER_SECOND``). The claim locks this row, so it also serialises the
    concurrent-calls count of ``MISSION_MAX_CONCURRENT_CALLS``."""

    __tablename__ = "dial_pacing"

    pacing_id: int = Field(default=1, sa_column=Column(Integer, primary_key=True))
    next_dial_at: datetime | None = _ts()


@event.listens_for(SQLModel.metadata, "after_create")
def _create_triggers(target: Any, connection: Any, **kw: Any) -> None:
    """``create_schema`` makes the database's trigger too (``state.triggers``), once the tables
    it joins exist."""
    from state import triggers

    names = {t.name for t in kw.get("tables", target.sorted_tables)}  # the tables made now
    if {"run_targets", "scheduled_events"} <= names:
        triggers.create_call_ended(connection)
