"""Rehearsals in domains the examples do not cover: the facts a run records equal what the
world's businesses said, for every field type.

Each mission runs end to end (planner, dispatcher, simulated calls, extraction) on the
virtual clock, with the default simulated extractor (the ground truth of each call). The
expected values are written out by hand from the world below, so a test fails when the
simulated business says something else, the assistant asks the wrong thing, or the truth is
lost on the way to the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mission_server.clock import VirtualClock
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.errors import ValidationError
from mission_server.insights.simulated import SimulatedExtractor
from mission_server.services import extraction, missions
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.simulated.provider import SimulatedProvider
from mission_server.telephony.simulated.world import World
from state.db import create_schema, make_engine

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}

WORLD: dict[str, Any] = {
    "seed": 11,
    "start_time": "2026-03-10T15:00:00Z",  # Tuesday, 10:00 in Chicago
    "numbers": ["+13125550100"],
    "businesses": [
        # Movers: flat and total prices, a match and a beat.
        {
            "name": "Ace Movers",
            "phone": "+13125550201",
            "facts": {
                "total_price": {"value": 1480, "unit": "for the whole job"},
                "crew_size": 3,
                "insurance": "full",
                "services": ["packing", "storage"],
                "earliest_date": "Saturday March 14",
                "can_move_on_saturday": True,
            },
        },
        {
            "name": "Budget Van Lines",
            "phone": "+13125550202",
            "facts": {
                "total_price": {"value": 1650, "unit": "per move"},
                "crew_size": 2,
                "insurance": "basic",
                "services": ["packing"],
                "earliest_date": "Monday March 16",
                "can_move_on_saturday": False,
            },
            "negotiable": {"fact": "total_price", "floor": 1400, "on_competitor": "match"},
        },
        {
            "name": "Lakeshore Moving",
            "phone": "+13125550203",
            "facts": {
                "total_price": 1590,
                "crew_size": 4,
                "insurance": {"unknown": True},
                "services": ["packing", "storage", "piano moving"],
                "earliest_date": "Friday March 13",
                "can_move_on_saturday": True,
            },
            "negotiable": {
                "fact": "total_price",
                "floor": 1300,
                "on_competitor": "beat",
                "beat_by": 60,
            },
        },
        # Plumbers: a call-out fee per visit, a no, and a rate they do not know.
        {
            "name": "Northside Plumbing",
            "phone": "+13125550211",
            "facts": {
                "call_out_fee": {"value": 85, "unit": "per visit", "aka": ["visit_fee"]},
                "can_come_tomorrow": False,
                "hourly_rate": {"unknown": True},
            },
        },
        {
            "name": "Drain Doctors",
            "phone": "+13125550212",
            "facts": {"call_out_fee": 120, "can_come_tomorrow": True, "hourly_rate": 95},
        },
        # Roofers: fully booked, and a business that will not say.
        {
            "name": "Summit Roofing",
            "phone": "+13125550221",
            "facts": {
                "available_this_month": False,
                "warranty_years": 10,
                "materials": ["asphalt shingles", "metal"],
            },
        },
        {
            "name": "Peak Roof Co",
            "phone": "+13125550222",
            "declines": True,
            "facts": {"available_this_month": True, "warranty_years": 5},
        },
        {
            "name": "Ridge Line Roofers",
            "phone": "+13125550223",
            "call_back": "tomorrow after 2pm",
            "facts": {"available_this_month": True},
        },
        # Car dealers buying our car: higher is better.
        {
            "name": "Metro Auto Buyers",
            "phone": "+13125550231",
            "facts": {"offer": 11200},
        },
        {
            "name": "Windy City Motors",
            "phone": "+13125550232",
            "facts": {"offer": 10900},
            "negotiable": {
                "fact": "offer",
                "ceiling": 11600,
                "on_competitor": "beat",
                "beat_by": 200,
            },
        },
        {
            "name": "Lincoln Park Cars",
            "phone": "+13125550233",
            "facts": {"offer": 11000},
            "negotiable": {"fact": "offer", "ceiling": 11300, "on_competitor": "match"},
        },
        # Hotels: a room block, an enum and a list.
        {
            "name": "Grand Lake Hotel",
            "phone": "+13125550241",
            "facts": {
                "rate_per_night": {"value": 149, "unit": "per night"},
                "room_type": "deluxe",
                "has_shuttle": True,
                "amenities": ["breakfast", "parking", "wifi"],
                "rooms_available": 12,
            },
        },
        {
            "name": "Riverside Inn",
            "phone": "+13125550242",
            "facts": {
                "rate_per_night": 119.5,
                "room_type": "standard",
                "has_shuttle": False,
                "amenities": ["wifi"],
                "rooms_available": 0,
            },
        },
    ],
}


def _spec(name: str, targets: list[tuple[str, str]], instructions: str, **rest: Any) -> Any:
    spec: dict[str, Any] = {
        "name": name,
        "objective": f"Rehearse: {name}",
        "strategy": rest.pop("strategy", "parallel"),
        "assistant": {
            "name": f"{name} caller",
            "greeting": "Hi, do you have a minute for a quick question?",
            "instructions": instructions,
        },
        "targets": [{"name": n, "phone": p} for n, p in targets],
        "calling_window": WINDOW,
        **rest,
    }
    return spec


MOVERS_FIELDS = [
    {
        "name": "total_price",
        "type": "number",
        "required": True,
        "description": "The total price for the whole move, in dollars",
    },
    {"name": "crew_size", "type": "integer", "description": "How many movers they would send"},
    {
        "name": "insurance",
        "type": "enum",
        "enum": ["full", "basic", "none"],
        "description": "The insurance cover included",
    },
    {"name": "services", "type": "array(string)", "description": "Extra services they offer"},
    {
        "name": "earliest_date",
        "type": "string",
        "description": "The earliest date they can move us",
    },
    {
        "name": "can_move_on_saturday",
        "type": "boolean",
        "description": "Whether they can do the move on a Saturday",
    },
]

MOVERS = _spec(
    "Movers",
    [
        ("Ace Movers", "+13125550201"),
        ("Budget Van Lines", "+13125550202"),
        ("Lakeshore Moving", "+13125550203"),
    ],
    "You are calling {{target_name}} about moving a two-bedroom apartment.\n"
    "Ask what the whole move would cost, how many movers they send, what insurance is "
    "included, which extra services they offer, the earliest date and whether Saturday works.\n"
    "{{#best_total}}We already have ${{best_total}} for the whole job from {{best_mover}}; "
    "ask whether they can beat it.{{/best_total}}",
    strategy="sequential_leverage",
    extract=MOVERS_FIELDS,
    leverage={
        "field": "total_price",
        "better": "lower",
        "variable": "best_total",
        "name_variable": "best_mover",
        "label": "Total",
    },
)


#: The transcripts of the last rehearsal, per target ("role: text" lines).
talk: dict[str, str] = {}


def rehearse(tmp_path: Path, spec: dict[str, Any], world: dict[str, Any] = WORLD) -> Any:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world), encoding="utf-8")
    provider = SimulatedProvider.from_path(path)
    assert provider.world.start_time is not None
    engine = make_engine(str(tmp_path / "rehearsal.db"))
    create_schema(engine)
    ctx = Context(
        engine=engine,
        clock=VirtualClock(provider.world.start_time),
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        extractor=SimulatedExtractor(),
    )
    runner = MissionRunner(ctx, mode="inline")
    try:
        run_id = runner.start(spec)
        drive_virtual(ctx, runner, [run_id])
        detail = missions.get_run(ctx, run_id)
        facts: dict[str, dict[str, Any]] = {}
        talk.clear()
        for conversation in detail.conversations:
            target = next(t.name for t in _targets(spec) if t.phone == conversation.end_user_target)
            results = extraction.get_conversation_insights(engine, conversation.conversation_id)
            structured = [r for r in results if r.truth is not None]
            assert len(structured) == 1, results
            result = structured[0]
            read = result.result if isinstance(result.result, dict) else {}
            # What was read is what was said, field for field.
            assert read == result.truth, (target, result.error)
            facts[target] = result.truth
            messages = provider.get_messages(conversation.conversation_id)
            talk[target] = "\n".join(f"{m.role}: {m.text}" for m in messages)
        return detail, facts
    finally:
        runner.close()


class _Target:
    def __init__(self, name: str, phone: str) -> None:
        self.name, self.phone = name, phone


def _targets(spec: dict[str, Any]) -> list[_Target]:
    return [_Target(t["name"], t["phone"]) for t in spec["targets"]]


def test_movers_flat_and_total_prices_and_a_match_and_a_beat_become_the_final_value(
    tmp_path: Path,
) -> None:
    detail, facts = rehearse(tmp_path, MOVERS)
    assert detail.status == "succeeded", detail.error
    assert facts["Ace Movers"] == {
        "total_price": 1480,
        "crew_size": 3,
        "insurance": "full",
        "services": ["packing", "storage"],
        "earliest_date": "Saturday March 14",
        "can_move_on_saturday": True,
    }
    # Told $1,480, Budget matches it (its floor is 1,400).
    assert facts["Budget Van Lines"]["total_price"] == 1480
    assert facts["Budget Van Lines"]["can_move_on_saturday"] is False
    # Told the best so far ($1,480), Lakeshore beats it by 60.
    assert facts["Lakeshore Moving"]["total_price"] == 1420
    # Lakeshore does not know its insurance cover: missing, not guessed.
    assert "insurance" not in facts["Lakeshore Moving"]
    assert facts["Lakeshore Moving"]["services"] == ["packing", "storage", "piano moving"]
    payload = detail.result_payload or {}
    accuracy = payload["extraction_accuracy"]
    assert accuracy["extractors"] == ["simulated"]
    assert (accuracy["wrong"], accuracy["missed"]) == (0, 0)
    assert "Lakeshore Moving" in (detail.result_summary or "")


PLUMBER_FIELDS = [
    {"name": "call_out_fee", "type": "number", "description": "Their call-out fee, in dollars"},
    {
        "name": "can_come_tomorrow",
        "type": "boolean",
        "description": "Whether they can come tomorrow morning",
    },
    {"name": "hourly_rate", "type": "number", "description": "Their hourly labour rate"},
]
PLUMBERS = [("Northside Plumbing", "+13125550211"), ("Drain Doctors", "+13125550212")]
NATURAL = (
    "You are calling {{target_name}} because our kitchen sink is leaking.\n"
    "Ask whether they can come tomorrow morning. Ask what their call-out fee is, and what "
    "they charge per hour."
)
KEYWORDS = "Ask for a quote: call-out fee price, hourly rate price. Check availability tomorrow."


@pytest.mark.parametrize("instructions", [NATURAL, KEYWORDS], ids=["natural", "keywords"])
def test_plumbers_fee_per_visit_a_no_and_an_unknown_rate_whatever_the_wording(
    tmp_path: Path, instructions: str
) -> None:
    spec = _spec("Plumbers", PLUMBERS, instructions, extract=PLUMBER_FIELDS)
    detail, facts = rehearse(tmp_path, spec)
    assert detail.status == "succeeded", detail.error
    # The same facts from natural and keyword instructions: the fields decide what is asked.
    assert facts == {
        "Northside Plumbing": {"call_out_fee": 85, "can_come_tomorrow": False},
        "Drain Doctors": {"call_out_fee": 120, "can_come_tomorrow": True, "hourly_rate": 95},
    }


def test_a_fee_found_by_its_aka_and_said_per_visit(tmp_path: Path) -> None:
    fields = [{"name": "visit_fee", "type": "number", "description": "What a visit costs"}]
    spec = _spec("Visit fee", PLUMBERS[:1], "Ask what a visit costs.", extract=fields)
    _, facts = rehearse(tmp_path, spec)
    assert facts == {"Northside Plumbing": {"visit_fee": 85}}
    assert "per visit" in talk["Northside Plumbing"]


ROOFER_FIELDS = [
    {
        "name": "available_this_month",
        "type": "boolean",
        "required": True,
        "description": "Whether they have a free slot to start the job this month",
    },
    {"name": "warranty_years", "type": "integer", "description": "Years of warranty"},
    {"name": "materials", "type": "array(string)", "description": "The roofing materials offered"},
]


def test_roofers_fully_booked_declining_and_call_back_are_never_read_as_yes(
    tmp_path: Path,
) -> None:
    targets = [
        ("Summit Roofing", "+13125550221"),
        ("Peak Roof Co", "+13125550222"),
        ("Ridge Line Roofers", "+13125550223"),
    ]
    spec = _spec("Roofers", targets, "Ask if they can start this month.", extract=ROOFER_FIELDS)
    _, facts = rehearse(tmp_path, spec)
    assert facts["Summit Roofing"] == {
        "available_this_month": False,
        "warranty_years": 10,
        "materials": ["asphalt shingles", "metal"],
    }
    # Declining and asking to be called back state nothing: nothing is recorded.
    assert facts["Peak Roof Co"] == {}
    assert facts["Ridge Line Roofers"] == {}
    ridge = talk["Ridge Line Roofers"]
    assert "call back tomorrow after 2pm" in ridge or "again tomorrow after 2pm" in ridge


CAR_FIELDS = [
    {
        "name": "offer",
        "type": "number",
        "required": True,
        "description": "The price they offer for our 2019 Honda Civic, in dollars",
    }
]


def test_car_dealers_bid_up_when_higher_is_better(tmp_path: Path) -> None:
    targets = [
        ("Metro Auto Buyers", "+13125550231"),
        ("Windy City Motors", "+13125550232"),
        ("Lincoln Park Cars", "+13125550233"),
    ]
    spec = _spec(
        "Car sale",
        targets,
        "You are selling a 2019 Honda Civic to {{target_name}}. Ask what they would offer.\n"
        "{{#best_offer}}We already have an offer of ${{best_offer}} from {{best_buyer}}; "
        "ask whether they can beat it.{{/best_offer}}",
        strategy="sequential_leverage",
        extract=CAR_FIELDS,
        leverage={
            "field": "offer",
            "better": "higher",
            "variable": "best_offer",
            "name_variable": "best_buyer",
            "label": "Offer",
        },
    )
    detail, facts = rehearse(tmp_path, spec)
    assert detail.status == "succeeded", detail.error
    assert facts["Metro Auto Buyers"] == {"offer": 11200}
    # Told $11,200, Windy City beats it by 200 (its ceiling is 11,600).
    assert facts["Windy City Motors"] == {"offer": 11400}
    # Told $11,400, Lincoln Park can only go up to its ceiling.
    assert facts["Lincoln Park Cars"] == {"offer": 11300}
    assert "Windy City Motors" in (detail.result_summary or "")


HOTEL_FIELDS = [
    {"name": "rate_per_night", "type": "number", "description": "The nightly room rate"},
    {
        "name": "room_type",
        "type": "enum",
        "enum": ["standard", "deluxe", "suite"],
        "description": "The room type of the block",
    },
    {
        "name": "has_shuttle",
        "type": "boolean",
        "description": "Whether they run an airport shuttle",
    },
    {"name": "amenities", "type": "array(string)", "description": "Amenities included"},
    {"name": "rooms_available", "type": "integer", "description": "How many rooms are free"},
]


def test_hotels_enum_list_integer_and_a_fractional_rate(tmp_path: Path) -> None:
    targets = [("Grand Lake Hotel", "+13125550241"), ("Riverside Inn", "+13125550242")]
    spec = _spec("Hotels", targets, "Ask about a block of rooms.", extract=HOTEL_FIELDS)
    _, facts = rehearse(tmp_path, spec)
    assert facts == {
        "Grand Lake Hotel": {
            "rate_per_night": 149,
            "room_type": "deluxe",
            "has_shuttle": True,
            "amenities": ["breakfast", "parking", "wifi"],
            "rooms_available": 12,
        },
        "Riverside Inn": {
            "rate_per_night": 119.5,
            "room_type": "standard",
            "has_shuttle": False,
            "amenities": ["wifi"],
            "rooms_available": 0,
        },
    }


# ----------------------------------------------------------------------------- bad input


def _world_with(business: dict[str, Any]) -> dict[str, Any]:
    base = {"name": "Test Co", "phone": "+13125550299", **business}
    return {"numbers": ["+13125550100"], "businesses": [base]}


def test_a_fact_whose_type_does_not_fit_the_field_names_business_fact_and_type() -> None:
    world = World.from_dict(_world_with({"facts": {"call_out_fee": "eighty-five"}}))
    with pytest.raises(ValidationError) as caught:
        world.check_fields([("call_out_fee", "number", ())])
    message = str(caught.value)
    assert "Test Co" in message and "facts.call_out_fee" in message
    assert "is text" in message and "(number) needs a number" in message


def test_an_enum_fact_outside_the_fields_values_is_refused() -> None:
    world = World.from_dict(_world_with({"facts": {"room_type": "penthouse"}}))
    with pytest.raises(ValidationError, match=r"one of the field's values \(standard, deluxe\)"):
        world.check_fields([("room_type", "enum", ("standard", "deluxe"))])


def test_an_aka_that_collides_with_another_fact_is_refused() -> None:
    facts = {"call_out_fee": {"value": 85, "aka": ["fee"]}, "fee": 10}
    with pytest.raises(ValidationError) as caught:
        World.from_dict(_world_with({"facts": facts}))
    assert caught.value.field == "businesses[0].facts.call_out_fee.aka[0]"
    assert "collides with another fact" in caught.value.rule


@pytest.mark.parametrize(
    ("business", "field", "rule"),
    [
        ({"facts": {"fee": {"value": 1, "unknown": True}}}, "facts.fee.value", "unknown"),
        ({"facts": {"fee": {}}}, "facts.fee.value", "is required"),
        ({"facts": {"fee": {"valeu": 1}}}, "facts.fee.valeu", "not a known field"),
        ({"facts": {"x": 1}, "negotiable": {"fact": "price"}}, "negotiable.fact", "numeric"),
        (
            {"facts": {"price": 100}, "negotiable": {"fact": "price", "floor": 120}},
            "negotiable.floor",
            "at most the fact's value (100)",
        ),
    ],
)
def test_bad_facts_name_the_field_and_the_rule(
    business: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        World.from_dict(_world_with(business))
    assert caught.value.field == f"businesses[0].{field}"
    assert rule in caught.value.rule


def test_a_mismatched_fact_fails_the_call_with_the_reason_not_a_wrong_value(
    tmp_path: Path,
) -> None:
    world = {**WORLD, "businesses": [_world_with({"facts": {"offer": "a lot"}})["businesses"][0]]}
    spec = _spec(
        "Bad world", [("Test Co", "+13125550299")], "Ask for an offer.", extract=CAR_FIELDS
    )
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world), encoding="utf-8")
    provider = SimulatedProvider.from_path(path)
    assert provider.world.start_time is not None
    engine = make_engine(str(tmp_path / "bad.db"))
    create_schema(engine)
    ctx = Context(
        engine=engine,
        clock=VirtualClock(provider.world.start_time),
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        extractor=SimulatedExtractor(),
    )
    runner = MissionRunner(ctx, mode="inline")
    try:
        run_id = runner.start(spec)
        drive_virtual(ctx, runner, [run_id])
        detail = missions.get_run(ctx, run_id)
    finally:
        runner.close()
    assert detail.status == "failed"
    assert "facts.offer is text" in str(detail.model_dump())
