"""3. A whole simulated mission whose conversations the LLM reads: ``mission run
examples/catering.yaml --simulate`` as a subprocess with MISSION_LLM_* set, so the app's
``make_extractor`` picks the LLM extractor. Asserts the run finishes and its insight results
record extractor ``llm``; prints what the model read beside what the simulated world said
(``examples/world.yaml``), which is a figure, not an assertion: a 270M model is often wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from mission_server.insights.accuracy import Tally, score_fields
from mission_server.settings import Settings
from state.db import make_engine
from state.models import InsightResult

ROOT = Path(__file__).resolve().parents[2]
MISSION = str(Path(sys.executable).parent / "mission")
FIELDS = [("initial_price_per_person", "number"), ("final_price_per_person", "number")]


def said(quote: dict[str, Any], heard: Any) -> dict[str, Decimal]:
    """The prices a business of the simulated world states on a call where it heard the
    competitor price ``heard`` (None: no leverage), by the rules world.yaml documents."""
    own = Decimal(str(quote["price"]))
    floor = Decimal(str(quote.get("floor", quote["price"])))
    final = own
    if heard is not None and Decimal(str(heard)) < own:
        competitor = Decimal(str(heard))
        how = quote.get("on_competitor", "refuse")
        if how == "beat":
            final = max(floor, competitor - Decimal(str(quote.get("beat_by", 1))))
        elif how == "match":
            final = max(floor, competitor)
        final = min(final, own)
    return {"initial_price_per_person": own, "final_price_per_person": final}


def test_a_simulated_mission_read_by_the_llm(tmp_path: Path, llm_settings: Settings) -> None:
    db = tmp_path / "mission.db"
    done = subprocess.run(
        [MISSION, "run", "examples/catering.yaml", "--simulate", "--db", str(db), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)
    assert run["status"] == "succeeded", run.get("error")

    engine = make_engine(str(db))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(InsightResult.__table__)).mappings().all()  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    conversations = {t["conversation_id"] for t in run["result_payload"]["targets"]}
    mine = [r for r in rows if r["conversation_id"] in conversations]
    assert mine, "the run's conversations have insight results"
    assert {r["extractor"] for r in mine} == {"llm"}
    assert all(r["status"] in ("completed", "failed") for r in mine)

    world = yaml.safe_load((ROOT / "examples" / "world.yaml").read_text())
    quotes = {b["phone"]: b["quote"] for b in world["businesses"] if "quote" in b}
    tally = Tally()
    print("\n  Gemma 3 270M read (truth from examples/world.yaml):")
    for target in run["result_payload"]["targets"]:
        heard = (target.get("leverage_offered") or {}).get("value")
        truth = said(quotes[target["phone"]], heard)
        read = target.get("extracted") or {}
        verdicts = score_fields(FIELDS, truth, read)
        tally.add(verdicts)
        shown = ", ".join(f"{v.name} {v.read} vs {v.truth} {v.verdict}" for v in verdicts)
        print(f"    {target['name']}: {shown}")
    rates = tally.rates()
    print(
        f"  accuracy: {tally.right}/{tally.fields} fields right, {tally.wrong} wrong, "
        f"{tally.missed} missed (found {rates['found']:.0%}, wrong rate {rates['wrong_rate']:.0%})"
    )
    accuracy = run["result_payload"].get("extraction_accuracy")
    if accuracy is not None:
        print(f"  the run's own extraction_accuracy: {json.dumps(accuracy)}")
    failed = [r["error"] for r in mine if r["status"] == "failed"]
    if failed:
        print(f"  failed extractions: {failed}")
