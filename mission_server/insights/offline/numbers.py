"""Numbers and money in what people say: number words ("sixty-two") and amounts
(``$62 per person``, ``a $200 deposit``) with their basis (per unit, total) and add-on words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --------------------------------------------------------------------------- number words

_UNIT_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEEN_WORDS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS_WORDS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALE_WORDS = {"thousand": 1_000, "million": 1_000_000}
_WORD = re.compile(r"[A-Za-z]+")


def _kind(word: str) -> str | None:
    if word in _UNIT_WORDS:
        return "unit"
    if word in _TEEN_WORDS:
        return "teen"
    if word in _TENS_WORDS:
        return "tens"
    if word == "hundred":
        return "hundred"
    if word in _SCALE_WORDS:
        return "scale"
    return None


def _value(word: str) -> int:
    return _UNIT_WORDS.get(word) or _TEEN_WORDS.get(word) or _TENS_WORDS.get(word) or 0


# Which kind of number word may follow which (None = start of a number). A word that may not
# follow ends the number there, so "fifty-eight fifty" reads as 58 and 50, not 158.
_MAY_FOLLOW: dict[str, set[str | None]] = {
    "unit": {None, "tens", "hundred", "scale"},
    "teen": {None, "hundred", "scale"},
    "tens": {None, "hundred", "scale"},
    "hundred": {"unit", "teen"},
    "scale": {"unit", "teen", "tens", "hundred"},
}


def _parse_words(tokens: list[tuple[int, int, str]], text: str, i: int) -> tuple[int, int] | None:
    """The longest number spelled from token ``i``: (value, index after its last token)."""
    total = current = 0
    last: str | None = None
    last_scale = 10**12
    had_hundred = False
    end: int | None = None
    j = i
    if tokens[i][2] == "a" and i + 1 < len(tokens) and tokens[i + 1][2] in ("hundred", "thousand"):
        current, last, j = 1, "unit", i + 1
    while j < len(tokens):
        start, _stop, word = tokens[j]
        if j > i:
            gap = text[tokens[j - 1][1] : start]
            if gap.strip(" -") or len(gap) > 3:
                break
        if word == "and" and last in ("hundred", "scale") and j + 1 < len(tokens):
            j += 1
            continue
        kind = _kind(word)
        if kind is None or last not in _MAY_FOLLOW[kind]:
            break
        if kind == "unit" and word == "zero" and last is not None:
            break
        if kind == "hundred":
            if had_hundred:
                break
            current *= 100
            had_hundred = True
        elif kind == "scale":
            scale = _SCALE_WORDS[word]
            if scale >= last_scale:
                break
            total += current * scale
            current, had_hundred, last_scale = 0, False, scale
        else:
            current += _value(word)
        last = kind
        end = j + 1
        j += 1
    if end is None:
        return None
    return total + current, end


def words_to_digits(text: str) -> str:
    """Replace spelled-out numbers with digits: "sixty-two dollars" → "62 dollars",
    "one thousand two hundred and fifty" → "1250". Other text is unchanged."""
    tokens = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    out: list[str] = []
    cursor = 0
    i = 0
    while i < len(tokens):
        parsed = (
            _parse_words(tokens, text, i) if (_kind(tokens[i][2]) or tokens[i][2] == "a") else None
        )
        if parsed is None:
            i += 1
            continue
        value, end = parsed
        out.append(text[cursor : tokens[i][0]])
        out.append(str(value))
        cursor = tokens[end - 1][1]
        i = end
    out.append(text[cursor:])
    return "".join(out)


# --------------------------------------------------------------------------- money

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MONEY = re.compile(
    rf"\$\s?(?P<a>{_NUM})(?:\s?(?P<ka>k|thousand)\b)?(?:\s*(?:dollars?|bucks|usd)\b)?"
    rf"|(?<![\w.])(?P<b>{_NUM})(?:\s?(?P<kb>k|thousand))?\s*(?:dollars?|bucks|usd)\b"
    r"(?:\s+and\s+(?P<cents>\d{1,2})\s+cents?\b)?",
    re.IGNORECASE,
)
_UNIT_GROUPS: dict[str, frozenset[str]] = {
    "person": frozenset(
        {
            "person",
            "persons",
            "people",
            "head",
            "heads",
            "guest",
            "guests",
            "plate",
            "plates",
            "attendee",
            "attendees",
            "cover",
            "covers",
            "pax",
            "individual",
            "seat",
            "seats",
            "child",
            "children",
            "kid",
            "kids",
            "adult",
            "adults",
        }
    ),
    "hour": frozenset({"hour", "hours", "hr", "hrs"}),
    "night": frozenset({"night", "nights"}),
    "day": frozenset({"day", "days"}),
    "week": frozenset({"week", "weeks"}),
    "month": frozenset({"month", "months"}),
    "year": frozenset({"year", "years"}),
    "item": frozenset({"item", "items", "unit", "units", "piece", "pieces"}),
    # Things priced one at a time, each its own unit: "$45 a room", "$2 a step".
    **{
        word: frozenset({word, word + "s"})
        for word in ("room", "visit", "treatment", "session", "lesson", "class", "step")
    },
}
_UNIT_OF_WORD = {word: unit for unit, words in _UNIT_GROUPS.items() for word in words}
_PER_AFTER = re.compile(
    r"^\s*(?:(?P<per>per|/|for each|for every)|(?P<a>an|a|each)\b)\s*-?\s*(?P<unit>[a-z]+)",
    re.IGNORECASE,
)
_EACH_AFTER = re.compile(r"^\s*,?\s*(?:each|apiece|a piece|pp)\b", re.IGNORECASE)
_PER_BEFORE = re.compile(r"\bper[\s-]+(?P<unit>[a-z]+)\b", re.IGNORECASE)
_TOTAL_WORDS = re.compile(
    r"\b(?:total|in total|altogether|all[- ]in|overall|for everything|for the whole|"
    r"all together|out the door)\b",
    re.IGNORECASE,
)
# "a flat $300", "a flat rate of $300", "flat fee: $300": one price for the whole job.
_FLAT_BEFORE = re.compile(r"\bflat(?:\s+(?:rate|fee|price))?(?:\s+(?:of|is))?\s*$", re.IGNORECASE)
#: Units that price a whole job rather than a part of it: "$1,480 per move", "$85 per visit".
JOB_UNITS = frozenset(
    {
        "job",
        "move",
        "visit",
        "trip",
        "project",
        "service",
        "call",
        "event",
        "install",
        "installation",
        "cleanup",
        "stay",
        "booking",
        "appointment",
        "session",
        "treatment",
        "time",
    }
)
_SENTENCE_END = re.compile(r"[.!?;](?:\s|$)")
_ADDON_WORDS = (
    "extra",
    "additional",
    "on top",
    "surcharge",
    "fee",
    "fees",
    "deposit",
    "delivery",
    "gratuity",
    "tip",
    "tax",
    "taxes",
    "setup",
    "set-up",
    "rental",
    "service charge",
    "cleaning",
    "corkage",
    "cancellation",
    "travel",
    "parking",
    "down payment",
    "another",
    "separate",
    "separately",
)
_ADDON = "|".join(re.escape(w) for w in _ADDON_WORDS)
# Right after the amount (used with ``match(text, pos)``, so no ``^``): "$150 extra",
# "$200 deposit", "$150 for delivery", "$75 setup fee".
_ADDON_AFTER = re.compile(
    rf"\s*(?:(?:for|as|in)\s+(?:a\s+|an\s+|the\s+)?)?(?P<w>{_ADDON})\b"
    rf"(?:\s+(?P<w2>fee|charge|surcharge)\b)?"
    # "$399 doc fee", "$60 trip charge", "$75 pet fee": a fee named by one or two words.
    r"|\s*(?:[a-z][\w-]*\s+){0,2}?(?P<w3>fee|fees|charge|surcharge|deposit)\b",
    re.IGNORECASE,
)
# Shortly before it, in the same clause: "delivery is $150", "the setup fee would be $75",
# "parking's $25", "a trip charge of $60".
_ADDON_BEFORE = re.compile(
    rf"(?P<incl>\b(?:with|including|incl|includes|plus)\s+(?:the\s+)?(?:[\w-]+\s+and\s+)?)?"
    rf"\b(?P<w>{_ADDON})(?:'s)?\b"
    rf"(?:\s+[\w']+){{0,3}}\s*$"
    # "a trip charge of $60", "the service charge is $25" (the noun, not "we charge $45")
    r"|\b(?:a|an|the|our|your|their|that|this)\s+(?:[\w-]+\s+)?(?P<c>charge|surcharge)\s+"
    r"(?:of|is|would be|will be)\s*(?:about\s+|around\s+)?$",
    re.IGNORECASE,
)
#: The unit of "$45 each": per whatever is being priced, so it matches any per-unit field.
EACH = "each"


@dataclass(frozen=True)
class Money:
    """One amount of money said in a turn."""

    amount: float
    unit: str | None  # "person", "hour", … or None
    total: bool
    start: int  # position in the turn's digit-normalised text
    end: int
    #: What the amount is charged for when it is not the price itself ("delivery", "deposit",
    #: "extra"): "$150 extra for delivery", "a $200 deposit", "the setup fee is $75".
    addons: frozenset[str] = frozenset()

    def describe(self) -> str:
        text = (
            f"${self.amount:,.0f}" if self.amount == int(self.amount) else (f"${self.amount:,.2f}")
        )
        if self.unit == EACH:
            text += " each"
        elif self.unit:
            text += f" per {self.unit}"
        elif self.total:
            text += " total"
        if self.addons:
            text += " (" + ", ".join(sorted(self.addons)) + ")"
        return text


def _unit_name(word: str) -> str:
    word = word.lower()
    return _UNIT_OF_WORD.get(word, word)


def _amount(number: str, thousand: str | None, cents: str | None) -> float:
    value = float(number.replace(",", ""))
    if thousand:
        value *= 1000
    if cents:
        value += int(cents) / 100
    return value


def find_money(text: str) -> list[Money]:
    """Every amount of money in ``text`` (digits or words), with its per-unit / total basis,
    in order."""
    norm = words_to_digits(text)
    matches = list(_MONEY.finditer(norm))
    found: list[Money] = []
    claimed = 0  # end of the text already read as part of the previous amount
    for index, match in enumerate(matches):
        number = match.group("a") or match.group("b")
        amount = _amount(number, match.group("ka") or match.group("kb"), match.group("cents"))
        # The clause around this amount, stopping at the neighbouring amounts (and at the
        # previous amount's own "per person") so one amount's basis is never read as another's.
        after_stop = matches[index + 1].start() if index + 1 < len(matches) else len(norm)
        sentence_end = _SENTENCE_END.search(norm, match.end())
        if sentence_end and sentence_end.start() < after_stop:
            after_stop = sentence_end.start()
        after = norm[match.end() : min(after_stop, match.end() + 40)]
        before_start = max(claimed, matches[index - 1].end() if index else 0)
        for ending in _SENTENCE_END.finditer(norm, before_start, match.start()):
            before_start = ending.end()
        before = norm[max(before_start, match.start() - 40) : match.start()]
        unit: str | None = None
        claimed = match.end()
        per = _PER_AFTER.match(after)
        if per:
            word = per.group("unit").lower()
            if per.group("per") or word in _UNIT_OF_WORD:
                unit = _unit_name(word)
                claimed = match.end() + per.end()
        each = _EACH_AFTER.match(after) if unit is None else None
        if each:
            unit = EACH
            claimed = match.end() + each.end()
        if unit is None:
            per_before = _PER_BEFORE.search(before)
            if per_before:
                unit = _unit_name(per_before.group("unit"))
        flat = bool(_FLAT_BEFORE.search(before))
        addons: set[str] = set()
        addon_after = _ADDON_AFTER.match(norm, claimed, after_stop)
        if addon_after:
            addons.update(w.lower() for w in addon_after.group("w", "w2", "w3") if w)
            if unit is None:
                # "$75 pet fee per stay": the basis after the fee's name.
                per = _PER_AFTER.match(norm[addon_after.end() : after_stop])
                if per and (per.group("per") or per.group("unit").lower() in _UNIT_OF_WORD):
                    unit = _unit_name(per.group("unit"))
        # Only the clause just before the amount: "with delivery, it's $62" is the price.
        clause = re.split(r"[,:]", before)[-1]
        addon_before = _ADDON_BEFORE.search(clause)
        # "with taxes it comes to $441" and "including delivery, $62" include the add-on.
        if addon_before and not addon_before.group("incl"):
            word = (addon_before.group("w") or addon_before.group("c")).lower()
            if not (flat and word in ("fee", "charge")):
                addons.add(word)
        total = unit is None and (
            flat or bool(_TOTAL_WORDS.search(after) or _TOTAL_WORDS.search(before))
        )
        found.append(Money(amount, unit, total, match.start(), match.end(), frozenset(addons)))
    return found
