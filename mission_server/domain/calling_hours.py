"""Calling hours: every call is placed inside the recipient's local calling window.

The window is the target's policy (default for business targets: Monday–Friday 09:00–17:00)
always intersected with a hard bound of 08:00–21:00 local time. A number that maps to several
zones must be inside the window in every one of them at once. A time outside the window moves
to the next opening; the caller records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mission_server.errors import ValidationError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HARD_START = time(8, 0)
HARD_END = time(21, 0)
# How far ahead to look for a common opening before declaring the zones incompatible.
_SEARCH_DAYS = 14


@dataclass(frozen=True)
class CallingWindow:
    """Local days and hours in which calls may be placed. ``end`` is exclusive."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday=0
    start: time = time(9, 0)
    end: time = time(17, 0)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, field: str = "calling_window") -> CallingWindow:
        """Build from ``{"days": ["mon", ...], "start": "09:00", "end": "17:00"}``.

        Missing keys take the business-hours default.

        Raises:
            ValidationError: unknown day name, malformed time, or start not before end.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValidationError(field, "must be an object with days, start and end", data)
        unknown = set(data) - {"days", "start", "end"}
        if unknown:
            raise ValidationError(field, "accepts only the keys days, start, end", sorted(unknown))
        days = cls().days
        if "days" in data:
            raw_days = data["days"]
            if not isinstance(raw_days, list | tuple) or not raw_days:
                raise ValidationError(f"{field}.days", "must be a non-empty list", raw_days)
            parsed = []
            for item in raw_days:
                key = str(item).strip().lower()[:3]
                if key not in DAY_NAMES:
                    raise ValidationError(
                        f"{field}.days", "must name days as mon, tue, wed, thu, fri, sat, sun", item
                    )
                parsed.append(DAY_NAMES.index(key))
            days = tuple(sorted(set(parsed)))
        start = _parse_time(data.get("start", "09:00"), f"{field}.start")
        end = _parse_time(data.get("end", "17:00"), f"{field}.end")
        if start >= end:
            raise ValidationError(
                f"{field}.end", f"must be after start ({start:%H:%M})", data.get("end")
            )
        return cls(days=days, start=start, end=end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": [DAY_NAMES[d] for d in self.days],
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }

    def effective(self) -> tuple[time, time]:
        """The hours after intersecting with the 08:00–21:00 hard bound."""
        return max(self.start, HARD_START), min(self.end, HARD_END)


def _parse_time(value: Any, field: str) -> time:
    try:
        hours, minutes = str(value).strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        raise ValidationError(field, "must be a time as HH:MM (24-hour)", value) from None


def _local_window_bounds(
    day: date, zone: ZoneInfo, start: time, end: time
) -> tuple[datetime, datetime]:
    # fold=0 picks the first occurrence of an ambiguous local time; nonexistent times (spring
    # forward) cannot occur because the hard bound starts at 08:00, after every DST switch.
    opening = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
    closing = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
    return opening, closing


def is_inside(moment: datetime, zones: list[str], window: CallingWindow) -> bool:
    """True when ``moment`` is inside the window in every zone (no zones: always true)."""
    start, end = window.effective()
    for name in zones:
        local = moment.astimezone(ZoneInfo(name))
        if local.weekday() not in window.days or not (start <= local.time() < end):
            return False
    return True


def _next_opening_in_zone(moment: datetime, zone: ZoneInfo, window: CallingWindow) -> datetime:
    start, end = window.effective()
    local_day = moment.astimezone(zone).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opening, closing = _local_window_bounds(day, zone, start, end)
        if moment < closing:
            return max(moment, opening)
    raise AssertionError("a window with at least one day always opens within a week")


def next_allowed(moment: datetime, zones: list[str], window: CallingWindow) -> datetime:
    """The earliest time at or after ``moment`` inside the window in every zone.

    Raises:
        ValidationError: the zones share no calling hours at all.
    """
    moment = moment.astimezone(UTC)
    if not zones:
        return moment
    tzs = [ZoneInfo(z) for z in zones]
    limit = moment + timedelta(days=_SEARCH_DAYS)
    candidate = moment
    while candidate <= limit:
        if is_inside(candidate, zones, window):
            return candidate
        # Jump to the latest of the next openings; any earlier time is closed somewhere.
        later = max(_next_opening_in_zone(candidate, tz, window) for tz in tzs)
        if later == candidate:
            # Open in every zone's own next opening sense but not jointly: step past the
            # zone that is closed now.
            later = candidate + timedelta(minutes=1)
        candidate = later
    raise ValidationError(
        "timezone",
        f"has no calling hours in common across the target's zones ({', '.join(zones)}) within "
        f"{window.to_dict()['start']}–{window.to_dict()['end']} local; pass an explicit timezone",
        zones,
        show_value=False,
    )
