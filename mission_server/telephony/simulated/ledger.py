"""The placement ledger: every simulated placement appended to a JSON-lines file and
fsynced before ``place_call`` returns, under an exclusive file lock, so another process (or the
same one after a crash) finds the attempt instead of placing it again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from mission_server.errors import ConfigurationError, ProviderError
from mission_server.telephony.base import (
    CallOutcome,
    CallStatus,
    Placement,
    TranscriptMessage,
)

try:  # POSIX only; elsewhere the ledger still works for a single process.
    import fcntl
except ImportError:  # pragma: no cover - exercised only on Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_LEDGER_VERSION = 1


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
                {
                    "role": m.role,
                    "text": m.text,
                    "sent_at": m.sent_at.isoformat(),
                    **({"facts": dict(m.facts)} if m.facts is not None else {}),
                }
                for m in self.messages
            ],
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> _Placed:
        raw = entry.get("outcome")
        outcome = None
        if raw is not None:
            outcome = CallOutcome(
                **{
                    **raw,
                    "ended_at": datetime.fromisoformat(raw["ended_at"]),
                    "errors": tuple(raw.get("errors") or ()),  # a JSON list in the ledger
                }
            )
        placement = Placement(
            call_control_id=entry["call_control_id"],
            placed_at=datetime.fromisoformat(entry["placed_at"]),
            conversation_id=entry.get("conversation_id"),
            outcome=outcome,
        )
        messages = [
            TranscriptMessage(
                m["role"], m["text"], datetime.fromisoformat(m["sent_at"]), m.get("facts")
            )
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
