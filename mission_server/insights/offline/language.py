"""Words and answers: stems, yes/no polarity, and what a field's name and description
ask for (money, position hints, per-unit basis).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mission_server.insights.offline.numbers import (
    _ADDON_WORDS,
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
    if word.endswith("ings") and len(word) > 6:
        word = word[:-1]  # "openings" -> "opening" -> "open", like "opening"
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
    r"^(?:(?:oh|well|um+|uh+|hmm+|ah|so|okay so|ok so|let me see|let's see|honestly|actually|"
    r"look|listen)\b[\s,.!-]*)+",
    re.IGNORECASE,
)
_YES_SPECIAL = re.compile(r"^(?:no problem|no worries|not a problem)\b", re.IGNORECASE)
_NO = re.compile(
    r"^(?:no|nope|nah|not|never|unfortunately|sorry|i'm afraid|i am afraid|afraid not|negative|"
    r"we (?:don't|do not|can't|cannot|won't|will not|aren't|are not|couldn't|could not)|"
    r"i (?:don't|do not|can't|cannot|won't|couldn't)|"
    r"it (?:doesn't|does not|isn't|is not|won't|will not)|it's not|that's not|that isn't|"
    r"there's no|there is no|we have no|we have nothing|there's nothing|nothing|none|"
    r"we're (?:not|full|closed|sold out|booked)|we are (?:not|full|closed|booked))\b",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|certainly|absolutely|of course|definitely|correct|right|indeed|"
    r"exactly|that's right|that's correct|that is correct|"
    r"we (?:do|can|will|are|have|could)|i (?:do|can|will|could)|it (?:does|is|will)|"
    r"ok|okay|alright|all right|deal|sounds good|that works|works for (?:us|me)|"
    r"it is|it does|we sure)\b",
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
    #: Add-on words the field is about ("delivery", "deposit"): it takes amounts charged for them.
    addons: frozenset[str] = frozenset()
    #: The field is a fee or charge ("callout_fee", "trip_charge"), not the price itself.
    fee: bool = False
    #: The field's own words, without the money words: what a fee is *for* ("callout", "trip").
    distinct: frozenset[str] = frozenset()
    #: What kind of text a string field wants: "when" (a day or time), "name", "said" (the
    #: reply itself) or "" (a short value).
    text_kind: str = ""


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
    if unit is None:
        adverb = next((w for w in [*name_words, *description_words] if w in _ADVERB_UNITS), None)
        if adverb:
            unit = _ADVERB_UNITS[adverb]
            total = False
    # Words standing for the same idea in a question: "available" is asked as "do you have
    # anything open", "confirmed" as "can you make it".
    for stem in _stems(name_words):
        for other in _CONCEPTS.get(stem, ()):
            keywords.setdefault(other, 2)
    # The add-on a field is about comes from its name ("delivery_fee", "deposit"), or from the
    # description of a fee named generically ("extra_charge": "charge for delivery");
    # "rate per night before taxes" is not about taxes.
    named = _stems(name_words)
    generic = bool(named & _GENERIC_FEE)
    source = named | (_stems(description_words) if generic else set())
    addons = frozenset(k for k in source if k in _ADDON_STEMS and k not in _GENERIC_FEE)
    fee = money and (bool(addons) or generic)
    distinct = frozenset(k for k in _stems(name_words + description_words) if k not in _MONEYISH)
    said = set(name_words + description_words) & _SAID_WORDS
    all_words = set(name_words) | set(description_words)
    if said:
        text_kind = "said"
    elif all_words & _WHEN_WORDS:
        text_kind = "when"
    elif all_words & _NAME_WORDS:
        text_kind = "name"
    else:
        text_kind = ""
    return _Intent(
        keywords,
        money,
        unit,
        total,
        position,
        party,
        summary,
        addons,
        fee,
        distinct,
        text_kind,
    )


_ADVERB_UNITS = {
    "hourly": "hour",
    "nightly": "night",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
    "annual": "year",
    "annually": "year",
}
_CONCEPTS = {
    "availabl": ("open", "free", "book", "vacancy", "space"),
    "confirm": ("make", "come", "attend", "see"),
    "attend": ("make", "come", "see"),
}
_GENERIC_FEE = frozenset({"fee", "charg", "surcharg", "extra", "additional"})
_MONEYISH = frozenset(
    {
        "price",
        "pric",
        "cost",
        "quot",
        "quote",
        "fee",
        "amount",
        "total",
        "budget",
        "dollar",
        "charg",
        "charge",
        "pay",
        "payment",
        "usd",
        "money",
        "much",
        "one",
        "time",
        "they",
        "the",
    }
)
_SAID_WORDS = frozenset(
    {"answer", "reply", "response", "said", "says", "notes", "note", "comment", "comments"}
)
_WHEN_WORDS = frozenset(
    {
        "when",
        "date",
        "day",
        "days",
        "time",
        "times",
        "slot",
        "earliest",
        "week",
        "schedule",
        "appointment",
    }
)
_NAME_WORDS = frozenset({"name", "brand", "make", "model", "company", "who"})
_ADDON_STEMS = frozenset(_stem(w) for w in _ADDON_WORDS if " " not in w)


# --------------------------------------------------------------------------- whole answers

#: A sentence that answers nothing yet: "sure, one moment", "let me check", "how can I help?".
_ACK = re.compile(
    r"^(?:(?:sure|yes|yeah|ok|okay|alright|right|of course|certainly|absolutely|speaking)"
    r"[,.!]?\s*)?(?:(?:one|just a|give me a) (?:moment|sec|second|minute)|hold on|hang on|"
    r"let me (?:see|look|check|ask|find out|pull)|how can i help|what can i do|"
    r"what can we do|how may i help|go ahead)",
    re.IGNORECASE,
)
# "October 11th, let me check": going to look, nothing said yet.
_LOOKING = re.compile(
    r"\blet me (?:see|look|check|ask|find out|pull (?:it|that) up)[\s.,!…]*$", re.IGNORECASE
)
_WEAK_YES = re.compile(r"^(?:sure|ok|okay|alright|all right|right|yes|yeah)[.!]?$", re.IGNORECASE)
#: Not an answer: checking, guessing, deferring ("I'd have to check", "it depends", "maybe").
HEDGE = re.compile(
    r"\b(?:(?:i|we)(?:'d| would| will|'ll)? (?:have|need) to (?:double[- ]|go )?"
    r"(?:check|ask|look|see|confirm|talk)|"
    r"(?:i|we)'ll (?:check|ask|find out|get back)|"
    r"call (?:you|me) back|get back to you|not sure|don't know|do not know|no idea|"
    r"(?:can't|cannot|couldn't|can not) (?:promise|guarantee|say|tell|confirm)|"
    r"couldn't (?:tell|really say)|it depends|depends on|depending|maybe|might|perhaps|"
    r"(?:can't|cannot|couldn't|won't) (?:give|quote)|(?:nobody|no one) can|over the phone|"
    r"possibly|probably|likely|hard to say|only if|i think so|not until i|i believe|i guess|"
    r"i'd guess|should be)\b",
    re.IGNORECASE,
)
#: A "no" that is not at the start: "fully booked", "nothing open", "sold out", "we can't".
_NO_INSIDE = re.compile(
    r"\b(?:(?:fully|completely|totally|all|solidly|solid) booked|booked (?:up|solid|through)|"
    r"sold out|sold (?:it|yesterday|already|last)|nothing (?:open|available|free|left)|"
    r"(?:is|are|'s|'re|am|i'm) (?:already )?(?:booked|taken|reserved)\b|"
    r"already (?:got|have|booked) (?:a|an|another|something)|"
    r"no (?:availability|openings?|rooms?|space|vacanc\w*|slots?)|none left|"
    r"(?:not|isn't|aren't|wasn't) available|unavailable|(?:we're|we are) full\b|"
    r"full for|we (?:can't|cannot|couldn't|won't|don't|do not)|(?:can't|cannot) (?:do|make|take)|"
    r"(?:not|unable|no longer) (?:able|taking|doing)|(?:,|\.\.\.|…)\s*(?:no|nope)\b(?! problem)"
    r"(?! worries))",
    re.IGNORECASE,
)
# Regret with no other answer: "..., sorry.", "..., I'm afraid."
_NO_WEAK = re.compile(r"(?:,\s*|\s)(?:sorry|i'm afraid)[.!]?$", re.IGNORECASE)
_YES_INSIDE = re.compile(r"(?:,|\.\.\.|…|\bso)\s*(?:yes|yeah|yep|yup)\b", re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?;…])\s+|\.\.\.\s*|\s+-+\s+")


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (also at "..." and dashes), empty ones dropped."""
    return [s.strip() for s in _SENTENCES.split(text.translate(_APOSTROPHES)) if s.strip()]


def _sentence_stance(sentence: str) -> bool | str | None:
    """True / False, None (says nothing) or "hedge" for one sentence."""
    text = _FILLER.sub("", sentence.strip())
    if not text or _ACK.match(text) or _LOOKING.search(text):
        return None
    opener = polarity(text)
    if opener is not None and not _YES_SPECIAL.match(text):
        # "I can't promise that" and "probably, yeah" open with a word but decide nothing.
        hedged = HEDGE.search(text)
        comma = text.find(",")
        if hedged and (opener is False or comma < 0 or hedged.start() < comma):
            return "hedge"
    if opener is True and _NO_INSIDE.search(text) and not _YES_SPECIAL.match(text):
        return False  # "Sure, but we're fully booked"
    if opener is not None:
        return opener
    if HEDGE.search(text):
        return "hedge"
    if _NO_INSIDE.search(text):
        return False
    if _YES_INSIDE.search(text):
        return True
    if _NO_WEAK.search(text):
        return False  # "We stay inside the county, sorry."
    return None


def stance(text: str) -> bool | None:
    """Whether a whole reply says yes (True), no (False) or neither (None).

    Read sentence by sentence: acknowledgements ("Sure, one moment", "let me look") are
    skipped, the first sentence that decides gives the answer, and a hedge before any answer
    ("I'd have to check", "it depends", "probably") means no answer. "No" inside a sentence
    counts: "we're fully booked", "we have nothing open", "sold out", "we can't". A hedge
    after the answer makes it unsure too (None)."""
    parts = sentences(text)
    decided: bool | None = None
    for index, sentence in enumerate(parts):
        if index == 0 and len(parts) > 1 and _WEAK_YES.match(sentence.strip()):
            continue  # "Sure. ..." followed by the real answer
        found = _sentence_stance(sentence)
        if found == "hedge":
            # Before an answer: none yet. After one: "We're licensed, yes. Insurance I'd
            # have to check" takes it back, or answers something else; either way, unsure.
            return None
        if found is not None and decided is None:
            decided = bool(found)
    return decided
