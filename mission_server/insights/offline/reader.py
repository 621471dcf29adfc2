"""The transcript view: who said what, and the reading of each parameter type from it
(the heuristics are stated in the package docstring).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mission_server.insights.base import InsightParameter
from mission_server.insights.offline.language import (
    _APOSTROPHES,
    _FILLER,
    _Intent,
    _intent,
    _stem,
    _stems,
    _words,
    polarity,
)
from mission_server.insights.offline.numbers import (
    _ADDON_WORDS,
    _NUM,
    _UNIT_GROUPS,
    EACH,
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
