"""``SimulatedProvider``: the embedded default telephony platform, driven by a world file.

The simulator plays both sides of every call. The assistant speaks the *rendered* greeting and
instructions it is handed (so whatever a run injected shows up in the transcript); the callee
answers from the world file (answer pattern per attempt, price, floor, reaction to a
competitor's quote, availability, appointment reminders). The callee learns a competitor's
price only from what the assistant says on the call, never from the request's variables.

Everything is reproducible: the randomness of one call (phrasing, pauses, ring times) comes
from ``(seed, target number, attempt_number)``, and ids come from the idempotency key.

With a ``ledger_path`` every placement is appended to a JSON-lines file and fsynced before
``place_call`` returns, under an exclusive file lock, so another process (or the same one after
a crash) finds the attempt instead of placing it again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import random
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import phonenumbers

from mission_server.clock import ensure_utc
from mission_server.domain.targets import normalise_target
from mission_server.errors import ConfigurationError, ProviderError, ValidationError
from mission_server.telephony.base import (
    AssistantSpec,
    CallOutcome,
    CallRequest,
    CallStatus,
    NumberInfo,
    Placement,
    TranscriptMessage,
)
from mission_server.telephony.simulated.world import Business, Quote, World, load_world

try:  # POSIX only; elsewhere the ledger still works for a single process.
    import fcntl
except ImportError:  # pragma: no cover - exercised only on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["SimulatedProvider"]

log = logging.getLogger(__name__)

_LEDGER_VERSION = 1
_STAFF = ("Maria", "James", "Priya", "Tom", "Alicia", "Dev", "Hannah", "Luis")


class SimulatedProvider:
    """A ``Provider`` whose calls reach the businesses of a ``World``.

    Args:
        world: the validated world (see ``load_world``).
        seed: overrides ``world.seed``.
        ledger_path: a JSON-lines file that makes placements durable and shared between
            processes; created (with its parent directories) if missing.

    Raises:
        ConfigurationError: the ledger file cannot be created or read.
    """

    name = "simulated"
    #: The simulated world dials at once.
    schedule_lead = timedelta(0)

    def __init__(
        self, world: World, *, seed: int | None = None, ledger_path: Path | None = None
    ) -> None:
        self.world = world
        self.seed = world.seed if seed is None else seed
        self._lock = threading.RLock()
        self._by_key: dict[str, _Placed] = {}
        self._by_call: dict[str, _Placed] = {}
        self._by_conversation: dict[str, _Placed] = {}
        self._placed_keys: list[str] = []
        self._assistants: dict[str, AssistantSpec] = {}
        self._assigned: dict[str, str] = {}  # phone number -> assistant ref
        self._account = {entry.number: entry for entry in world.numbers}
        self._ledger = _Ledger(Path(ledger_path)) if ledger_path is not None else None
        with self._synced():
            pass  # entering loads whatever earlier instances left in the ledger

    @classmethod
    def from_path(
        cls, path: str | Path, *, seed: int | None = None, ledger_path: Path | None = None
    ) -> SimulatedProvider:
        """Load a world file and build a provider on it.

        Raises:
            ConfigurationError: the world file or the ledger cannot be read.
            ValidationError: the world file is invalid (``field`` names the bad field's path).
        """
        return cls(load_world(path), seed=seed, ledger_path=ledger_path)

    @property
    def placements(self) -> list[str]:
        """Idempotency keys of every attempt actually placed, in order: those in the ledger
        (by any instance) and those placed by this instance. A key never appears twice."""
        with self._synced():
            return list(self._placed_keys)

    # -- assistants and numbers -------------------------------------------------------------

    def create_assistant(self, spec: AssistantSpec) -> str:
        """Create an assistant; return its reference (``sim-assistant-<n>``).

        Raises:
            ProviderError: the spec has an empty name or instructions (status 422).
        """
        _check_spec(spec)
        with self._synced() as ledger:
            ref = f"sim-assistant-{len(self._assistants) + 1}"
            self._write(ledger, {"kind": "assistant", "ref": ref, "spec": asdict(spec)})
            return ref

    def update_assistant(self, assistant_ref: str, spec: AssistantSpec) -> None:
        """Replace the assistant's configuration.

        Raises:
            ProviderError: unknown assistant (404) or invalid spec (422).
        """
        _check_spec(spec)
        with self._synced() as ledger:
            self._known_assistant(assistant_ref)
            self._write(ledger, {"kind": "assistant", "ref": assistant_ref, "spec": asdict(spec)})

    def list_phone_numbers(self) -> list[NumberInfo]:
        """The world's account numbers with their current assignment."""
        with self._synced():
            return [
                NumberInfo(
                    phone_number=entry.number,
                    number_id=_number_id(entry.number),
                    hd_voice=entry.hd_voice,
                    assistant_ref=self._assigned.get(entry.number),
                )
                for entry in self.world.numbers
            ]

    def assign_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        """Route one of the account's numbers to an assistant (replacing any earlier route).

        Raises:
            ProviderError: the number is not on the account, or the assistant is unknown (404).
        """
        phone = _normalised(number.phone_number)
        with self._synced() as ledger:
            if phone not in self._account:
                raise ProviderError(
                    f"phone number {number.phone_number} is not on the simulated account",
                    status_code=404,
                    code="number_not_found",
                )
            self._known_assistant(assistant_ref)
            self._write(ledger, {"kind": "assign", "number": phone, "assistant_ref": assistant_ref})

    # -- calls ------------------------------------------------------------------------------

    def place_call(self, request: CallRequest) -> Placement:
        """Simulate one attempt; the returned ``Placement`` carries its outcome already.

        Idempotent on ``request.idempotency_key``: a key placed before (by this instance or,
        through the ledger, by any other) returns the original placement.

        Raises:
            ProviderError: the request is malformed (422): unknown channel, naive
                ``placed_at``, a ``from_number`` that is not on the account, an invalid
                ``to``, or an SMS without text; or the key was already used for another
                target or channel (409).
        """
        with self._synced() as ledger:
            existing = self._by_key.get(request.idempotency_key)
            if existing is not None:
                if (existing.to, existing.channel) != (_normalised(request.to), request.channel):
                    raise ProviderError(
                        f"idempotency key {request.idempotency_key!r} was already used for "
                        f"a {existing.channel} to {existing.to}",
                        status_code=409,
                        code="idempotency_conflict",
                    )
                return existing.placement
            placed = self._simulate(request)
            self._write(ledger, placed.to_json())
            return placed.placement

    def get_outcome(self, placement: Placement, now: datetime) -> CallOutcome | None:
        """The outcome once ``now`` has reached its ``ended_at``; ``None`` before.

        Raises:
            ValidationError: ``now`` has no timezone.
            ProviderError: the placement is unknown to this provider and its ledger (404).
        """
        now = ensure_utc(now, "now")
        placed = self._find(self._by_call, placement.call_control_id)
        if placed is None:
            raise ProviderError(
                f"call {placement.call_control_id} was not placed by the simulator",
                status_code=404,
                code="call_not_found",
            )
        outcome = placed.placement.outcome
        return outcome if outcome is not None and now >= outcome.ended_at else None

    def find_attempt(self, idempotency_key: str) -> Placement | None:
        """The placement made under this key, or ``None`` if it was never placed."""
        placed = self._find(self._by_key, idempotency_key)
        return None if placed is None else placed.placement

    def get_messages(self, conversation_id: str) -> list[TranscriptMessage]:
        """The whole transcript of a conversation, in order.

        Raises:
            ProviderError: unknown conversation (404).
        """
        placed = self._find(self._by_conversation, conversation_id)
        if placed is None:
            raise ProviderError(
                f"conversation {conversation_id} does not exist in the simulator",
                status_code=404,
                code="conversation_not_found",
            )
        return list(placed.messages)

    # -- internals --------------------------------------------------------------------------

    @contextmanager
    def _synced(self) -> Iterator[IO[bytes] | None]:
        # Holds the in-process lock and, with a ledger, its file lock, after catching up with
        # whatever other processes appended; yields the open ledger for writing.
        with self._lock:
            if self._ledger is None:
                yield None
                return
            with self._ledger.open() as handle:
                for entry in self._ledger.read_new(handle):
                    self._apply(entry)
                yield handle

    def _write(self, ledger: IO[bytes] | None, entry: dict[str, Any]) -> None:
        # Durable first, then visible: a crash after the write is reconciled from the ledger.
        if ledger is not None and self._ledger is not None:
            self._ledger.append(ledger, entry)
        self._apply(entry)

    def _apply(self, entry: dict[str, Any]) -> None:
        kind = entry.get("kind")
        if kind == "placement":
            placed = _Placed.from_json(entry)
            if placed.key in self._by_key:
                return
            self._by_key[placed.key] = placed
            self._by_call[placed.placement.call_control_id] = placed
            if placed.placement.conversation_id is not None:
                self._by_conversation[placed.placement.conversation_id] = placed
            self._placed_keys.append(placed.key)
        elif kind == "assistant":
            self._assistants[entry["ref"]] = AssistantSpec(**entry["spec"])
        elif kind == "assign":
            self._assigned[entry["number"]] = entry["assistant_ref"]
        else:
            log.warning("ignoring ledger entry of unknown kind %r", kind)

    def _find(self, index: dict[str, _Placed], key: str) -> _Placed | None:
        with self._lock:
            if key in index or self._ledger is None:
                return index.get(key)
            with self._synced():
                return index.get(key)

    def _known_assistant(self, ref: str) -> None:
        if ref not in self._assistants:
            raise ProviderError(
                f"assistant {ref!r} does not exist in the simulator",
                status_code=404,
                code="assistant_not_found",
            )

    def _simulate(self, request: CallRequest) -> _Placed:
        if request.channel not in ("phone_call", "sms_chat"):
            raise _bad_request("channel", "must be phone_call or sms_chat", request.channel)
        if request.placed_at.tzinfo is None or request.placed_at.utcoffset() is None:
            raise _bad_request("placed_at", "must include a timezone", request.placed_at)
        sender = _normalised(request.from_number)
        if sender not in self._account:
            raise _bad_request(
                "from_number", "must be one of the simulated account's numbers", sender
            )
        try:
            target = normalise_target(request.to)
        except ValidationError as exc:
            raise _bad_request("to", exc.rule, request.to) from None
        business = self.world.business_for(target)
        # str seeds are hashed with SHA-512 by random.seed, so this is stable across processes.
        rng = random.Random(f"{self.seed}|{target}|{request.attempt_number}")
        ids = _Ids.of(request.idempotency_key)
        if request.channel == "sms_chat":
            if not request.text or not request.text.strip():
                raise _bad_request("text", "is required for sms_chat", request.text)
            return self._sms(request, target, business, rng, ids)
        return self._call(request, target, sender, business, rng, ids)

    def _call(
        self,
        request: CallRequest,
        target: str,
        sender: str,
        business: Business | None,
        rng: random.Random,
        ids: _Ids,
    ) -> _Placed:
        kind = business.answer_for(request.attempt_number) if business else "no-answer"
        start = request.placed_at
        if kind in _UNANSWERED:
            low, high = _UNANSWERED[kind]
            ended = start + _secs(rng.uniform(low, high))
            outcome = CallOutcome(
                call_status=_STATUS[kind],
                ended_at=ended,
                call_control_id=ids.call_control_id,
                cost=0.0,
            )
            placement = Placement(ids.call_control_id, start, None, outcome)
            return _Placed(request.idempotency_key, target, "phone_call", placement, [])
        assert business is not None  # unknown numbers never answer
        if kind == "voicemail":
            picked_up = start + _secs(rng.uniform(15, 25))
            lines = _voicemail(business, request, sender)
            label = "voicemail"
        else:
            picked_up = start + _secs(rng.uniform(4, 14))
            lines, label = _conversation(business, request, rng)
        messages, ended = _timed(lines, picked_up, rng)
        duration = round((ended - picked_up).total_seconds(), 1)
        name = request.conversation_name or f"{business.name} — {label}"
        outcome = CallOutcome(
            call_status="completed",
            ended_at=ended,
            call_duration=duration,
            call_control_id=ids.call_control_id,
            conversation_id=ids.conversation_id,
            conversation_name=name,
            cost=round(math.ceil(duration / 60) * self.world.cost_per_minute, 4),
            voicemail=kind == "voicemail",
        )
        placement = Placement(ids.call_control_id, start, ids.conversation_id, outcome)
        return _Placed(request.idempotency_key, target, "phone_call", placement, messages)

    def _sms(
        self,
        request: CallRequest,
        target: str,
        business: Business | None,
        rng: random.Random,
        ids: _Ids,
    ) -> _Placed:
        delivered = request.placed_at + _secs(rng.uniform(1, 4))
        text = (request.text or "").strip()
        messages = [TranscriptMessage("assistant", text, delivered)]
        if business is not None and business.sms_reply:
            replied = delivered + _secs(rng.uniform(45, 240))
            messages.append(TranscriptMessage("user", business.sms_reply, replied))
        label = business.name if business is not None else target
        outcome = CallOutcome(
            call_status="completed",
            ended_at=messages[-1].sent_at,
            call_control_id=ids.call_control_id,
            conversation_id=ids.conversation_id,
            conversation_name=request.conversation_name or f"{label} — SMS",
            cost=self.world.cost_per_sms,
        )
        placement = Placement(ids.call_control_id, request.placed_at, ids.conversation_id, outcome)
        return _Placed(request.idempotency_key, target, "sms_chat", placement, messages)


# -- records and the ledger -------------------------------------------------------------------


@dataclass(frozen=True)
class _Ids:
    call_control_id: str
    conversation_id: str

    @classmethod
    def of(cls, idempotency_key: str) -> _Ids:
        # Derived from the key, not random: a replay after a crash, or another process,
        # names the same call the same way.
        digest = hashlib.sha256(idempotency_key.encode("utf-8")).digest()
        control = "v3:sim-" + base64.urlsafe_b64encode(digest[:18]).decode("ascii")
        return cls(control, str(uuid.UUID(bytes=digest[16:32], version=4)))


@dataclass(frozen=True)
class _Placed:
    key: str
    to: str
    channel: str
    placement: Placement
    messages: list[TranscriptMessage]

    def to_json(self) -> dict[str, Any]:
        outcome = self.placement.outcome
        return {
            "kind": "placement",
            "key": self.key,
            "to": self.to,
            "channel": self.channel,
            "call_control_id": self.placement.call_control_id,
            "placed_at": self.placement.placed_at.isoformat(),
            "conversation_id": self.placement.conversation_id,
            "outcome": None
            if outcome is None
            else {**asdict(outcome), "ended_at": outcome.ended_at.isoformat()},
            "messages": [
                {"role": m.role, "text": m.text, "sent_at": m.sent_at.isoformat()}
                for m in self.messages
            ],
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> _Placed:
        raw = entry.get("outcome")
        outcome = None
        if raw is not None:
            outcome = CallOutcome(**{**raw, "ended_at": datetime.fromisoformat(raw["ended_at"])})
        placement = Placement(
            call_control_id=entry["call_control_id"],
            placed_at=datetime.fromisoformat(entry["placed_at"]),
            conversation_id=entry.get("conversation_id"),
            outcome=outcome,
        )
        messages = [
            TranscriptMessage(m["role"], m["text"], datetime.fromisoformat(m["sent_at"]))
            for m in entry.get("messages", [])
        ]
        return cls(entry["key"], entry["to"], entry["channel"], placement, messages)


class _Ledger:
    """An append-only JSON-lines file shared by every provider instance that names it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0  # bytes already applied by this instance
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the simulator ledger {path}: {exc}") from None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        try:
            handle = open(self.path, "a+b")  # noqa: SIM115 - closed below, after unlocking
        except OSError as exc:
            message = f"cannot open the simulator ledger {self.path}: {exc}"
            raise ConfigurationError(message) from None
        with handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read_new(self, handle: IO[bytes]) -> list[dict[str, Any]]:
        handle.seek(self._offset)
        data = handle.read()
        *lines, tail = data.split(b"\n")
        entries: list[dict[str, Any]] = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                # Only a write torn by a crash produces this; the attempt it described was
                # never acknowledged, so skipping it is correct.
                log.warning("skipping a torn line in the simulator ledger %s", self.path)
                continue
            if isinstance(entry, dict) and entry.get("v") == _LEDGER_VERSION:
                entries.append(entry)
        consumed = len(data)
        if tail and fcntl is None:
            consumed -= len(tail)  # without a file lock it may be a write still in progress
        elif tail:
            log.warning("skipping a torn last line in the simulator ledger %s", self.path)
        self._offset += consumed
        return entries

    def append(self, handle: IO[bytes], entry: dict[str, Any]) -> None:
        line = json.dumps({"v": _LEDGER_VERSION, **entry}, sort_keys=True, ensure_ascii=False)
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        prefix = b""
        if end:
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                prefix = b"\n"  # end a torn line so this entry stays parseable
        try:
            handle.write(prefix + line.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            raise ProviderError(
                f"could not record the placement in the simulator ledger {self.path}: {exc}",
                retryable=True,
            ) from None
        self._offset = handle.tell()


# -- call mechanics ---------------------------------------------------------------------------

_UNANSWERED: dict[str, tuple[float, float]] = {
    # Seconds from dialling to the terminal status.
    "busy": (2.0, 6.0),
    "no-answer": (27.0, 33.0),  # rings out after about 30 s
    "failed": (0.5, 3.0),
    "canceled": (4.0, 12.0),
}
_STATUS: dict[str, CallStatus] = {
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}


def _secs(seconds: float) -> timedelta:
    # Tenths of a second keep timestamps readable and identical across platforms.
    return timedelta(seconds=round(seconds, 1))


def _normalised(number: str) -> str:
    try:
        return normalise_target(number)
    except ValidationError:
        return number


def _number_id(number: str) -> str:
    return "sim-number-" + number.lstrip("+")


def _bad_request(field: str, rule: str, value: object) -> ProviderError:
    return ProviderError(
        f"{field} {rule}, got {value!r}", status_code=422, code="invalid_request", detail=field
    )


def _check_spec(spec: AssistantSpec) -> None:
    if not spec.name.strip():
        raise _bad_request("name", "must not be empty", spec.name)
    if not spec.instructions.strip():
        raise _bad_request("instructions", "must not be empty", spec.instructions)


@dataclass(frozen=True)
class _Line:
    role: Literal["assistant", "user"]
    text: str
    think: float = 0.0  # extra silence before the line (the callee looking something up)


def _timed(
    lines: list[_Line], start: datetime, rng: random.Random
) -> tuple[list[TranscriptMessage], datetime]:
    cursor = start
    messages: list[TranscriptMessage] = []
    for line in lines:
        # Turn-taking gap (listening, speech recognition, the reply being voiced) plus any
        # time the speaker spends looking something up.
        cursor += _secs(line.think + rng.uniform(1.5, 4.0))
        messages.append(TranscriptMessage(line.role, line.text, cursor))
        cursor += _secs(len(line.text.split()) / 2.2)  # about 130 spoken words a minute
    return messages, cursor + _secs(rng.uniform(1.0, 3.0))


def _voicemail(business: Business, request: CallRequest, sender: str) -> list[_Line]:
    greeting = business.voicemail_greeting or (
        f"Hi, you've reached {business.name}. Please leave a message after the tone."
    )
    opening = (request.greeting or "").strip() or f"Hello, this is a message for {business.name}."
    message = (
        f"{opening} Sorry I missed you. I'll try you again later, "
        f"or you can call us back at {_spoken_number(sender)}. Thank you."
    )
    return [_Line("user", greeting), _Line("assistant", message, think=1.0)]


def _spoken_number(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


# -- the conversation -------------------------------------------------------------------------

Topic = Literal["quote", "availability", "reminder"]
_TOPICS: tuple[Topic, ...] = ("quote", "availability", "reminder")
_TOPIC_WORDS: dict[Topic, re.Pattern[str]] = {
    "quote": re.compile(
        r"\b(quot(?:e|es|ed|ing)|pric(?:e|es|ing)|costs?|rates?|per[- ](?:person|head)|estimate)\b",
        re.IGNORECASE,
    ),
    "availability": re.compile(
        r"\b(availab\w*|slots?|openings?|vacanc\w*|capacity|reserv\w*|host)\b", re.IGNORECASE
    ),
    "reminder": re.compile(r"\b(remind\w*|appointments?)\b", re.IGNORECASE),
}
_MONEY = re.compile(
    r"\$\s?(?P<dollars>\d{1,3}(?:,\d{3})+|\d+)(?P<cents>\.\d{1,2})?"
    r"|\b(?P<words>\d+(?:\.\d{1,2})?)\s+(?:dollars|USD)\b",
    re.IGNORECASE,
)
_UNIT_AFTER = re.compile(
    r"^\s*(?:/|per|an?)\s*(person|head|guest|plate|hour|night|day|event)\b", re.IGNORECASE
)
_NAME = r"[A-Z][\w&'’-]*(?:\s+(?:[A-Z][\w&'’.-]*|&|of|and|the))*"
_COMPANY = (
    re.compile(rf"\bfrom\s+(?:the\s+)?({_NAME})"),
    re.compile(rf"\(\s*({_NAME})\s*\)"),
    re.compile(rf"({_NAME})(?:'s|’s)\s+(?:quote|offer|price)"),
    re.compile(rf"({_NAME})\s+(?:quoted|offered|charges|charged)\b"),
)
_NEGOTIATION_WORDS = re.compile(
    r"\b(beat|match|competitor\w*|lower|better|negotiat\w*|leverage|discount\w*|undercut)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(?:(?:please|then|also|and|finally|first|next),?\s+)*"
    r"(ask|find out|check|confirm|remind|request|get)\b\s*(.*?)[.!?]*$",
    re.IGNORECASE | re.DOTALL,
)
_OBJECT = re.compile(
    r"^(?:them|him|her|the\s+[\w-]+(?:\s+[\w-]+)?|each\s+[\w-]+)\s+"
    r"(?=(?:whether|if|for|about|of|that|to|what|when|where|how|which|who)\b)",
    re.IGNORECASE,
)
_PRONOUNS = {
    "they're": "you're",
    "they'll": "you'll",
    "they've": "you've",
    "they'd": "you'd",
    "they": "you",
    "them": "you",
    "their": "your",
    "theirs": "yours",
    "themselves": "yourselves",
}
_SECOND_PERSON = re.compile(r"\b(you|your|yours|yourself)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(" + "|".join(map(re.escape, _PRONOUNS)) + r")\b", re.IGNORECASE)
_EVENT = re.compile(
    r"\bfor\s+(an?\s[^.?!;]{0,60}?\b(?:event|party|wedding|lunch|luncheon|dinner|reception|"
    r"meeting|gathering|celebration|conference|banquet)\b"
    r"(?:\s+on\s+(?:[A-Z][a-z]+day(?:,?\s+[A-Z][a-z]+\s+\d{1,2}(?:st|nd|rd|th)?)?"
    r"|[A-Z][a-z]+\s+\d{1,2}(?:st|nd|rd|th)?))?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Mention:
    """A competitor's price as the instructions state it."""

    amount: Decimal
    unit: str | None
    company: str | None

    def spoken(self) -> str:
        unit = f" per {self.unit}" if self.unit else ""
        source = f" from {self.company}" if self.company else " from another company"
        return f"We have a quote of {_money(self.amount)}{unit}{source}. Can you do better?"


def _conversation(
    business: Business, request: CallRequest, rng: random.Random
) -> tuple[list[_Line], str]:
    instructions = request.instructions or ""
    topics = _topics(instructions, business)
    asks = _asks(instructions, topics)
    mention = _competitor_mention(instructions)
    greeting = (request.greeting or "").strip() or "Hello, do you have a moment?"
    lines = [_Line("assistant", greeting), _Line("user", _opener(business, rng))]
    closing: list[str] = []
    label = "call"
    extras_said = False
    for index, topic in enumerate(topics):
        ask = asks.get(topic)
        if ask is None:
            ask = _canned_ask(topic, instructions)
        elif index == 0 and topic != "reminder":
            ask = _with_occasion(ask, instructions)
        lines.append(_Line("assistant", ask))
        answer, think, summary = _answer(topic, business, rng)
        if not extras_said and business.extras:
            answer = " ".join([answer, *business.extras])
            extras_said = True
        lines.append(_Line("user", answer, think=think))
        if topic == "quote" and business.quote is not None:
            label = "baseline quote"
            price = business.quote.price
            if mention is not None:
                label = "negotiation"
                lines.append(_Line("assistant", mention.spoken()))
                # The callee knows the competitor's price only from what was just said.
                heard = _heard_price(lines)
                reply, price = _respond(business.quote, heard, rng)
                lines.append(_Line("user", reply, think=rng.uniform(10, 30)))
            summary = f"So to confirm, that's {_money(price)}{_per(business.quote)}."
        elif label == "call":
            label = _LABELS[topic]
        if summary:
            closing.append(summary)
    if not topics:
        lines.append(_Line("assistant", asks.get("other") or "I have a quick question."))
        lines.append(_Line("user", "I'm sorry, I don't think we can help with that."))
    closing.append("Thank you for your time. Goodbye!")
    lines.append(_Line("assistant", " ".join(closing)))
    farewell = ("Thanks, bye!", "You're welcome. Goodbye!", "Thanks for calling. Have a good day!")
    lines.append(_Line("user", rng.choice(farewell)))
    return lines, label


_LABELS: dict[Topic, str] = {
    "quote": "quote request",
    "availability": "availability check",
    "reminder": "appointment reminder",
}


def _topics(instructions: str, business: Business) -> list[Topic]:
    asked = [t for t in _TOPICS if _TOPIC_WORDS[t].search(instructions)]
    if asked:
        return asked
    # Instructions that name no subject: the callee talks about what it knows.
    return [t for t in _TOPICS if getattr(business, t) is not None]


_ABBREVIATION = re.compile(
    r"\b(?:Dr|Mr|Mrs|Ms|Prof|St|Ave|Co|Inc|Ltd|Jr|Sr|vs|approx|e\.g|i\.e)\.$", re.IGNORECASE
)


def _sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for line in text.splitlines():
        for piece in re.split(r"(?<=[.!?])\s+", line.strip()):
            if sentences and _ABBREVIATION.search(sentences[-1]) and piece:
                sentences[-1] += " " + piece  # "Dr. Lee" does not end a sentence
            elif piece:
                sentences.append(piece)
    return sentences


def _asks(instructions: str, topics: list[Topic]) -> dict[str, str]:
    """What the assistant asks, per topic: the instructions' imperative sentences ("Ask
    whether they...") turned into questions to the callee. Sentences about prices or
    negotiation are left to the leverage line, so a baseline call never names a price."""
    grouped: dict[str, list[str]] = {}
    for sentence in _sentences(instructions):
        if _MONEY.search(sentence) or _NEGOTIATION_WORDS.search(sentence):
            continue
        question = _as_question(sentence)
        if question is None:
            continue
        topic: str = next((t for t in _TOPICS if _TOPIC_WORDS[t].search(sentence)), "")
        if topic not in topics:
            topic = topics[0] if topics else "other"
        grouped.setdefault(topic, []).append(question)
    asks: dict[str, str] = {}
    for topic, questions in grouped.items():
        # Later questions in the same turn are chained ("And could you ...") as people do.
        chained = questions[:1]
        for question in questions[1:3]:
            follows_question = chained[-1].endswith("?") and question.startswith("Could")
            chained.append("And c" + question[1:] if follows_question else question)
        text = " ".join(chained)
        if "?" not in text and topic in _FOLLOW_UP:
            text += " " + _FOLLOW_UP[topic]
        asks[topic] = text
    return asks


_FOLLOW_UP: dict[str, str] = {
    "quote": "What would your price be?",
    "availability": "Do you have anything open?",
    "reminder": "Will you be able to make it?",
}


def _as_question(sentence: str) -> str | None:
    match = _IMPERATIVE.match(sentence.strip())
    if match is None or _SECOND_PERSON.search(sentence):
        # "Confirm the price before you hang up" is about the assistant's conduct, not a
        # question for the callee.
        return None
    verb = match.group(1).lower()
    rest = _OBJECT.sub("", match.group(2).strip()).strip()
    if not rest:
        return None
    lower = rest.lower()
    if verb == "remind":
        joiner = "" if lower.startswith(("of ", "about ", "that ")) else "about "
        text = f"I'm calling to remind you {joiner}{rest}."
    elif verb == "confirm":
        text = f"Could you confirm {rest}?"
    elif verb in ("request", "get"):
        text = f"Could you give me {rest}?"
    elif lower.startswith("for "):
        text = f"Could you give me {rest[4:]}?"
    elif lower.startswith("to "):
        text = f"Could you {rest[3:]}?"
    else:
        text = f"Could you tell me {rest}?"
    return _PRONOUN.sub(lambda m: _PRONOUNS[m.group(1).lower()], text)


def _with_occasion(ask: str, instructions: str) -> str:
    # The occasion ("a 50-person corporate event on March 20") usually carries injected
    # variables, so the assistant states it before its questions.
    event = _EVENT.search(instructions)
    if event is None or event.group(1).lower() in ask.lower():
        return ask
    return f"I'm calling about {event.group(1)}. {ask}"


def _canned_ask(topic: Topic, instructions: str) -> str:
    event = _EVENT.search(instructions)
    occasion = f" for {event.group(1)}" if event else ""
    if topic == "quote":
        return f"I'd like to get a quote{occasion}. What would your price be?"
    if topic == "availability":
        return f"I'm checking availability{occasion}. Do you have anything open?"
    return "I'm calling to remind you about your upcoming appointment. Will you be able to make it?"


def _opener(business: Business, rng: random.Random) -> str:
    personal = (
        business.reminder is not None and business.quote is None and (business.availability is None)
    )
    if personal:
        first = business.name.split()[0]
        return rng.choice((f"Hello, this is {first}.", "Hello?", f"Hi, {first} speaking."))
    staff = rng.choice(_STAFF)
    return rng.choice(
        (
            f"{business.name}, this is {staff}. How can I help you?",
            f"Sure. You've reached {business.name}, {staff} speaking. What can I do for you?",
            f"Hi, yes, this is {staff} at {business.name}. How can I help?",
        )
    )


def _answer(topic: Topic, business: Business, rng: random.Random) -> tuple[str, float, str]:
    """The callee's answer, how long it thinks first, and the assistant's closing summary."""
    if topic == "quote":
        if business.quote is None:
            return (
                "I'm afraid I can't give you a price over the phone; we'd have to send you "
                "a written quote.",
                rng.uniform(1, 3),
                "",
            )
        price = f"{_money(business.quote.price)}{_per(business.quote)}"
        return (
            rng.choice(
                (
                    f"For that we'd charge {price}.",
                    f"That would be {price}.",
                    f"Our price for that is {price}.",
                )
            ),
            rng.uniform(10, 30),
            "",
        )
    if topic == "availability":
        facts = business.availability
        if facts is None:
            return "I'd have to check the calendar and get back to you on that.", 2.0, ""
        if not facts.available:
            return (
                "I'm sorry, we're fully booked for that.",
                rng.uniform(4, 12),
                "Understood, thanks for letting me know.",
            )
        if not facts.slots:
            return "Yes, we have availability.", rng.uniform(4, 12), "Great, I'll pass that on."
        return (
            f"Yes, we have availability. We could offer {_listing(facts.slots)}.",
            rng.uniform(4, 12),
            "Great, I'll pass those times on.",
        )
    facts_r = business.reminder
    if facts_r is None:
        return "Sorry, I don't know anything about an appointment.", 1.0, ""
    if facts_r.confirms:
        return (
            rng.choice(("Yes, I'll be there.", "Yes, I'll be there. Thanks for the reminder.")),
            rng.uniform(0.5, 2),
            "Great, we'll see you then.",
        )
    if facts_r.reschedule_to:
        return (
            f"Actually, I can't make it. Could we reschedule? Would {facts_r.reschedule_to} "
            "work instead?",
            rng.uniform(1, 4),
            f"Of course. I'll ask the office to move it to {facts_r.reschedule_to}, "
            "and they'll call you to confirm.",
        )
    return (
        "Actually, I can't make it. Could we reschedule?",
        rng.uniform(1, 4),
        "Of course. I'll ask the office to reschedule, and they'll call you to confirm.",
    )


def _respond(quote: Quote, heard: Decimal | None, rng: random.Random) -> tuple[str, Decimal]:
    """The callee's reaction to a competitor's price: what it says and the price it offers."""
    own = quote.price
    per = _per(quote)
    if heard is None:
        return f"I'm not sure what you mean. Our price is {_money(own)}{per}.", own
    if heard >= own:
        return f"We're already below that at {_money(own)}{per}.", own
    if quote.on_competitor == "beat":
        offer = max(quote.lowest, heard - quote.beat_by)
    elif quote.on_competitor == "match":
        offer = max(quote.lowest, heard)
    else:
        offer = own
    if offer >= own:
        return (
            rng.choice(
                (
                    f"I'm sorry, we can't go lower than {_money(own)}{per}.",
                    f"I'm afraid our price stays at {_money(own)}{per}.",
                )
            ),
            own,
        )
    if offer < heard:
        return f"We can beat that. We can do {_money(offer)}{per}.", offer
    if offer == heard:
        return f"We can't beat that, but we can match it at {_money(offer)}{per}.", offer
    return (
        f"We can't go as low as {_money(heard)}, but we can come down to {_money(offer)}{per}."
    ), offer


def _competitor_mention(instructions: str) -> _Mention | None:
    candidates = [s for s in _sentences(instructions) if _MONEY.search(s)]
    if not candidates:
        return None
    leverage = re.compile(r"\b(quot\w*|offer\w*|competitor\w*|best|so far|beat|match)\b", re.I)
    sentence = next((s for s in candidates if leverage.search(s)), candidates[0])
    match = _MONEY.search(sentence)
    assert match is not None
    unit = _UNIT_AFTER.match(sentence[match.end() :])
    return _Mention(_amount(match), unit.group(1).lower() if unit else None, _company(sentence))


def _company(sentence: str) -> str | None:
    for pattern in _COMPANY:
        found = pattern.search(sentence)
        if found:
            words = found.group(1).rstrip(".,;:").split()
            while words and words[-1].lower() in ("of", "and", "the", "&"):
                words.pop()
            if words:
                return " ".join(words)
    return None


def _heard_price(lines: list[_Line]) -> Decimal | None:
    for line in reversed(lines):
        if line.role == "assistant":
            match = _MONEY.search(line.text)
            return _amount(match) if match else None
    return None


def _amount(match: re.Match[str]) -> Decimal:
    if match.group("words"):
        return Decimal(match.group("words"))
    return Decimal(match.group("dollars").replace(",", "") + (match.group("cents") or ""))


def _money(amount: Decimal) -> str:
    cents = amount.quantize(Decimal("0.01"))
    if cents == cents.to_integral_value():
        return f"${int(cents):,}"
    return f"${cents:,.2f}"


def _per(quote: Quote) -> str:
    return f" per {quote.unit}"


def _listing(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
