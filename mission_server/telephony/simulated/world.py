"""The simulated world: the businesses and people a ``SimulatedProvider`` can reach by phone.

A world file is YAML that users write to rehearse missions, so every mistake in it must be
reported with the path of the bad field (``businesses[0].quote.floor must be ...``). The models
here are the validated form; ``load_world`` reads and validates a file, ``World.from_dict`` a
mapping that is already parsed. See ``mission_server/data/world.yaml`` for an annotated example.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mission_server.domain.targets import is_sip_uri, normalise_target, timezones_for_target
from mission_server.domain.targets import validate_timezone as _validate_timezone
from mission_server.errors import ConfigurationError, ValidationError

__all__ = [
    "ANSWER_KINDS",
    "AccountNumber",
    "AnswerKind",
    "Availability",
    "Business",
    "Fact",
    "FieldMatch",
    "Negotiable",
    "Quote",
    "Reminder",
    "World",
    "load_world",
]

AnswerKind = Literal["answer", "busy", "no-answer", "failed", "canceled", "voicemail"]
#: What a business does when called, one entry per attempt (the last one repeats).
ANSWER_KINDS: tuple[str, ...] = ("answer", "busy", "no-answer", "failed", "canceled", "voicemail")
CompetitorPolicy = Literal["beat", "match", "refuse"]


class _Model(BaseModel):
    # Unknown keys are rejected so a typo (``florr: 60``) is an error, not a silently
    # ignored setting that makes a rehearsal behave unexpectedly.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _phone(value: Any) -> str:
    try:
        return normalise_target(value, "phone")
    except ValidationError as exc:
        # Re-raised as a plain ValueError so pydantic attaches the field's full path.
        raise ValueError(exc.rule) from None


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


class AccountNumber(_Model):
    """A number of the simulated account: the caller IDs the assistant can call from."""

    number: str
    hd_voice: bool = False

    @field_validator("number", mode="before")
    @classmethod
    def _e164(cls, value: Any) -> str:
        number = _phone(value)
        if is_sip_uri(number):
            raise ValueError("must be a phone number, not a SIP URI")
        return number


class Quote(_Model):
    """A business's price and how it reacts when told a competitor's price.

    ``on_competitor``: ``beat`` offers ``max(floor, competitor - beat_by)``; ``match`` offers
    the competitor's price, or its floor if the competitor is below it; ``refuse`` keeps its
    price. Nobody goes below ``floor`` (default: the price itself, i.e. no discount).
    """

    price: Decimal = Field(gt=0)
    unit: str = "person"
    floor: Decimal | None = Field(default=None, gt=0)
    on_competitor: CompetitorPolicy = "refuse"
    beat_by: Decimal = Field(default=Decimal(1), gt=0)

    @field_validator("unit")
    @classmethod
    def _unit_not_blank(cls, value: str) -> str:
        return _non_blank(value)

    @model_validator(mode="after")
    def _floor_not_above_price(self) -> Quote:
        if self.floor is not None and self.floor > self.price:
            raise ValidationError(
                "floor", f"must be at most the price ({_number(self.price)})", _number(self.floor)
            )
        return self

    @property
    def lowest(self) -> Decimal:
        """The lowest price the business will ever accept."""
        return self.price if self.floor is None else self.floor


class Availability(_Model):
    """The answer to an availability survey: yes or no, and the slots it can offer."""

    available: bool
    slots: list[str] = Field(default_factory=list)

    @field_validator("slots")
    @classmethod
    def _slots_not_blank(cls, value: list[str]) -> list[str]:
        return [_non_blank(slot) for slot in value]

    @model_validator(mode="after")
    def _no_slots_when_unavailable(self) -> Availability:
        if not self.available and self.slots:
            raise ValidationError("slots", "must be empty when available is false", self.slots)
        return self


class Reminder(_Model):
    """How a patient or client answers an appointment reminder."""

    confirms: bool
    reschedule_to: str | None = None  # what they propose instead when they do not confirm

    @model_validator(mode="after")
    def _reschedule_only_when_declining(self) -> Reminder:
        if self.confirms and self.reschedule_to is not None:
            raise ValidationError(
                "reschedule_to", "must be omitted when confirms is true", self.reschedule_to
            )
        return self


FactValue = bool | int | float | str | list[bool | int | float | str]

#: A field named ``initial_price`` asks for the opening value of the fact ``price``; one named
#: ``final_price`` (or agreed_, best_, ...) for the value the call ended on.
_OPENING_PREFIXES = ("initial_", "first_", "original_", "opening_", "baseline_", "starting_")
_FINAL_PREFIXES = ("final_", "agreed_", "best_", "last_", "new_", "negotiated_", "current_")


class Fact(_Model):
    """One thing a business can be asked about: its value, or ``unknown: true`` when it would
    have to check. ``aka`` lists other field names it answers to; ``unit`` is spoken after a
    number (``per visit``, ``for the whole job``)."""

    value: FactValue | None = None
    unknown: bool = False
    aka: list[str] = Field(default_factory=list)
    unit: str | None = None

    @model_validator(mode="after")
    def _value_or_unknown(self) -> Fact:
        if self.unknown and self.value is not None:
            raise ValidationError("value", "must be omitted when unknown is true", self.value)
        if not self.unknown and self.value is None:
            raise ValidationError("value", "is required (or say unknown: true)", show_value=False)
        if isinstance(self.value, list) and len({type(v) for v in self.value}) > 1:
            raise ValidationError("value", "must be a list of one type", self.value)
        return self

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, (int, float)) and not isinstance(self.value, bool)


class Negotiable(_Model):
    """How a numeric fact moves when the caller names a competitor's figure.

    A competitor below the business's value (lower is better, a buyer's view): ``beat`` offers
    ``max(floor, competitor - beat_by)``, ``match`` offers ``max(floor, competitor)``. A
    competitor above it (higher is better, a seller's view: an offer for a car): ``beat``
    offers ``min(ceiling, competitor + beat_by)``, ``match`` ``min(ceiling, competitor)``.
    ``refuse`` keeps the value. ``floor`` and ``ceiling`` default to the value itself.
    """

    fact: str
    floor: Decimal | None = None
    ceiling: Decimal | None = None
    on_competitor: CompetitorPolicy = "refuse"
    beat_by: Decimal = Field(default=Decimal(1), gt=0)

    def offer(self, own: Decimal, heard: Decimal) -> Decimal:
        """The value offered after hearing ``heard`` (never past floor or ceiling)."""
        if self.on_competitor == "refuse" or heard == own:
            return own
        if heard < own:
            floor = own if self.floor is None else min(self.floor, own)
            target = heard - self.beat_by if self.on_competitor == "beat" else heard
            return max(floor, target)
        ceiling = own if self.ceiling is None else max(self.ceiling, own)
        target = heard + self.beat_by if self.on_competitor == "beat" else heard
        return min(ceiling, target)


@dataclass(frozen=True)
class FieldMatch:
    """The fact an insight field asks about, and whether it wants the opening value."""

    name: str
    fact: Fact
    opening: bool = False


def _field_type_problem(value: Any, kind: str, enum: tuple[str, ...]) -> str | None:
    """Why a fact's value cannot answer a field of type ``kind``, or None when it can."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    items = value if isinstance(value, list) else None
    if kind == "boolean":
        return None if isinstance(value, bool) else "a boolean (true or false)"
    if kind == "number":
        return None if number else "a number"
    if kind == "integer":
        whole = isinstance(value, (int, float)) and number and float(value) == int(value)
        return None if whole else "a whole number"
    if kind == "enum":
        allowed = {e.casefold() for e in enum}
        if isinstance(value, str) and value.casefold() in allowed:
            return None
        return f"one of the field's values ({', '.join(enum)})"
    if kind == "string":
        if isinstance(value, str) or (items is not None and all(isinstance(i, str) for i in items)):
            return None
        return "text"
    if kind in ("array", "array(string)"):
        strings = isinstance(value, str) or (
            items is not None and all(isinstance(i, str) for i in items)
        )
        return None if strings else "a list of text items"
    if kind == "array(number)":
        ok = items is not None and all(
            isinstance(i, (int, float)) and not isinstance(i, bool) for i in items
        )
        return None if ok else "a list of numbers"
    if kind == "array(boolean)":
        ok = items is not None and all(isinstance(i, bool) for i in items)
        return None if ok else "a list of booleans"
    return f"a value the simulator can state (it does not simulate {kind} fields)"


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "text"


class Business(_Model):
    """One reachable party: a business, a venue, a patient or a client."""

    name: str
    phone: str
    timezone: str | None = None
    category: str | None = None  # free text (catering, venue, patient, ...) for directories
    answers: list[AnswerKind] = Field(default_factory=lambda: ["answer"], min_length=1)
    voicemail_greeting: str | None = None
    quote: Quote | None = None
    availability: Availability | None = None
    reminder: Reminder | None = None
    extras: list[str] = Field(default_factory=list)  # further remarks, e.g. about dessert
    sms_reply: str | None = None  # what they text back to an SMS, if anything
    #: Named facts with typed values: ``{call_out_fee: 85, earliest_slot: "Thursday 9am"}``,
    #: or the long form ``{value: ..., aka: [...], unit: ..., unknown: true}``.
    facts: dict[str, Fact] = Field(default_factory=dict)
    negotiable: Negotiable | None = None
    declines: bool = False  # answers, but will not discuss anything on the phone
    call_back: str | None = None  # asks to be called back then ("tomorrow after 2pm")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        return _non_blank(value)

    @field_validator("phone", mode="before")
    @classmethod
    def _e164(cls, value: Any) -> str:
        return _phone(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return _validate_timezone(value)
        except ValidationError as exc:
            raise ValueError(exc.rule) from None

    @field_validator("facts", mode="before")
    @classmethod
    def _short_facts(cls, value: Any) -> Any:
        # ``call_out_fee: 85`` is shorthand for ``call_out_fee: {value: 85}``.
        if isinstance(value, Mapping):
            return {
                str(name): item if isinstance(item, Mapping) else {"value": item}
                for name, item in value.items()
            }
        return value

    @model_validator(mode="after")
    def _facts_consistent(self) -> Business:
        names: dict[str, str] = {}
        for name in self.facts:
            if not name.strip():
                raise ValidationError("facts", "must not have an empty fact name", name)
            names[name] = name
        for name, fact in self.facts.items():
            for index, other in enumerate(fact.aka):
                if other in names:
                    where = "is a fact" if other == names[other] else f"is an aka of {names[other]}"
                    raise ValidationError(
                        f"facts.{name}.aka[{index}]",
                        f"collides with another fact ({other} {where})",
                        other,
                    )
                names[other] = name
        if self.negotiable is not None:
            if self.quote is not None:
                raise ValidationError(
                    "negotiable",
                    "must be omitted when quote is given (quote already says how its price moves)",
                    self.negotiable.fact,
                )
            fact = self.facts.get(self.negotiable.fact)
            if fact is None or not fact.is_number:
                raise ValidationError(
                    "negotiable.fact",
                    "must name a numeric fact of this business",
                    self.negotiable.fact,
                )
            own = Decimal(str(fact.value))
            if self.negotiable.floor is not None and self.negotiable.floor > own:
                raise ValidationError(
                    "negotiable.floor",
                    f"must be at most the fact's value ({_number(own)})",
                    _number(self.negotiable.floor),
                )
            if self.negotiable.ceiling is not None and self.negotiable.ceiling < own:
                raise ValidationError(
                    "negotiable.ceiling",
                    f"must be at least the fact's value ({_number(own)})",
                    _number(self.negotiable.ceiling),
                )
        return self

    def all_facts(self) -> dict[str, Fact]:
        """The explicit facts, and those the ``quote``, ``availability`` and ``reminder``
        shorthands state (an explicit fact of the same name, or aka, wins)."""
        derived: dict[str, Fact] = {}
        if self.quote is not None:
            unit = self.quote.unit
            derived["price"] = Fact(
                value=_number(self.quote.price),
                unit=f"per {unit}",
                aka=["quote", "quoted_price", f"price_per_{unit}", f"{unit}_price"],
            )
        if self.availability is not None:
            derived["available"] = Fact(
                value=self.availability.available, aka=["is_available", "has_availability"]
            )
            if self.availability.available:
                derived["slots"] = Fact(
                    value=list(self.availability.slots),
                    aka=[
                        "available_slots",
                        "open_slots",
                        "offered_slots",
                        "offered_times",
                        "times",
                    ],
                )
        if self.reminder is not None:
            derived["confirms"] = Fact(
                value=self.reminder.confirms, aka=["confirmed", "will_attend", "attending"]
            )
            if self.reminder.reschedule_to is not None:
                derived["reschedule_to"] = Fact(
                    value=self.reminder.reschedule_to,
                    aka=["reschedule_time", "new_time", "preferred_time"],
                )
        taken = set(self.facts) | {a for f in self.facts.values() for a in f.aka}
        merged = dict(self.facts)
        for name, fact in derived.items():
            if name in taken:
                continue
            aka = [a for a in fact.aka if a not in taken]
            merged[name] = fact.model_copy(update={"aka": aka})
        return merged

    def negotiation(self) -> Negotiable | None:
        """How the business's negotiable fact moves (the ``quote`` shorthand's ``price``)."""
        if self.negotiable is not None:
            return self.negotiable
        if self.quote is not None and "price" in self.all_facts():
            return Negotiable(
                fact="price",
                floor=self.quote.floor,
                on_competitor=self.quote.on_competitor,
                beat_by=self.quote.beat_by,
            )
        return None

    def fact_for(self, field: str) -> FieldMatch | None:
        """The fact that answers the insight field ``field``: by name, by ``aka``, or — for
        a field like ``initial_price`` / ``final_price`` — the fact ``price``."""
        facts = self.all_facts()
        by_name = {alias: name for name, fact in facts.items() for alias in (name, *fact.aka)}
        if field in by_name:
            return FieldMatch(by_name[field], facts[by_name[field]])
        for prefix in (*_OPENING_PREFIXES, *_FINAL_PREFIXES):
            base = field[len(prefix) :]
            if field.startswith(prefix) and base in by_name:
                name = by_name[base]
                return FieldMatch(name, facts[name], opening=prefix in _OPENING_PREFIXES)
        return None

    def check_field(self, field: str, kind: str, enum: tuple[str, ...] = ()) -> None:
        """Refuse a fact whose value cannot answer the field it matches.

        Raises:
            ValidationError: names the business, the fact and both types.
        """
        match = self.fact_for(field)
        if match is None or match.fact.unknown:
            return
        problem = _field_type_problem(match.fact.value, kind, enum)
        if problem is not None:
            raise ValidationError(
                f"{self.name}: facts.{match.name}",
                f"is {_kind_of(match.fact.value)}, but the mission's field {field} "
                f"({kind}) needs {problem}",
                match.fact.value,
            )

    @field_validator("answers", mode="before")
    @classmethod
    def _single_answer(cls, value: Any) -> Any:
        # ``answers: busy`` reads naturally for a business that always behaves the same way.
        return [value] if isinstance(value, str) else value

    def answer_for(self, attempt_number: int) -> AnswerKind:
        """What happens on this attempt (1-based); the last pattern entry repeats."""
        index = min(max(attempt_number, 1), len(self.answers)) - 1
        return self.answers[index]

    def timezones(self) -> list[str]:
        """The zones whose calling hours a call to this business keeps: the number's and the
        explicit one (``timezones_for_target``; refused when there are none)."""
        return timezones_for_target(self.phone, self.timezone)


class World(_Model):
    """A whole simulated world. Build it with ``World.from_dict`` or ``load_world``."""

    seed: int = 0
    start_time: datetime | None = None  # where the simulated clock starts (default: now)
    cost_per_minute: float = Field(default=0.05, ge=0)  # per started minute of a connected call
    cost_per_sms: float = Field(default=0.004, ge=0)
    numbers: list[AccountNumber] = Field(min_length=1)
    businesses: list[Business] = Field(default_factory=list)

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("must include a timezone offset (e.g. Z or +00:00)")
        return value

    @field_validator("numbers", mode="before")
    @classmethod
    def _bare_numbers(cls, value: Any) -> Any:
        # A bare string is shorthand for {number: ..., hd_voice: false}.
        if isinstance(value, list):
            return [{"number": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _unique_numbers(self) -> World:
        seen: dict[str, str] = {}
        for index, entry in enumerate(self.numbers):
            path = f"numbers[{index}].number"
            if entry.number in seen:
                raise ValidationError(
                    path, f"must be unique; already listed at {seen[entry.number]}", entry.number
                )
            seen[entry.number] = f"numbers[{index}]"
        for index, business in enumerate(self.businesses):
            path = f"businesses[{index}].phone"
            if business.phone in seen:
                raise ValidationError(
                    path, f"must be unique; already used by {seen[business.phone]}", business.phone
                )
            seen[business.phone] = f"businesses[{index}] ({business.name})"
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> World:
        """Validate a parsed world file.

        Raises:
            ValidationError: a field is missing, unknown or invalid; ``field`` is its path,
                e.g. ``businesses[0].quote.floor``.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                "world", "must be a mapping with numbers and businesses", type(data).__name__
            )
        try:
            return cls.model_validate(dict(data))
        except pydantic.ValidationError as exc:
            raise _translate(exc) from None

    def check_fields(self, fields: Sequence[tuple[str, str, tuple[str, ...]]]) -> None:
        """Refuse a business fact that cannot answer a mission field of that name: each
        field is ``(name, type, enum values)``.

        Raises:
            ValidationError: names the business, the fact and both types.
        """
        for business in self.businesses:
            for name, kind, enum in fields:
                business.check_field(name, kind, enum)

    def business_for(self, number: str) -> Business | None:
        """The business reachable at ``number`` (any format ``normalise_target`` accepts)."""
        try:
            target = normalise_target(number)
        except ValidationError:
            return None
        return self._by_phone.get(target)

    @functools.cached_property
    def _by_phone(self) -> dict[str, Business]:
        # The phones are unique (``_unique_numbers``): a lookup, not a scan of the world.
        return {b.phone: b for b in self.businesses}


def load_world(path: str | Path) -> World:
    """Read and validate a world file (YAML).

    Raises:
        ConfigurationError: the file does not exist or cannot be read.
        ValidationError: the file is not valid YAML, or a field is missing, unknown or invalid
            (``field`` names its path, e.g. ``businesses[0].quote.floor``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read world file {path}: {exc.strerror or exc}") from None
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        rule = f"must be valid YAML ({problem}{where})"
        raise ValidationError("world", rule, str(path)) from None
    if data is None:
        data = {}
    return World.from_dict(data)


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed by libyaml when PyYAML has it (several times faster;
    the same SafeConstructor builds the same data). A document libyaml refuses is parsed again
    by the pure-Python parser, so the error is the one ``safe_load`` reports."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.load(text, Loader=loader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def _number(value: Decimal) -> int | float:
    # Shown in error messages the way the user wrote it in YAML, not as Decimal('65').
    return int(value) if value == value.to_integral_value() else float(value)


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _translate(exc: pydantic.ValidationError) -> ValidationError:
    # Report the first problem only: it is the one the user fixes next, and a single field/rule/
    # value triple is what ValidationError carries.
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    cause = ctx.get("error")
    if isinstance(cause, ValidationError):
        # Raised by a model validator: its field is relative to the model's location.
        field = _path((*loc, *cause.field.split(".")))
        return ValidationError(field, cause.rule, cause.value)
    field = _path(loc) or "world"
    if kind == "missing":
        return ValidationError(field, "is required", show_value=False)
    if kind == "extra_forbidden":
        return ValidationError(field, "is not a known field (check the spelling)", value)
    if kind == "value_error" and cause is not None:
        return ValidationError(field, str(cause), value)
    if kind == "literal_error":
        return ValidationError(field, f"must be one of {ctx.get('expected')}", value)
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return ValidationError(field, f"must have at least {count} item{'s' * (count != 1)}", value)
    message = str(error["msg"])
    for prefix, replacement in (("Input should be", "must be"), ("Value should be", "must be")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
    return ValidationError(field, message[0].lower() + message[1:], value)
