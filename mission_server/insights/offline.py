"""The offline extractor: structured insights from the transcript text alone, no model.

It exists so the simulator, tests and air-gapped runs get real, checkable results. It reads
what people *said* and never guesses: a field it cannot find is reported in ``missing``, and a
field the text answers two different ways is missing too, with the reason. A required field
missing makes the result ``failed``; an optional one is left out. Every result is validated
against the insight's JSON Schema before it is returned.

Roles: ``assistant`` is our voice agent; ``user`` is the other party (on an outbound mission
call, the business we called). Prices are read from the other party's turns.

How each parameter type is read (the heuristics are deliberately simple and stated here):

* **Money** (a number/integer field whose name says price, cost, quote, fee, amount, total,
  budget, deposit, … or whose description mentions a price or dollars): amounts written
  ``$62``, ``$1,250``, ``$1.2k``, ``62 dollars``, ``62 bucks``, ``sixty-two dollars`` (and
  ``… and fifty cents``). An amount is *per unit* when followed by ``per person``, ``a head``,
  ``/guest``, ``each`` …, or preceded in its clause by ``per person``; it is a *total* when its
  clause says total, altogether, all-in, overall. Then:

  - whose amounts: the other party's (``user``), unless the field says assistant/agent/our
    offer. A user turn that is a plain "yes / we can do that" to an assistant turn naming an
    amount counts as the user agreeing to the *last* amount the assistant named. A user
    amount that merely repeats the assistant's figure from the turn before, in a turn that is
    not a yes ("we can't match $58, but $60 works"), is a reference, not an offer, and is
    skipped.
  - which basis: a field saying ``per_person``/``per guest``/``each`` takes per-unit amounts
    (person, head, guest, plate, attendee, cover are one unit); one saying ``total`` takes
    totals. Once someone has quoted per unit, a later amount with no unit and no "total"
    ("we could do $60") is read on the same basis. A field that says neither takes per-unit
    amounts if there are any (businesses quote per unit and buyers compare per unit), else
    any amount.
  - add-ons: an amount charged *for* something else — "$150 extra for delivery", "a $200
    deposit", "the setup fee is $75" (extra, fee, deposit, delivery, setup, tax, tip …) — is
    not the price. A field about that add-on (``delivery_fee``, ``deposit``) takes only such
    amounts; every other money field ignores them.
  - which mention: ``initial``/``first``/``original``/``opening``/``baseline`` in the name
    (else the description) takes the first; ``lowest``/``min``/``cheapest`` the smallest;
    ``highest``/``max`` the largest; otherwise — ``final``, ``agreed``, ``best`` or nothing —
    the last, because in a negotiation a later offer replaces an earlier one.

* **Other numbers** (counts, minutes, …): a number (digits or words) directly followed, within
  two words, by a word from the field's name or description (``40 guests`` for
  ``guest_count``), or the only number in the other party's reply to an assistant question
  about the field. Several different values with no first/last/min/max hint is ambiguous.
  ``integer`` fields need a whole number.
* **boolean**: the assistant question that best matches the field's name and description
  (shared words), and the other party's reply right after it: yes/yeah/sure/we do/we can …
  is true, no/not/unfortunately/we don't/we can't … is false ("no problem" is a yes).
  Equally good questions answered both ways is ambiguous.
* **enum**: the enum values named in the text (underscores and hyphens read as spaces). The
  other party's turns decide; if they name none, the whole conversation. Two different values
  named is ambiguous. A ``string`` field whose description lists quoted options
  (``"billing", "technical"``) is treated the same way.
* **string**: a field about a summary gets the summary (below); otherwise the other party's
  reply to the best-matching assistant question, with fillers ("well", "it's") trimmed. A
  money string field gets the amount as text (``$62 per person``).
* **array / array(string)**: options the description lists (quoted, or after "e.g." / "such
  as") that are named in the text, in order of first mention; otherwise the items of an
  enumeration ("chicken, beef and a vegetarian lasagna") in the reply to the best-matching
  question. **array(number)**: every amount mentioned (money fields) or every matching number.
  **array(boolean)**: the description's ordered list ("in order: email, SMS, push") answered
  one by one as booleans; all must be found.
* **object**: the sub-fields the description lists after "including"/"with"/":" ("name,
  account number and contact preference"), each read as a string (or money) field.
* **Free-text insights** and summary fields: a deterministic summary — who spoke how often, the
  amounts the other party quoted in order, and the other party's last words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mission_server.insights.base import ExtractionResult, InsightDefinition, InsightParameter
from mission_server.insights.schema import validate_result
from mission_server.telephony.base import TranscriptMessage

__all__ = [
    "Money",
    "OfflineExtractionResult",
    "OfflineExtractor",
    "find_money",
    "polarity",
    "words_to_digits",
]


@dataclass
class OfflineExtractionResult(ExtractionResult):
    """An ``ExtractionResult`` that also says *why* each missing field is missing, and what was
    found when the result failed (``result`` stays None then, so nothing half-right is used)."""

    reasons: dict[str, str] = field(default_factory=dict)
    partial: dict[str, Any] = field(default_factory=dict)


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
        }
    ),
    "hour": frozenset({"hour", "hours", "hr", "hrs"}),
    "night": frozenset({"night", "nights"}),
    "day": frozenset({"day", "days"}),
    "week": frozenset({"week", "weeks"}),
    "month": frozenset({"month", "months"}),
    "year": frozenset({"year", "years"}),
    "item": frozenset({"item", "items", "unit", "units", "piece", "pieces"}),
}
_UNIT_OF_WORD = {word: unit for unit, words in _UNIT_GROUPS.items() for word in words}
_PER_AFTER = re.compile(
    r"^\s*(?:(?P<per>per|/|for each|for every)|(?P<a>a|an|each))\s*-?\s*(?P<unit>[a-z]+)",
    re.IGNORECASE,
)
_EACH_AFTER = re.compile(r"^\s*,?\s*(?:each|apiece|a piece|pp)\b", re.IGNORECASE)
_PER_BEFORE = re.compile(r"\bper[\s-]+(?P<unit>[a-z]+)\b", re.IGNORECASE)
_TOTAL_WORDS = re.compile(
    r"\b(?:total|in total|altogether|all[- ]in|overall|for everything|for the whole|"
    r"all together)\b",
    re.IGNORECASE,
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
)
_ADDON = "|".join(re.escape(w) for w in _ADDON_WORDS)
# Right after the amount (used with ``match(text, pos)``, so no ``^``): "$150 extra",
# "$200 deposit", "$150 for delivery", "$75 setup fee".
_ADDON_AFTER = re.compile(
    rf"\s*(?:(?:for|as|in)\s+(?:a\s+|an\s+|the\s+)?)?(?P<w>{_ADDON})\b"
    rf"(?:\s+(?P<w2>fee|charge|surcharge)\b)?",
    re.IGNORECASE,
)
# Shortly before it, in the same clause: "delivery is $150", "the setup fee would be $75".
_ADDON_BEFORE = re.compile(rf"\b(?P<w>{_ADDON})\b(?:\s+[\w']+){{0,3}}\s*$", re.IGNORECASE)
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
        total = unit is None and bool(_TOTAL_WORDS.search(after) or _TOTAL_WORDS.search(before))
        addons: set[str] = set()
        addon_after = _ADDON_AFTER.match(norm, claimed, after_stop)
        if addon_after:
            addons.update(w.lower() for w in addon_after.group("w", "w2") if w)
        # Only the clause just before the amount: "with delivery, it's $62" is the price.
        clause = re.split(r"[,:]", before)[-1]
        addon_before = _ADDON_BEFORE.search(clause)
        if addon_before:
            addons.add(addon_before.group("w").lower())
        found.append(Money(amount, unit, total, match.start(), match.end(), frozenset(addons)))
    return found


# --------------------------------------------------------------------------- words & answers

_STOPWORDS = frozenset(
    """
a an the of to is are was were be been being did does do done if in on at for and or any this
that these those it its they them their there what which who whom how much many true false
whether customer caller user other party conversation call calls during mentioned number
count value field from with by as than then so not no yes when where why will would should
could can may might must our your you we us me my i he she his her about into over after before
per each all list overall primary brief specific given provided rate rating score level
""".split()  # noqa: SIM905 - a word list reads better as text
)
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'"})


def _stem(word: str) -> str:
    word = word.lower().translate(_APOSTROPHES)
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, replacement in (
        ("ibility", "ibl"),
        ("ability", "abl"),
        ("ation", "at"),
        ("ies", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z']*", text.translate(_APOSTROPHES))


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[\s_\-]+", spaced) if w]


def _stems(words: Iterable[str]) -> set[str]:
    return {
        _stem(w)
        for w in words
        if len(w) >= 3 and w.lower().translate(_APOSTROPHES) not in _STOPWORDS
    }


_FILLER = re.compile(
    r"^(?:(?:oh|well|um+|uh+|hmm+|ah|so|okay so|ok so|let me see|let's see)\b[\s,.!-]*)+",
    re.IGNORECASE,
)
_YES_SPECIAL = re.compile(r"^(?:no problem|no worries|not a problem)\b", re.IGNORECASE)
_NO = re.compile(
    r"^(?:no|nope|nah|not|never|unfortunately|sorry|i'm afraid|i am afraid|afraid not|negative|"
    r"we (?:don't|do not|can't|cannot|won't|will not|aren't|are not|couldn't|could not)|"
    r"i (?:don't|do not|can't|cannot|won't|couldn't)|"
    r"it (?:doesn't|does not|isn't|is not|won't|will not)|it's not|that's not|that isn't|"
    r"there's no|there is no|we have no)\b",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|certainly|absolutely|of course|definitely|correct|right|indeed|"
    r"exactly|that's right|that's correct|that is correct|"
    r"we (?:do|can|will|are|have|could)|i (?:do|can|will|could)|it (?:does|is|will)|"
    r"ok|okay|deal|sounds good|that works|works for (?:us|me))\b",
    re.IGNORECASE,
)


def polarity(text: str) -> bool | None:
    """Whether a reply opens with yes (True), no (False), or neither (None)."""
    text = _FILLER.sub("", text.strip().translate(_APOSTROPHES))
    if _YES_SPECIAL.match(text):
        return True
    if _NO.match(text):
        return False
    if _YES.match(text):
        return True
    return None


# --------------------------------------------------------------------------- field intent

_MONEY_NAME_WORDS = frozenset(
    {
        "price",
        "prices",
        "pricing",
        "cost",
        "costs",
        "quote",
        "quoted",
        "fee",
        "fees",
        "amount",
        "total",
        "budget",
        "deposit",
        "dollar",
        "dollars",
        "charge",
        "charges",
        "spend",
        "payment",
        "usd",
        "rate",
        "bid",
        "offer",
        "discount",
    }
)
_MONEY_DESCRIPTION = re.compile(
    r"\$|\bdollars?\b|\bprices?\b|\bpricing\b|\bcosts?\b|\bquoted?\b|\bfees?\b"
    r"|\bamounts? of money\b",
    re.IGNORECASE,
)
_POSITION_WORDS = {
    "first": "first",
    "initial": "first",
    "original": "first",
    "opening": "first",
    "starting": "first",
    "baseline": "first",
    "earliest": "first",
    "final": "last",
    "last": "last",
    "agreed": "last",
    "negotiated": "last",
    "latest": "last",
    "closing": "last",
    "best": "last",
    "current": "last",
    "lowest": "min",
    "minimum": "min",
    "min": "min",
    "cheapest": "min",
    "highest": "max",
    "maximum": "max",
    "max": "max",
}
_PER_IN_FIELD = re.compile(r"\bper[\s_-]+([a-z]+)|\beach\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Intent:
    keywords: dict[str, int]  # stem -> weight (name words count double)
    money: bool
    unit: str | None
    total: bool
    position: str | None
    party: str  # "user" or "assistant"
    summary: bool


def _intent(name: str, description: str) -> _Intent:
    name_words = [w.lower() for w in _name_words(name)]
    description_words = [w.lower() for w in _words(description)]
    keywords = dict.fromkeys(_stems(description_words), 1)
    keywords.update(dict.fromkeys(_stems(name_words), 2))
    money = bool(set(name_words) & _MONEY_NAME_WORDS) or bool(
        _MONEY_DESCRIPTION.search(description)
    )
    unit: str | None = None
    for source in (" ".join(name_words), description):
        per = _PER_IN_FIELD.search(source)
        if per:
            unit = _unit_name(per.group(1)) if per.group(1) else EACH
            break
    total = unit is None and (
        "total" in name_words
        or bool(re.search(r"\b(?:total|all[- ]in|overall cost)\b", description, re.IGNORECASE))
    )
    position = next((_POSITION_WORDS[w] for w in name_words if w in _POSITION_WORDS), None)
    if position is None:
        position = next(
            (_POSITION_WORDS[w] for w in description_words if w in _POSITION_WORDS), None
        )
    party = "user"
    if {"assistant", "agent"} & set(name_words) or re.search(
        r"\b(?:the assistant|our (?:offer|bid)|we (?:offered|proposed))\b",
        description,
        re.IGNORECASE,
    ):
        party = "assistant"
    summary = "summary" in name_words or "summarize" in name_words or "summarise" in name_words
    return _Intent(keywords, money, unit, total, position, party, summary)


# --------------------------------------------------------------------------- transcript view


@dataclass(frozen=True)
class _Turn:
    index: int
    role: str
    text: str
    norm: str  # spelled numbers turned into digits
    money: tuple[Money, ...]


class _Missing(Exception):
    """A field could not be read; the message says why."""


@dataclass(frozen=True)
class _Offer:
    money: Money
    turn: int


def _pick(values: list[Any], position: str | None, what: str, *, default_last: bool) -> Any:
    if not values:
        raise _Missing(f"no {what} found")
    if position == "first":
        return values[0]
    if position == "min":
        return min(values)
    if position == "max":
        return max(values)
    if position == "last" or default_last:
        return values[-1]
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        raise _Missing(
            f"ambiguous: the conversation gives {what} as "
            + " and ".join(_show(v) for v in distinct)
        )
    return distinct[0]


def _show(value: Any) -> str:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _clean_answer(text: str) -> str:
    text = _FILLER.sub("", text.strip().translate(_APOSTROPHES))
    text = re.sub(r"^(?:sure|yes|yeah|okay|ok)[,!.]?\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(
        r"^(?:it's|it is|that's|that is|that would be|my name is|this is|we're|we are)\s+",
        "",
        text,
        flags=re.IGNORECASE,
    )
    text = text.strip().rstrip(".!")
    return text[:1].upper() + text[1:] if text else text


_QUOTED = re.compile(r"[\"“]([^\"”]{1,80})[\"”]")
_EXAMPLES = re.compile(r"(?:e\.g\.,?|for example,?|such as|like)\s*:?\s*([^().;]+)", re.IGNORECASE)
_INTRODUCERS = frozenset(
    {
        "offer",
        "offers",
        "have",
        "has",
        "got",
        "include",
        "includes",
        "including",
        "are",
        "is",
        "with",
        "like",
        "serve",
        "serves",
        "provide",
        "provides",
        "carry",
        "options",
        "choices",
        "choose",
        "pick",
        "need",
        "needs",
        "want",
        "wants",
        "mentioned",
        "use",
        "uses",
        "would",
        "take",
        "takes",
        "accept",
        "accepts",
        "support",
        "supports",
        "sell",
        "sells",
        "stock",
        "make",
        "makes",
        "cover",
        "covers",
        "do",
        "does",
        "recommend",
        "suggest",
        "feature",
    }
)
_ARTICLES = re.compile(r"^(?:a|an|the|our|some|your|their|also)\s+", re.IGNORECASE)


def _split_list(text: str) -> list[str]:
    parts = re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", text.strip())
    return [p.strip(" .!?\"'") for p in parts if p.strip(" .!?\"'")]


def _options_in_description(description: str) -> list[str]:
    quoted = [q.strip() for q in _QUOTED.findall(description) if q.strip()]
    if len(quoted) >= 2:
        return list(dict.fromkeys(quoted))
    example = _EXAMPLES.search(description)
    if example:
        items = _split_list(example.group(1))
        if len(items) >= 2:
            return list(dict.fromkeys(items))
    return []


def _enumeration(text: str) -> list[str]:
    """The items of the longest "x, y and z" list in ``text``."""
    best: list[str] = []
    for sentence in re.split(r"(?<=[.!?;])\s+", text):
        if ":" in sentence:
            sentence = sentence.split(":", 1)[1]
        items = _split_list(sentence)
        if len(items) < 2:
            continue
        head = items[0].split()
        for position in range(len(head) - 1, -1, -1):
            if head[position].lower().translate(_APOSTROPHES) in _INTRODUCERS or head[
                position
            ].lower().endswith("'ve"):
                head = head[position + 1 :]
                break
        items[0] = " ".join(head)
        cleaned = [_ARTICLES.sub("", item).strip() for item in items]
        cleaned = [re.sub(r"\s+(?:too|as well)$", "", c) for c in cleaned if c]
        if len(cleaned) >= 2 and len(cleaned) > len(best):
            best = cleaned
    return best


def _named(value: str, text: str) -> int | None:
    """Where ``value`` is named in ``text`` (as a word, ``_``/``-`` read as spaces), or None."""
    variants = {value, value.replace("_", " "), value.replace("-", " "), value.replace("_", "-")}
    best: int | None = None
    for variant in variants:
        match = re.search(
            rf"(?<![A-Za-z0-9]){re.escape(variant)}(?![A-Za-z0-9])", text, re.IGNORECASE
        )
        if match and (best is None or match.start() < best):
            best = match.start()
    return best


_OBJECT_FIELDS = re.compile(r"(?:including|includes|include|with|:)\s+([^.;()]+)", re.IGNORECASE)


class _Reader:
    """Answers one insight's parameters from one transcript."""

    def __init__(self, transcript: Sequence[TranscriptMessage]) -> None:
        turns: list[_Turn] = []
        for message in transcript:
            if message.role not in ("assistant", "user") or not message.text.strip():
                continue
            text = message.text.strip()
            turns.append(
                _Turn(
                    len(turns), message.role, text, words_to_digits(text), tuple(find_money(text))
                )
            )
        self.turns = turns

    # ---- helpers

    def _questions(self, intent: _Intent) -> list[tuple[int, _Turn, _Turn]]:
        """(score, question, reply) for assistant questions about the field that got a reply,
        best first (ties keep conversation order)."""
        found = []
        for turn in self.turns[:-1]:
            reply = self.turns[turn.index + 1]
            if turn.role != "assistant" or "?" not in turn.text or reply.role != "user":
                continue
            said = _stems(_words(turn.text))
            score = sum(weight for stem, weight in intent.keywords.items() if stem in said)
            if score >= 2:
                found.append((score, turn, reply))
        found.sort(key=lambda item: -item[0])
        return found

    def _best_questions(self, intent: _Intent) -> list[tuple[_Turn, _Turn]]:
        questions = self._questions(intent)
        if not questions:
            return []
        top = questions[0][0]
        return [(q, r) for score, q, r in questions if score == top]

    def offers(self, party: str) -> list[_Offer]:
        """The amounts ``party`` put forward, in order (see the module docstring)."""
        offers: list[_Offer] = []
        for turn in self.turns:
            if turn.role != party:
                continue
            previous = self.turns[turn.index - 1] if turn.index else None
            earlier = previous.money if previous and previous.role != party else ()
            answer = polarity(turn.text)
            if not turn.money:
                if answer is True and earlier:
                    offers.append(_Offer(earlier[-1], turn.index))
                continue
            echoes = {m.amount for m in earlier}
            for money in turn.money:
                if answer is not True and money.amount in echoes:
                    continue
                offers.append(_Offer(money, turn.index))
        return offers

    def _on_basis(self, offers: list[_Offer], intent: _Intent) -> tuple[list[_Offer], str]:
        # A field about an add-on ("delivery_fee", "deposit") takes only amounts charged for
        # it; any other money field takes only amounts that are not add-ons.
        wanted = {_stem(w) for w in _ADDON_WORDS} & set(intent.keywords)
        if wanted:
            offers = [o for o in offers if wanted & {_stem(a) for a in o.money.addons}]
        else:
            offers = [o for o in offers if not o.money.addons]
        all_money = [m for t in self.turns for m in t.money if not m.addons]
        units = {m.unit for m in all_money if m.unit}
        if intent.unit:
            what = f"per-{intent.unit} amount" if intent.unit != EACH else "per-unit amount"
            if intent.unit != EACH and not units & {intent.unit, EACH}:
                return [], what
            if intent.unit == EACH and not units:
                return [], what
            return [
                o
                for o in offers
                if o.money.unit in (intent.unit, EACH)
                or (intent.unit == EACH and o.money.unit)
                or (o.money.unit is None and not o.money.total)
            ], what
        if intent.total:
            totals = [o for o in offers if o.money.total]
            if totals or units:
                return totals, "total amount"
            return [o for o in offers if o.money.unit is None], "total amount"
        if units:
            chosen = [o for o in offers if o.money.unit or not o.money.total]
            return chosen, "amount"
        return offers, "amount"

    def money_value(self, intent: _Intent) -> Money:
        offers, what = self._on_basis(self.offers(intent.party), intent)
        who = "the other party" if intent.party == "user" else "the assistant"
        if not offers:
            raise _Missing(f"no {what} offered by {who}")
        amounts = [o.money.amount for o in offers]
        chosen = _pick(amounts, intent.position, what, default_last=True)
        # Return the mention itself so the basis (unit/total) travels with it.
        for offer in offers if intent.position == "first" else reversed(offers):
            if offer.money.amount == chosen:
                return offer.money
        raise _Missing(f"no {what} offered by {who}")  # pragma: no cover - chosen is in offers

    def _count_candidates(self, intent: _Intent) -> list[float]:
        keywords = set(intent.keywords)
        # "40 people" answers a question about guests: the person-like unit words are one idea.
        person = {_stem(w) for w in _UNIT_GROUPS["person"]}
        if keywords & person:
            keywords |= person
        values: list[tuple[int, int, float]] = []
        for turn in self.turns:
            taken = [(m.start, m.end) for m in turn.money]
            for match in re.finditer(rf"(?<![\w.$])({_NUM})(?![\w])", turn.norm):
                if any(s <= match.start() < e for s, e in taken):
                    continue
                following = _words(turn.norm[match.end() : match.end() + 40])[:2]
                if any(_stem(w) in keywords for w in following):
                    values.append(
                        (turn.index, match.start(), float(match.group(1).replace(",", "")))
                    )
        for _question, reply in self._best_questions(intent):
            taken = [(m.start, m.end) for m in reply.money]
            numbers = [
                m
                for m in re.finditer(rf"(?<![\w.$])({_NUM})(?![\w])", reply.norm)
                if not any(s <= m.start() < e for s, e in taken)
            ]
            if len(numbers) == 1:
                values.append(
                    (reply.index, numbers[0].start(), float(numbers[0].group(1).replace(",", "")))
                )
        values = sorted(set(values))
        return [v for _turn, _pos, v in values]

    # ---- per type

    def read(self, parameter: InsightParameter) -> Any:
        intent = _intent(parameter.name, parameter.description)
        kind = parameter.type
        if kind in ("number", "integer"):
            if intent.money:
                value: Any = self.money_value(intent).amount
            else:
                value = _pick(
                    self._count_candidates(intent),
                    intent.position,
                    f"a number for {parameter.name}",
                    default_last=False,
                )
            if kind == "integer":
                if value != int(value):
                    raise _Missing(f"found {_show(value)}, which is not a whole number")
                return int(value)
            return int(value) if value == int(value) else value
        if kind == "boolean":
            return self.boolean(intent)
        if kind == "enum":
            return self.enum(list(parameter.enum))
        if kind == "string":
            if intent.summary:
                return self.summary()
            options = _options_in_description(parameter.description)
            if len(options) >= 2:
                return self.enum(options)
            if intent.money:
                return self.money_value(intent).describe()
            return self.answer(intent)
        if kind in ("array", "array(string)"):
            return self.items(intent, parameter.description)
        if kind == "array(number)":
            return self.numbers(intent)
        if kind == "array(boolean)":
            return self.booleans(parameter.description)
        if kind == "object":
            return self.object(parameter.description)
        raise _Missing(f"type {kind} is not supported")  # pragma: no cover - schema-checked

    def boolean(self, intent: _Intent) -> bool:
        questions = self._best_questions(intent)
        if not questions:
            raise _Missing("the assistant never asked about it")
        answers = [polarity(reply.text) for _q, reply in questions]
        known = {a for a in answers if a is not None}
        if not known:
            raise _Missing(f"the reply to {questions[-1][0].text!r} is neither yes nor no")
        if len(known) > 1:
            raise _Missing("ambiguous: the question was answered both yes and no")
        return known.pop()

    def enum(self, values: list[str]) -> str:
        for roles in (("user",), ("user", "assistant")):
            named: dict[str, tuple[int, int]] = {}
            for turn in self.turns:
                if turn.role not in roles:
                    continue
                for value in values:
                    where = _named(value, turn.text)
                    if where is not None and value not in named:
                        named[value] = (turn.index, where)
            if len(named) == 1:
                return next(iter(named))
            if len(named) > 1:
                ordered = sorted(named, key=lambda v: named[v])
                raise _Missing(
                    "ambiguous: the conversation names " + " and ".join(repr(v) for v in ordered)
                )
        raise _Missing("none of " + ", ".join(repr(v) for v in values) + " is named")

    def answer(self, intent: _Intent) -> str:
        questions = self._best_questions(intent)
        if not questions:
            raise _Missing("the assistant never asked about it")
        text = _clean_answer(questions[-1][1].text)
        if not text:
            raise _Missing("the reply was empty")
        return text

    def items(self, intent: _Intent, description: str) -> list[str]:
        options = _options_in_description(description)
        if options:
            named: dict[str, tuple[int, int]] = {}
            for turn in self.turns:
                for option in options:
                    where = _named(option, turn.text)
                    if where is not None and option not in named:
                        named[option] = (turn.index, where)
            if named:
                return sorted(named, key=lambda o: named[o])
        for _question, reply in reversed(self._best_questions(intent)):
            listed = _enumeration(reply.text)
            if listed:
                return listed
        raise _Missing("no list of items found")

    def numbers(self, intent: _Intent) -> list[float]:
        if intent.money:
            amounts = [
                m.amount
                for t in self.turns
                for m in t.money
                if (intent.unit is None or m.unit in (intent.unit, EACH, None))
            ]
        else:
            amounts = self._count_candidates(intent)
        amounts = list(dict.fromkeys(amounts))
        if not amounts:
            raise _Missing("no numbers found")
        return [int(a) if a == int(a) else a for a in amounts]

    def booleans(self, description: str) -> list[bool]:
        match = re.search(r"in (?:this )?order\s*:?\s*([^.;()]+)", description, re.IGNORECASE)
        if not match:
            raise _Missing('the description does not list the flags "in order: a, b, c"')
        values: list[bool] = []
        for item in _split_list(match.group(1)):
            try:
                values.append(self.boolean(_intent(item.replace(" ", "_"), item)))
            except _Missing as exc:
                raise _Missing(f"{item}: {exc}") from None
        return values

    def object(self, description: str) -> dict[str, Any]:
        match = _OBJECT_FIELDS.search(description)
        if not match:
            raise _Missing("the description does not name the object's fields")
        out: dict[str, Any] = {}
        for item in _split_list(match.group(1)):
            key = re.sub(r"[^a-z0-9]+", "_", _ARTICLES.sub("", item).lower()).strip("_")
            if not key:
                continue
            sub_intent = _intent(key, item)
            try:
                if sub_intent.money:
                    money = self.money_value(sub_intent)
                    out[key] = (
                        int(money.amount) if money.amount == int(money.amount) else (money.amount)
                    )
                else:
                    out[key] = self.answer(sub_intent)
            except _Missing:
                continue
        if not out:
            raise _Missing("none of its fields was found")
        return out

    def summary(self) -> str:
        if not self.turns:
            raise _Missing("the transcript is empty")
        spoken = {"assistant": 0, "user": 0}
        for turn in self.turns:
            spoken[turn.role] += 1
        parts = [
            f"Conversation of {len(self.turns)} turns ({spoken['assistant']} by the assistant, "
            f"{spoken['user']} by the other party)."
        ]
        quoted = list(dict.fromkeys(o.money.describe() for o in self.offers("user")))
        if quoted:
            parts.append("The other party quoted " + ", then ".join(quoted) + ".")
        last = next((t for t in reversed(self.turns) if t.role == "user"), None)
        if last is not None:
            words = last.text if len(last.text) <= 200 else last.text[:197] + "..."
            parts.append(f'Their last words: "{words}"')
        return " ".join(parts)


class OfflineExtractor:
    """Extracts insights from the transcript text with the documented heuristics.

    ``extract`` never raises for anything in the transcript: what it cannot read is reported
    in ``missing`` (with ``reasons``), and a required field missing gives ``failed``.
    """

    name = "offline"

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> OfflineExtractionResult:
        """Read ``definition``'s parameters (or a summary, for a free-text insight) from
        ``transcript`` and validate the outcome against the insight's schema.

        Raises nothing: unreadable or ambiguous fields become ``missing`` with a reason;
        a required field missing or a schema violation gives ``status="failed"``.
        """
        reader = _Reader(transcript)
        insight_id = definition.insight_id
        if not definition.structured:
            try:
                text = reader.summary()
            except _Missing as exc:
                return OfflineExtractionResult(insight_id, "failed", error=str(exc))
            return self._validated(definition, text, [], {})
        values: dict[str, Any] = {}
        missing: list[str] = []
        reasons: dict[str, str] = {}
        for parameter in definition.parameters:
            try:
                values[parameter.name] = reader.read(parameter)
            except _Missing as exc:
                missing.append(parameter.name)
                reasons[parameter.name] = str(exc)
        required_missing = [
            p.name for p in definition.parameters if p.required and p.name in reasons
        ]
        if required_missing:
            error = "required field(s) not found: " + "; ".join(
                f"{name} ({reasons[name]})" for name in required_missing
            )
            return OfflineExtractionResult(
                insight_id,
                "failed",
                error=error,
                missing=missing,
                reasons=reasons,
                partial=values,
            )
        return self._validated(definition, values, missing, reasons)

    @staticmethod
    def _validated(
        definition: InsightDefinition, value: Any, missing: list[str], reasons: dict[str, str]
    ) -> OfflineExtractionResult:
        problems = validate_result(definition, value)
        if problems:
            return OfflineExtractionResult(
                definition.insight_id,
                "failed",
                error="result does not match the insight's schema: " + "; ".join(problems),
                missing=missing,
                reasons=reasons,
                partial=value if isinstance(value, dict) else {},
            )
        return OfflineExtractionResult(
            definition.insight_id, "completed", result=value, missing=missing, reasons=reasons
        )
