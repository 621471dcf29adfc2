"""Turn a natural-language request into a spec without a language model.

Only requests that list their targets with phone numbers can be read this way ("Call Lakefront
Catering at +1 312 555 0101, Chicago Grill Co at (312) 555-0102 …"). What the calls are about
is recognised from keywords: quotes (negotiated one after another when the request speaks of
leverage, a baseline or negotiating), availability, or appointment reminders. Anything else
needs a spec file or an LLM, and the error says so.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from planner.errors import SpecError
from planner.spec import MissionSpec, parse_spec

__all__ = ["NEEDS_SPEC_OR_LLM", "spec_from_request_text"]

NEEDS_SPEC_OR_LLM = (
    "needs a spec file or an LLM (set MISSION_LLM_BASE_URL and MISSION_LLM_MODEL): without a "
    "model only a request that names each target with its phone number and asks for quotes, "
    "availability or appointment reminders can be read"
)

_NAME = re.compile(
    r"([A-Z][\w&'’.-]*(?:\s+(?:[A-Z][\w&'’.-]*|&|of|and|the|de|du|la))*)"
    r"[\s,:;(\-–—]*(?:at|on|phone|tel\.?|number)?[\s,:;(\-–—]*$"
)
_REMINDER = re.compile(r"\b(remind\w*|appointments?)\b", re.IGNORECASE)
_QUOTE = re.compile(r"\b(quot\w*|pric\w*|costs?|rates?|negotiat\w*|estimates?)\b", re.IGNORECASE)
_AVAILABILITY = re.compile(
    r"\b(availab\w*|slots?|openings?|vacanc\w*|book\w*|reserv\w*)\b", re.IGNORECASE
)
_LEVERAGE = re.compile(
    r"\b(leverage|negotiat\w*|baseline|beat|best (?:quote|price|rate|offer))\b", re.IGNORECASE
)
_COUNT = re.compile(
    r"\b(\d{1,5})[\s-]+(?:people|persons?|guests|attendees|pax|heads)\b", re.IGNORECASE
)
_OCCASION = re.compile(
    r"\bfor\s+(an?\s[^.;:!?]{0,60}?\b(?:event|party|wedding|lunch|luncheon|dinner|reception|"
    r"meeting|gathering|celebration|conference|banquet|offsite)\b)",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"\b(?:on|for)\s+((?:mon|tues|wednes|thurs|fri|satur|sun)day[^.;,!?]{0,40}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?)",
    re.IGNORECASE,
)
_LEADING = re.compile(
    r"^(?:(?:and|then|call|phone|ring|dial|contact|remind|ask|check|try|also|plus|or)\b[\s,]*)+",
    re.IGNORECASE,
)


def _targets(request: str) -> list[dict[str, Any]]:
    matcher = phonenumbers.PhoneNumberMatcher(
        request, "US", leniency=phonenumbers.Leniency.POSSIBLE
    )
    targets: list[dict[str, Any]] = []
    cursor = 0
    for match in matcher:
        before = request[cursor : match.start]
        # Only the clause right before the number can name it.
        clause = re.split(r"[.;\n]|,\s*(?=[a-z])", before)[-1]
        clause = _LEADING.sub("", clause.strip())
        found = _NAME.search(clause)
        if found is None:
            raise SpecError(
                "request",
                "must name each target right before its phone number "
                f"(nothing names {match.raw_string.strip()})",
                request,
            )
        name = _LEADING.sub("", found.group(1)).strip().rstrip(".,")
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        targets.append({"name": name, "phone": number})
        cursor = match.end
    return targets


def _kind(request: str) -> str | None:
    if _REMINDER.search(request):
        return "reminder"
    if _QUOTE.search(request):
        return "quote"
    if _AVAILABILITY.search(request):
        return "availability"
    return None


def spec_from_request_text(request: str) -> MissionSpec:
    """Read a spec out of a request that lists its targets with phone numbers.

    Raises:
        SpecError: field ``request``: no targets with phone numbers, a number without a name
            before it, or no recognisable subject (the message says a spec file or an LLM is
            needed).
    """
    if not isinstance(request, str) or not request.strip():
        raise SpecError("request", "must be a non-empty text", request)
    text = " ".join(request.split())
    targets = _targets(request)
    if not targets:
        raise SpecError("request", NEEDS_SPEC_OR_LLM, text, show_value=False)
    kind = _kind(text)
    if kind is None:
        raise SpecError("request", NEEDS_SPEC_OR_LLM, text, show_value=False)
    occasion_match = _OCCASION.search(text)
    occasion = occasion_match.group(1) if occasion_match else None
    when_match = _WHEN.search(text)
    when = when_match.group(1).strip() if when_match else None
    count_match = _COUNT.search(text)
    count = int(count_match.group(1)) if count_match else None
    builder = {"quote": _quote, "availability": _availability, "reminder": _reminder}[kind]
    data = builder(text, targets, occasion, when, count)
    return parse_spec(data)


def _retry() -> dict[str, Any]:
    return {"max_retries_client_errors": 2, "retry_interval_secs": 300}


def _quote(
    text: str,
    targets: list[dict[str, Any]],
    occasion: str | None,
    when: str | None,
    count: int | None,
) -> dict[str, Any]:
    per_person = count is not None or bool(re.search(r"per[- ](?:person|head|guest)", text, re.I))
    basis = " per person" if per_person else ""
    about = occasion or "the job"
    if occasion and when and when.lower() not in occasion.lower():
        about = f"{occasion} on {when}"
    field = "price_per_person" if per_person else "price"
    sequential = bool(_LEVERAGE.search(text)) and len(targets) > 1
    instructions = (
        "You are calling {{target_name}} on behalf of a client. "
        f"Ask for their price{basis} for {about}. "
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
            "quantity": count,
            "quantity_label": "guests" if count else None,
        },
        "retry": _retry(),
    }


def _availability(
    text: str,
    targets: list[dict[str, Any]],
    occasion: str | None,
    when: str | None,
    count: int | None,
) -> dict[str, Any]:
    about = occasion or "an upcoming booking"
    if when and when.lower() not in about.lower():
        about = f"{about} on {when}"
    return {
        "name": "Availability survey: " + ", ".join(t["name"] for t in targets),
        "objective": text,
        "strategy": "parallel",
        "assistant": {
            "name": "Availability Checker",
            "greeting": "Hi, I'm calling to check availability. Do you have a moment?",
            "instructions": (
                "You are calling {{target_name}} on behalf of a client. "
                f"Ask whether they have availability for {about}. "
                "Ask which times they could offer."
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
    text: str,
    targets: list[dict[str, Any]],
    occasion: str | None,
    when: str | None,
    count: int | None,
) -> dict[str, Any]:
    moment = f" on {when}" if when else ""
    return {
        "name": "Appointment reminders: " + ", ".join(t["name"] for t in targets),
        "objective": text,
        "strategy": "parallel",
        "assistant": {
            "name": "Appointment Reminder",
            "greeting": "Hello, this is a courtesy call about your upcoming appointment.",
            "instructions": (
                "You are calling {{target_name}} on behalf of the office. "
                f"Remind them of their appointment{moment}. "
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
