"""One factory per ``Provider`` implementation, for the conformance suite
(``tests/mission_server/telephony/test_provider_conformance.py``).

A kit builds a provider on a small platform of its own and knows how to drive that platform
where the protocol cannot: let time pass or end a call, count what was really placed, restart
the provider as a crashed process would, and make the platform fail. The tests only talk to
``kit.provider`` through the protocol.

Every platform has the same shape: the account numbers ``FROM`` and ``SPARE``, a callee at
``ANSWERS`` who picks up and one at ``BUSY`` who never does.

Imported as ``tests.support.provider_kits``.
"""

from __future__ import annotations

import errno
import json
import os
import random
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from mission_server.telephony.base import AssistantSpec, CallRequest, Placement, Provider
from mission_server.telephony.scripted import ScriptedProvider
from mission_server.telephony.simulated.provider import SimulatedProvider
from mission_server.telephony.simulated.world import World
from mission_server.telephony.telnyx.provider import TelnyxProvider
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount, error

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
FROM, SPARE = "+13125550100", "+13125550199"
ANSWERS, BUSY = "+13125550101", "+13125550102"
INVALID = "+1555"  # not a dialable number
SPEC = AssistantSpec(name="Conformance", instructions="Ask for a quote.", greeting="Hello!")


class ProviderKit:
    """A provider on a platform of its own, with an assistant (``assistant_ref``) created."""

    name: ClassVar[str]
    provider: Provider
    assistant_ref: str

    def request(self, key: str, to: str = ANSWERS) -> CallRequest:
        """A phone call from ``FROM`` to ``to`` under idempotency key ``<event id>:<attempt>``."""
        event_id, _, attempt = key.rpartition(":")
        return CallRequest(
            idempotency_key=key,
            scheduled_event_id=event_id,
            attempt_number=int(attempt),
            channel="phone_call",
            from_number=FROM,
            to=to,
            assistant_ref=self.assistant_ref,
            placed_at=T0,
            instructions=SPEC.instructions,
            greeting=SPEC.greeting,
            text=None,
            dynamic_variables={},
            instructions_template=SPEC.instructions,
            greeting_template=SPEC.greeting,
        )

    def placements_of(self, key: str) -> int:
        """How many calls the platform really placed under this idempotency key."""
        raise NotImplementedError

    def restart(self) -> Provider:
        """A new provider instance, as after a crash: nothing of the old one's memory, only
        what the platform itself keeps. It becomes ``kit.provider``."""
        raise NotImplementedError

    def moment_during(self, placement: Placement) -> datetime:
        """Bring the call to a point where it is still going; return that moment."""
        raise NotImplementedError

    def moment_after(self, placement: Placement) -> datetime:
        """Let the call end; return a moment at or after its end."""
        raise NotImplementedError

    def outage(self) -> AbstractContextManager[None]:
        """While entered, the platform fails in a way that trying later can fix, after it may
        have acted (a placement made, but never acknowledged)."""
        raise NotImplementedError

    def close(self) -> None:
        return None


class _Timed(ProviderKit):
    """Providers that know a call's end when they place it (``Placement.outcome``)."""

    def _ended(self, placement: Placement) -> datetime:
        assert placement.outcome is not None, f"{self.name} places calls with their outcome"
        return placement.outcome.ended_at

    def moment_during(self, placement: Placement) -> datetime:
        # The last moment before the end: the sharpest "still going".
        return self._ended(placement) - timedelta(seconds=1)

    def moment_after(self, placement: Placement) -> datetime:
        return self._ended(placement)


class ScriptedKit(_Timed):
    name = "scripted"

    def __init__(self, tmp_path: Path) -> None:
        self.provider = ScriptedProvider(
            outcomes={BUSY: ["busy"]}, numbers=[FROM, SPARE], with_conversations=True
        )
        self.assistant_ref = self.provider.create_assistant(SPEC)

    def placements_of(self, key: str) -> int:
        assert isinstance(self.provider, ScriptedProvider)
        return self.provider.placed.count(key)

    def restart(self) -> Provider:
        pytest.fail("ScriptedProvider keeps nothing outside the instance: it cannot restart")

    @contextmanager
    def outage(self) -> Iterator[None]:
        pytest.fail("ScriptedProvider has no failure to inject")
        yield


WORLD = {
    "seed": 3,
    "start_time": T0.isoformat(),
    "numbers": [FROM, SPARE],
    "businesses": [
        {"name": "Answers Catering", "phone": ANSWERS, "quote": {"price": 65}},
        {"name": "Busy Bistro", "phone": BUSY, "answers": ["busy"]},
    ],
}


class SimulatedKit(_Timed):
    """The simulator over a small world, with a ledger: the ledger is its platform."""

    name = "simulated"

    def __init__(self, tmp_path: Path) -> None:
        self.world = World.from_dict(WORLD)
        self.ledger = tmp_path / "simulator" / "ledger.jsonl"
        self.provider = SimulatedProvider(self.world, ledger_path=self.ledger)
        self.assistant_ref = self.provider.create_assistant(SPEC)

    def placements_of(self, key: str) -> int:
        # The ledger, not the instance's index (which keeps one placement per key by design).
        entries = [json.loads(line) for line in self.ledger.read_text().splitlines() if line]
        return sum(1 for e in entries if e.get("kind") == "placement" and e.get("key") == key)

    def restart(self) -> Provider:
        self.provider = SimulatedProvider(self.world, ledger_path=self.ledger)
        return self.provider

    @contextmanager
    def outage(self) -> Iterator[None]:
        # The only failure the simulator can meet: its ledger cannot be made durable. The line
        # is written, the fsync fails: placed, but never acknowledged.
        def disk_full(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "fsync", disk_full)
            yield


class TelnyxKit(ProviderKit):
    """``TelnyxProvider`` over ``TelnyxAccount``, a stateful fake of the Telnyx API."""

    name = "telnyx"

    def __init__(self, tmp_path: Path) -> None:
        self.account = TelnyxAccount([FROM, SPARE], answers={BUSY: "busy"}, clock=lambda: T0)
        self.api = FakeTelnyx(fallback=self.account)
        self._clients: list[TelnyxProvider] = []
        self.provider = self._client()
        self.assistant_ref = self.provider.create_assistant(SPEC)

    def _client(self) -> TelnyxProvider:
        client = TelnyxProvider(
            API_KEY,
            transport=httpx.MockTransport(self.api),
            sleep=lambda _: None,
            clock=lambda: T0,
            rng=random.Random(0),
        )
        self._clients.append(client)
        return client

    def placements_of(self, key: str) -> int:
        return self.account.keys().count(key)

    def restart(self) -> Provider:
        self.provider = self._client()
        return self.provider

    def moment_during(self, placement: Placement) -> datetime:
        return self.account.ring(placement.call_control_id)

    def moment_after(self, placement: Placement) -> datetime:
        return self.account.finish(placement.call_control_id)

    @contextmanager
    def outage(self) -> Iterator[None]:
        # Telnyx acts on every request but each answer is lost: HTTP 503.
        def unavailable(request: httpx.Request) -> httpx.Response:
            self.account(request)
            return error(503, "10007", "Unexpected error", "Service unavailable")

        self.api.fallback = unavailable
        try:
            yield
        finally:
            self.api.fallback = self.account

    def close(self) -> None:
        for client in self._clients:
            client.close()


KITS: dict[str, type[ProviderKit]] = {
    kit.name: kit for kit in (ScriptedKit, SimulatedKit, TelnyxKit)
}
