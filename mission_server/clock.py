"""Time sources. Every timestamp in the system comes from a ``Clock``.

Three implementations:

* ``SystemClock`` – wall time, for production.
* ``VirtualClock`` – time moves only when told to; the discrete-event loop jumps it to the
  next due time, so a mission with five-minute retries finishes in milliseconds of wall time
  while keeping realistic timestamps.
* ``AcceleratedClock`` – simulated time that runs ``speed`` times faster than wall time from a
  chosen start, for a long-running server in simulation (an agent sees a 5-minute retry happen
  in 5 seconds at speed 60).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from mission_server.errors import ValidationError


def ensure_utc(value: datetime, field: str = "datetime") -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Raises:
        ValidationError: ``value`` is naive (has no timezone).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must include a timezone offset (e.g. Z or +00:00)", value)
    return value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def wall_seconds_until(self, moment: datetime) -> float:
        """How many real seconds until this clock reaches ``moment`` (may be negative)."""
        ...


class SystemClock:
    """Wall-clock time."""

    kind = "system"
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall_seconds_until(self, moment: datetime) -> float:
        return (moment - self.now()).total_seconds()


class VirtualClock:
    """A clock that moves only when advanced. Never goes backwards."""

    kind = "virtual"
    speed = float("inf")

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def wall_seconds_until(self, moment: datetime) -> float:
        return 0.0

    def advance_to(self, moment: datetime) -> datetime:
        """Move to ``moment`` if it is later than now; return the (possibly unchanged) time."""
        moment = ensure_utc(moment, "moment")
        with self._lock:
            if moment > self._now:
                self._now = moment
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds``."""
        return self.advance_to(self._now + timedelta(seconds=seconds))


class AcceleratedClock:
    """Simulated time starting at ``start`` and running ``speed`` times faster than wall time."""

    kind = "accelerated"

    def __init__(self, start: datetime, speed: float = 60.0) -> None:
        if speed <= 0:
            raise ValidationError("sim_speed", "must be greater than 0", speed)
        self._start = ensure_utc(start, "start")
        self.speed = float(speed)
        self._wall_start = time.monotonic()

    def now(self) -> datetime:
        elapsed = time.monotonic() - self._wall_start
        return self._start + timedelta(seconds=elapsed * self.speed)

    def wall_seconds_until(self, moment: datetime) -> float:
        return (moment - self.now()).total_seconds() / self.speed
