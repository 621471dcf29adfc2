"""What a run's result says is what its records show: every target's outcome and reason in
the summary and the payload, the counts, the heading, the comparison and the cost.

Each mission runs end to end (planner, dispatcher, simulated calls, extraction) on the
virtual clock against the small world below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mission_server.clock import VirtualClock
from mission_server.engine.runner import MissionRunner, drive_virtual
from mission_server.insights.simulated import SimulatedExtractor
from mission_server.services import do_not_call, missions
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.simulated.provider import SimulatedProvider

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}

WORLD: dict[str, Any] = {
    "seed": 5,
    "start_time": "2026-03-10T15:00:00Z",  # Tuesday, 10:00 in Chicago
    "numbers": ["+13125550100"],
    "businesses": [
        {
            "name": "Summit Roofing",
            "phone": "+13125550221",
            "facts": {"available_this_month": False, "warranty_years": 10},
        },
        {
            "name": "Peak Roof Co",
            "phone": "+13125550222",
            "declines": True,
            "facts": {"available_this_month": True},
        },
        {
            "name": "Ridge Line Roofers",
            "phone": "+13125550223",
            "call_back": "tomorrow after 2pm",
            "facts": {"available_this_month": True},
        },
        # Answers, but never says whether it is free this month: unreadable.
        {"name": "Vague Roofs", "phone": "+13125550224", "facts": {"warranty_years": 3}},
        {"name": "Never Home Roofing", "phone": "+13125550225", "answers": ["no-answer"]},
        {"name": "Listed Roofing", "phone": "+13125550226", "facts": {"warranty_years": 1}},
        {
            "name": "Busy Line Roofing",
            "phone": "+13125550227",
            "answers": ["busy", "answer"],
            "facts": {"available_this_month": True},
        },
        # Car dealers buying our car: higher is better.
        {"name": "Metro Auto Buyers", "phone": "+13125550231", "facts": {"offer": 11200}},
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
    ],
}

ROOFER_FIELDS = [
    {
        "name": "available_this_month",
        "type": "boolean",
        "required": True,
        "description": "Whether they have a free slot to start the job this month",
    },
    {"name": "warranty_years", "type": "integer", "description": "Years of warranty"},
]

CAR_FIELDS = [
    {"name": "initial_offer", "type": "number", "description": "Their first offer, in dollars"},
    {
        "name": "final_offer",
        "type": "number",
        "required": True,
        "description": "The final price they offer for our 2019 Honda Civic, in dollars",
    },
]
DEALERS = [
    {"name": "Metro Auto Buyers", "phone": "+13125550231"},
    {"name": "Windy City Motors", "phone": "+13125550232"},
    {"name": "Lincoln Park Cars", "phone": "+13125550233"},
]
CAR_LEVERAGE = {
    "field": "final_offer",
    "initial_field": "initial_offer",
    "better": "higher",
    "variable": "best_offer",
    "name_variable": "best_buyer",
    "label": "Offer",
}


def spec(name: str, targets: list[dict[str, str]], **rest: Any) -> dict[str, Any]:
    return {
        "name": name,
        "objective": f"Rehearse: {name}",
        "strategy": rest.pop("strategy", "parallel"),
        "assistant": {
            "name": f"{name} caller",
            "greeting": "Hi, do you have a minute for a quick question?",
            "instructions": rest.pop("instructions", "Ask if they can start this month."),
        },
        "targets": targets,
        "calling_window": WINDOW,
        "extract": rest.pop("extract", ROOFER_FIELDS),
        **rest,
    }


def roofer(name: str) -> dict[str, str]:
    business = next(b for b in WORLD["businesses"] if b["name"] == name)
    return {"name": name, "phone": business["phone"]}


def run(tmp_path: Path, mission: dict[str, Any], *, listed: tuple[str, ...] = ()) -> Any:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(WORLD), encoding="utf-8")
    provider = SimulatedProvider.from_path(path)
    assert provider.world.start_time is not None
    from state.db import create_schema, make_engine

    engine = make_engine(str(tmp_path / "results.db"))
    create_schema(engine)
    ctx = Context(
        engine=engine,
        clock=VirtualClock(provider.world.start_time),
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        extractor=SimulatedExtractor(),
    )
    for number in listed:
        do_not_call.add_do_not_call(ctx, number)
    runner = MissionRunner(ctx, mode="inline")
    try:
        run_id = runner.start(mission)
        drive_virtual(ctx, runner, [run_id])
        return missions.get_run(ctx, run_id)
    finally:
        runner.close()


def by_name(detail: Any) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in (detail.result_payload or {})["targets"]}


def test_every_outcome_has_its_reason_in_the_payload_and_the_summary(tmp_path: Path) -> None:
    names = [
        "Summit Roofing",
        "Peak Roof Co",
        "Ridge Line Roofers",
        "Vague Roofs",
        "Never Home Roofing",
        "Listed Roofing",
    ]
    mission = spec(
        "Roofers",
        [roofer(n) for n in names],
        retry={"max_retries_client_errors": 1, "retry_interval_secs": 300},
    )
    detail = run(tmp_path, mission, listed=("+13125550226",))
    targets = by_name(detail)
    assert {n: t["outcome"] for n, t in targets.items()} == {
        "Summit Roofing": "usable",
        "Peak Roof Co": "declined",
        "Ridge Line Roofers": "call_back",
        "Vague Roofs": "unreadable",
        "Never Home Roofing": "unreachable",
        "Listed Roofing": "not_called",
    }
    assert targets["Ridge Line Roofers"]["reason"] == "asked to be called back tomorrow after 2pm"
    assert (
        targets["Never Home Roofing"]["reason"]
        == "not reached in 2 attempts (no-answer, no-answer)"
    )
    assert targets["Listed Roofing"]["reason"].startswith("on the do-not-call list")
    assert targets["Vague Roofs"]["unread_fields"] == ["available_this_month"]
    assert "available_this_month" in targets["Vague Roofs"]["reason"]
    totals = (detail.result_payload or {})["totals"]
    assert {k: totals[k] for k in ("reached", "usable", "unreadable", "declined", "call_back")} == {
        "reached": 4,
        "usable": 1,
        "unreadable": 1,
        "declined": 1,
        "call_back": 1,
    }
    assert (totals["unreachable"], totals["not_called"], totals["calls_placed"]) == (1, 1, 6)
    summary = detail.result_summary or ""
    assert summary.startswith("**Mission complete: Roofers**")
    assert (
        "6 targets: 4 reached (1 usable, 1 unreadable, 1 declined, 1 asked to be called back), "
        "1 unreachable, 1 not called." in summary
    )
    assert "| Ridge Line Roofers | call back requested |" in summary
    assert "**Call back requested:** Ridge Line Roofers" in summary
    assert "**Declined:** Peak Roof Co" in summary
    assert "**Not called:** Listed Roofing (+13125550226): on the do-not-call list" in summary
    unreachable = summary.split("**Unreachable:**")[1].split("\n\n")[0]
    assert "Never Home Roofing" in unreachable and "Listed Roofing" not in unreachable
    # What the calls cost, per target and in all, and what kind of cost it is.
    assert totals["cost_basis"] == "simulated"
    per_target = {t["name"]: t for t in totals["per_target"]}
    assert per_target["Listed Roofing"] == {
        "name": "Listed Roofing",
        "attempts": 0,
        "minutes": 0.0,
        "cost": 0.0,
    }
    assert per_target["Summit Roofing"]["cost"] > 0
    assert totals["cost"] == round(sum(t["cost"] for t in totals["per_target"]), 4)
    assert "(simulated from the world's rates)" in summary


def test_a_run_with_nothing_usable_is_not_headed_complete(tmp_path: Path) -> None:
    mission = spec("Roofers", [roofer("Vague Roofs"), roofer("Peak Roof Co")])
    detail = run(tmp_path, mission)
    assert detail.status == "failed"
    summary = detail.result_summary or ""
    assert "complete" not in summary.lower()
    assert summary.startswith(
        "**Mission failed: Roofers** — no target gave a usable answer (1 unreadable, 1 declined)"
    )
    assert "2 targets: 2 reached (0 usable, 1 unreadable, 1 declined)" in summary
    assert "Vague Roofs: answered, unreadable — answered, but the answers could not be read" in (
        detail.error or ""
    )


def test_no_call_placed_says_so_and_a_listed_target_is_not_unreachable(tmp_path: Path) -> None:
    mission = spec("Roofers", [roofer("Listed Roofing")])
    detail = run(tmp_path, mission, listed=("+13125550226",))
    summary = detail.result_summary or ""
    assert "No call was placed." in summary
    assert "0 call attempts" not in summary
    assert "Unreachable" not in summary
    assert by_name(detail)["Listed Roofing"]["outcome"] == "not_called"


def test_a_target_stopped_by_the_call_budget_is_not_called_with_the_retries_left(
    tmp_path: Path,
) -> None:
    mission = spec(
        "Roofers",
        [roofer("Summit Roofing"), roofer("Busy Line Roofing")],
        retry={"max_retries_client_errors": 2, "retry_interval_secs": 300},
        call_budget=2,
    )
    detail = run(tmp_path, mission)
    busy = by_name(detail)["Busy Line Roofing"]
    assert busy["outcome"] == "not_called"
    assert busy["attempt_statuses"] == ["busy"]
    assert busy["reason"].startswith("stopped by the run's call budget")
    assert busy["reason"].endswith("after 1 attempt (busy), with 2 retries of 2 still allowed")
    summary = detail.result_summary or ""
    assert "Unreachable" not in summary
    assert "**Not called:** Busy Line Roofing" in summary
    assert (detail.result_payload or {})["totals"]["not_called"] == 1


def test_a_survey_compares_with_the_next_best_not_a_baseline(tmp_path: Path) -> None:
    mission = spec(
        "Car survey",
        DEALERS,
        instructions="You are selling a 2019 Honda Civic to {{target_name}}. Ask their offer.",
        extract=CAR_FIELDS,
        leverage=CAR_LEVERAGE,
    )
    detail = run(tmp_path, mission)
    summary = detail.result_summary or ""
    assert "baseline" not in summary.lower() and "saving" not in summary.lower()
    assert (
        "**Recommendation:** Metro Auto Buyers gave the highest offer, $11,200 — $200 more "
        "than the next best, Lincoln Park Cars ($11,000)." in summary
    )
    rec = (detail.result_payload or {})["recommendation"]
    assert rec["baseline"] is None and rec["compared_with"] == "runner_up"
    assert rec["runner_up"] == {"name": "Lincoln Park Cars", "value": 11000}
    assert rec["advantage"] == 200 and rec["saving"] is None


def test_selling_a_car_reads_as_the_highest_offer_and_notes_what_each_dealer_did(
    tmp_path: Path,
) -> None:
    mission = spec(
        "Car sale",
        DEALERS,
        strategy="sequential_leverage",
        instructions=(
            "You are selling a 2019 Honda Civic to {{target_name}}. Ask what they would offer.\n"
            "{{#best_offer}}We already have an offer of ${{best_offer}} from {{best_buyer}}; "
            "ask whether they can beat it.{{/best_offer}}"
        ),
        extract=CAR_FIELDS,
        leverage=CAR_LEVERAGE,
    )
    detail = run(tmp_path, mission)
    assert detail.status == "succeeded", detail.error
    summary = detail.result_summary or ""
    assert (
        "**Recommendation:** Windy City Motors made the highest offer, $11,400 — $200 more "
        "than the baseline." in summary
    )
    assert "saving" not in summary.lower()
    targets = by_name(detail)
    assert targets["Windy City Motors"]["notes"] == (
        "Raised from $10,900 to $11,400 after hearing Metro Auto Buyers's $11,200"
    )
    # Told $11,400, Lincoln Park goes up to its ceiling, $11,300, and no further.
    assert targets["Lincoln Park Cars"]["notes"] == (
        "Raised from $11,000 to $11,300 after hearing Windy City Motors's $11,400, but not to it"
    )
    assert "| Windy City Motors | $11,400 | ✅ Yes, up from $10,900 |" in summary
