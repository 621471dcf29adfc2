"""``mission run`` and ``mission approve``: in-process for the behaviour, in subprocesses for
crash-resume (the process SIGKILLs itself at a named point and ``--resume`` finishes the run).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CATERING = str(EXAMPLES / "catering.yaml")
WORLD = str(EXAMPLES / "world.yaml")
MISSION = Path(sys.executable).with_name("mission")
CLEAN_ENV = {
    "TELNYX_API_KEY": None,
    "MISSION_DB_URL": None,
    "MISSION_LLM_BASE_URL": None,
    "MISSION_LLM_MODEL": None,
    "MISSION_TEST_CRASH_AT": None,
}


def invoke(*args: str) -> Any:
    from mission_server.cli.main import app

    return CliRunner(env=CLEAN_ENV).invoke(app, list(args), catch_exceptions=False)


def run_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("select run_id from runs order by created_at")]


def normalised(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without the ids that differ between two runs of the same mission."""
    out = {k: v for k, v in payload.items() if k != "run_id"}
    out["targets"] = [
        {k: v for k, v in t.items() if k != "conversation_id"} for t in payload["targets"]
    ]
    return out


VENUES = str(EXAMPLES / "venue-availability.yaml")


def test_targets_from_a_csv_file_are_called_with_their_columns_as_variables(tmp_path):
    csv_path = tmp_path / "venues.csv"
    csv_path.write_text(
        "name,phone,guest_count\n"
        "The Riverside Loft,+13125550111,60\n"
        "Wicker Park Hall,+13125550112,80\n",
        encoding="utf-8",
    )
    db = tmp_path / "m.db"
    result = invoke("run", VENUES, "--targets", str(csv_path), "--json", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    detail = json.loads(result.stdout)
    assert [t["name"] for t in detail["result_payload"]["targets"]] == [
        "The Riverside Loft",
        "Wicker Park Hall",
    ]
    with sqlite3.connect(db) as conn:
        variables = [
            json.loads(r[0])
            for r in conn.execute(
                "select dynamic_variables from scheduled_events order by telnyx_end_user_target"
            )
        ]
    assert [(v["target_name"], v["guest_count"]) for v in variables] == [
        ("The Riverside Loft", "60"),
        ("Wicker Park Hall", "80"),
    ]


def test_a_csv_with_a_bad_phone_in_row_7_is_refused_naming_row_7_and_nothing_is_created(
    tmp_path,
):
    rows = [f"Venue {i},+1312555011{i}" for i in range(1, 6)]
    csv_path = tmp_path / "venues.csv"
    csv_path.write_text("name,phone\n" + "\n".join([*rows, "Bad Venue,+1555"]) + "\n")
    db = tmp_path / "m.db"
    result = invoke("run", VENUES, "--targets", str(csv_path), "--db", str(db))
    assert result.exit_code != 0
    message = " ".join(result.stderr.split())
    assert "targets_file row 7, column phone must be" in message
    assert "'+1555'" in message
    assert run_ids(db) == []


def test_run_json_prints_only_the_final_run_detail(tmp_path):
    result = invoke("run", CATERING, "--json", "--db", str(tmp_path / "m.db"), "--world", WORLD)
    assert result.exit_code == 0, result.stderr
    detail = json.loads(result.stdout)
    assert detail["status"] == "succeeded"
    assert detail["result_payload"]["recommendation"]["name"] == "Chicago Grill Co"
    assert detail["result_payload"]["recommendation"]["saving"] == 150
    assert [s["status"] for s in detail["plan"]] == ["completed"] * 6
    # Progress went to stderr: steps, attempts, the retry and the quotes as they arrived.
    assert "Call to +13125550103: busy on attempt 1 of 3; retry at" in result.stderr
    assert "Quote from Chicago Grill Co: $62 per person (down from $68)" in result.stderr


def test_run_without_json_ends_with_the_summary_table(tmp_path):
    result = invoke("run", CATERING, "--db", str(tmp_path / "m.db"), "--world", WORLD)
    assert result.exit_code == 0, result.stderr
    assert "Chicago Grill Co offers the best value at $62/person" in " ".join(result.stdout.split())
    assert "Lakefront Catering" in result.stdout and "Baseline" in result.stdout


def test_approval_then_approve(tmp_path):
    db = str(tmp_path / "m.db")
    held = invoke("run", CATERING, "--require-approval", "--db", db, "--world", WORLD)
    assert held.exit_code == 3
    (run_id,) = run_ids(tmp_path / "m.db")
    assert f"mission approve {run_id}" in held.stderr
    assert not (tmp_path / "m.sim-ledger.jsonl").read_text().count('"kind": "placement"')
    approved = invoke("approve", run_id, "--db", db, "--json")
    assert approved.exit_code == 0, approved.stderr
    assert json.loads(approved.stdout)["status"] == "succeeded"


def test_rejection_cancels_without_calls(tmp_path):
    db = str(tmp_path / "m.db")
    assert invoke("run", CATERING, "--require-approval", "--db", db).exit_code == 3
    (run_id,) = run_ids(tmp_path / "m.db")
    rejected = invoke("approve", run_id, "--reject", "--note", "not now", "--db", db, "--json")
    assert rejected.exit_code == 0
    detail = json.loads(rejected.stdout)
    assert detail["status"] == "cancelled"
    assert detail["scheduled_calls"] == []
    again = invoke("approve", run_id, "--db", db)
    assert again.exit_code == 2
    assert "not waiting for approval" in again.stderr


def test_invalid_spec_exits_2_naming_the_field(tmp_path):
    spec = (EXAMPLES / "catering.yaml").read_text().replace('"+1 312 555 0102"', '"555"')
    path = tmp_path / "bad.yaml"
    path.write_text(spec)
    result = invoke("run", str(path), "--db", str(tmp_path / "m.db"))
    assert result.exit_code == 2
    assert "targets[1].phone" in result.stderr


def test_a_vague_request_needs_a_spec_or_an_llm(tmp_path):
    result = invoke("run", "find me a caterer", "--db", str(tmp_path / "m.db"))
    assert result.exit_code == 2
    assert "spec file or an LLM" in " ".join(result.stderr.split())


def test_a_failed_mission_exits_1(tmp_path):
    spec = tmp_path / "windy.yaml"
    spec.write_text(
        (EXAMPLES / "catering.yaml").read_text().split("targets:")[0]
        + 'targets:\n  - {name: Windy City Bites, phone: "+13125550104"}\n'
        + "extract:"
        + (EXAMPLES / "catering.yaml").read_text().split("extract:")[1]
    )
    result = invoke("run", str(spec), "--json", "--db", str(tmp_path / "m.db"))
    assert result.exit_code == 1
    detail = json.loads(result.stdout)
    assert detail["status"] == "failed"
    assert "Windy City Bites: unreachable — not reached in 3 attempts" in detail["error"]


def _spawn(args: list[str], crash_at: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    if crash_at:
        env["MISSION_TEST_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [str(MISSION), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], deadline: float) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    return process.returncode, out, err


def _placements(ledger: Path) -> list[str]:
    keys = []
    for line in ledger.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("kind") == "placement":
            keys.append(entry["key"])
    return keys


@pytest.mark.slow
def test_a_run_killed_again_and_again_resumes_to_the_same_result_placing_no_call_twice(
    tmp_path,
):
    baseline = invoke("run", CATERING, "--json", "--db", str(tmp_path / "base.db"))
    assert baseline.exit_code == 0, baseline.stderr
    expected = normalised(json.loads(baseline.stdout)["result_payload"])

    db = tmp_path / "m.db"
    deadline = time.monotonic() + 120
    # Killed during planning, then (resumed) between the leverage call's dispatch and its
    # outcome, then after a call's outcome but before the planner heard of it, then while
    # compiling the result; each time ``--resume`` carries on from the last checkpoint.
    points = ["planning", "dispatched:2", "call_finished:1", "compiling"]
    args = ["run", CATERING, "--json", "--db", str(db), "--world", WORLD, "--seed", "7"]
    for point in points:
        process = _spawn(args, crash_at=point)
        code, out, err = _finish(process, deadline)
        assert code == -signal.SIGKILL, f"{point}: {err}"
        assert f"killing process {process.pid} at {point.split(':')[0]}" in err
        assert out == ""  # killed before any result was printed
        (run_id,) = run_ids(db)
        args = ["run", "--resume", run_id, "--json", "--db", str(db)]
    code, out, err = _finish(_spawn(args), deadline)
    assert code == 0, err
    detail = json.loads(out)
    assert detail["run_id"] == run_id and detail["status"] == "succeeded"
    assert normalised(detail["result_payload"]) == expected
    keys = _placements(db.with_name("m.sim-ledger.jsonl"))
    assert len(keys) == len(set(keys)) == 4  # baseline, leverage, busy + retry
    calls = {c["scheduled_event_id"] for c in detail["scheduled_calls"]}
    assert len(calls) == 3 and {k.split(":")[0] for k in keys} == calls
    assert sum(len(c["call_attempts"]) for c in detail["scheduled_calls"]) == 4
