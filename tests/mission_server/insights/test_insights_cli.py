"""``mission insights test`` through typer's CliRunner: exit 0 when the result validates, 1 when
it does not, 2 for bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mission_server.cli.insights import insights_app
from mission_server.cli.main import app as mission_app

QUOTE_YAML = """\
name: Catering quote
instructions: Extract the caterer's quote.
parameters:
  - name: final_price
    type: number
    required: true
    description: Final price per person they offered
  - name: delivery_included
    type: boolean
    description: Does the price include delivery?
  - name: service_style
    type: enum
    enum: [buffet, plated]
"""

CALL_TXT = """\
Assistant: Hi, what would you charge per person for 40 guests?
USER: We'd be at sixty-two dollars per person.

assistant: Does that include delivery?
user: Yes, delivery is included.
assistant: Could you do $58 a head?
user: We can do $60, plated.
"""

NO_PRICE_TXT = """\
assistant: What would you charge per person?
user: I'll need to call you back on that.
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "insight": tmp_path / "quote.yaml",
        "call": tmp_path / "call.txt",
        "no_price": tmp_path / "no_price.txt",
        "call_json": tmp_path / "call.json",
    }
    paths["insight"].write_text(QUOTE_YAML)
    paths["call"].write_text(CALL_TXT)
    paths["no_price"].write_text(NO_PRICE_TXT)
    paths["call_json"].write_text(
        json.dumps(
            [
                {"role": "assistant", "text": "What's your price per person?"},
                {"role": "user", "text": "$45 per person, buffet style."},
            ]
        )
    )
    return paths


runner = CliRunner()


def test_a_valid_result_prints_a_table_and_exits_0(files: dict[str, Path]) -> None:
    # Through the top-level ``mission`` command, as a user types it.
    result = runner.invoke(
        mission_app, ["insights", "test", str(files["insight"]), str(files["call"])]
    )
    assert result.exit_code == 0, result.output
    assert "final_price" in result.output and "60" in result.output
    assert "plated" in result.output
    assert "valid against the insight's schema" in result.output


def test_json_output_carries_result_and_validation(files: dict[str, Path]) -> None:
    result = runner.invoke(
        insights_app, ["test", str(files["insight"]), str(files["call_json"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["status"] == "completed"
    assert report["result"] == {"final_price": 45, "service_style": "buffet"}
    assert report["missing"] == ["delivery_included"]
    assert report["problems"] == []


def test_a_required_field_not_found_exits_1_with_the_reason(files: dict[str, Path]) -> None:
    result = runner.invoke(
        insights_app, ["test", str(files["insight"]), str(files["no_price"]), "--json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["status"] == "failed"
    assert "final_price" in report["error"]

    table = runner.invoke(insights_app, ["test", str(files["insight"]), str(files["no_price"])])
    assert table.exit_code == 1
    assert "NOT valid" in table.output


@pytest.fixture
def chat_server() -> Iterator[str]:
    """A real OpenAI-compatible endpoint on 127.0.0.1 whose model breaks the schema."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content = json.dumps({"final_price": "sixty"})
            body = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_llm_output_breaking_the_schema_exits_1(
    files: dict[str, Path], chat_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISSION_LLM_BASE_URL", chat_server)
    monkeypatch.setenv("MISSION_LLM_MODEL", "test-model")
    result = runner.invoke(
        insights_app, ["test", str(files["insight"]), str(files["call"]), "--llm", "--json"]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["extractor"] == "llm"
    assert "final_price: 'sixty' is not of type 'number'" in report["error"]


def test_llm_without_configuration_exits_2(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISSION_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("MISSION_LLM_MODEL", raising=False)
    result = runner.invoke(
        insights_app, ["test", str(files["insight"]), str(files["call"]), "--llm"]
    )
    assert result.exit_code == 2
    assert "MISSION_LLM_BASE_URL" in result.output


def test_bad_input_files_exit_2_naming_the_problem(files: dict[str, Path], tmp_path: Path) -> None:
    bad_line = tmp_path / "bad.txt"
    bad_line.write_text("assistant: hello\ncaller: hi there\n")
    result = runner.invoke(insights_app, ["test", str(files["insight"]), str(bad_line)])
    assert result.exit_code == 2
    assert "transcript line 2" in result.output

    bad_insight = tmp_path / "bad.json"
    bad_insight.write_text('{"name": "Q", "parameters": [{"name": "x", "type": "enum"}]}')
    result = runner.invoke(insights_app, ["test", str(bad_insight), str(files["call"])])
    assert result.exit_code == 2
    assert "parameters[0].enum" in result.output


def test_schema_prints_the_compiled_json_schema(files: dict[str, Path]) -> None:
    result = runner.invoke(insights_app, ["schema", str(files["insight"])])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["final_price"]
