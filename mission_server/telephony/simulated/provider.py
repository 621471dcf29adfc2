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

import logging
import math
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from mission_server.clock import ensure_utc
from mission_server.domain.targets import normalise_target
from mission_server.errors import ProviderError, ValidationError
from mission_server.telephony.base import (
    AssistantSpec,
    CallOutcome,
    CallRequest,
    NumberInfo,
    Placement,
    TranscriptMessage,
)
from mission_server.telephony.simulated.asking import asked_conversation
from mission_server.telephony.simulated.dialogue import (
    _conversation,
    _secs,
    _timed,
    _voicemail,
)
from mission_server.telephony.simulated.ledger import (
    _STATUS,
    _UNANSWERED,
    _Ids,
    _Ledger,
    _Placed,
)
from mission_server.telephony.simulated.world import Business, World, load_world

__all__ = ["SimulatedProvider"]

log = logging.getLogger(__name__)


#: The simulator's reason for an attempt to a number that is no business of its world.
NOT_IN_WORLD = (
    "{target} is not a business in the simulated world, so nobody answers it; add it to a "
    "world file (--world or MISSION_SIM_WORLD) to rehearse this call"
)


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

    def release_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        """Stop routing the number to the assistant; a no-op when it is routed elsewhere or
        nowhere.

        Raises:
            ProviderError: the number is not on the account (404).
        """
        phone = _normalised(number.phone_number)
        with self._synced() as ledger:
            if phone not in self._account:
                raise ProviderError(
                    f"phone number {number.phone_number} is not on the simulated account",
                    status_code=404,
                    code="number_not_found",
                )
            if self._assigned.get(phone) != assistant_ref:
                return
            entry = {"kind": "release", "number": phone, "assistant_ref": assistant_ref}
            self._write(ledger, entry)

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

    def find_attempt(self, idempotency_key: str, since: datetime | None = None) -> Placement | None:
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
        elif kind == "release":
            if self._assigned.get(entry["number"]) == entry["assistant_ref"]:
                del self._assigned[entry["number"]]
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
        if business is not None:
            try:
                for field in request.asks:
                    business.check_field(field.name, field.type, field.enum)
            except ValidationError as exc:
                raise ProviderError(
                    f"the simulated world cannot answer this call: {exc}",
                    status_code=422,
                    code="world_fact_type",
                ) from None
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
                # Said so, or a rehearsal of one's own numbers just looks like nobody answered.
                errors=() if business is not None else (NOT_IN_WORLD.format(target=target),),
            )
            placement = Placement(ids.call_control_id, start, None, outcome)
            return _Placed(request.idempotency_key, target, "phone_call", placement, [])
        assert business is not None  # unknown numbers never answer
        if kind == "voicemail":
            picked_up = start + _secs(rng.uniform(15, 25))
            lines = _voicemail(business, request, sender)
            if request.asks:  # a voicemail states none of the facts asked for
                lines = [replace(line, facts={}) for line in lines]
            label = "voicemail"
        else:
            picked_up = start + _secs(rng.uniform(4, 14))
            if request.asks:
                lines, label = asked_conversation(business, request, rng)
            else:
                lines, label = _conversation(business, request, rng)
        messages, ended = _timed(lines, picked_up, rng)
        duration = round((ended - picked_up).total_seconds(), 1)
        name = request.conversation_name or f"{business.name} — {label}"
        if label == "declined" or label.startswith("call back requested"):
            # What the business decided is what the record must show: it names the
            # conversation over the requested name ("<Business> — declined").
            name = f"{business.name} — {label}"
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
