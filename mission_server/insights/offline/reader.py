"""The transcript view: who said what, and the reading of each parameter type from it
(the heuristics are stated in the package docstring).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mission_server.insights.base import InsightParameter
from mission_server.insights.offline.language import (
    _APOSTROPHES,
    _FILLER,
    HEDGE,
    _Intent,
    _intent,
    _stem,
    _stems,
    _words,
    polarity,
    sentences,
    stance,
)
from mission_server.insights.offline.numbers import (
    _NUM,
    _UNIT_GROUPS,
    _UNIT_OF_WORD,
    EACH,
    JOB_UNITS,
    Money,
    find_money,
    words_to_digits,
)
from mission_server.telephony.base import TranscriptMessage

# --------------------------------------------------------------------------- transcript view


@dataclass(frozen=True)
class _Turn:
    index: int
    role: str
    text: str
    norm: str  # spelled numbers turned into digits
    money: tuple[Money, ...]
    #: The sentences that ask something ("...?", "I wanted to ask if ..."), social ones
    #: ("do you have a minute?", "is this Swift Movers?") left out.
    asks: tuple[str, ...] = ()


# "Do you have a minute?", "How are you?", "Is this Swift Movers?": not about any field.
_SOCIAL = re.compile(
    r"\b(?:(?:have|got|spare) (?:you )?(?:got )?a (?:minute|moment|sec|second)|"
    r"(?:do|did) you have a (?:minute|moment|sec|second)|is (?:now|this) a good time|"
    r"how are you|how's it going|is this\b(?! (?:for|about|still|included|a good))|"
    r"can you hear me|is that right\?$)",
    re.IGNORECASE,
)
_INDIRECT = re.compile(
    r"\b(?:ask(?:ing)?|see|wondering|check(?:ing)?|know|find out|confirm(?:ing)?)\s+"
    r"(?:if|whether|about)\b|\b(?:could|can|would|will) you\b|\bdo you\b",
    re.IGNORECASE,
)


# The assistant closing the call: what the other party says after it answers no question.
_CLOSING = re.compile(
    r"\b(?:good-?bye|bye|thanks? (?:you )?(?:so much |very much )?for your (?:time|help)|"
    r"have a (?:good|great|nice|lovely) (?:day|one|evening|night|afternoon|weekend))\b",
    re.IGNORECASE,
)


def _asks(text: str) -> tuple[str, ...]:
    found = []
    for sentence in sentences(text):
        if not (sentence.endswith("?") or _INDIRECT.search(sentence)):
            continue
        if _SOCIAL.search(sentence):
            continue
        found.append(sentence)
    return tuple(found)


@dataclass(frozen=True)
class _Exchange:
    """An assistant question and what the other party said before the next question."""

    question: _Turn
    replies: tuple[_Turn, ...]

    @property
    def reply_text(self) -> str:
        return " ".join(r.text for r in self.replies)


class _Missing(Exception):
    """A field could not be read; the message says why."""


@dataclass(frozen=True)
class _Offer:
    money: Money
    turn: int
    #: Words around the amount (its clause, and the question it answers): what it is for.
    context: frozenset[str] = frozenset()
    #: "We can beat that" with no figure: a new offer of unknown amount.
    unknown: bool = False
    #: Words of the whole sentence around the amount.
    sentence: frozenset[str] = frozenset()


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
        # "a three-course at $55 per person": the item, not its price.
        cleaned = [re.sub(r"\s*(?:\b(?:at|for|is|are|from)\s+)?\$.*$", "", c) for c in cleaned]
        cleaned = [c for c in cleaned if c]
        if len(cleaned) >= 2 and len(cleaned) > len(best):
            best = cleaned
    return best


_MAX_ONE_ITEM = 4


def _one_item(text: str) -> list[str]:
    """The one item of a reply that names a single thing: "We offer packing.", "We can do
    asphalt shingles.", "Packing." (at most four words, no figure, no yes/no, no denial)."""
    parts = sentences(text)
    if not parts:
        return []
    said = _clean_answer(parts[0])
    words = said.split()
    for position in range(min(len(words), 4) - 1, -1, -1):
        word = words[position].lower()
        if word in _INTRODUCERS or word.endswith("'ve"):
            words = words[position + 1 :]
            break
    item = _ARTICLES.sub("", " ".join(words)).strip(" .!?,")
    if (
        not item
        or len(item.split()) > _MAX_ONE_ITEM
        or re.search(r"[\d$?,;:]", item)
        or polarity(item) is not None
        or _NEGATED_CLAUSE.search(parts[0])
        or not _stems(_words(item))
    ):
        return []
    return [item]


_OBJECT_FIELDS = re.compile(r"(?:including|includes|include|with|:)\s+([^.;()]+)", re.IGNORECASE)


_HYPHENATED = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)+")


def _context_stems(text: str) -> set[str]:
    """Stems of ``text``, hyphenated words also joined ("call-out" -> "callout")."""
    found = _stems(_words(text))
    found |= {_stem(m.group().replace("-", "")) for m in _HYPHENATED.finditer(text)}
    return found


def _clause_at(text: str, start: int) -> str:
    """The clause of ``text`` around position ``start`` (split at , ; . ! ? and "but")."""
    bounds = [0, *(m.end() for m in re.finditer(r"[,;.!?]\s|\bbut\b|\.\.\.", text)), len(text)]
    for left, right in itertools.pairwise(bounds):
        if left <= start < right:
            return text[left:right]
    return text


def _sentence_at(text: str, start: int) -> str:
    """The sentence of ``text`` around position ``start``."""
    bounds = [0, *(m.end() for m in re.finditer(r"[.!?;]\s|\.\.\.", text)), len(text)]
    for left, right in itertools.pairwise(bounds):
        if left <= start < right:
            return text[left:right]
    return text


# Declining to price what was asked: "Can't tell you till we scan it", "Nobody can give you
# that over the phone", "I'd have to see it first" (not "I'm not sure what you mean").
_REFUSAL = re.compile(
    r"(?:honestly,? |really,? )?(?:(?:i|we) )?(?:really )?(?:can't|cannot|couldn't|won't) "
    r"(?:really )?(?:tell|say|give|quote)|(?:nobody|no one) (?:can|could)|"
    r"(?:i|we)(?:'d| would)(?: really)? (?:have|need) to (?:see|check|look|measure|come out)|"
    r"it (?:really )?depends",
    re.IGNORECASE,
)
# A clause pricing another version of the thing: "without dessert it would be $58", "if you
# skip the delivery, $60", "otherwise $70".
_ALTERNATIVE = re.compile(
    r"\b(?:without|if you (?:don't|do not|skip|drop|leave out|go without)|otherwise|"
    r"alternatively|or else)\b",
    re.IGNORECASE,
)
# A sentence pricing something apart from the thing asked about.
_ELSEWHERE = re.compile(
    r"\b(?:separate(?:ly)?|on top|not included|isn't included|aren't included|additional)\b",
    re.IGNORECASE,
)
# An amount said with no "$" or "dollars" but plainly a price: "we'd go to eleven thousand
# five hundred", "you're looking at thirty-two hundred".
_BARE_PRICE = re.compile(
    rf"\b(?:looking at|be at|we're at|go to|go down to|come down to|do it for|do|match it at|"
    rf"offer(?: you)?|take|sell it for|settle at|meet you at|comes? (?:out )?to|"
    rf"runs?(?: you)?|would run you|costs?(?: you)?|"
    rf"(?:we're|we are|it's|it is|that's|you're|be)(?: usually| typically| normally)?"
    rf"(?= (?:about|around|roughly)))\s+(?:about |around |roughly )?"
    rf"(?P<n>{_NUM})(?=\s*(?:[.,;!?]|$|\s+(?:for|if|and|but|so|with|all|total|out|even|flat)\b))",
    re.IGNORECASE,
)
# "we charge 95 an hour", "it's 45 a head": a bare figure with a price basis after it.
_BARE_RATE = re.compile(
    rf"(?:^|(?<=[.!?]\s)|\b(?:charge|charges|it's|it is|that's|is|be|at|do|runs?|costs?)\s+)"
    rf"(?:about |around )?"
    rf"(?P<n>{_NUM})\s+(?:an?|per)\s+(?P<unit>hour|night|person|head|guest|day|week|month|visit)\b",
    re.IGNORECASE,
)
_RANGE_JOIN = re.compile(r"^\s*(?:to|-|–|or)\s*$|^\s*and\s*$", re.IGNORECASE)
_RANGE_START = re.compile(r"\b(?:between|from|anywhere|somewhere|range|ranges)\b", re.IGNORECASE)
# A request to do better than a figure: a "yes" to it names no amount.
_BEAT = re.compile(
    r"\b(?:beat|better|lower|less than|under|below|cheaper|come down|do better|flexib\w*|"
    r"anything you can do|wiggle room)\b",
    re.IGNORECASE,
)
_PROPOSE = re.compile(
    r"\b(?:match|meet|accept|take|do|go with|agree|work for you|settle)\b", re.IGNORECASE
)
_OFFER_VERB = re.compile(
    r"\b(?:(?:we|i)(?:'d| would| could| can|'ll| will)? (?:do|match|meet|offer|go|take|give)|"
    r"match it|best (?:i|we) (?:can|could) do)\b",
    re.IGNORECASE,
)
_NEGATED_CLAUSE = re.compile(
    r"\b(?:no|not|never|don't|do not|doesn't|does not|can't|cannot|won't|isn't|aren't|"
    r"without|except|none|gone|sold out|booked|unavailable|separately|extra|"
    r"(?:you'd|you would) (?:need|have) to)\b|n't\b",
    re.IGNORECASE,
)
# A past quote recalled by the assistant: "your quote of $12,500", "you mentioned $18,900".
_RECALLED = re.compile(
    r"\byour\b[^.?!]{0,30}\b(?:quote|price|estimate|bid|offer|rate)\b|"
    r"\byou (?:quoted|mentioned|said|offered|gave)\b|\blisted at\b",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"\b(?:(?:this|next) (?:week|weekend|month)|(?:early|late) next week|today|tonight|"
    r"tomorrow(?: (?:morning|afternoon|evening|night))?|"
    r"(?:(?:this|next) )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
    r"(?: (?:the )?\d{1,2}(?:st|nd|rd|th)?(?![\d:]| ?(?:am|pm|a\.m\.|p\.m\.)))?"
    r"(?: (?:morning|afternoon|evening|night))?|"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december) \d{1,2}(?:st|nd|rd|th)?|the \d{1,2}(?:st|nd|rd|th)|"
    r"\d{1,2}(?::\d{2})? ?(?:am|pm|a\.m\.|p\.m\.)|noon|midday|midnight)"
    r"(?: (?:at|around|by) (?:\d{1,2}(?::\d{2})? ?(?:am|pm)?|noon|(?:one|two|three|four|five|six|"
    r"seven|eight|nine|ten|eleven|twelve)(?: (?:am|pm|o'clock|thirty))?)|"
    # "Thursday 9am", "Monday, 3:30 pm": a time with am/pm needs no "at".
    r",? \d{1,2}(?::\d{2})? ?(?:am|pm|a\.m\.|p\.m\.))?",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:[ -](?:[A-Z][a-z]+|[A-Z]\.?))+\b|\b[A-Z][a-z]{2,}\b")
_NOT_NAMES = frozenset(
    """
Sure Yes Yeah Yep Okay Ok Well Oh Um Uh It It's That That's This The We We're We'd We'll I I'm
I'd I'll You You'd Your Our Put Under Just Hi Hello Thanks Thank Please No Not So And But Let
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Today Tomorrow Mr Mrs Ms Dr Name
""".split()  # noqa: SIM905 - a word list reads better as text
)
_MAX_SHORT_ANSWER = 6
#: A reply that only says they cannot tell ("I'm sorry, I don't have that information", "I
#: couldn't tell you that, I'm afraid"): no answer, even to a field that wants the reply.
_NO_ANSWER = re.compile(
    r"^(?:(?:i'm |i am )?sorry,?\s*)?(?:"
    r"(?:i|we) (?:don't|do not) have (?:that|this|the|any) (?:information|info|details?)|"
    r"(?:i|we) (?:can't|cannot|couldn't) (?:tell you|say)(?: that)?|"
    r"(?:i|we) (?:don't|do not) know|no idea|(?:i'm|i am|we're|we are) not sure"
    r")(?:,?\s*(?:i'm afraid|sorry))?[.!]?$",
    re.IGNORECASE,
)
_AFFIRM = re.compile(
    r"\b(?:we (?:do|have|offer|provide|carry|can|also)|we've got|i've got|(?:is|are) included|"
    r"includes?|comes? with|yes|yeah|of course|available)\b",
    re.IGNORECASE,
)
# Asking whether someone will come: "will you be there?", "can you make it?"
_ATTEND = re.compile(
    r"\b(?:be there|make it|come in|count on|see you|still on|still coming|be coming)\b",
    re.IGNORECASE,
)


def _negated(text: str, position: int) -> bool:
    """Whether the clause of ``text`` around ``position`` denies what it names ("we don't do
    metal", "no snow removal", "suites are gone", "linens are extra")."""
    return bool(_NEGATED_CLAUSE.search(_clause_at(text, position)))


_NEGATIVE_VALUE = re.compile(
    r"\b(?:no|not|none|booked|unavailable|sold|closed|full|declin\w*|refus\w*|can't|cannot|"
    r"unable|won't)\b",
    re.IGNORECASE,
)


def _polar_values(values: list[str]) -> tuple[str, str] | None:
    """(yes value, no value) for an enum that is a yes/no in words ("we have availability" /
    "fully booked"), else None."""
    if len(values) != 2:
        return None
    negative = [bool(_NEGATIVE_VALUE.search(v.replace("_", " "))) for v in values]
    if negative == [False, True]:
        return values[0], values[1]
    if negative == [True, False]:
        return values[1], values[0]
    return None


def _named_in(value: str, text: str) -> list[int]:
    """Where ``value`` is named in ``text`` (as words, ``_``/``-`` as spaces, a plural "s"
    allowed)."""
    variants = {value, value.replace("_", " "), value.replace("-", " "), value.replace("_", "-")}
    found: set[int] = set()
    for variant in variants:
        pattern = rf"(?<![A-Za-z0-9]){re.escape(variant)}(?:s|es)?(?![A-Za-z0-9])"
        found.update(m.start() for m in re.finditer(pattern, text, re.IGNORECASE))
    return sorted(found)


class _Reader:
    """Answers one insight's parameters from one transcript."""

    def __init__(
        self,
        transcript: Sequence[TranscriptMessage],
        parameters: Sequence[InsightParameter] = (),
    ) -> None:
        #: The insight's number and string fields: which question asks for which amount
        #: (``_owners``).
        self.intents = {
            p.name: _intent(p.name, p.description)
            for p in parameters
            if p.type in ("number", "integer", "string")
        }
        turns: list[_Turn] = []
        for message in transcript:
            if message.role not in ("assistant", "user") or not message.text.strip():
                continue
            text = message.text.strip()
            turns.append(
                _Turn(
                    len(turns),
                    message.role,
                    text,
                    words_to_digits(text),
                    tuple(find_money(text)),
                    _asks(text) if message.role == "assistant" else (),
                )
            )
        self.turns = turns
        self.exchanges: list[_Exchange] = []
        for turn in turns:
            if turn.role != "assistant" or not turn.asks:
                continue
            replies: list[_Turn] = []
            for later in turns[turn.index + 1 :]:
                if later.role == "assistant":
                    if later.asks or _CLOSING.search(later.text):
                        break  # a new question, or "Thank you for your time. Goodbye!"
                    continue  # "Sure, take your time."
                replies.append(later)
            if replies:
                self.exchanges.append(_Exchange(turn, tuple(replies)))

    # ---- helpers

    def _questions(self, intent: _Intent) -> list[tuple[float, _Exchange]]:
        """(score, exchange) for assistant questions about the field that got a reply, best
        first (ties keep conversation order). Only the asking sentences score fully; the rest
        of the turn adds half ("I'm calling about your water heaters. What would you
        charge?")."""
        found = []
        for exchange in self.exchanges:
            question = exchange.question
            asked = _context_stems(" ".join(question.asks))
            rest = _context_stems(question.text) - asked
            score = float(sum(w for stem, w in intent.keywords.items() if stem in asked))
            if intent.text_kind == "when" and re.search(
                r"\b(?:when|what (?:time|day|date)|which day|how soon|earliest)\b",
                " ".join(question.asks),
                re.IGNORECASE,
            ):
                score += 2
            if intent.text_kind == "name" and re.search(
                r"\b(?:who|your name|whose name|name (?:is|should))\b",
                " ".join(question.asks),
                re.IGNORECASE,
            ):
                score += 2
            if "date" in intent.keywords and _WHEN.search(" ".join(question.asks)):
                score += 1  # "on Tuesday the 18th?" asks about the requested date
            if {"attend", "confirm"} & set(intent.keywords) and _ATTEND.search(
                " ".join(question.asks)
            ):
                score += 2
            beside = sum(w for stem, w in intent.keywords.items() if stem in rest)
            if score == 0 and re.search(
                r"\b(?:that|it|this|those|them)\b", " ".join(question.asks), re.IGNORECASE
            ):
                # "We have a baby grand to move. Is that something you handle?"
                score = beside
            elif score == 0:
                continue
            else:
                score += beside / 2
            if score >= 2:
                found.append((score, exchange))
        found.sort(key=lambda item: -item[0])
        return found

    def _best_questions(self, intent: _Intent) -> list[_Exchange]:
        questions = self._questions(intent)
        if not questions:
            return []
        top = questions[0][0]
        return [exchange for score, exchange in questions if score == top]

    def _owners(self) -> dict[int, set[str]]:
        """For each assistant question (by turn index), the money fields of the insight it
        asks about best (``_best_questions``)."""
        cached = getattr(self, "_owner_cache", None)
        if cached is not None:
            return cached
        owners: dict[int, set[str]] = {}
        for name, intent in self.intents.items():
            if not intent.money:
                continue
            for exchange in self._best_questions(intent):
                # Only a question asking it in its own words ("your call-out fee?"), not a
                # follow-up pointing back ("Another caterer quoted $58. Could you match that?").
                asked = _context_stems(" ".join(exchange.question.asks))
                if sum(w for stem, w in intent.keywords.items() if stem in asked) >= 2:
                    owners.setdefault(exchange.question.index, set()).add(name)
        self._owner_cache = owners
        return owners

    def _answered_by(self, turn: int) -> _Exchange | None:
        """The exchange whose reply ``turn`` is part of."""
        return next((e for e in self.exchanges if any(r.index == turn for r in e.replies)), None)

    def _asked_context(self, turn: _Turn) -> set[str]:
        """The stems of the assistant question that ``turn`` answers (none if it answers
        none)."""
        for exchange in self.exchanges:
            if any(r.index == turn.index for r in exchange.replies):
                return _context_stems(" ".join(exchange.question.asks))
        return set()

    def _ranges(self, turn: _Turn) -> set[int]:
        """Indexes (in ``turn.money``) of amounts given as a range ("between $400 and $800",
        "$400 to $800"): neither end is a price."""
        out: set[int] = set()
        for i in range(len(turn.money) - 1):
            a, b = turn.money[i], turn.money[i + 1]
            join = turn.norm[a.end : b.start]
            if _RANGE_JOIN.match(join) and (
                join.strip() in ("to", "-", "–") or _RANGE_START.search(turn.norm[: a.start])
            ):
                out |= {i, i + 1}
        return out

    def _bare(self, turn: _Turn) -> list[Money]:
        """Prices said without "$" or "dollars" after an offer verb (100 or more)."""
        taken = [(m.start, m.end) for m in turn.money]
        found = []
        for match in _BARE_PRICE.finditer(turn.norm):
            start = match.start("n")
            if any(s <= start < e for s, e in taken):
                continue
            amount = float(match.group("n").replace(",", ""))
            if amount >= 100:
                found.append(Money(amount, None, False, start, match.end("n")))
        for match in _BARE_RATE.finditer(turn.norm):
            start = match.start("n")
            if any(s <= start < e for s, e in taken):
                continue
            unit = _UNIT_OF_WORD.get(match.group("unit").lower(), match.group("unit").lower())
            amount = float(match.group("n").replace(",", ""))
            found.append(Money(amount, unit, False, start, match.end("n")))
        return found

    def offers(self, party: str) -> list[_Offer]:
        """The amounts ``party`` put forward, in order (see the module docstring)."""
        offers: list[_Offer] = []
        for turn in self.turns:
            if turn.role != party:
                continue
            previous = self.turns[turn.index - 1] if turn.index else None
            earlier = previous.money if previous and previous.role != party else ()
            asked = previous.asks if previous and previous.role != party else ()
            answer = stance(turn.text)
            money = [m for i, m in enumerate(turn.money) if i not in self._ranges(turn)]
            money += self._bare(turn)
            money.sort(key=lambda m: m.start)
            asked_about = self._asked_context(turn)
            if not money:
                if answer is True and earlier and asked:
                    question = " ".join(asked)
                    if _BEAT.search(question) or re.search(r"\bbeat\b", turn.text, re.I):
                        # "Yes, we can beat that": some lower figure, not named.
                        offers.append(_Offer(earlier[-1], turn.index, unknown=True))
                    elif _PROPOSE.search(question) or any(
                        f"{m.amount:g}" in words_to_digits(question).replace(",", "")
                        for m in earlier
                    ):
                        offers.append(
                            _Offer(earlier[-1], turn.index, frozenset(asked_about), False)
                        )
                continue
            # "Can't tell you till we scan it. The diagnostic is $95": what follows a refusal
            # to price the thing asked about prices something else.
            first = sentences(turn.text)[0]
            refused = bool(_REFUSAL.match(_FILLER.sub("", first))) and not find_money(first)
            echoes = {m.amount for m in earlier}
            # "$400 is too low, I could do $425": beside a figure of their own, a repeated one
            # is a reference even in a reply that says yes.
            own = any(m.amount not in echoes for m in money)
            for item in money:
                sentence = _sentence_at(turn.norm, item.start)
                if _ELSEWHERE.search(sentence) and not item.addons:
                    # "Grinding is separate, usually around $200": not the price asked about.
                    item = replace(item, addons=frozenset({"separate"}))
                elif refused and not item.addons:
                    item = replace(item, addons=frozenset({"after a refusal"}))
                elif _ALTERNATIVE.search(_clause_at(turn.norm, item.start)) and not item.addons:
                    # "$68 with dessert; without dessert it would be $58": not what was asked.
                    item = replace(item, addons=frozenset({"alternative"}))
                clause = _clause_at(turn.norm, item.start)
                offered = bool(_OFFER_VERB.search(clause)) and not re.search(
                    r"n't|\bnot\b|\bcannot\b", clause, re.IGNORECASE
                )
                if item.amount in echoes and (answer is not True or own) and not offered:
                    continue
                context = _context_stems(clause) | asked_about
                if item.unit:
                    context.add(_stem(item.unit))
                offers.append(
                    _Offer(
                        item,
                        turn.index,
                        frozenset(context),
                        sentence=frozenset(_context_stems(sentence)),
                    )
                )
        return offers

    def _fee_pool(self, offers: list[_Offer], intent: _Intent) -> list[_Offer]:
        """For a fee field: the amounts charged for what it names ("delivery", "call-out")."""
        tagged = [o for o in offers if intent.addons & {_stem(a) for a in o.money.addons}]
        if tagged:
            return tagged
        about = [o for o in offers if intent.distinct & o.context]
        if about:
            return about
        # "We'd start with a camera inspection, that's $250": named earlier in the sentence.
        about = [o for o in offers if intent.distinct & o.sentence]
        if about:
            return about
        # "Our fee is $55 each time" for a service_fee: the one fee they named.
        generic = [o for o in offers if {"fee", "fees", "charge"} & o.money.addons]
        if len({o.money.amount for o in generic}) == 1 and len(generic) == len(
            [o for o in offers if o.money.addons]
        ):
            return generic
        return []

    def _on_basis(
        self, offers: list[_Offer], intent: _Intent, own: frozenset[int] = frozenset()
    ) -> tuple[list[_Offer], str]:
        # A field about a fee or add-on ("delivery_fee", "callout_fee") takes only amounts
        # charged for it; any other money field takes only amounts that are not add-ons.
        if intent.fee:
            offers = self._fee_pool(offers, intent)
        else:
            offers = [o for o in offers if not o.money.addons]
        units = {o.money.unit for o in offers if o.money.unit}
        if intent.unit and any(self._plain(o) for o in offers if o.turn in own):
            # "What's your nightly rate?" - "It's $210.": the question gave the basis.
            units.add(intent.unit)
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
            whole = [o for o in offers if o.money.total or o.money.unit in JOB_UNITS]
            if whole:
                # Once a total is quoted, a later amount with no basis of its own ("we can
                # match it at $926") is read on the same basis, as with per-unit prices.
                first = whole[0].turn
                later = [o for o in offers if o.turn > first and o.money.unit is None]
                whole = sorted({id(o): o for o in [*whole, *later]}.values(), key=offers.index)
            if whole or units:
                return whole, "total amount"
            return [o for o in offers if o.money.unit is None], "total amount"
        if units:
            chosen = [o for o in offers if o.money.unit or not o.money.total]
            return chosen, "amount"
        return offers, "amount"

    def _plain(self, offer: _Offer) -> bool:
        """An amount with no basis said at all: no unit, no total, and nothing after it in its
        clause ("It's $210." but not "$450 for the weekend")."""
        money = offer.money
        if money.unit or money.total or money.addons:
            return False
        after = self.turns[offer.turn].norm[money.end :]
        return bool(re.match(r"\s*(?:[.!?;]|$)", after))

    def money_value(self, intent: _Intent, name: str | None = None) -> Money:
        every = self.offers(intent.party)
        own: frozenset[int] = frozenset()
        if name is not None and name in self.intents:
            # One question per field: an amount in the reply to a question that asks about
            # other money fields of the insight, and not this one, is theirs ("$95 per hour"
            # to the hourly rate, "sixty dollars" to the call-out fee).
            owners = self._owners()
            kept = []
            for offer in every:
                exchange = self._answered_by(offer.turn)
                asked = owners.get(exchange.question.index, set()) if exchange else set()
                tagged = intent.addons & {_stem(a) for a in offer.money.addons}
                if asked and name not in asked and not tagged:
                    continue  # (but "a $200 deposit" said there is still the deposit)
                kept.append(offer)
            every = kept
            own = frozenset(r.index for e in self._best_questions(intent) for r in e.replies)
        offers, what = self._on_basis([o for o in every if not o.unknown], intent, own)
        who = "the other party" if intent.party == "user" else "the assistant"
        if not offers:
            raise _Missing(f"no {what} offered by {who}")
        # "Yes, we can beat that" after the offers on this basis: a figure never named.
        beaten = [o for o in every if o.unknown and o.turn > offers[-1].turn]
        if beaten and not intent.fee:
            offers = [*offers, beaten[-1]]
        known = [o for o in offers if not o.unknown]
        if intent.position == "first":
            first_turn = offers[0].turn
            recalled = [
                t
                for t in self.turns[:first_turn]
                if t.role != intent.party and t.money and _RECALLED.search(t.text)
            ]
            if recalled:
                raise _Missing(
                    "the first figure was given before this call (the assistant recalls "
                    + recalled[0].money[0].describe()
                    + ")"
                )
        if intent.position in (None, "last", "min") and offers[-1].unknown:
            raise _Missing(
                f"they offered to beat {offers[-1].money.describe()} but named no figure"
            )
        if not known:
            raise _Missing(f"no {what} offered by {who}")
        amounts = [o.money.amount for o in known]
        if intent.position in (None, "last"):
            # "Around $450, maybe $500 if it's a big job": the last reply's own figures differ.
            last = [o.money.amount for o in known if o.turn == known[-1].turn]
            if len(set(last)) > 1:
                raise _Missing(
                    f"ambiguous: their last {what}s were "
                    + " and ".join(_show(a) for a in dict.fromkeys(last))
                    + " in one reply"
                )
        chosen = _pick(amounts, intent.position, what, default_last=True)
        # Return the mention itself so the basis (unit/total) travels with it.
        for offer in known if intent.position == "first" else reversed(known):
            if offer.money.amount == chosen:
                return offer.money
        raise _Missing(f"no {what} offered by {who}")  # pragma: no cover - chosen is in offers

    def _numbers_near(self, turn: _Turn, keywords: set[str]) -> list[tuple[int, int, float]]:
        taken = [(m.start, m.end) for m in turn.money]
        found = []
        for match in re.finditer(rf"(?<![\w.$])({_NUM})(?![\w])", turn.norm):
            if any(s <= match.start() < e for s, e in taken):
                continue
            following = _words(turn.norm[match.end() : match.end() + 40])[:2]
            if any(_stem(w) in keywords for w in following):
                found.append((turn.index, match.start(), float(match.group(1).replace(",", ""))))
        return found

    def _count_candidates(self, intent: _Intent) -> list[float]:
        keywords = set(intent.keywords)
        # "40 people" answers a question about guests: the person-like unit words are one idea.
        person = {_stem(w) for w in _UNIT_GROUPS["person"]}
        if keywords & person:
            keywords |= person
        values: list[tuple[int, int, float]] = []
        context: set[float] = set()
        for turn in self.turns:
            near = self._numbers_near(turn, keywords)
            if turn.role == "user":
                values += near
            else:
                context |= {v for _t, _p, v in near}
        for exchange in self._best_questions(intent):
            for reply in exchange.replies[:1]:
                taken = [(m.start, m.end) for m in reply.money]
                numbers = [
                    m
                    for m in re.finditer(rf"(?<![\w.$])({_NUM})(?![\w])", reply.norm)
                    if not any(s <= m.start() < e for s, e in taken)
                ]
                if len(numbers) == 1 and not HEDGE.search(reply.text):
                    number = numbers[0]
                    values.append(
                        (reply.index, number.start(), float(number.group(1).replace(",", "")))
                    )
        values = sorted(set(values))
        found = [v for _turn, _pos, v in values]
        # The assistant's own figure for the same thing ("for 40 guests") beside a different
        # one from the other party ("it holds 120 guests") is not settled.
        if found and context and not set(found) <= context:
            shown = " and ".join(_show(v) for v in dict.fromkeys([*sorted(context), *found]))
            raise _Missing(
                f"ambiguous: the assistant said {', '.join(_show(v) for v in sorted(context))} "
                f"and the other party {', '.join(_show(v) for v in dict.fromkeys(found))} "
                f"({shown})"
            )
        return found

    # ---- per type

    def read(self, parameter: InsightParameter) -> Any:
        intent = _intent(parameter.name, parameter.description)
        kind = parameter.type
        if kind in ("number", "integer"):
            if intent.money:
                value: Any = self.money_value(intent, parameter.name).amount
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
            return self.enum(list(parameter.enum), intent)
        if kind == "string":
            if intent.summary:
                return self.summary()
            options = _options_in_description(parameter.description)
            if len(options) >= 2:
                return self.enum(options, intent)
            if intent.money:
                return self.money_value(intent, parameter.name).describe()
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

    def _stance(self, intent: _Intent) -> bool:
        questions = self._best_questions(intent)
        if not questions:
            raise _Missing("the assistant never asked about it")
        answers = [self._reply_stance(exchange.reply_text, intent) for exchange in questions]
        known = {a for a in answers if a is not None}
        if not known:
            asked = " ".join(questions[-1].question.asks)
            said = questions[-1].reply_text
            if HEDGE.search(said):
                raise _Missing(
                    f"the reply to {asked!r} is neither yes nor no: they would check, or it "
                    f"depends ({said!r})"
                )
            raise _Missing(f"the reply to {asked!r} is neither yes nor no")
        if len(known) > 1:
            raise _Missing("ambiguous: the question was answered both yes and no")
        return known.pop()

    @staticmethod
    def _reply_stance(text: str, intent: _Intent) -> bool | None:
        """The stance of a reply; when some of its sentences name the field, those decide
        ("Insurance I'd have to check" for ``insured``, not "We're licensed, yes"), unless
        they neither answer nor hedge ("There's a $75 pet fee" after "Yes, dogs are fine")."""
        named = {stem for stem, weight in intent.keywords.items() if weight >= 2}
        parts = sentences(text)
        relevant = [p for p in parts if named & _context_stems(p)]
        if relevant and len(relevant) < len(parts):
            about = " ".join(relevant)
            found = stance(about)
            if found is not None or HEDGE.search(about):
                return found
        return stance(text)

    def boolean(self, intent: _Intent) -> bool:
        return self._stance(intent)

    def _named_by_user(self, values: list[str]) -> dict[str, tuple[int, int]]:
        """The values the other party names and does not deny, with where first named."""
        named: dict[str, tuple[int, int]] = {}
        for turn in self.turns:
            if turn.role != "user":
                continue
            text = turn.text.translate(_APOSTROPHES)
            for value in values:
                for where in _named_in(value, text):
                    # "I'd have to check on that" names no 'check': a hedge names nothing.
                    if HEDGE.search(_sentence_at(text, where)):
                        continue
                    if value not in named and not _negated(text, where):
                        named[value] = (turn.index, where)
        return named

    def enum(self, values: list[str], intent: _Intent | None = None) -> str:
        named = self._named_by_user(values)
        if not named:
            # "We do have availability": every word of a value in one sentence.
            for turn in self.turns:
                if turn.role != "user":
                    continue
                for sentence in sentences(turn.text):
                    said = _context_stems(sentence)
                    for value in values:
                        wanted = _context_stems(value.replace("_", " "))
                        if (
                            wanted
                            and wanted <= said
                            and value not in named
                            and not _NEGATED_CLAUSE.search(sentence)
                            and not HEDGE.search(sentence)
                        ):
                            named[value] = (turn.index, turn.text.find(sentence))
        if len(named) == 1:
            return next(iter(named))
        if len(named) > 1:
            ordered = sorted(named, key=lambda v: named[v])
            raise _Missing(
                "ambiguous: the conversation names " + " and ".join(repr(v) for v in ordered)
            )
        polar = _polar_values(values)
        if polar and intent is not None:
            try:
                answer = self._stance(intent)
            except _Missing as exc:
                raise _Missing(
                    "none of " + ", ".join(repr(v) for v in values) + f" is named, and {exc}"
                ) from None
            return polar[0] if answer else polar[1]
        raise _Missing("none of " + ", ".join(repr(v) for v in values) + " is named")

    def answer(self, intent: _Intent) -> str:
        questions = self._best_questions(intent)
        if not questions:
            raise _Missing("the assistant never asked about it")
        exchange = questions[-1]
        for reply in exchange.replies:
            said = reply.text.translate(_APOSTROPHES)
            if intent.text_kind == "said":
                if _NO_ANSWER.match(said.strip()):
                    continue
                text = _clean_answer(said)
                if text:
                    return text
                continue
            if HEDGE.search(said) and not _WHEN.search(said):
                continue
            if intent.text_kind == "when":
                found = list(dict.fromkeys(m.group() for m in _WHEN.finditer(said)))
                if len(found) == 1:
                    return found[0]
                if len(found) > 1:
                    raise _Missing("ambiguous: the reply names " + " and ".join(found))
            if intent.text_kind == "name":
                names = [
                    m.group()
                    for m in _CAPITALISED.finditer(said)
                    if m.group().split()[0] not in _NOT_NAMES
                ]
                names = list(dict.fromkeys(names))
                if len(names) == 1:
                    return names[0]
            text = _clean_answer(said)
            sentences = re.split(r"(?<=[.!])\s+(?=[A-Z])", text) if text else []
            if len(sentences) > 1:
                # "Maria. Thanks for thinking of us.": the answer, then a remark.
                text = _clean_answer(sentences[0])
            if text and len(text.split()) <= _MAX_SHORT_ANSWER and "?" not in text:
                return text
            if text:
                raise _Missing(
                    f"the reply {reply.text!r} is a sentence, not a short value; "
                    "it is left for a person (or a model) to read"
                )
        raise _Missing(
            f"the reply to {' '.join(exchange.question.asks)!r} does not answer it "
            f"({exchange.reply_text!r})"
        )

    def _listed(self, options: list[str]) -> dict[str, tuple[int, int]]:
        """Options the other party names (``_named_by_user``); when one of their sentences
        lists several, an option named alone in another sentence counts only if that sentence
        offers it ("we have …", "… is included"), not "linens are through our partner"."""
        named = self._named_by_user(options)
        by_sentence: dict[tuple[int, str], list[str]] = {}
        for option, (index, where) in named.items():
            sentence = _sentence_at(self.turns[index].text, where)
            by_sentence.setdefault((index, sentence), []).append(option)
        if not any(len(group) > 1 for group in by_sentence.values()):
            return named
        keep: set[str] = set()
        for (_index, sentence), group in by_sentence.items():
            if len(group) > 1 or _AFFIRM.search(sentence):
                keep.update(group)
        return {o: where for o, where in named.items() if o in keep}

    def _mapped(self, options: list[str], intent: _Intent) -> dict[str, tuple[int, int]]:
        """Items of the other party's list mapped to the options they share words with
        ("windows, gutters" -> "window washing", "gutter cleaning"), where one option fits
        best."""
        found: dict[str, tuple[int, int]] = {}
        stems = {o: _context_stems(o.replace("_", " ")) for o in options}
        for exchange in self._best_questions(intent):
            for reply in exchange.replies:
                for position, item in enumerate(_enumeration(reply.text)):
                    if _NEGATED_CLAUSE.search(item):
                        continue
                    said = _context_stems(item)
                    scores = {o: len(stems[o] & said) for o in options}
                    best = max(scores.values(), default=0)
                    fits = [o for o, n in scores.items() if n == best]
                    if best and len(fits) == 1 and fits[0] not in found:
                        found[fits[0]] = (reply.index, position)
        return found

    def items(self, intent: _Intent, description: str) -> list[str]:
        options = _options_in_description(description)
        if options:
            named = self._listed(options)
            for option, where in self._mapped(options, intent).items():
                named.setdefault(option, where)
            if named:
                return sorted(named, key=lambda o: named[o])
            # "Do you do dessert?" - "Yes.": the one option asked about, agreed to.
            for exchange in self.exchanges:
                asked = [o for o in options if _named_in(o, " ".join(exchange.question.asks))]
                if len(asked) == 1 and stance(exchange.reply_text) is True:
                    named[asked[0]] = (exchange.question.index, 0)
            if named:
                return sorted(named, key=lambda o: named[o])
        hedged = ""
        for exchange in reversed(self._best_questions(intent)):
            for reply in exchange.replies:
                if HEDGE.search(reply.text):
                    # "I'm not sure, I'd have to check": not known to them, not a list.
                    hedged = hedged or reply.text
                    continue
                listed = _enumeration(reply.text) or _one_item(reply.text)
                if listed:
                    return listed
        if hedged:
            raise _Missing(f"the reply does not say: they would check, or do not know ({hedged!r})")
        if options:
            raise _Missing("the other party names none of " + ", ".join(repr(o) for o in options))
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
