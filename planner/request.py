"""Turn a plain-language request into a spec without a language model.

Only requests that list their targets with phone numbers can be read this way ("Call Lakefront
Catering at +1 312 555 0101, Chicago Grill Co at (312) 555-0102 …"), and only three kinds of
mission: price quotes (negotiated one after another when the request speaks of leverage, a
baseline or negotiating), availability checks, and reminders of an appointment whose date or
time is given. The parser refuses rather than guesses: a request that asks for something else
(to book, schedule, cancel, order …), for two kinds at once, or for nothing it recognises is
refused with the part it could not understand and a minimal spec that would work.

The job's details (the date and time, the head count, the size of the job, the occasion) are
read from the request with the targets taken out, so a target's name or number never ends up
in the instructions and a date never ends up in a name.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import phonenumbers
import yaml

from planner.errors import SpecError
from planner.spec import MissionSpec, parse_spec

__all__ = ["NEEDS_SPEC_OR_LLM", "spec_from_request_text"]

NEEDS_SPEC_OR_LLM = (
    "needs a spec file or an LLM (set MISSION_LLM_BASE_URL and MISSION_LLM_MODEL): without a "
    "model only a request that names each target with its phone number and asks for quotes, "
    "availability or appointment reminders can be read"
)

#: Where a target's mention (name, linking words and number) was taken out of the request.
_MARK = "\x00"

_NAME = re.compile(
    r"([A-Z][\w&'’.-]*(?:\s+(?:[A-Z][\w&'’.-]*|&|of|and|the|de|du|la|office|clinic|practice|"
    r"surgery|salon|shop|store|restaurant))*)"
    r"[\s,:;(\-–—]*(?:at|on|phone|tel\.?|number|is)?[\s,:;(\-–—]*$"
)
_LEADING = re.compile(
    r"^(?:(?:and|then|call|phone|ring|dial|contact|remind|ask|check|try|also|plus|or|get|"
    r"please|request|compare|text|email|with|from|are|is|does|do|can|could)\b[\s,]*)+",
    re.IGNORECASE,
)
_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY_NUMBER = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b((?:{_WEEKDAY},?\s+)?(?:(?:the\s+)?{_MONTH}\.?\s+{_DAY_NUMBER}\b|"
    rf"(?:the\s+)?{_DAY_NUMBER}\s+(?:of\s+)?{_MONTH}\b)(?:,?\s+\d{{4}})?|"
    rf"(?:next|this)\s+(?:week(?:end)?|{_WEEKDAY})|{_WEEKDAY}|tomorrow|today|tonight|"
    r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?)",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b(?:at\s+)?(\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}|noon)",
    re.IGNORECASE,
)
_COUNT = re.compile(
    r"\b(\d{1,5})[\s-]+(?:people|persons?|guests|attendees|pax|heads|adults)\b|"
    r"\bparty of (\d{1,5})\b",
    re.IGNORECASE,
)
_SIZE = re.compile(
    r"\b(\d[\d,.]*[\s-]*(?:bed(?:room)?s?|br|bath(?:room)?s?|sq\.?\s*ft|square[\s-]+"
    r"(?:feet|foot|met(?:er|re)s?)|m2|stor(?:e)?y|stories|rooms?|car|ton|hours?)\b"
    r"(?:\s+(?:apartment|flat|house|home|condo|office|unit|garage|kitchen|bathroom|roof|"
    r"basement|lawn|yard|move|job|shoot|session|event))?)",
    re.IGNORECASE,
)
_ROUTE = re.compile(
    r"\bfrom\s+([A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*)\s+to\s+([A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*)"
)
_OCCASION = re.compile(
    r"\bfor\s+(an?\s(?:(?!\bfor\b)[^.;:!?\x00]){0,60}?\b(?:event|party|wedding|lunch|luncheon|dinner|"
    r"reception|meeting|gathering|celebration|conference|banquet|offsite)\b)",
    re.IGNORECASE,
)

# What the calls ask. Each kind must be asked for in so many words.
_QUOTE = re.compile(
    r"\b(quot(?:e|es|ed|ing)|pric(?:e|es|ed|ing)|costs?|rates|charges?|fees?|estimates?|bids?|"
    r"how much|cheap\w*|afford\w*|negotiat\w*)\b",
    re.IGNORECASE,
)
_AVAILABILITY = re.compile(
    r"\b(availab\w*|openings?|(?:free|open) slots?|slots?|vacanc\w*|have room|"
    r"(?:is|are) (?:free|open) on|(?:has|have) (?:a |any )?(?:rooms?|tables?|space))\b",
    re.IGNORECASE,
)
_REMINDER = re.compile(
    r"\b(remind\w*|confirm\w*\s+(?:their|his|her|the)\s+(?:\w+\s+)?appointments?)\b",
    re.IGNORECASE,
)
# What the parser never does: committing to something on someone's behalf.
_ACTION = re.compile(
    r"\b(book|books|reserve|schedule\s+(?:a|an|the|my|our|his|her|their)\b|"
    r"make\s+(?:a|an|the|my)\s+(?:\w+\s+)?(?:appointment|reservation|booking)|"
    r"confirm\w*\s+(?:my|our)\s+\w+|cancel(?:s|l?ed|l?ing)?|(?<!in )order|buy|purchase|"
    r"pay(?:\s+for)?|sign\s+(?:me|us|them)\s+up)\b",
    re.IGNORECASE,
)
_LEVERAGE = re.compile(
    r"\b(leverage|negotiat\w*|baseline|beat|best (?:quote|price|rate|offer|deal))\b", re.IGNORECASE
)
_NO_LEVERAGE = re.compile(
    r"\b(?:don'?t|do not|no need to|without|never)\s+(?:\w+\s+){0,2}?(?:negotiat\w*|haggl\w*)",
    re.IGNORECASE,
)
_NAMED_JOB = re.compile(
    r"\b(?!(?:a|an|the|some|get|their|best|baseline|lowest|first|final|free|written|your|"
    r"my|our|for|of|and|with|all|any|new|good|better|cheaper)\b)([A-Za-z]{4,})\s+"
    r"(?:quotes?|estimates?|pric(?:e|es|ing)|bids?|rates)\b",
    re.IGNORECASE,
)
_PER_PERSON = re.compile(r"\bper[- ](?:person|head|guest)\b", re.IGNORECASE)
_TRAILING = re.compile(
    r"(?:[\s,:;(\-–—]+|\b(?:from|at|with|and|or|to|via|by|on|of|the|call|calling|ask|then)\b)+$",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(
    r",?\s+(?:and\s+|then\s+)+(?:ask|call|compare|recommend|negotiat\w*|tell|find|see|get|"
    r"use|check|pick|choose|report)\b|,\s|[.;!?\x00]",
    re.IGNORECASE,
)
_KIND_WORDS = {
    "quote": "prices or quotes",
    "availability": "availability",
    "reminder": "an appointment reminder",
}


def spec_from_request_text(request: str) -> MissionSpec:
    """Read a spec out of a request that lists its targets with phone numbers.

    Raises:
        SpecError: field ``request``: no targets with phone numbers, a number without a name
            before it, an ask the parser does not run (booking, cancelling …), two kinds of ask
            at once, no recognisable ask, or a reminder without the appointment's date or
            time. The message names the part and shows a minimal spec that would work.
    """
    if not isinstance(request, str) or not request.strip():
        raise SpecError("request", "must be a non-empty text", request)
    text = " ".join(request.split())
    targets, rest = _targets(text)
    if not targets:
        _refuse(
            "it names no one to call: give each target's name followed by its phone number "
            "(e.g. 'Call Lakefront Catering at +1 312 555 0101')",
            targets,
            None,
        )
    kind = _kind(rest, targets)
    details = _Details(rest)
    if kind == "reminder" and details.when is None:
        _refuse(
            "it asks for an appointment reminder but gives no date or time for the appointment "
            "(e.g. 'on Monday March 16 at 10am')",
            targets,
            "reminder",
        )
    builder = {"quote": _quote, "availability": _availability, "reminder": _reminder}[kind]
    return parse_spec(builder(text, rest, targets, details))


# --------------------------------------------------------------------------- reading


def _targets(text: str) -> tuple[list[dict[str, Any]], str]:
    """The targets in order, and the text with each target's mention replaced by a mark."""
    matcher = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)
    targets: list[dict[str, Any]] = []
    pieces: list[str] = []
    cursor = 0
    for match in matcher:
        before = text[cursor : match.start]
        # Only the clause right before the number can name it.
        clause_start = max(
            (m.end() for m in re.finditer(r"[.;]\s|,\s*(?=[a-z])|\x00", before)), default=0
        )
        clause = before[clause_start:]
        lead = _LEADING.match(clause.lstrip())
        offset = clause_start + (len(clause) - len(clause.lstrip())) + (lead.end() if lead else 0)
        found = _NAME.search(before, offset)
        if found is None or not found.group(1).strip():
            _refuse(
                "it must name each target right before its phone number "
                f"(nothing names {match.raw_string.strip()})",
                targets,
                None,
            )
        start = found.start(1)
        name = found.group(1).strip().rstrip(".,")
        # "… on Friday Wicker Park Hall at …": the weekday belongs to the date, not the name.
        dated = re.match(rf"(?:{_WEEKDAY}|tomorrow|today)\s+(?=[A-Z])", name, re.IGNORECASE)
        if dated and re.search(r"\b(?:on|by|for)\s*$", before[:start]):
            name = name[dated.end() :]
            start += dated.end()
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        targets.append({"name": name, "phone": number})
        pieces.append(before[:start])
        pieces.append(_MARK)
        cursor = match.end
        if text[cursor : cursor + 1] == ")" and "(" in text[start : match.start]:
            cursor += 1
    pieces.append(text[cursor:])
    rest = "".join(pieces)
    # The links between listed targets ("⟨A⟩, ⟨B⟩ and ⟨C⟩") are part of the list.
    rest = re.sub(rf"{_MARK}(?:\s*(?:,|and|or|&|plus)\s*{_MARK})+", _MARK, rest)
    return targets, rest


def _kind(rest: str, targets: list[dict[str, Any]]) -> str:
    action = _ACTION.search(rest)
    asks = {
        kind
        for kind, pattern in (
            ("quote", _QUOTE),
            ("availability", _AVAILABILITY),
            ("reminder", _REMINDER),
        )
        if pattern.search(rest)
    }
    if action is not None:
        _refuse(
            f"it asks for something to be done ('{action.group(1)}'), not only asked about: "
            "without an LLM only price quotes, "
            "availability checks and reminders of appointments already made are run, and "
            "nothing is committed to on anyone's behalf (to only ask, say 'check "
            "availability' or 'ask for a quote')",
            targets,
            "action",
        )
    if len(asks) > 1:
        both = " and ".join(_KIND_WORDS[k] for k in sorted(asks))
        _refuse(
            f"it asks for {both} at once: one mission asks one kind of question, so the "
            "parser will not choose",
            targets,
            None,
        )
    if not asks:
        _refuse(
            "it does not say what to ask: it must ask for prices or quotes, for availability, "
            "or to remind someone of an appointment",
            targets,
            None,
        )
    return asks.pop()


class _Details:
    """The job's details, read from the request with the targets taken out."""

    def __init__(self, rest: str) -> None:
        date = _DATE.search(rest)
        clock = _TIME.search(rest)
        parts = [date.group(1) if date else None, clock.group(1) if clock else None]
        self.when = " at ".join(p for p in parts if p) or None
        #: The date and time as a phrase: "on Friday March 20 at 10am", "at 3pm".
        self.moment = (f"on {self.when}" if date else f"at {self.when}") if self.when else None
        count = _COUNT.search(rest)
        self.count = int(count.group(1) or count.group(2)) if count else None
        self.count_text = count.group(0) if count else None
        size = _SIZE.search(rest)
        self.size = size.group(1) if size else None
        route = _ROUTE.search(rest)
        self.route = f"from {route.group(1)} to {route.group(2)}" if route else None
        occasion = _OCCASION.search(rest)
        self.occasion = occasion.group(1) if occasion else None
        self.rest = rest

    def subject(self, pattern: re.Pattern[str]) -> str | None:
        """What is asked about: "to move a 2-bedroom apartment on May 3", "for a reception"."""
        for ask in pattern.finditer(self.rest):
            after = self.rest[ask.end() :]
            found = re.match(
                r"\s*(?:(?:from|of|with)\s+(?:them|each|all|everyone|each of them)\s+)?"
                r"(?:(?:they|you|it)\s+(?:would\s+|will\s+)?(?:charge|cost)s?\s+)?"
                r"((?:to|for|on)\s+.*)",
                after,
                re.IGNORECASE,
            )
            if found is None:
                continue
            phrase = found.group(1)
            end = _CLAUSE_END.search(phrase)
            phrase = phrase[: end.start()] if end else phrase
            phrase = _TRAILING.sub("", phrase).strip()
            if len(phrase) > 140:
                phrase = phrase[:140].rsplit(" ", 1)[0]
            if len(phrase.split()) >= 2:
                return phrase
        if self.occasion:
            return f"for {self.occasion}"
        # "catering quotes", "a moving estimate": the word before the ask names the job.
        named = _NAMED_JOB.search(self.rest)
        return f"for {named.group(1).lower()}" if named else None

    def listed(self, about: str | None) -> str:
        """The details the ``about`` phrase does not already state, as a sentence."""
        said = (about or "").lower()
        facts = [
            ("Date and time", self.when),
            ("Head count", self.count_text),
            ("Size", self.size),
            ("Route", self.route),
            ("Occasion", self.occasion),
        ]
        shown = [
            f"{label}: {value}" for label, value in facts if value and value.lower() not in said
        ]
        return f" Details to give if asked: {'; '.join(shown)}." if shown else ""


# --------------------------------------------------------------------------- refusing


def _refuse(reason: str, targets: list[dict[str, Any]], kind: str | None) -> NoReturn:
    example = yaml.safe_dump(
        _example(targets, kind),
        sort_keys=False,
        default_flow_style=None,
        allow_unicode=True,
        width=1000,
    )
    raise SpecError(
        "request",
        f"could not be read without an LLM: {reason}. It needs a spec file or an LLM (set "
        "MISSION_LLM_BASE_URL and MISSION_LLM_MODEL); a minimal spec that would work:\n"
        + example.rstrip(),
        show_value=False,
    )


def _example(targets: list[dict[str, Any]], kind: str | None) -> dict[str, Any]:
    shown = [{"name": t["name"], "phone": t["phone"]} for t in targets[:3]] or [
        {"name": "Lakefront Catering", "phone": "+13125550101"}
    ]
    if kind == "reminder":
        ask = "Remind them of their appointment on Monday March 16 at 10am; ask if they can come."
        extract: dict[str, Any] = {"confirmed": {"type": "boolean", "required": True}}
    elif kind == "action":
        ask = "Ask to book an appointment next week and confirm the day and time they give."
        extract = {
            "booked": {"type": "boolean", "required": True},
            "booked_time": {"type": "string"},
        }
    else:
        ask = "Ask for their price for the job."
        extract = {"price": {"type": "number", "required": True}}
    return {
        "name": "My mission",
        "objective": "What the calls should achieve",
        "strategy": "parallel",
        "assistant": {"name": "Caller", "instructions": ask},
        "targets": shown,
        "extract": extract,
    }


# --------------------------------------------------------------------------- building


def _retry() -> dict[str, Any]:
    return {"max_retries_client_errors": 2, "retry_interval_secs": 300}


def _quote(
    text: str, rest: str, targets: list[dict[str, Any]], details: _Details
) -> dict[str, Any]:
    per_person = details.count is not None or bool(_PER_PERSON.search(rest))
    basis = " per person" if per_person else ""
    about = details.subject(_QUOTE) or "for the job"
    field = "price_per_person" if per_person else "price"
    sequential = bool(_LEVERAGE.search(rest)) and not _NO_LEVERAGE.search(rest) and len(targets) > 1
    instructions = (
        "You are calling {{target_name}} on behalf of a client. "
        f"Ask for their price{basis} {about}.{details.listed(about)} "
        "{{#best_quote}}We already have a quote of ${{best_quote}}"
        + basis
        + " from {{best_company}}; ask whether they can beat it.{{/best_quote}} "
        "Be polite and brief."
    )
    return {
        "name": f"Quote {'negotiation' if sequential else 'survey'}: "
        + ", ".join(t["name"] for t in targets),
        "objective": text,
        "strategy": "sequential_leverage" if sequential else "parallel",
        "assistant": {
            "name": "Quote Negotiator" if sequential else "Quote Collector",
            "greeting": "Hi, I'm calling to ask about pricing. Do you have a moment?",
            "instructions": instructions,
        },
        "targets": targets,
        "extract": [
            {
                "name": f"initial_{field}",
                "type": "number",
                "description": f"The first price{basis} they quoted, in dollars",
            },
            {
                "name": f"final_{field}",
                "type": "number",
                "required": True,
                "description": f"The final price{basis} they agreed to, in dollars",
            },
        ],
        "leverage": {
            "field": f"final_{field}",
            "initial_field": f"initial_{field}",
            "better": "lower",
            "variable": "best_quote",
            "name_variable": "best_company",
            "label": "Quote",
            "unit": "person" if per_person else None,
            "quantity": details.count,
            "quantity_label": "guests" if details.count else None,
        },
        "retry": _retry(),
    }


def _availability(
    text: str, rest: str, targets: list[dict[str, Any]], details: _Details
) -> dict[str, Any]:
    about = details.subject(_AVAILABILITY) or "for an upcoming booking"
    if details.when and details.when.lower() not in about.lower():
        about = f"{about} on {details.when}"
    return {
        "name": "Availability survey: " + ", ".join(t["name"] for t in targets),
        "objective": text,
        "strategy": "parallel",
        "assistant": {
            "name": "Availability Checker",
            "greeting": "Hi, I'm calling to check availability. Do you have a moment?",
            "instructions": (
                "You are calling {{target_name}} on behalf of a client. "
                f"Ask whether they have availability {about}.{details.listed(about)} "
                "Ask which times they could offer. Do not book or commit to anything."
            ),
        },
        "targets": targets,
        "extract": [
            {
                "name": "available",
                "type": "boolean",
                "required": True,
                "description": "Whether they have availability",
            },
            {
                "name": "offered_slots",
                "type": "array(string)",
                "description": "The dates and times they offered",
            },
        ],
        "retry": _retry(),
    }


def _reminder(
    text: str, rest: str, targets: list[dict[str, Any]], details: _Details
) -> dict[str, Any]:
    return {
        "name": "Appointment reminders: " + ", ".join(t["name"] for t in targets),
        "objective": text,
        "strategy": "parallel",
        "assistant": {
            "name": "Appointment Reminder",
            "greeting": "Hello, this is a courtesy call about your upcoming appointment.",
            "instructions": (
                "You are calling {{target_name}} on behalf of the office. "
                f"Remind them of their appointment {details.moment}. "
                "Ask whether they will be able to make it."
            ),
        },
        "targets": targets,
        "extract": [
            {
                "name": "confirmed",
                "type": "boolean",
                "required": True,
                "description": "Whether they confirmed they will attend",
            },
            {
                "name": "reschedule_to",
                "type": "string",
                "description": "When they asked to reschedule to, if they cannot make it",
            },
        ],
        "retry": _retry(),
    }
