"""The telephony seam: what the engine needs from a phone platform.

Implementations: ``SimulatedProvider`` (embedded default, a world file of businesses) and
``TelnyxProvider`` (the real Telnyx API). The dispatcher talks to a provider only through this
protocol, so a new platform is one class.

Calls are two-phase, because real calls take minutes: ``place_call`` starts one and returns a
``Placement``; ``get_outcome`` later reports the terminal ``CallOutcome`` (``None`` while the
call is still going). A provider that already knows the outcome when placing (a simulator with
instant completion) may return it in ``Placement.outcome``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

Channel = Literal["phone_call", "sms_chat"]
CallStatus = Literal["completed", "busy", "no-answer", "failed", "canceled"]

#: Terminal call statuses that the reference treats as retryable client-side outcomes.
RETRYABLE_CALL_STATUSES: frozenset[str] = frozenset({"busy", "no-answer", "failed", "canceled"})
CALL_STATUSES: frozenset[str] = frozenset({"completed"}) | RETRYABLE_CALL_STATUSES


@dataclass(frozen=True)
class AssistantSpec:
    """What a provider needs to create or update a voice assistant."""

    name: str
    instructions: str
    greeting: str | None = None
    model: str | None = None
    voice: str | None = None
    dynamic_variables: dict[str, str] = field(default_factory=dict)
    insight_group_ref: str | None = None
    #: Our id of the assistant, where the provider can take an idempotency key on create.
    idempotency_key: str | None = None


@dataclass(frozen=True)
class NumberInfo:
    """A phone number of the account."""

    phone_number: str  # E.164
    number_id: str
    hd_voice: bool = False
    assistant_ref: str | None = None  # provider ref of the assistant it is assigned to, if any


@dataclass(frozen=True)
class CallRequest:
    """One dispatch of a scheduled event (one attempt)."""

    idempotency_key: str  # "<scheduled_event_id>:<attempt_number>"
    scheduled_event_id: str
    attempt_number: int
    channel: Channel
    from_number: str
    to: str
    assistant_ref: str
    placed_at: datetime
    instructions: str  # rendered with every variable known for this conversation
    greeting: str | None  # rendered
    text: str | None  # rendered SMS body (sms_chat only)
    dynamic_variables: dict[str, str]  # merged: per-call > run > assistant defaults
    conversation_metadata: dict[str, object] = field(default_factory=dict)
    conversation_name: str | None = None
    # The assistant's templates, unrendered: for a provider that renders them itself.
    instructions_template: str | None = None
    greeting_template: str | None = None
    #: What the assistant is to find out: the parameters of its insight group's insights.
    asks: tuple[AskedField, ...] = ()


@dataclass(frozen=True)
class CallOutcome:
    """The terminal result of one attempt."""

    call_status: CallStatus
    ended_at: datetime
    call_duration: float | None = None  # seconds; None when nobody answered
    call_control_id: str | None = None
    conversation_id: str | None = None
    conversation_name: str | None = None
    cost: float | None = None  # account currency, where the provider reports it
    voicemail: bool = False
    #: Why the provider says the attempt failed, in its words (Telnyx's event ``errors``).
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placement:
    """A call (or SMS) that the provider accepted."""

    call_control_id: str
    placed_at: datetime  # when the provider dials (the request's time plus its lead)
    conversation_id: str | None = None
    outcome: CallOutcome | None = None  # set when the provider already knows it


@dataclass(frozen=True)
class TranscriptMessage:
    role: Literal["assistant", "user", "system"]
    text: str
    sent_at: datetime
    #: Ground truth, where the provider knows it (the simulator): the facts this utterance
    #: states, as insight field name -> value. None when unknown (a real call).
    facts: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AskedField:
    """One thing the assistant is to find out on a call: a parameter of an insight of its
    insight group (name, JSON type, description, enum values). A provider whose assistant
    follows its instructions itself (Telnyx) ignores these; the simulator asks about them."""

    name: str
    type: str
    description: str = ""
    enum: tuple[str, ...] = ()
    items_type: str | None = None


@runtime_checkable
class Provider(Protocol):
    """A telephony platform. Methods raise ``mission_server.errors.ProviderError`` on failure."""

    #: "simulated" or "telnyx" (shown by server_status and the CLI).
    name: str

    #: How long after ``CallRequest.placed_at`` the provider dials, at most: ``0`` for one that
    #: dials at once; Telnyx schedules its event a few seconds ahead. Calling hours are kept
    #: over this whole span (``domain.calling_hours.is_inside``), and ``Placement.placed_at``
    #: is the moment the provider dials. At most ``calling_hours.MAX_LEAD``.
    schedule_lead: timedelta

    def create_assistant(self, spec: AssistantSpec) -> str:
        """Create an assistant; return the provider's reference for it."""
        ...

    def update_assistant(self, assistant_ref: str, spec: AssistantSpec) -> None:
        """Replace the assistant's configuration."""
        ...

    def list_phone_numbers(self) -> list[NumberInfo]:
        """Every number of the account, assigned or not."""
        ...

    def assign_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        """Route the number to the assistant so it can call from it."""
        ...

    def release_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        """Stop routing the number to the assistant, so another one can be given it.
        Releasing a number that is not routed to the assistant is a no-op where the provider
        can tell (the simulator); Telnyx clears the number's connection."""
        ...

    def place_call(self, request: CallRequest) -> Placement:
        """Start one attempt. Must be idempotent on ``request.idempotency_key``."""
        ...

    def get_outcome(self, placement: Placement, now: datetime) -> CallOutcome | None:
        """The terminal outcome of a placed attempt, or None while it is still in progress."""
        ...

    def find_attempt(self, idempotency_key: str, since: datetime | None = None) -> Placement | None:
        """Look up an attempt by its idempotency key (crash reconciliation). ``since``, when
        given, is the earliest moment the attempt could have been created: a provider may use
        it to narrow its search."""
        ...

    def get_messages(self, conversation_id: str) -> list[TranscriptMessage]:
        """The conversation's transcript in order."""
        ...


@dataclass(frozen=True)
class InsightTemplateSpec:
    """An insight as a platform that computes insights itself keeps it: its ``name``
    (unique: our id is part of it, so it can be found again after a crash), instructions,
    the JSON schema of a structured result (None for free text) and a webhook."""

    name: str
    instructions: str
    json_schema: Mapping[str, Any] | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class RemoteInsightGroup:
    """An insight group at the platform: its id, name and the ids of its insights."""

    ref: str
    name: str
    insight_refs: tuple[str, ...] = ()


@runtime_checkable
class InsightPlatform(Protocol):
    """A provider whose platform computes conversation insights itself (Telnyx): our insight
    definitions and groups are kept there as templates and groups, and an assistant names
    the platform's group. Methods raise ``ProviderError`` on failure."""

    def find_insight_template(self, name: str) -> str | None:
        """The id of the template with exactly this name, if there is one."""
        ...

    def create_insight_template(self, spec: InsightTemplateSpec) -> str:
        """Create a template; return its id."""
        ...

    def update_insight_template(self, ref: str, spec: InsightTemplateSpec) -> None:
        """Replace a template's name, instructions, schema and webhook."""
        ...

    def delete_insight_template(self, ref: str) -> None:
        """Delete a template (one that is already gone is not an error)."""
        ...

    def find_insight_group(self, name: str) -> RemoteInsightGroup | None:
        """The group with exactly this name, with its insights, if there is one."""
        ...

    def get_insight_group(self, ref: str) -> RemoteInsightGroup | None:
        """The group with this id and its insights, or None when it no longer exists."""
        ...

    def create_insight_group(self, name: str, webhook: str | None) -> str:
        """Create a group; return its id."""
        ...

    def update_insight_group(self, ref: str, name: str, webhook: str | None) -> None:
        """Replace a group's name and webhook."""
        ...

    def assign_insight(self, group_ref: str, insight_ref: str) -> None:
        """Add a template to a group."""
        ...

    def unassign_insight(self, group_ref: str, insight_ref: str) -> None:
        """Remove a template from a group."""
        ...


@runtime_checkable
class CancellableCalls(Protocol):
    """A provider whose calls are placed ahead of the moment they dial (Telnyx schedules its
    event a few seconds ahead), so a call in flight can still be called off."""

    def cancel_call(self, placement: Placement) -> bool:
        """Call the attempt off at the provider: True when it was cancelled before it
        dialled; False when the provider had already dispatched it (its outcome is to be
        read, not assumed). Raises ``ProviderError`` when the provider could not be asked
        (the caller tries again)."""
        ...


@runtime_checkable
class SmsPlatform(Protocol):
    """A provider on which an SMS needs the sending number and assistant set up first
    (Telnyx: a messaging profile on the number, ``messaging`` on the assistant)."""

    def prepare_sms(self, assistant_ref: str, number: NumberInfo) -> None:
        """Make the assistant able to send SMS from ``number``. Raises
        ``ConfigurationError`` saying what to set when the account cannot send SMS, and
        ``ProviderError`` when the provider refused or failed."""
        ...
