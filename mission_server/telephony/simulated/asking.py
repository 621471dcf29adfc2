"""The simulated conversation of a mission call, driven by what the mission wants to know.

The assistant asks about each field of the mission's ``extract`` schema (``CallRequest.asks``),
one question per field, phrased from the field's description; fields that ask about the same
fact (``initial_price`` and ``final_price``) share one question. When the rendered
instructions carry the leverage sentence (a competitor's figure and the words quote, offer,
beat, best …), the assistant says it after the business has stated its negotiable fact, and
the business answers by its ``negotiable`` policy.

The business answers from its facts (``Business.all_facts``), with seeded variety in phrasing:
digits or words, with or without thousands separators, "per visit", "for the whole job", "we
can match that", "we're fully booked", "I'd have to check". Every line the business says
carries the facts it states (``TranscriptMessage.facts``: field -> value): the ground truth
that a rehearsal's extractor is measured against. Nothing is chosen by keywords in the
instructions, so natural and keyword-style instructions give the same facts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mission_server.telephony.base import AskedField, CallRequest
from mission_server.telephony.simulated.dialogue import (
    _MONEY,
    _PRONOUN,
    _PRONOUNS,
    _UNIT_AFTER,
    _amount,
    _as_question,
    _company,
    _Line,
    _money,
    _opener,
    _sentences,
    _with_occasion,
)
from mission_server.telephony.simulated.world import Business, FieldMatch, Negotiable

__all__ = ["asked_conversation"]

_LEVERAGE = re.compile(
    r"\b(quot\w*|offer\w*|competitor\w*|best|so far|beat|match|lower|higher|better)\b", re.I
)
_MONEY_WORDS = re.compile(
    r"(price|fee|cost|charge|rate|quote|total|deposit|offer|budget|dollar|amount|payment|"
    r"\$|fare|rent|premium|bid)",
    re.I,
)
_AVAILABILITY_WORDS = re.compile(
    r"(avail|book|open|slot|free|come|vacan|space|room|fit|start|schedul)", re.I
)
_WH = ("whether", "if", "how", "what", "when", "which", "who", "where", "why")


class _Group:
    """The fields that ask about one fact (or one unmatched field)."""

    def __init__(self, match: FieldMatch | None, first: AskedField) -> None:
        self.match = match
        self.fields: list[AskedField] = []
        self.opening: dict[str, bool] = {}  # field name -> asks for the opening value
        self.add(first, match)

    def add(self, field: AskedField, match: FieldMatch | None) -> None:
        self.fields.append(field)
        self.opening[field.name] = match is not None and match.opening

    def names(self, *, opening: bool) -> list[str]:
        return [f.name for f in self.fields if self.opening[f.name] == opening]


def _groups(business: Business, asks: Sequence[AskedField]) -> list[_Group]:
    groups: list[_Group] = []
    by_fact: dict[str, _Group] = {}
    for field in asks:
        match = business.fact_for(field.name)
        if match is not None:
            business.check_field(field.name, field.type, field.enum)
            group = by_fact.get(match.name)
            if group is not None:
                group.add(field, match)
                continue
            group = by_fact[match.name] = _Group(match, field)
        else:
            group = _Group(None, field)
        groups.append(group)
    return groups


def asked_conversation(
    business: Business, request: CallRequest, rng: random.Random
) -> tuple[list[_Line], str]:
    """The lines of a call that asks about ``request.asks``, and its label.

    Raises:
        ValidationError: a fact of the business cannot answer the field it matches (its
            value is of another type).
    """
    instructions = request.instructions or ""
    groups = _groups(business, request.asks)
    greeting = (request.greeting or "").strip() or "Hello, do you have a moment?"
    lines = [
        _Line("assistant", greeting, facts={}),
        _Line("user", _opener(business, rng), facts={}),
    ]
    first_question = _question(groups[0], rng) if groups else "I have a quick question."
    first_question = _with_occasion(first_question, instructions)
    purpose = _purpose(instructions)
    if purpose:
        first_question = f"{purpose} {first_question}"
    if business.call_back or business.declines:
        lines.append(_Line("assistant", first_question, facts={}))
        if business.call_back:
            reply = rng.choice(
                (
                    f"We're swamped right now. Could you call back {business.call_back}?",
                    f"Sorry, this is a bad time. Can you try us again {business.call_back}?",
                )
            )
            lines.append(_Line("user", reply, think=rng.uniform(1, 3), facts={}))
            lines.append(
                _Line("assistant", f"Of course, I'll call back {business.call_back}. Thank you!")
            )
            label = f"call back requested {business.call_back}"
        else:
            reply = rng.choice(
                (
                    "I'm sorry, we don't discuss that over the phone.",
                    "Sorry, we're not able to help with that.",
                    "I'm afraid we don't give that information out on the phone.",
                )
            )
            lines.append(_Line("user", reply, think=rng.uniform(1, 3), facts={}))
            lines.append(_Line("assistant", "I understand. Thank you for your time. Goodbye!"))
            label = "declined"
        lines.append(_Line("user", rng.choice(("Bye.", "Goodbye.")), facts={}))
        return lines, label

    mention = _leverage_mention(instructions)
    negotiation = business.negotiation()
    label = "call"
    closing: list[str] = []
    extras_said = False
    for index, group in enumerate(groups):
        question = first_question if index == 0 else _question(group, rng)
        lines.append(_Line("assistant", question, facts={}))
        answer, facts = _statement(group, rng)
        if not extras_said and business.extras:
            answer = " ".join([answer, *business.extras])
            extras_said = True
        lines.append(_Line("user", answer, think=rng.uniform(2, 20), facts=facts))
        match = group.match
        negotiable = (
            match is not None
            and negotiation is not None
            and negotiation.fact == match.name
            and match.fact.is_number
        )
        if not negotiable or match is None or negotiation is None:
            continue
        label = "baseline quote"
        own = Decimal(str(match.fact.value))
        final = own
        if mention is not None:
            label = "negotiation"
            heard, spoken = mention
            lines.append(_Line("assistant", spoken, facts={}))
            reply, final = _counter(negotiation, own, heard, match.fact.unit, rng)
            lines.append(
                _Line(
                    "user",
                    reply,
                    think=rng.uniform(10, 30),
                    facts=dict.fromkeys(group.names(opening=False), _json_number(final)),
                )
            )
        closing.append(f"So to confirm, that's {_money(final)}{_unit(match.fact.unit)}.")
    closing.append("Thank you for your time. Goodbye!")
    lines.append(_Line("assistant", " ".join(closing), facts={}))
    farewell = ("Thanks, bye!", "You're welcome. Goodbye!", "Thanks for calling. Have a good day!")
    lines.append(_Line("user", rng.choice(farewell), facts={}))
    return lines, label


# -- the assistant's questions ----------------------------------------------------------------


def _words(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip()


def _second_person(text: str) -> str:
    return _PRONOUN.sub(lambda m: _PRONOUNS[m.group(1).lower()], text)


def _question(group: _Group, rng: random.Random) -> str:
    match = group.match
    field = next((f for f in group.fields if not group.opening[f.name]), group.fields[0])
    if match is not None and len(group.fields) > 1 and match.fact.is_number:
        # initial_price and final_price: one question about the price itself.
        return f"What would your {_words(match.name)} be?"
    description = field.description.strip().rstrip(".?!").strip()
    if not description:
        return f"Could you tell me your {_words(field.name)}?"
    text = _second_person(description[0].lower() + description[1:])
    if text.split(" ", 1)[0] in _WH and rng.random() < 0.5:
        return f"Can I ask {text}?"
    return f"Could you tell me {text}?"


def _purpose(instructions: str) -> str:
    """What the assistant says it is calling about, from the instructions' "Remind them ..."
    sentences (a reminder call states its reminder before asking anything)."""
    said = []
    for sentence in _sentences(instructions):
        if re.match(r"^(?:please\s+)?remind\b", sentence.strip(), re.I):
            question = _as_question(sentence)
            if question:
                said.append(question)
    return " ".join(said)


def _leverage_mention(instructions: str) -> tuple[Decimal, str] | None:
    """The competitor's figure the instructions tell the assistant to use, and how the
    assistant says it; None when no sentence carries both a figure and leverage words."""
    for sentence in _sentences(instructions):
        found = _MONEY.search(sentence)
        if found is None or not _LEVERAGE.search(sentence):
            continue
        amount = _amount(found)
        unit = _UNIT_AFTER.match(sentence[found.end() :])
        per = f" per {unit.group(1).lower()}" if unit else ""
        company = _company(sentence)
        source = f" from {company}" if company else " from another company"
        noun = (
            "an offer"
            if re.search(r"\boffer", sentence, re.I) and "quot" not in sentence
            else "a quote"
        )
        return amount, f"We have {noun} of {_money(amount)}{per}{source}. Can you do better?"
    return None


# -- the business's answers -------------------------------------------------------------------


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _is_money(group: _Group) -> bool:
    match = group.match
    if match is None or not match.fact.is_number:
        return False
    if match.fact.unit:
        return True
    text = " ".join(f"{f.name} {f.description}" for f in group.fields) + " " + match.name
    return bool(_MONEY_WORDS.search(text))


def _unit(unit: str | None) -> str:
    return f" {unit}" if unit else ""


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _spoken_int(n: int) -> str:
    """``1480`` -> ``one thousand four hundred eighty``."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {_spoken_int(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{_spoken_int(thousands)} thousand" + (f" {_spoken_int(rest)}" if rest else "")


def _say_money(amount: Decimal, rng: random.Random) -> str:
    whole = amount == amount.to_integral_value()
    forms = [_money(amount)]
    if whole:
        forms += [f"${int(amount)}", f"{int(amount):,} dollars"]
        if int(amount) < 1_000_000:
            forms.append(f"{_spoken_int(int(amount))} dollars")
    return rng.choice(forms)


def _say_number(value: int | float, rng: random.Random) -> str:
    if isinstance(value, int) or float(value).is_integer():
        n = int(value)
        forms = [str(n), f"{n:,}"]
        if 0 <= n < 1000:
            forms.append(_spoken_int(n))
        return rng.choice(forms)
    return str(value)


def _listing(items: Sequence[Any], conjunction: str = "and") -> str:
    said = [str(item) for item in items]
    if len(said) == 1:
        return said[0]
    return ", ".join(said[:-1]) + f" {conjunction} " + said[-1]


def _statement(group: _Group, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """What the business says to the group's question, and the facts it states."""
    match = group.match
    if match is None:
        return (
            rng.choice(
                (
                    "I'm sorry, I don't have that information.",
                    "I couldn't tell you that, I'm afraid.",
                )
            ),
            {},
        )
    fact = match.fact
    if fact.unknown:
        return (
            rng.choice(
                (
                    "I'm not sure, I'd have to check.",
                    "I don't know offhand; I'd have to ask and get back to you.",
                    "I'd have to check on that, sorry.",
                )
            ),
            {},
        )
    value = fact.value
    facts: dict[str, Any] = {}
    for field in group.fields:
        facts[field.name] = _as_field_value(value, field)
    if _is_money(group):
        assert isinstance(value, (int, float))
        amount = _say_money(Decimal(str(value)), rng)
        unit = _unit(fact.unit)
        label = _words(match.name)
        text = rng.choice(
            (
                f"That would be {amount}{unit}.",
                f"We charge {amount}{unit}.",
                f"It's {amount}{unit}.",
                f"Our {label} is {amount}{unit}.",
                f"For that we'd charge {amount}{unit}.",
            )
        )
        return text, facts
    if isinstance(value, bool):
        about = " ".join(f"{f.name} {f.description}" for f in group.fields)
        if value:
            options = ("Yes, we can.", "Yes, we do.", "Yes, absolutely.", "Yes, that works for us.")
        elif _AVAILABILITY_WORDS.search(about):
            options = (
                "I'm sorry, we're fully booked.",
                "We have nothing open then, sorry.",
                "No, I'm afraid we're booked up.",
                "Unfortunately we can't.",
            )
        else:
            options = ("No, I'm afraid not.", "Unfortunately we can't.", "No, we don't.")
        return rng.choice(options), facts
    if isinstance(value, (int, float)):
        spoken = _say_number(value, rng)
        return (
            rng.choice((f"It's {spoken}.", f"That would be {spoken}.", f"{_capital(spoken)}.")),
            facts,
        )
    if isinstance(value, list):
        kinds = {f.type for f in group.fields}
        said = _listing(value, "or" if kinds == {"string"} else "and")
        return rng.choice((f"We offer {said}.", f"We can do {said}.", f"{_capital(said)}.")), facts
    text = str(value)
    if text.rstrip()[-1:] in ".!?":
        return text, facts  # a whole sentence: said as it is written
    return rng.choice((f"It's {text}.", f"That would be {text}.", f"{_capital(text)}.")), facts


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_field_value(value: Any, field: AskedField) -> Any:
    """The fact's value as the field records it (a list said as one answer to a text field,
    an enum value in the field's own spelling)."""
    if field.type == "string" and isinstance(value, list):
        return _listing(value, "or")
    if field.type.startswith("array") and isinstance(value, str):
        return [value]
    if field.type == "enum" and isinstance(value, str):
        return next((e for e in field.enum if e.casefold() == value.casefold()), value)
    if field.type == "integer" and isinstance(value, float):
        return int(value)
    return value


def _counter(
    negotiation: Negotiable, own: Decimal, heard: Decimal, unit: str | None, rng: random.Random
) -> tuple[str, Decimal]:
    """The business's reply to a competitor's figure, and the value it ends on."""
    per = _unit(unit)
    lower = _lower_is_better(negotiation, own, heard)
    offer = negotiation.offer(own, heard) if lower == (heard < own) else own
    if lower and heard >= own:
        return f"We're already below that at {_money(own)}{per}.", own
    if not lower and heard <= own:
        return f"We're already above that at {_money(own)}{per}.", own
    if offer == own:
        limit = "lower" if lower else "higher"
        return (
            rng.choice(
                (
                    f"I'm sorry, we can't go {limit} than {_money(own)}{per}.",
                    f"I'm afraid we stay at {_money(own)}{per}.",
                )
            ),
            own,
        )
    beats = offer < heard if lower else offer > heard
    if beats:
        return (
            rng.choice(
                (
                    f"We can beat that. We can do {_money(offer)}{per}.",
                    f"We can beat that: {_money(offer)}{per}.",
                    f"For you we could do {_money(offer)}{per}, which beats it.",
                )
            ),
            offer,
        )
    if offer == heard:
        return (
            rng.choice(
                (
                    f"We can match it at {_money(offer)}{per}.",
                    f"We can't beat that, but we can match it at {_money(offer)}{per}.",
                    f"OK, we'll match that: {_money(offer)}{per}.",
                )
            ),
            offer,
        )
    direction = ("low", "come down") if lower else ("high", "go up")
    return (
        f"We can't go as {direction[0]} as {_money(heard)}, but we can {direction[1]} to "
        f"{_money(offer)}{per}.",
        offer,
    )


def _lower_is_better(negotiation: Negotiable, own: Decimal, heard: Decimal) -> bool:
    # A floor means the business comes down (the caller is buying); a ceiling that it goes up
    # (the caller is selling). With neither or both, the competitor's figure says which.
    if negotiation.floor is not None and negotiation.ceiling is None:
        return True
    if negotiation.ceiling is not None and negotiation.floor is None:
        return False
    return heard < own
