"""Calling hours: every call is placed inside the recipient's local calling window.

The window is the target's policy (default for business targets: Monday–Friday 09:00–17:00)
always intersected with a hard bound of 08:00–21:00 local time. A number that maps to several
zones must be inside the window in every one of them at once; an explicit timezone is one
more zone, so it narrows the window and never widens it. A target with no zone at all has no
calling hours that can be kept, and is refused (``targets.timezones_for_target``).

A provider may dial a little after it is asked to (Telnyx schedules its event a few seconds
ahead): the whole span from the request to the dial (``lead``) must be inside the window. A
time outside the window moves to the next opening; the caller records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mission_server.errors import ValidationError
from planner.types import CALLING_HOURS_END as HARD_END
from planner.types import CALLING_HOURS_START as HARD_START

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The 08:00–21:00 hard bound lives in planner.types: the spec refuses a window outside it.
# How far ahead to look for a common opening before declaring the zones incompatible.
_SEARCH_DAYS = 14
#: The longest lead a span check accepts. Between two open moments of the window there is
#: either no closed moment or a closed stretch of at least 10 hours (08:00–21:00 leaves 11 h
#: closed a day, one less across a DST switch), so a span shorter than this is inside the
#: window whenever both of its ends are.
MAX_LEAD = timedelta(hours=1)


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


def _require_zones(zones: list[str]) -> None:
    if not zones:
        raise ValidationError(
            "timezone",
            "is required: the target's local time cannot be known, so no calling hours can be "
            "kept; give the recipient's IANA timezone, e.g. America/Chicago",
            show_value=False,
        )


def is_inside(
    moment: datetime, zones: list[str], window: CallingWindow, lead: timedelta = timedelta(0)
) -> bool:
    """True when ``moment`` (and, with a ``lead``, everything up to ``moment + lead``) is
    inside the window in every zone.

    Raises:
        ValidationError: no zones (nothing to keep the window in).
        ValueError: ``lead`` is negative or longer than ``MAX_LEAD``.
    """
    _require_zones(zones)
    if lead < timedelta(0) or lead > MAX_LEAD:
        raise ValueError(f"lead must be between 0 and {MAX_LEAD}, not {lead}")
    return _inside_at(moment, zones, window) and (
        not lead or _inside_at(moment + lead, zones, window)
    )


def _inside_at(moment: datetime, zones: list[str], window: CallingWindow) -> bool:
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


def next_allowed(
    moment: datetime, zones: list[str], window: CallingWindow, lead: timedelta = timedelta(0)
) -> datetime:
    """The earliest time at or after ``moment`` inside the window in every zone, together with
    the ``lead`` after it (``is_inside``).

    Raises:
        ValidationError: no zones, or the zones share no calling hours at all.
        ValueError: ``lead`` out of range (``is_inside``).
    """
    moment = moment.astimezone(UTC)
    _require_zones(zones)
    tzs = [ZoneInfo(z) for z in zones]
    limit = moment + timedelta(days=_SEARCH_DAYS)
    candidate = moment
    while candidate <= limit:
        if is_inside(candidate, zones, window, lead):
            return candidate
        # Open now but closing within the lead: look from the end of the lead.
        probe = candidate + lead if _inside_at(candidate, zones, window) else candidate
        # Jump to the latest of the next openings; any earlier time is closed somewhere.
        later = max(_next_opening_in_zone(probe, tz, window) for tz in tzs)
        if later <= candidate:
            # Open in every zone's own next opening sense but not jointly: step past the
            # zone that is closed now.
            later = candidate + timedelta(minutes=1)
        candidate = later
    raise ValidationError(
        "timezone",
        f"has no calling hours in common across the target's zones ({', '.join(zones)}) within "
        f"{window.to_dict()['start']}–{window.to_dict()['end']} local; the call cannot be placed "
        "(an explicit timezone only narrows the window further)",
        zones,
        show_value=False,
    )
