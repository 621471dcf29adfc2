"""Dynamic-variable templating, as in Telnyx's ``reference/03_dynamic-variables.md``.

Templates (assistant instructions, greeting, tools) contain ``{{name}}`` placeholders. Rendering
replaces each with the conversation's value for that name; the ``telnyx_current_*`` date and
time variables are computed from the conversation's ``now``. Anything that cannot be resolved
(an unknown variable, an unknown timezone, a bad ``date`` format) keeps its original ``{{…}}``
text, so a missing value is visible in the transcript instead of silently becoming empty.

Beyond the reference, mustache sections let one assistant serve both the first call and the
later ones: ``{{#best_quote}}…{{/best_quote}}`` renders only when ``best_quote`` is set and
non-empty, ``{{^best_quote}}…{{/best_quote}}`` only when it is unset or empty.

The template is tokenized once and rendered in one linear pass, so inserted values are never
re-expanded and deeply nested sections cannot exhaust the recursion limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from mission_server.clock import ensure_utc
from mission_server.errors import ValidationError

__all__ = [
    "DEFAULT_TIME_FORMAT",
    "RESERVED_PREFIX",
    "SECTION_VARIABLE_PREFIX",
    "flatten_sections",
    "placeholders",
    "render",
    "resolve_variables",
    "validate_variable_names",
]

RESERVED_PREFIX = "telnyx_"
"""Names with this prefix belong to the system; user-supplied values for them are ignored."""

DEFAULT_TIME_FORMAT = "%A, %B %d %Y %I:%M:%S %p %Z"
"""``Monday, February 24 2025 04:04:15 PM UTC``: the format of ``{{telnyx_current_time}}``."""

_TIME_OF_DAY_FORMAT = "%I:%M:%S %p %Z"

# Shorthands are always evaluated in UTC (reference: "The shorthand variables ... are
# evaluated in UTC"); the zone variants are handled by prefix below.
_UTC_TIME_VARIABLES: dict[str, str] = {
    "telnyx_current_time": DEFAULT_TIME_FORMAT,
    "telnyx_current_date": "%B %d %Y",
    "telnyx_current_time_of_day": _TIME_OF_DAY_FORMAT,
    "telnyx_current_weekday": "%A",
    "telnyx_current_month": "%B",
    "telnyx_current_day": "%d",
    "telnyx_current_year": "%Y",
}
_TIME_OF_DAY_ZONE_PREFIX = "telnyx_current_time_of_day_"
_TIME_ZONE_PREFIX = "telnyx_current_time_"

# A variable name: word characters plus the punctuation IANA zone names need
# (``America/Port-au-Prince``, ``Etc/GMT+5``). Anything else inside braces (JSON in a tool
# definition, prose) is not a placeholder and is left alone.
_NAME = r"[\w][\w.+\-/]*"
_NAME_RE = re.compile(_NAME)

# An opening ``{{`` must not be followed by another ``{`` so that ``{{{x}}}`` reads as a
# literal brace around ``{{x}}``; the body may contain neither ``{{`` nor ``}}``, so a stray
# opener never swallows the placeholder after it.
_TAG_RE = re.compile(r"\{\{(?!\{)((?:(?!\{\{|\}\}).)*)\}\}", re.DOTALL)

_DATE_FILTER_RE = re.compile(
    rf"""(?P<name>{_NAME})\s*\|\s*date\s*:\s*
    (?:"(?P<fmt_dq>[^"]*)"|'(?P<fmt_sq>[^']*)')
    (?:\s*,\s*(?:"(?P<zone_dq>[^"]*)"|'(?P<zone_sq>[^']*)'))?""",
    re.VERBOSE | re.DOTALL,
)

# Names ZoneInfo can load on this machine that are not real places: rendering "local time" of
# the server, or the ``-00`` of "Factory", would be wrong rather than helpful.
_NOT_IANA_ZONES = frozenset({"localtime", "Factory", "posixrules"})

# strftime codes accepted by the ``date`` filter: C99 plus Python's ``%f``. Platform
# extensions are refused (the placeholder is left untouched) so a template renders the same on
# every host. Locale-dependent codes are produced here in English, independent of LC_TIME.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_PASSTHROUGH_CODES = frozenset("CdDeFgGHIjmMSuUVwWyYzZf")
# ``%-d`` style (no padding) is common in Python code on Linux; supported portably here.
_UNPADDED_CODES = frozenset("deHIjmMSy")


def _english_code(moment: datetime, code: str) -> str | None:
    """The C-locale rendering of a locale-dependent strftime code, or None if not one."""
    weekday = _WEEKDAYS[moment.weekday()]
    month = _MONTHS[moment.month - 1]
    if code == "A":
        return weekday
    if code == "a":
        return weekday[:3]
    if code == "B":
        return month
    if code in "bh":
        return month[:3]
    if code == "p":
        return "AM" if moment.hour < 12 else "PM"
    if code == "c":
        return f"{weekday[:3]} {month[:3]} {moment.day:2d} {moment:%H:%M:%S} {moment.year}"
    if code == "x":
        return f"{moment:%m/%d/%y}"
    if code in "XT":
        return f"{moment:%H:%M:%S}"
    if code == "r":
        return f"{moment:%I:%M:%S} {'AM' if moment.hour < 12 else 'PM'}"
    if code == "R":
        return f"{moment:%H:%M}"
    if code == "n":
        return "\n"
    if code == "t":
        return "\t"
    if code == "%":
        return "%"
    return None


def _strftime(moment: datetime, fmt: str) -> str | None:
    """Format ``moment`` with ``fmt``; None if ``fmt`` is empty or uses an unsupported code."""
    if not fmt:
        return None
    out: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        unpadded = fmt.startswith("%-", i)
        code_at = i + 2 if unpadded else i + 1
        if code_at >= len(fmt):
            return None
        code = fmt[code_at]
        if unpadded and code not in _UNPADDED_CODES:
            return None
        text = _english_code(moment, code)
        if text is None:
            if code not in _PASSTHROUGH_CODES:
                return None
            text = moment.strftime("%" + code)
        if unpadded:
            text = text.lstrip(" 0") or "0"
        out.append(text)
        i = code_at + 1
    return "".join(out)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_IANA_ZONES


def _zone(name: str) -> tzinfo | None:
    """The IANA zone called ``name``, or None when there is no such zone."""
    if name not in _known_zones():
        return None
    try:
        return ZoneInfo(name)
    except Exception:  # a zone listed but unreadable must not make rendering raise
        return None


def _in_zone(now_utc: datetime, zone_name: str) -> datetime | None:
    """``now_utc`` in the IANA zone ``zone_name``; None for an unknown zone."""
    zone = _zone(zone_name)
    if zone is None:
        return None
    try:
        return now_utc.astimezone(zone)
    except OverflowError:  # only at the ends of datetime's range (years 1 and 9999)
        return None


def _time_variable(name: str, now_utc: datetime) -> str | None:
    """The value of a ``telnyx_current_*`` time variable, or None if ``name`` is not one."""
    fmt = _UTC_TIME_VARIABLES.get(name)
    if fmt is not None:
        return _strftime(now_utc, fmt)
    for prefix, zoned_fmt in (
        (_TIME_OF_DAY_ZONE_PREFIX, _TIME_OF_DAY_FORMAT),
        (_TIME_ZONE_PREFIX, DEFAULT_TIME_FORMAT),
    ):
        if name.startswith(prefix):
            moment = _in_zone(now_utc, name[len(prefix) :])
            return None if moment is None else _strftime(moment, zoned_fmt)
    return None


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True, slots=True)
class _Tag:
    raw: str
    kind: Literal["var", "section", "inverted", "close", "literal"]
    name: str = ""
    fmt: str | None = None  # set for a ``date`` filter expression
    zone: str | None = None


_SECTION_KINDS: dict[str, Literal["section", "inverted", "close"]] = {
    "#": "section",
    "^": "inverted",
    "/": "close",
}


def _classify(raw: str, body: str) -> _Tag:
    content = body.strip()
    sigil_kind = _SECTION_KINDS.get(content[:1])
    if sigil_kind is not None:
        name = content[1:].strip()
        if _NAME_RE.fullmatch(name):
            return _Tag(raw, sigil_kind, name)
        return _Tag(raw, "literal")
    if _NAME_RE.fullmatch(content):
        return _Tag(raw, "var", content)
    match = _DATE_FILTER_RE.fullmatch(content)
    if match is not None:
        fmt = match["fmt_dq"] if match["fmt_dq"] is not None else match["fmt_sq"]
        zone = match["zone_dq"] if match["zone_dq"] is not None else match["zone_sq"]
        return _Tag(raw, "var", match["name"], fmt=fmt, zone=zone)
    return _Tag(raw, "literal")


def _tokenize(template: str) -> Iterator[str | _Tag]:
    position = 0
    for match in _TAG_RE.finditer(template):
        if match.start() > position:
            yield template[position : match.start()]
        yield _classify(match[0], match[1])
        position = match.end()
    if position < len(template):
        yield template[position:]


def _pair_sections(tokens: list[str | _Tag]) -> dict[int, int]:
    """Map each opening section token's index to its closing token's index.

    An opener without a closer, or a closer without an opener, is not a section and renders as
    literal text. A closer closes the innermost open section of its name; sections opened
    inside it and still open are unclosed. Per-name stacks keep this linear in the number of
    tags even for hostile input.
    """
    pairs: dict[int, int] = {}
    open_stack: list[int] = []
    open_by_name: dict[str, list[int]] = {}
    for index, token in enumerate(tokens):
        if not isinstance(token, _Tag):
            continue
        if token.kind in ("section", "inverted"):
            open_stack.append(index)
            open_by_name.setdefault(token.name, []).append(index)
        elif token.kind == "close":
            candidates = open_by_name.get(token.name)
            if not candidates:
                continue
            target = candidates[-1]
            while True:
                opened = open_stack.pop()
                name = tokens[opened].name  # type: ignore[union-attr]
                open_by_name[name].pop()
                if opened == target:
                    break
            pairs[target] = index
    return pairs


# ---------------------------------------------------------------------------------------------
# Public API

_Lookup = Callable[[str], str | None]


def render(template: str, variables: Mapping[str, str], now: datetime) -> str:
    """Render ``template`` with the conversation's ``variables`` at time ``now``.

    ``variables`` holds every customer, call and system variable known for the conversation
    (see ``resolve_variables``); the ``telnyx_current_*`` time variables are computed from
    ``now`` and cannot be overridden by it. Placeholders that cannot be resolved keep their
    original text. Inserted values are never expanded again. Any template string renders
    without raising.

    Raises:
        ValidationError: ``now`` is a naive datetime (no timezone).
    """
    now_utc = ensure_utc(now, "now")
    tokens = list(_tokenize(template))
    pairs = _pair_sections(tokens)
    paired_closers = set(pairs.values())

    def lookup(name: str) -> str | None:
        if name.startswith(RESERVED_PREFIX + "current_"):
            return _time_variable(name, now_utc)
        value = variables.get(name)
        return None if value is None else _stringify(value)

    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if isinstance(token, str):
            out.append(token)
        elif index in pairs:
            shown = bool(lookup(token.name)) == (token.kind == "section")
            if not shown:
                index = pairs[index]  # resume after the closer
        elif index in paired_closers:
            pass
        elif token.kind == "var":
            value = _render_var(token, lookup, now_utc)
            out.append(token.raw if value is None else value)
        else:
            out.append(token.raw)
        index += 1
    return "".join(out)


SECTION_VARIABLE_PREFIX = "mission_section_"


def flatten_sections(
    template: str, prefix: str = SECTION_VARIABLE_PREFIX
) -> tuple[str, dict[str, str]]:
    """Replace each outermost section of ``template`` with one plain placeholder, for a
    platform that substitutes ``{{name}}`` only (Telnyx): ``(flat template, {placeholder name:
    the section's own source, tags included})``. The value to send for a placeholder is its
    source rendered with the conversation's variables (``render``), so the flat template,
    filled in, reads exactly as the original rendered. Names are ``<prefix><n>_<variable>``,
    numbered in order, so one template always flattens the same way."""
    tokens = list(_tokenize(template))
    pairs = _pair_sections(tokens)
    out: list[str] = []
    sections: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if index in pairs:
            assert isinstance(token, _Tag)
            closer = pairs[index]
            name = f"{prefix}{len(sections) + 1}_{token.name}"
            sections[name] = "".join(
                t if isinstance(t, str) else t.raw for t in tokens[index : closer + 1]
            )
            out.append("{{" + name + "}}")
            index = closer + 1
            continue
        out.append(token if isinstance(token, str) else token.raw)
        index += 1
    return "".join(out), sections


def _render_var(token: _Tag, lookup: _Lookup, now_utc: datetime) -> str | None:
    if token.fmt is None:
        return lookup(token.name)
    # The reference defines the filter on telnyx_current_time only.
    if token.name != "telnyx_current_time":
        return None
    moment = now_utc if token.zone is None else _in_zone(now_utc, token.zone)
    return None if moment is None else _strftime(moment, token.fmt)


def placeholders(template: str) -> set[str]:
    """The variable names ``template`` refers to, in placeholders and in sections.

    System names (``telnyx_current_time_America/New_York``, ``call_control_id``) are included;
    text in braces that is not a placeholder (JSON, a stray ``{{/x}}``) is not.
    """
    tokens = list(_tokenize(template))
    pairs = _pair_sections(tokens)
    names: set[str] = set()
    for index, token in enumerate(tokens):
        if isinstance(token, _Tag) and (token.kind == "var" or index in pairs):
            names.add(token.name)
    return names


def _stringify(value: object) -> str:
    """The text a value is inserted as: see ``resolve_variables``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def validate_variable_names(variables: Mapping[str, object], *, field: str) -> None:
    """Check user-supplied dynamic variable names before they are stored.

    A name must be a string that a placeholder can refer to (letters, digits, ``_``, ``.``,
    ``-``, ``+``, ``/``; not starting with punctuation) and must not use the ``telnyx_``
    prefix, which the reference reserves for system variables.

    Raises:
        ValidationError: a name breaks one of these rules; the field is ``<field>.<name>``.
    """
    for name in variables:
        if not isinstance(name, str):
            raise ValidationError(field, "variable names must be strings", name)
        if not _NAME_RE.fullmatch(name):
            raise ValidationError(
                f"{field}.{name}",
                "must start with a letter, digit or _ and contain only letters, digits, _ . - + /",
                name,
            )
        if name.startswith(RESERVED_PREFIX):
            raise ValidationError(
                f"{field}.{name}",
                f"must not use the reserved {RESERVED_PREFIX!r} prefix (system variables)",
                name,
            )


def resolve_variables(
    *,
    assistant_defaults: Mapping[str, object] | None = None,
    run_variables: Mapping[str, object] | None = None,
    call_variables: Mapping[str, object] | None = None,
    system: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """Merge the variable sources of one conversation into the mapping ``render`` takes.

    Precedence: ``call_variables`` (the scheduled call's ``dynamic_variables``) over
    ``run_variables`` (``set_run_variables``) over ``assistant_defaults``. ``system`` values
    (``telnyx_conversation_channel``, ``telnyx_agent_target``, ``telnyx_end_user_target``,
    ``call_control_id``, ...) describe the conversation itself and win over user values of the
    same name; user values for ``telnyx_`` names are ignored because the reference reserves
    that namespace for the system.

    Values become text: None is dropped (the variable stays unset), booleans become
    ``true``/``false``, integral floats lose their ``.0`` (65.0 -> ``65``), other numbers use
    ``str()``, dicts and lists become compact JSON, dates ISO-8601, anything else ``str()``.

    Raises:
        ValidationError: a variable name is not a string (field is the source's name).
    """
    merged: dict[str, str] = {}
    sources: tuple[tuple[str, Mapping[str, object] | None], ...] = (
        ("assistant_defaults", assistant_defaults),
        ("run_variables", run_variables),
        ("call_variables", call_variables),
    )
    for field, source in sources:
        for name, value in (source or {}).items():
            if not isinstance(name, str):
                raise ValidationError(field, "variable names must be strings", name)
            if name.startswith(RESERVED_PREFIX) or value is None:
                continue
            merged[name] = _stringify(value)
    for name, value in (system or {}).items():
        if not isinstance(name, str):
            raise ValidationError("system", "variable names must be strings", name)
        if value is not None:
            merged[name] = _stringify(value)
    return merged
