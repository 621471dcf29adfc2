"""`mission db upgrade`, `mission worker --once` and `mission runs list|show`."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from mission_server.app import build_context
from mission_server.cli.main import app
from mission_server.services import assistants, missions, scheduling
from mission_server.telephony.scripted import ScriptedProvider

runner = CliRunner()


def test_db_upgrade_creates_the_schema(tmp_path):
    db = tmp_path / "cli.db"
    result = runner.invoke(app, ["db", "upgrade", "--db", str(db)])
    assert result.exit_code == 0, result.output
    from tests.state.test_migrations import alembic_head

    assert f"revision {alembic_head()}" in result.output
    assert db.exists()


_LOADED_BY_UPGRADE = """
import sys
from mission_server.cli.main import app
sys.argv = ["mission", "db", "upgrade", "--db", sys.argv[1]]
try:
    app()
finally:
    print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_db_upgrade_of_a_sqlite_file_loads_no_heavy_library(tmp_path):
    # `mission db upgrade` starts quickly: a new SQLite file (and one at the head) needs
    # neither the planner's LangGraph, the MCP SDK, Alembic nor SQLAlchemy.
    db = tmp_path / "quick.db"
    for _ in ("new", "at the head"):
        done = subprocess.run(
            [sys.executable, "-c", _LOADED_BY_UPGRADE, str(db)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "database at revision" in done.stderr
        loaded = set(done.stdout.split())
        assert loaded.isdisjoint({"langgraph", "langchain_core", "mcp", "alembic", "sqlalchemy"})


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


def test_runs_list_pages_with_limit_and_the_cursor_it_prints(tmp_path):
    db = str(tmp_path / "runs.db")
    ctx = build_context(db_url=db, provider=ScriptedProvider(), clock="virtual")
    mission = missions.create_mission(ctx, "Catering quotes")
    run_ids = [missions.start_run(ctx, mission.mission_id).run_id for _ in range(3)]
    first = runner.invoke(app, ["runs", "list", "--db", db, "--limit", "2", "--json"])
    assert first.exit_code == 0, first.output
    [hint] = [line for line in first.stderr.splitlines() if line.startswith("more: add --cursor ")]
    cursor = hint.removeprefix("more: add --cursor ")
    rest = runner.invoke(
        app, ["runs", "list", "--db", db, "--limit", "2", "--cursor", cursor, "--json"]
    )
    assert rest.exit_code == 0, rest.output
    assert "more:" not in rest.stderr
    paged = [r["run_id"] for r in json.loads(first.stdout) + json.loads(rest.stdout)]
    assert sorted(paged) == sorted(run_ids) and len(paged) == 3
    bad = runner.invoke(app, ["runs", "list", "--db", db, "--cursor", "nope"])
    assert bad.exit_code == 2 and "cursor must be a next_cursor" in bad.output
    too_many = runner.invoke(app, ["runs", "list", "--db", db, "--limit", "501"])
    assert too_many.exit_code == 2 and "limit must be between 1 and 500" in too_many.output


def test_db_url_of_an_unsupported_kind_is_refused(tmp_path):
    result = runner.invoke(app, ["db", "upgrade", "--db", "mysql://localhost/x"])
    assert result.exit_code == 2
    assert "SQLite or PostgreSQL" in result.output


def test_dnc_add_list_and_remove(tmp_path):
    db = str(tmp_path / "dnc.db")
    added = runner.invoke(app, ["dnc", "add", "(312) 555-0101", "--db", db, "--reason", "asked"])
    assert added.exit_code == 0, added.output
    assert "+13125550101 added to the do-not-call list" in added.output
    again = runner.invoke(app, ["dnc", "add", "+13125550101", "--db", db])
    assert again.exit_code == 0 and "already on the do-not-call list" in again.output
    sip = runner.invoke(app, ["dnc", "add", "sip:desk@example.com", "--db", db])
    assert sip.exit_code == 0, sip.output

    listed = runner.invoke(app, ["dnc", "list", "--db", db, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["target"], r["reason"]) for r in rows] == [
        ("+13125550101", "asked"),
        ("sip:desk@example.com", None),
    ]
    table = runner.invoke(app, ["dnc", "list", "--db", db])
    assert table.exit_code == 0 and "+13125550101" in table.stdout and "asked" in table.stdout

    removed = runner.invoke(app, ["dnc", "remove", "312-555-0101", "--db", db])
    assert removed.exit_code == 0 and "+13125550101 removed" in removed.output
    missing = runner.invoke(app, ["dnc", "remove", "+13125550101", "--db", db])
    assert missing.exit_code == 0 and "was not on the do-not-call list" in missing.output
    after = json.loads(runner.invoke(app, ["dnc", "list", "--db", db, "--json"]).stdout)
    assert [r["target"] for r in after] == ["sip:desk@example.com"]


def test_dnc_add_refuses_a_bad_target_and_reports_open_calls(tmp_path):
    db = str(tmp_path / "dnc.db")
    bad = runner.invoke(app, ["dnc", "add", "not a number", "--db", db])
    assert bad.exit_code == 2 and "target " in bad.output and "not a number" in bad.output
    ctx = build_context(db_url=db, provider=ScriptedProvider(), clock="virtual")
    a = assistants.create_assistant(ctx, "Caller", "Ask for a quote.")
    assistants.assign_phone_number(ctx, a.assistant_id)
    scheduling.create_scheduled_event(
        ctx, assistant_id=a.assistant_id, channel="phone_call", to="+13125550101"
    )
    added = runner.invoke(app, ["dnc", "add", "+13125550101", "--db", db])
    assert added.exit_code == 0, added.output
    assert "1 scheduled call(s) to it will not be placed" in added.output
    assert json.loads(runner.invoke(app, ["dnc", "list", "--db", db, "--json"]).stdout)


UNREACHABLE = "postgresql+psycopg://mission:hunter2-secret@127.0.0.1:1/missions"


def test_an_unreachable_database_is_one_line_without_the_password_and_exit_2():
    for command in (["runs", "list"], ["dnc", "list"], ["db", "upgrade"], ["worker", "--once"]):
        result = runner.invoke(app, [*command, "--db", UNREACHABLE])

        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output and "hunter2" not in result.output
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith(
            "error: cannot reach the database at postgresql+psycopg://mission:***@127.0.0.1:1"
        ), (command, result.output)
        assert "Connection refused" in lines[-1]
