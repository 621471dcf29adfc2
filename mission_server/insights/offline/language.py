"""Words and answers: stems, yes/no polarity, and what a field's name and description
ask for (money, position hints, per-unit basis).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mission_server.insights.offline.numbers import (
    EACH,
    _unit_name,
)

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
