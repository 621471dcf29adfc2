"""Seeded simulated conversations with their ground truth: a second source of extraction cases.

Each case is one call of the simulator's spec-driven conversation
(``telephony.simulated.asking``): a business drawn at random from a catalogue of fields in
several domains (money with and without units, fees, flat and total prices, yes/no questions
answered yes or no, counts, enum values, free text, lists), some facts unknown to the business
or missing from it, and in some calls a competitor's figure that the business matches, beats
or refuses. The truth is what the simulated business stated (``insights.truth``), so a reader
is scored on conversations no one tuned it on. The same seed gives the same cases.

    from bench.simulated import simulated_cases
    cases = simulated_cases(500, seed=0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.corpus import Case
from mission_server.insights.truth import conversation_truth
from mission_server.telephony.base import AskedField, CallRequest
from mission_server.telephony.simulated.asking import asked_conversation
from mission_server.telephony.simulated.dialogue import _timed
from mission_server.telephony.simulated.world import World

__all__ = ["simulated_cases"]


@dataclass(frozen=True)
class _Field:
    name: str
    type: str
    description: str
    values: tuple[Any, ...]
    enum: tuple[str, ...] = ()
    units: tuple[str | None, ...] = (None,)
    negotiable: bool = False


_S = "array(string)"
DOMAINS: dict[str, tuple[_Field, ...]] = {
    "movers": (
        _Field(
            "total_price",
            "number",
            "The total price for the whole move, in dollars",
            (1480, 1650, 2300, 985),
            units=("for the whole job", "per move", None),
            negotiable=True,
        ),
        _Field("crew_size", "integer", "How many movers they would send", (2, 3, 4)),
        _Field(
            "insurance",
            "enum",
            "The insurance cover included",
            ("full", "basic", "none"),
            enum=("full", "basic", "none"),
        ),
        _Field(
            "services",
            _S,
            "Extra services they offer",
            (["packing"], ["packing", "storage"], ["storage", "piano moving"]),
        ),
        _Field(
            "can_move_on_saturday",
            "boolean",
            "Whether they can do the move on a Saturday",
            (True, False),
        ),
    ),
    "plumbers": (
        _Field(
            "call_out_fee",
            "number",
            "Their call-out fee, in dollars",
            (85, 120, 60, 95),
            units=("per visit", None),
        ),
        _Field(
            "can_come_tomorrow", "boolean", "Whether they can come tomorrow morning", (True, False)
        ),
        _Field(
            "hourly_rate",
            "number",
            "Their hourly labour rate",
            (95, 110, 75.5),
            units=("per hour",),
        ),
        _Field(
            "earliest_slot",
            "string",
            "Their earliest available appointment",
            ("Thursday 9am", "Monday at noon", "next Tuesday morning"),
        ),
    ),
    "roofers": (
        _Field(
            "available_this_month",
            "boolean",
            "Whether they have a free slot to start the job this month",
            (True, False),
        ),
        _Field("warranty_years", "integer", "How many years of warranty they give", (5, 10, 25)),
        _Field(
            "materials",
            _S,
            "The roofing materials they offer",
            (["asphalt shingles"], ["asphalt shingles", "metal"], ["slate", "metal"]),
        ),
        _Field(
            "job_price",
            "number",
            "Their price for the whole roof, in dollars",
            (8200, 11500, 9400),
            units=("for the whole job", None),
            negotiable=True,
        ),
    ),
    "car sale": (
        _Field(
            "offer",
            "number",
            "The price they offer for our 2019 Honda Civic, in dollars",
            (11200, 10900, 12050),
            negotiable=True,
        ),
        _Field("pays_cash", "boolean", "Whether they pay on the spot", (True, False)),
        _Field(
            "payment_method",
            "enum",
            "How they would pay",
            ("cash", "check", "transfer"),
            enum=("cash", "check", "transfer"),
        ),
    ),
    "hotels": (
        _Field(
            "rate_per_night",
            "number",
            "The nightly room rate",
            (149, 119.5, 210),
            units=("per night", None),
            negotiable=True,
        ),
        _Field(
            "room_type",
            "enum",
            "The room type of the block",
            ("standard", "deluxe", "suite"),
            enum=("standard", "deluxe", "suite"),
        ),
        _Field("has_shuttle", "boolean", "Whether they run an airport shuttle", (True, False)),
        _Field(
            "amenities",
            _S,
            "The amenities included",
            (["breakfast"], ["breakfast", "parking", "wifi"], ["wifi", "pool"]),
        ),
        _Field("rooms_available", "integer", "How many rooms are free that weekend", (0, 12, 40)),
    ),
    "catering": (
        _Field(
            "price_per_person",
            "number",
            "Their price per person, in dollars",
            (62, 65, 58.5),
            units=("per person",),
            negotiable=True,
        ),
        _Field("includes_delivery", "boolean", "Whether delivery is included", (True, False)),
        _Field(
            "contact_name",
            "string",
            "Who we should ask for when we book",
            ("Maria", "Dev Patel", "the events manager"),
        ),
    ),
    "venues": (
        _Field(
            "has_availability",
            "boolean",
            "Whether the venue is available on Friday March 20",
            (True, False),
        ),
        _Field("capacity", "integer", "How many guests the room seats", (80, 120, 60)),
        _Field(
            "rental_fee",
            "number",
            "The room rental fee, in dollars",
            (1500, 2250, 900),
            units=(None, "for the evening"),
        ),
    ),
}
_EXTRAS = (
    "We're a family business.",
    "Thanks for thinking of us.",
    "We've been doing this a long time.",
)


def _business(
    rng: random.Random, domain: str, fields: list[_Field], index: int
) -> tuple[dict[str, Any], list[AskedField], str | None]:
    facts: dict[str, Any] = {}
    asks: list[AskedField] = []
    negotiable: dict[str, Any] | None = None
    leverage: str | None = None
    for field in fields:
        draw = rng.random()
        if field.negotiable and rng.random() < 0.3:
            # initial_ and final_ fields: the opening value and the one the call ends on.
            words = field.name.replace("_", " ")
            asks.append(
                AskedField(f"initial_{field.name}", field.type, f"The first {words} they quoted")
            )
            asks.append(
                AskedField(f"final_{field.name}", field.type, f"The final {words} they agreed to")
            )
        else:
            asks.append(
                AskedField(
                    field.name,
                    field.type,
                    field.description,
                    field.enum,
                    "string" if field.type == _S else None,
                )
            )
        if draw < 0.08:
            continue  # the business has no such fact
        if draw < 0.16:
            facts[field.name] = {"unknown": True}
            continue
        value = rng.choice(field.values)
        unit = rng.choice(field.units)
        facts[field.name] = {"value": value, **({"unit": unit} if unit else {})}
        if field.negotiable and rng.random() < 0.5:
            higher = domain == "car sale"
            own = value
            heard = round(own * (1.04 if higher else 0.94))
            policy = rng.choice(("beat", "match", "refuse"))
            limit = round(own * (1.08 if higher else 0.9))
            negotiable = {
                "fact": field.name,
                ("ceiling" if higher else "floor"): limit,
                "on_competitor": policy,
                "beat_by": rng.choice((5, 20, 60)),
            }
            noun = "an offer" if higher else "a quote"
            leverage = (
                f"We already have {noun} of ${heard:,} from Rival Co; ask whether they can beat it."
            )
    business: dict[str, Any] = {
        "name": f"{domain.title()} Business {index}",
        "phone": f"+1312555{index % 10000:04d}",
        "facts": facts,
    }
    if negotiable is not None:
        business["negotiable"] = negotiable
    if rng.random() < 0.2:
        business["extras"] = [rng.choice(_EXTRAS)]
    return business, asks, leverage


def simulated_cases(count: int, *, seed: int = 0) -> list[Case]:
    """``count`` simulated conversations over random domains, fields and facts."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    cases: list[Case] = []
    for index in range(count):
        domain = rng.choice(sorted(DOMAINS))
        pool = list(DOMAINS[domain])
        fields = rng.sample(pool, rng.randint(min(2, len(pool)), len(pool)))
        business, asks, leverage = _business(rng, domain, fields, index + 1000)
        world = World.from_dict({"numbers": ["+13125550100"], "businesses": [business]})
        instructions = f"You are calling {business['name']} on behalf of a client."
        if leverage:
            instructions += "\n" + leverage
        request = CallRequest(
            idempotency_key=f"bench-{index}:1",
            scheduled_event_id=f"bench-{index}",
            attempt_number=1,
            channel="phone_call",
            from_number="+13125550100",
            to=business["phone"],
            assistant_ref="bench",
            placed_at=start,
            instructions=instructions,
            greeting="Hi, do you have a minute?",
            text=None,
            dynamic_variables={},
            asks=tuple(asks),
        )
        call_rng = random.Random(rng.getrandbits(32))
        lines, _ = asked_conversation(world.businesses[0], request, call_rng)
        transcript, _ = _timed(lines, start, call_rng)
        definition = InsightDefinition(
            insight_id=f"sim-{index}",
            name=f"{domain} facts",
            instructions="",
            parameters=tuple(
                InsightParameter(a.name, a.type, description=a.description, enum=a.enum)
                for a in asks
            ),
        )
        truth = conversation_truth(definition, transcript)
        assert truth is not None
        cases.append(
            Case(f"simulated/{index}-{domain}", definition, tuple(transcript), truth, domain)
        )
    return cases
