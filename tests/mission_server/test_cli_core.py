"""`mission db upgrade`, `mission worker --once` and `mission runs list|show`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mission_server import missions
from mission_server.app import build_context
from mission_server.cli import app
from mission_server.telephony.scripted import ScriptedProvider

runner = CliRunner()


def test_db_upgrade_creates_the_schema(tmp_path):
    db = tmp_path / "cli.db"
    result = runner.invoke(app, ["db", "upgrade", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "revision 0001" in result.output
    assert db.exists()


def test_runs_list_and_show_print_records_as_json(tmp_path):
    db = str(tmp_path / "runs.db")
    ctx = build_context(db_url=db, provider=ScriptedProvider(), clock="virtual")
    mission = missions.create_mission(ctx, "Catering quotes")
    run = missions.start_run(ctx, mission.mission_id, input={"guests": 50})
    listed = runner.invoke(app, ["runs", "list", "--db", db, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["run_id"] for r in rows] == [run.run_id]
    shown = runner.invoke(app, ["runs", "show", run.run_id, "--db", db, "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.stdout)
    assert detail["mission_name"] == "Catering quotes" and detail["input"] == {"guests": 50}
    missing = runner.invoke(app, ["runs", "show", "nope", "--db", db])
    assert missing.exit_code == 2 and "run 'nope' not found" in missing.output


def test_db_url_of_an_unsupported_kind_is_refused(tmp_path):
    result = runner.invoke(app, ["db", "upgrade", "--db", "mysql://localhost/x"])
    assert result.exit_code == 2
    assert "SQLite or PostgreSQL" in result.output
