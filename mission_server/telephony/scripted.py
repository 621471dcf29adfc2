"""A scripted provider: per-number outcome sequences and durations, no conversation.

It exercises the engine end to end (tests, ``bench/``) without the conversational simulator:
``outcomes`` maps a target to the call status of each attempt (the last one repeats), e.g.
``{"+13125550101": ["busy", "no-answer", "completed"]}``; unknown targets complete.
``duration_secs`` 0 gives instant completion.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mission_server.telephony.base import (
    AssistantSpec,
    CallOutcome,
    CallRequest,
    NumberInfo,
    Placement,
    TranscriptMessage,
)


@dataclass
class ScriptedProvider:
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    duration_secs: float = 120.0
    numbers: list[str] = field(default_factory=lambda: ["+13125550100"])
    with_conversations: bool = False
    name: str = "scripted"
    #: Dial this long after the request (``Provider.schedule_lead``), like Telnyx does.
    schedule_lead: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._placements: dict[str, Placement] = {}
        self.placed: list[str] = []  # idempotency keys, in order, for assertions
        self._messages: dict[str, list[TranscriptMessage]] = {}
        self._assistants = 0
        self._assigned: dict[str, str] = {}  # phone number -> assistant ref

    def create_assistant(self, spec: AssistantSpec) -> str:
        with self._lock:
            self._assistants += 1
            return f"scripted-assistant-{self._assistants}"

    def update_assistant(self, assistant_ref: str, spec: AssistantSpec) -> None:
        return None

    def list_phone_numbers(self) -> list[NumberInfo]:
        with self._lock:
            return [
                NumberInfo(
                    phone_number=n, number_id=f"num-{n[1:]}", assistant_ref=self._assigned.get(n)
                )
                for n in self.numbers
            ]

    def assign_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        with self._lock:
            self._assigned[number.phone_number] = assistant_ref

    def release_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        with self._lock:
            if self._assigned.get(number.phone_number) == assistant_ref:
                del self._assigned[number.phone_number]

    def place_call(self, request: CallRequest) -> Placement:
        with self._lock:
            existing = self._placements.get(request.idempotency_key)
            if existing is not None:
                return existing
            script = self.outcomes.get(request.to, ["completed"])
            status = script[min(request.attempt_number, len(script)) - 1]
            voicemail = status == "voicemail"
            answered = status == "completed" or voicemail
            duration = self.duration_secs if answered else None
            dialled = request.placed_at + self.schedule_lead
            ends = dialled + timedelta(
                seconds=self.duration_secs if answered else min(self.duration_secs, 30.0)
            )
            control_id = f"v3:scripted-{request.idempotency_key}"
            conversation_id = None
            if answered and self.with_conversations:
                conversation_id = f"conv-{request.idempotency_key}"
                self._messages[conversation_id] = [
                    TranscriptMessage("assistant", request.greeting or "Hello.", dialled),
                    TranscriptMessage("user", "Thanks for calling.", dialled),
                ]
            placement = Placement(
                call_control_id=control_id,
                placed_at=dialled,
                conversation_id=conversation_id,
                outcome=CallOutcome(
                    call_status="completed" if voicemail else status,  # type: ignore[arg-type]
                    ended_at=ends,
                    call_duration=duration,
                    call_control_id=control_id,
                    conversation_id=conversation_id,
                    voicemail=voicemail,
                ),
            )
            self._placements[request.idempotency_key] = placement
            self.placed.append(request.idempotency_key)
            return placement

    def get_outcome(self, placement: Placement, now: datetime) -> CallOutcome | None:
        for stored in self._placements.values():
            if stored.call_control_id == placement.call_control_id and stored.outcome:
                return stored.outcome if stored.outcome.ended_at <= now else None
        return None

    def find_attempt(self, idempotency_key: str, since: datetime | None = None) -> Placement | None:
        return self._placements.get(idempotency_key)

    def get_messages(self, conversation_id: str) -> list[TranscriptMessage]:
        return list(self._messages.get(conversation_id, []))
