"""The catering rehearsal of examples/catering.yaml, recorded into a database as
``mission run examples/catering.yaml --simulate --db …`` records it (in-process, on the
virtual clock), for the web tests and the screenshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
CATERING = ROOT / "examples" / "catering.yaml"
WORLD = ROOT / "examples" / "world.yaml"
CLEAN_ENV = {
    "TELNYX_API_KEY": None,
    "MISSION_DB_URL": None,
    "MISSION_LLM_BASE_URL": None,
    "MISSION_LLM_MODEL": None,
    "MISSION_TEST_CRASH_AT": None,
    "MISSION_HTTP_TOKEN": None,
}


def rehearse_catering(db: Path) -> dict[str, Any]:
    """Run the catering mission into ``db``; return its run detail (JSON)."""
    from mission_server.cli.main import app

    result = CliRunner(env=CLEAN_ENV).invoke(
        app,
        ["run", str(CATERING), "--json", "--db", str(db), "--world", str(WORLD)],
        catch_exceptions=False,
    )
    if result.exit_code != 0:
        raise RuntimeError(f"the catering rehearsal failed: {result.stderr}")
    return json.loads(result.stdout)
