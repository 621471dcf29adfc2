"""What `mission runs list|show|events|transcript` show of a recorded run: transcripts, insight
results, events, every attempt and deferral, calls named by target in time order, full or
unique-prefix ids, wall-clock beside simulated times, and a run awaiting approval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mission_server.app import build_context
from mission_server.services import missions
from mission_server.telephony.scripted import ScriptedProvider

ROOT = Path(__file__).resolve().parents[2]
CLEAN_ENV = {
    "TELNYX_API_KEY": None,
    "MISSION_DB_URL": None,
    "MISSION_LLM_BASE_URL": None,
    "MISSION_LLM_MODEL": None,
    "MISSION_TEST_CRASH_AT": None,
}
NAMES = ["Lakefront Catering", "Chicago Grill Co", "Prairie Table Events"]


def invoke(*args: str) -> Any:
    from mission_server.cli.main import app

    return CliRunner(env=CLEAN_ENV).invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The catering example rehearsed with calling hours from 11:00: the simulated day starts
    at 10:00 in Chicago, so the first call is deferred; Prairie Table Events is busy on the
    first try in the packaged world, so its call is retried."""
    tmp = tmp_path_factory.mktemp("records")
    spec = (ROOT / "examples" / "catering.yaml").read_text()
    assert 'start: "09:00"' in spec
    path = tmp / "late.yaml"
    path.write_text(spec.replace('start: "09:00"', 'start: "11:00"'))
    db = str(tmp / "records.db")
    ran = invoke("run", str(path), "--simulate", "--db", db, "--json")
    assert ran.exit_code == 0, ran.output
    return db, json.loads(ran.stdout)["run_id"]


def show_json(db: str, run: str) -> dict[str, Any]:
    shown = invoke("runs", "show", run, "--db", db, "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)


def test_runs_show_json_has_transcripts_insights_events_attempts_and_deferrals(rehearsal):
    db, run_id = rehearsal
    detail = show_json(db, run_id)
    assert detail["status"] == "succeeded"

    conversations = detail["conversations"]
    assert [c["target_name"] for c in conversations] == NAMES
    for conversation in conversations:
        assert conversation["messages"], conversation["target_name"]
        roles = {m["role"] for m in conversation["messages"]}
        assert roles == {"assistant", "user"}
        [insight] = conversation["insights"]
        assert insight["status"] == "completed"
        assert insight["missing"] == []
        assert insight["truth"] == insight["result"]
    prairie = conversations[2]
    assert any("$65" in m["text"] for m in prairie["messages"])
    assert prairie["insights"][0]["result"]["final_price_per_person"] == 65
    assert prairie["attempt_number"] == 2

    calls = detail["scheduled_calls"]
    assert [c["target_name"] for c in calls] == NAMES
    firsts = [c["call_attempts"][0]["attempted_at"] for c in calls]
    assert firsts == sorted(firsts)
    tries = [(a["attempt_number"], a["call_status"]) for a in calls[2]["call_attempts"]]
    assert tries == [(1, "busy"), (2, "completed")]
    assert all(a["attempted_at"] for c in calls for a in c["call_attempts"])
    [deferral] = calls[0]["deferrals"]
    assert deferral["requested"] == "2026-03-10T15:00:00Z"
    assert deferral["moved_to"] == "2026-03-10T16:00:00Z"
    assert "outside calling hours" in deferral["reason"]

    summaries = [e["summary"] for e in detail["events"]]
    assert summaries[0] == "Run started"
    finished = summaries.index("Run running → succeeded")
    # The run's end frees its number, recorded after it.
    assert summaries[finished + 1 :] == [
        "Number +13125550100 released from Catering Quote Negotiator (run succeeded)"
    ]
    assert len(summaries) > 10

    # Simulated time for the records, the wall clock beside it.
    assert detail["created_at"] == "2026-03-10T15:00:00Z"
    assert detail["recorded_at"] and not detail["recorded_at"].startswith("2026-03-10")
    assert detail["awaiting_approval"] is False


def test_runs_show_text_names_targets_with_every_attempt_deferral_and_insight(rehearsal):
    db, run_id = rehearsal
    shown = invoke("runs", "show", run_id, "--db", db)
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    calls = text[text.index("Calls") :]
    positions = [calls.index(name) for name in NAMES]
    assert positions == sorted(positions)
    attempts = text[text.index("Attempts") : text.index("Deferrals")]
    assert "2026-03-10 16:03:06" in attempts and "busy" in attempts
    assert "2026-03-10 16:08:11" in attempts
    deferrals = text[text.index("Deferrals") : text.index("Insights")]
    assert "Lakefront" in deferrals and "outside calling" in deferrals
    insights = text[text.index("Insights") :]
    assert "Chicago Grill Co — Corporate catering quotes — extraction: completed" in insights
    assert "final_price_per_person = 62" in insights
    assert f"mission runs events {run_id}" in " ".join(text.split())


def test_runs_events_lists_the_audit_trail(rehearsal):
    db, run_id = rehearsal
    listed = invoke("runs", "events", run_id[:8], "--db", db, "--json")
    assert listed.exit_code == 0, listed.output
    events = json.loads(listed.stdout)
    assert events == show_json(db, run_id)["events"]
    text = invoke("runs", "events", run_id, "--db", db)
    assert text.exit_code == 0
    assert "Run started" in text.stdout and "status_change" in text.stdout


def test_runs_transcript_of_one_target_by_name_or_number(rehearsal):
    db, run_id = rehearsal
    everything = invoke("runs", "transcript", run_id, "--db", db)
    assert everything.exit_code == 0, everything.output
    for name in NAMES:
        assert name in everything.stdout
    one = invoke("runs", "transcript", run_id, "prairie", "--db", db)
    assert one.exit_code == 0, one.output
    assert "Prairie Table Events" in one.stdout and "Lakefront" not in one.stdout
    assert "come down to $65 per person" in " ".join(one.stdout.split())
    by_number = invoke("runs", "transcript", run_id, "3125550102", "--db", db, "--json")
    assert [c["target_name"] for c in json.loads(by_number.stdout)] == ["Chicago Grill Co"]
    unknown = invoke("runs", "transcript", run_id, "Windy City", "--db", db)
    assert unknown.exit_code == 2
    assert "Lakefront Catering (+13125550101)" in unknown.output


def test_runs_list_shows_unique_prefixes_that_show_accepts_and_both_times(rehearsal):
    db, run_id = rehearsal
    listed = invoke("runs", "list", "--db", db)
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.stdout.splitlines() if "succeeded" in line]
    prefix = row.split()[0]
    assert run_id.startswith(prefix) and len(prefix) >= 8
    assert "2026-03-10 15:00" in row  # simulated
    wall = json.loads(invoke("runs", "list", "--db", db, "--json").stdout)[0]["recorded_at"]
    assert wall[:16].replace("T", " ") in row  # wall clock
    assert show_json(db, prefix)["run_id"] == run_id


def test_an_ambiguous_prefix_is_refused_naming_the_candidates(tmp_path):
    db = str(tmp_path / "many.db")
    ctx = build_context(db_url=db, provider=ScriptedProvider(), clock="virtual")
    mission = missions.create_mission(ctx, "Many")
    # 17 runs: two of them share a first hex digit.
    ids = [missions.start_run(ctx, mission.mission_id).run_id for _ in range(17)]
    first = next(i[0] for i in ids if sum(j[0] == i[0] for j in ids) > 1)
    sharing = [i for i in ids if i.startswith(first)]
    refused = invoke("runs", "show", first, "--db", db)
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert "several runs" in message
    for candidate in sharing:
        assert candidate in message
    listed = invoke("runs", "list", "--db", db)
    prefixes = [line.split()[0] for line in listed.stdout.splitlines() if "running" in line]
    assert len(prefixes) == 17
    for prefix in prefixes:
        assert invoke("runs", "show", prefix, "--db", db, "--json").exit_code == 0
    assert invoke("runs", "show", "zz", "--db", db).exit_code == 2


def test_a_run_awaiting_approval_says_so(tmp_path):
    db = str(tmp_path / "approval.db")
    ctx = build_context(db_url=db, provider=ScriptedProvider(), clock="virtual")
    mission = missions.create_mission(ctx, "Gated")
    run = missions.start_run(ctx, mission.mission_id, require_approval=True)
    listed = " ".join(invoke("runs", "list", "--db", db).stdout.split())
    assert "running, awaiting" in listed and "approval" in listed
    detail = show_json(db, run.run_id)
    assert detail["status"] == "running" and detail["awaiting_approval"] is True
    missions.approve_calls(ctx, run.run_id, True)
    assert show_json(db, run.run_id)["awaiting_approval"] is False
    assert "awaiting approval" not in invoke("runs", "list", "--db", db).stdout


def test_a_mission_held_for_approval_lists_as_awaiting_it_and_approve_takes_a_prefix(tmp_path):
    db = str(tmp_path / "held.db")
    catering = str(ROOT / "examples" / "catering.yaml")
    assert invoke("run", catering, "--require-approval", "--db", db).exit_code == 3
    [run] = json.loads(invoke("runs", "list", "--db", db, "--json").stdout)
    assert run["awaiting_approval"] is True
    listed = " ".join(invoke("runs", "list", "--db", db).stdout.split())
    assert "awaiting" in listed and "approval" in listed
    approved = invoke("approve", run["run_id"][:8], "--db", db, "--json")
    assert approved.exit_code == 0, approved.output
    detail = json.loads(approved.stdout)
    assert detail["status"] == "succeeded" and detail["awaiting_approval"] is False


def test_a_run_recorded_before_the_wall_clock_was_kept_lists_its_service_time(tmp_path):
    from alembic import command
    from sqlalchemy import text

    from state.db import make_engine
    from state.migrate import alembic_config, current_revision

    path = tmp_path / "old.db"
    engine = make_engine(str(path))
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                "INSERT INTO missions (mission_id, name, execution_mode, created_at, updated_at)"
                " VALUES ('m-old', 'Old', 'external', '2026-01-05 10:00:00', "
                "'2026-01-05 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO runs (run_id, mission_id, status, calls_placed, "
                "approval_required, created_at, updated_at) VALUES ('oldrun01', 'm-old', "
                "'succeeded', 0, 0, '2026-01-05 10:00:00', '2026-01-05 10:00:00')"
            )
        )
    engine.dispose()
    listed = invoke("runs", "list", "--db", str(path))
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.stdout.splitlines() if "oldrun01" in line]
    assert row.split()[:3] == ["oldrun01", "succeeded", "-"]
    assert "2026-01-05 10:00" in row
    [run] = json.loads(invoke("runs", "list", "--db", str(path), "--json").stdout)
    assert run["recorded_at"] is None and run["created_at"] == "2026-01-05T10:00:00Z"
    engine = make_engine(str(path))
    assert current_revision(engine) == "0006"  # upgraded to head on open
    engine.dispose()
