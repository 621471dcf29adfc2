"""Call targets: phone numbers (normalised to E.164) and SIP URIs, and their timezones."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from mission_server.errors import ValidationError

_SIP_URI = re.compile(r"^sips?:[^@\s]+@[^@\s]+$", re.IGNORECASE)
_SIP_PARTS = re.compile(r"^(?P<scheme>sips?):(?P<user>[^@]+)@(?P<host>[^;?]+)", re.IGNORECASE)


def is_sip_uri(value: str) -> bool:
    return bool(_SIP_URI.match(value.strip()))


def normalise_sip_uri(value: str) -> str:
    """One spelling per SIP endpoint, so a do-not-call entry cannot be slipped past: the
    scheme lower-cased and ``sips`` read as ``sip``, the host (and port) lower-cased, URI
    parameters (``;transport=tcp``) and headers (``?subject=x``) dropped. The user part is kept
    as written: it is case-sensitive (RFC 3261 19.1.4)."""
    match = _SIP_PARTS.match(value.strip())
    if match is None:
        raise ValueError(f"not a SIP URI: {value[:80]}")
    return f"sip:{match['user']}@{match['host'].lower()}"


def normalise_target(value: str, field: str = "to") -> str:
    """Return the phone number in E.164 form, or the SIP URI normalised (``normalise_sip_uri``).

    Numbers without a leading ``+`` are read as US/Canada (NANP) numbers.

    Raises:
        ValidationError: not a valid phone number or SIP URI.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a phone number in E.164 form or a SIP URI", value)
    try:
        return _normalised(value.strip())
    except _NotATarget as refused:
        raise ValidationError(field, refused.rule, value) from None


class _NotATarget(Exception):
    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


@lru_cache(maxsize=20_000)
def _normalised(text: str) -> str:
    """``normalise_target`` of stripped text, read once per spelling (a campaign's numbers are
    normalised by the scheduler, the dispatcher's provider and the simulator alike).

    Raises:
        _NotATarget: with the rule broken (not cached).
    """
    if is_sip_uri(text):
        return normalise_sip_uri(text)
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        raise _NotATarget(
            "must be a phone number in E.164 form (e.g. +13125550101) or a SIP URI"
        ) from None
    if not phonenumbers.is_valid_number(parsed) and not _is_fictional_nanp(parsed):
        raise _NotATarget("must be a valid, dialable phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _is_fictional_nanp(parsed: phonenumbers.PhoneNumber) -> bool:
    # 555-0100..0199 numbers are reserved for fiction in the NANP; phonenumbers calls them
    # invalid, but they are exactly what examples and simulated worlds use.
    national = str(parsed.national_number)
    return parsed.country_code == 1 and len(national) == 10 and national[3:7] == "5550"


def validate_timezone(name: str, field: str = "timezone") -> str:
    """Return ``name`` if it is a known IANA zone.

    Raises:
        ValidationError: unknown zone.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            field, "must be an IANA timezone such as America/Chicago", name
        ) from None
    return name


def timezones_for_target(
    target: str, explicit: str | None = None, field: str = "timezone"
) -> list[str]:
    """Every zone whose calling hours the call must keep: those of the number, and the
    explicit one when given. Calling hours use the intersection of their windows, so an
    explicit zone narrows the window and never widens it.

    Raises:
        ValidationError: ``explicit`` is not a known IANA zone; or the target's zone cannot be
            known (a SIP URI, a number with no known region) and no ``explicit`` zone is given.
    """
    zones = set(number_timezones(target))
    if explicit:
        zones.add(validate_timezone(explicit, field))
    if not zones:
        raise ValidationError(
            field,
            f"is required for {target[:80]}: its local time cannot be known from it (a SIP URI "
            "or a number with no known region); give the recipient's IANA timezone, e.g. "
            "America/Chicago",
            show_value=False,
        )
    return sorted(zones)


def number_timezones(target: str) -> list[str]:
    """The zones of a phone number (several for some), ``[]`` for a SIP URI or a number with
    no known region."""
    return list(_number_timezones(target))


@lru_cache(maxsize=20_000)
def _number_timezones(target: str) -> tuple[str, ...]:
    if is_sip_uri(target):
        return ()
    try:
        parsed = phonenumbers.parse(target, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    if not zones and _is_fictional_nanp(parsed):
        # Fictional numbers carry no geography beyond the area code; look that up through a
        # real exchange in the same area code.
        probe = phonenumbers.parse(f"+1{str(parsed.national_number)[:3]}2000000", None)
        zones = [z for z in pn_timezone.time_zones_for_number(probe) if z != "Etc/Unknown"]
    return tuple(sorted(set(zones)))
