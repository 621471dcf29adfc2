"""Time sources. Every timestamp in the system comes from a ``Clock``.

Three implementations:

* ``SystemClock`` – wall time, for production.
* ``VirtualClock`` – time moves only when told to; the discrete-event loop jumps it to the
  next due time, so a mission with five-minute retries finishes in milliseconds of wall time
  while keeping realistic timestamps.
* ``AcceleratedClock`` – simulated time that runs ``speed`` times faster than wall time from a
  chosen start, for a long-running server in simulation (an agent sees a 5-minute retry happen
  in 5 seconds at speed 60). On a database it follows the time every process on that database
  shares, and it jumps over waits when nothing is due (``engine.simtime``): a rehearsal never
  waits a night or a weekend for calling hours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from mission_server.errors import ValidationError

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Anchor:
    """Accelerated time: simulated ``sim_at`` at wall time ``wall_at`` (Unix seconds), running
    ``speed`` times faster than wall time."""

    sim_at: datetime
    wall_at: float
    speed: float

    def at(self, wall: float) -> datetime:
        """The simulated time at wall time ``wall``."""
        return self.sim_at + timedelta(seconds=(wall - self.wall_at) * self.speed)


class AcceleratedClock:
    """Simulated time starting at ``start`` and running ``speed`` times faster than wall time.

    ``follow`` shares the time with other processes: it reads the current ``Anchor`` (from the
    database, see ``engine.simtime``), asked at most every ``refresh_secs`` of wall time, so a
    jump made anywhere is seen here within that. The time never goes backwards in one process.
    """

    kind = "accelerated"

    def __init__(
        self,
        start: datetime,
        speed: float = 60.0,
        *,
        follow: Callable[[], Anchor | None] | None = None,
        refresh_secs: float = 0.25,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValidationError("sim_speed", "must be greater than 0", speed)
        self._wall = wall
        self._anchor = Anchor(ensure_utc(start, "start"), wall(), float(speed))
        self._latest = self._anchor.sim_at
        self._follow = follow
        self._refresh_secs = refresh_secs
        self._refreshed = wall()
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._anchor.speed

    def wall(self) -> float:
        """The wall time this clock runs on (Unix seconds)."""
        return self._wall()

    @property
    def following(self) -> bool:
        """The time is read from a shared source (``follow``)."""
        return self._follow is not None

    @property
    def anchor(self) -> Anchor:
        return self._anchor

    def adopt(self, anchor: Anchor) -> None:
        """Run from ``anchor`` from now on (the time this clock shows never goes back)."""
        with self._lock:
            self._anchor = anchor
            self._refreshed = self._wall()

    def follow(self, source: Callable[[], Anchor | None] | None) -> None:
        """Read the shared anchor from ``source`` (None: run on this process's anchor alone)."""
        with self._lock:
            self._follow = source

    def now(self) -> datetime:
        wall = self._wall()
        source = self._follow
        if source is not None and wall - self._refreshed >= self._refresh_secs:
            self._refreshed = wall
            try:
                anchor = source()
            except Exception:  # the database is briefly unavailable: keep the last anchor
                log.warning("could not read the shared simulated time", exc_info=True)
                anchor = None
            if anchor is not None:
                self._anchor = anchor
        with self._lock:
            value = self._anchor.at(wall)
            if value > self._latest:
                self._latest = value
            return self._latest

    def wall_seconds_until(self, moment: datetime) -> float:
        return (moment - self.now()).total_seconds() / self.speed

    def jump_to(self, moment: datetime) -> bool:
        """Move this clock (alone) to ``moment`` if that is later than now; True if it moved.
        A clock shared through the database jumps with ``engine.simtime.SimTime.jump``."""
        moment = ensure_utc(moment, "moment")
        with self._lock:
            if moment <= self._anchor.at(self._wall()):
                return False
            self._anchor = Anchor(moment, self._wall(), self._anchor.speed)
            self._latest = max(self._latest, moment)
            return True
