"""The simulated conversation: what the assistant asks (from the rendered instructions)
and what the business answers (from the world file), with reproducible phrasing and timing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import phonenumbers

from mission_server.telephony.base import (
    CallRequest,
    TranscriptMessage,
)
from mission_server.telephony.simulated.world import Business, Quote


def _secs(seconds: float) -> timedelta:
    # Tenths of a second keep timestamps readable and identical across platforms.
    return timedelta(seconds=round(seconds, 1))


_STAFF = ("Maria", "James", "Priya", "Tom", "Alicia", "Dev", "Hannah", "Luis")


@dataclass(frozen=True)
class _Line:
    role: Literal["assistant", "user"]
    text: str
    think: float = 0.0  # extra silence before the line (the callee looking something up)
    #: The facts the line states (field -> value); None where the conversation has no truth.
    facts: Mapping[str, Any] | None = None


def _timed(
    lines: list[_Line], start: datetime, rng: random.Random
) -> tuple[list[TranscriptMessage], datetime]:
    cursor = start
    messages: list[TranscriptMessage] = []
    for line in lines:
        # Turn-taking gap (listening, speech recognition, the reply being voiced) plus any
        # time the speaker spends looking something up.
        cursor += _secs(line.think + rng.uniform(1.5, 4.0))
        messages.append(TranscriptMessage(line.role, line.text, cursor, line.facts))
        cursor += _secs(len(line.text.split()) / 2.2)  # about 130 spoken words a minute
    return messages, cursor + _secs(rng.uniform(1.0, 3.0))


def _voicemail(business: Business, request: CallRequest, sender: str) -> list[_Line]:
    greeting = business.voicemail_greeting or (
        f"Hi, you've reached {business.name}. Please leave a message after the tone."
    )
    opening = (request.greeting or "").strip() or f"Hello, this is a message for {business.name}."
    message = (
        f"{opening} Sorry I missed you. I'll try you again later, "
        f"or you can call us back at {_spoken_number(sender)}. Thank you."
    )
    return [_Line("user", greeting), _Line("assistant", message, think=1.0)]


def _spoken_number(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


# -- the conversation -------------------------------------------------------------------------

Topic = Literal["quote", "availability", "reminder"]
_TOPICS: tuple[Topic, ...] = ("quote", "availability", "reminder")
_TOPIC_WORDS: dict[Topic, re.Pattern[str]] = {
    "quote": re.compile(
        r"\b(quot(?:e|es|ed|ing)|pric(?:e|es|ing)|costs?|rates?|per[- ](?:person|head)|estimate)\b",
        re.IGNORECASE,
    ),
    "availability": re.compile(
        r"\b(availab\w*|slots?|openings?|vacanc\w*|capacity|reserv\w*|host)\b", re.IGNORECASE
    ),
    "reminder": re.compile(r"\b(remind\w*|appointments?)\b", re.IGNORECASE),
}
_MONEY = re.compile(
    r"\$\s?(?P<dollars>\d{1,3}(?:,\d{3})+|\d+)(?P<cents>\.\d{1,2})?"
    r"|\b(?P<words>\d+(?:\.\d{1,2})?)\s+(?:dollars|USD)\b",
    re.IGNORECASE,
)
_UNIT_AFTER = re.compile(
    r"^\s*(?:/|per|an?)\s*(person|head|guest|plate|hour|night|day|event)\b", re.IGNORECASE
)
_NAME = r"[A-Z][\w&'’-]*(?:\s+(?:[A-Z][\w&'’.-]*|&|of|and|the))*"
_COMPANY = (
    re.compile(rf"\bfrom\s+(?:the\s+)?({_NAME})"),
    re.compile(rf"\(\s*({_NAME})\s*\)"),
    re.compile(rf"({_NAME})(?:'s|’s)\s+(?:quote|offer|price)"),
    re.compile(rf"({_NAME})\s+(?:quoted|offered|charges|charged)\b"),
)
_NEGOTIATION_WORDS = re.compile(
    r"\b(beat|match|competitor\w*|lower|better|negotiat\w*|leverage|discount\w*|undercut)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(?:(?:please|then|also|and|finally|first|next),?\s+)*"
    r"(ask|find out|check|confirm|remind|request|get)\b\s*(.*?)[.!?]*$",
    re.IGNORECASE | re.DOTALL,
)
_OBJECT = re.compile(
    r"^(?:them|him|her|the\s+[\w-]+(?:\s+[\w-]+)?|each\s+[\w-]+)\s+"
    r"(?=(?:whether|if|for|about|of|that|to|what|when|where|how|which|who)\b)",
    re.IGNORECASE,
)
_PRONOUNS = {
    "they're": "you're",
    "they'll": "you'll",
    "they've": "you've",
    "they'd": "you'd",
    "they": "you",
    "them": "you",
    "their": "your",
    "theirs": "yours",
    "themselves": "yourselves",
}
_SECOND_PERSON = re.compile(r"\b(you|your|yours|yourself)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(" + "|".join(map(re.escape, _PRONOUNS)) + r")\b", re.IGNORECASE)
_EVENT = re.compile(
    r"\bfor\s+(an?\s[^.?!;]{0,60}?\b(?:event|party|wedding|lunch|luncheon|dinner|reception|"
    r"meeting|gathering|celebration|conference|banquet)\b"
    r"(?:\s+on\s+(?:[A-Z][a-z]+day(?:,?\s+[A-Z][a-z]+\s+\d{1,2}(?:st|nd|rd|th)?)?"
    r"|[A-Z][a-z]+\s+\d{1,2}(?:st|nd|rd|th)?))?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Mention:
    """A competitor's price as the instructions state it."""

    amount: Decimal
    unit: str | None
    company: str | None

    def spoken(self) -> str:
        unit = f" per {self.unit}" if self.unit else ""
        source = f" from {self.company}" if self.company else " from another company"
        return f"We have a quote of {_money(self.amount)}{unit}{source}. Can you do better?"


def _conversation(
    business: Business, request: CallRequest, rng: random.Random
) -> tuple[list[_Line], str]:
    instructions = request.instructions or ""
    topics = _topics(instructions, business)
    asks = _asks(instructions, topics)
    mention = _competitor_mention(instructions)
    greeting = (request.greeting or "").strip() or "Hello, do you have a moment?"
    lines = [_Line("assistant", greeting), _Line("user", _opener(business, rng))]
    closing: list[str] = []
    label = "call"
    extras_said = False
    for index, topic in enumerate(topics):
        ask = asks.get(topic)
        if ask is None:
            ask = _canned_ask(topic, instructions)
        elif index == 0 and topic != "reminder":
            ask = _with_occasion(ask, instructions)
        lines.append(_Line("assistant", ask))
        answer, think, summary = _answer(topic, business, rng)
        if not extras_said and business.extras:
            answer = " ".join([answer, *business.extras])
            extras_said = True
        lines.append(_Line("user", answer, think=think))
        if topic == "quote" and business.quote is not None:
            label = "baseline quote"
            price = business.quote.price
            if mention is not None:
                label = "negotiation"
                lines.append(_Line("assistant", mention.spoken()))
                # The callee knows the competitor's price only from what was just said.
                heard = _heard_price(lines)
                reply, price = _respond(business.quote, heard, rng)
                lines.append(_Line("user", reply, think=rng.uniform(10, 30)))
            summary = f"So to confirm, that's {_money(price)}{_per(business.quote)}."
        elif label == "call":
            label = _LABELS[topic]
        if summary:
            closing.append(summary)
    if not topics:
        lines.append(_Line("assistant", asks.get("other") or "I have a quick question."))
        lines.append(_Line("user", "I'm sorry, I don't think we can help with that."))
    closing.append("Thank you for your time. Goodbye!")
    lines.append(_Line("assistant", " ".join(closing)))
    farewell = ("Thanks, bye!", "You're welcome. Goodbye!", "Thanks for calling. Have a good day!")
    lines.append(_Line("user", rng.choice(farewell)))
    return lines, label


_LABELS: dict[Topic, str] = {
    "quote": "quote request",
    "availability": "availability check",
    "reminder": "appointment reminder",
}


def _topics(instructions: str, business: Business) -> list[Topic]:
    asked: list[Topic] = [t for t in _TOPICS if _TOPIC_WORDS[t].search(instructions)]
    if asked:
        return asked
    # Instructions that name no subject: the callee talks about what it knows.
    known: list[Topic] = [t for t in _TOPICS if getattr(business, t) is not None]
    return known


_ABBREVIATION = re.compile(
    r"\b(?:Dr|Mr|Mrs|Ms|Prof|St|Ave|Co|Inc|Ltd|Jr|Sr|vs|approx|e\.g|i\.e)\.$", re.IGNORECASE
)


def _sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for line in text.splitlines():
        for piece in re.split(r"(?<=[.!?])\s+", line.strip()):
            if sentences and _ABBREVIATION.search(sentences[-1]) and piece:
                sentences[-1] += " " + piece  # "Dr. Lee" does not end a sentence
            elif piece:
                sentences.append(piece)
    return sentences


def _asks(instructions: str, topics: list[Topic]) -> dict[str, str]:
    """What the assistant asks, per topic: the instructions' imperative sentences ("Ask
    whether they...") turned into questions to the callee. Sentences about prices or
    negotiation are left to the leverage line, so a baseline call never names a price."""
    grouped: dict[str, list[str]] = {}
    for sentence in _sentences(instructions):
        if _MONEY.search(sentence) or _NEGOTIATION_WORDS.search(sentence):
            continue
        question = _as_question(sentence)
        if question is None:
            continue
        topic: str = next((t for t in _TOPICS if _TOPIC_WORDS[t].search(sentence)), "")
        if topic not in topics:
            topic = topics[0] if topics else "other"
        grouped.setdefault(topic, []).append(question)
    asks: dict[str, str] = {}
    for topic, questions in grouped.items():
        # Later questions in the same turn are chained ("And could you ...") as people do.
        chained = questions[:1]
        for question in questions[1:3]:
            follows_question = chained[-1].endswith("?") and question.startswith("Could")
            chained.append("And c" + question[1:] if follows_question else question)
        text = " ".join(chained)
        if "?" not in text and topic in _FOLLOW_UP:
            text += " " + _FOLLOW_UP[topic]
        asks[topic] = text
    return asks


_FOLLOW_UP: dict[str, str] = {
    "quote": "What would your price be?",
    "availability": "Do you have anything open?",
    "reminder": "Will you be able to make it?",
}


def _as_question(sentence: str) -> str | None:
    match = _IMPERATIVE.match(sentence.strip())
    if match is None or _SECOND_PERSON.search(sentence):
        # "Confirm the price before you hang up" is about the assistant's conduct, not a
        # question for the callee.
        return None
    verb = match.group(1).lower()
    rest = _OBJECT.sub("", match.group(2).strip()).strip()
    if not rest:
        return None
    lower = rest.lower()
    if verb == "remind":
        joiner = "" if lower.startswith(("of ", "about ", "that ")) else "about "
        text = f"I'm calling to remind you {joiner}{rest}."
    elif verb == "confirm":
        text = f"Could you confirm {rest}?"
    elif verb in ("request", "get"):
        text = f"Could you give me {rest}?"
    elif lower.startswith("for "):
        text = f"Could you give me {rest[4:]}?"
    elif lower.startswith("to "):
        text = f"Could you {rest[3:]}?"
    else:
        text = f"Could you tell me {rest}?"
    return _PRONOUN.sub(lambda m: _PRONOUNS[m.group(1).lower()], text)


def _with_occasion(ask: str, instructions: str) -> str:
    # The occasion ("a 50-person corporate event on March 20") usually carries injected
    # variables, so the assistant states it before its questions.
    event = _EVENT.search(instructions)
    if event is None or event.group(1).lower() in ask.lower():
        return ask
    return f"I'm calling about {event.group(1)}. {ask}"


def _canned_ask(topic: Topic, instructions: str) -> str:
    event = _EVENT.search(instructions)
    occasion = f" for {event.group(1)}" if event else ""
    if topic == "quote":
        return f"I'd like to get a quote{occasion}. What would your price be?"
    if topic == "availability":
        return f"I'm checking availability{occasion}. Do you have anything open?"
    return "I'm calling to remind you about your upcoming appointment. Will you be able to make it?"


def _opener(business: Business, rng: random.Random) -> str:
    personal = (
        business.reminder is not None and business.quote is None and (business.availability is None)
    )
    if personal:
        first = business.name.split()[0]
        return rng.choice((f"Hello, this is {first}.", "Hello?", f"Hi, {first} speaking."))
    staff = rng.choice(_STAFF)
    return rng.choice(
        (
            f"{business.name}, this is {staff}. How can I help you?",
            f"Sure. You've reached {business.name}, {staff} speaking. What can I do for you?",
            f"Hi, yes, this is {staff} at {business.name}. How can I help?",
        )
    )


def _answer(topic: Topic, business: Business, rng: random.Random) -> tuple[str, float, str]:
    """The callee's answer, how long it thinks first, and the assistant's closing summary."""
    if topic == "quote":
        if business.quote is None:
            return (
                "I'm afraid I can't give you a price over the phone; we'd have to send you "
                "a written quote.",
                rng.uniform(1, 3),
                "",
            )
        price = f"{_money(business.quote.price)}{_per(business.quote)}"
        return (
            rng.choice(
                (
                    f"For that we'd charge {price}.",
                    f"That would be {price}.",
                    f"Our price for that is {price}.",
                )
            ),
            rng.uniform(10, 30),
            "",
        )
    if topic == "availability":
        facts = business.availability
        if facts is None:
            return "I'd have to check the calendar and get back to you on that.", 2.0, ""
        if not facts.available:
            return (
                "I'm sorry, we're fully booked for that.",
                rng.uniform(4, 12),
                "Understood, thanks for letting me know.",
            )
        if not facts.slots:
            return "Yes, we have availability.", rng.uniform(4, 12), "Great, I'll pass that on."
        return (
            f"Yes, we have availability. We could offer {_listing(facts.slots)}.",
            rng.uniform(4, 12),
            "Great, I'll pass those times on.",
        )
    facts_r = business.reminder
    if facts_r is None:
        return "Sorry, I don't know anything about an appointment.", 1.0, ""
    if facts_r.confirms:
        return (
            rng.choice(("Yes, I'll be there.", "Yes, I'll be there. Thanks for the reminder.")),
            rng.uniform(0.5, 2),
            "Great, we'll see you then.",
        )
    if facts_r.reschedule_to:
        return (
            f"Actually, I can't make it. Could we reschedule? Would {facts_r.reschedule_to} "
            "work instead?",
            rng.uniform(1, 4),
            f"Of course. I'll ask the office to move it to {facts_r.reschedule_to}, "
            "and they'll call you to confirm.",
        )
    return (
        "Actually, I can't make it. Could we reschedule?",
        rng.uniform(1, 4),
        "Of course. I'll ask the office to reschedule, and they'll call you to confirm.",
    )


def _respond(quote: Quote, heard: Decimal | None, rng: random.Random) -> tuple[str, Decimal]:
    """The callee's reaction to a competitor's price: what it says and the price it offers."""
    own = quote.price
    per = _per(quote)
    if heard is None:
        return f"I'm not sure what you mean. Our price is {_money(own)}{per}.", own
    if heard >= own:
        return f"We're already below that at {_money(own)}{per}.", own
    if quote.on_competitor == "beat":
        offer = max(quote.lowest, heard - quote.beat_by)
    elif quote.on_competitor == "match":
        offer = max(quote.lowest, heard)
    else:
        offer = own
    if offer >= own:
        return (
            rng.choice(
                (
                    f"I'm sorry, we can't go lower than {_money(own)}{per}.",
                    f"I'm afraid our price stays at {_money(own)}{per}.",
                )
            ),
            own,
        )
    if offer < heard:
        return f"We can beat that. We can do {_money(offer)}{per}.", offer
    if offer == heard:
        return f"We can't beat that, but we can match it at {_money(offer)}{per}.", offer
    return (
        f"We can't go as low as {_money(heard)}, but we can come down to {_money(offer)}{per}."
    ), offer


def _competitor_mention(instructions: str) -> _Mention | None:
    candidates = [s for s in _sentences(instructions) if _MONEY.search(s)]
    if not candidates:
        return None
    leverage = re.compile(r"\b(quot\w*|offer\w*|competitor\w*|best|so far|beat|match)\b", re.I)
    sentence = next((s for s in candidates if leverage.search(s)), candidates[0])
    match = _MONEY.search(sentence)
    assert match is not None
    unit = _UNIT_AFTER.match(sentence[match.end() :])
    return _Mention(_amount(match), unit.group(1).lower() if unit else None, _company(sentence))


def _company(sentence: str) -> str | None:
    for pattern in _COMPANY:
        found = pattern.search(sentence)
        if found:
            words = found.group(1).rstrip(".,;:").split()
            while words and words[-1].lower() in ("of", "and", "the", "&"):
                words.pop()
            if words:
                return " ".join(words)
    return None


def _heard_price(lines: list[_Line]) -> Decimal | None:
    for line in reversed(lines):
        if line.role == "assistant":
            match = _MONEY.search(line.text)
            return _amount(match) if match else None
    return None


def _amount(match: re.Match[str]) -> Decimal:
    if match.group("words"):
        return Decimal(match.group("words"))
    return Decimal(match.group("dollars").replace(",", "") + (match.group("cents") or ""))


def _money(amount: Decimal) -> str:
    cents = amount.quantize(Decimal("0.01"))
    if cents == cents.to_integral_value():
        return f"${int(cents):,}"
    return f"${cents:,.2f}"


def _per(quote: Quote) -> str:
    return f" per {quote.unit}"


def _listing(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
