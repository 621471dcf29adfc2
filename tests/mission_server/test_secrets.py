"""No secret in any record, log line, error or webhook body: each configured secret is set, each
upstream echoes it in another case, and every table and log is grepped
(``mission_server.secrets``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import inspect, text

from mission_server.app import build_context
from mission_server.cli.common import fail
from mission_server.engine.runner import MissionRunner
from mission_server.errors import ProviderError
from mission_server.mcp.errors import describe_error
from mission_server.net.openai import OpenAICompatibleLLM
from mission_server.net.retry import RetryPolicy
from mission_server.secrets import Scrubber, install_logging, scrub
from mission_server.services import missions
from mission_server.settings import Settings
from mission_server.telephony.telnyx.client import TelnyxClient
from tests.support.missionkit import WORLD
from tests.support.telnyx_oracle import checked

LLM_KEY = "sk-Proj-LlmKey0123456789abcdef"
TELNYX_KEY = "KEY0190ABCDEFtelnyxSecret_xyz"
HTTP_TOKEN = "Http-Token-5f3a9C1d"
WEBHOOK_SECRET = "WhSecret-Signing-77Q"
SECRETS = (LLM_KEY, TELNYX_KEY, HTTP_TOKEN, WEBHOOK_SECRET)


def settings() -> Settings:
    return Settings(
        MISSION_LLM_API_KEY=SecretStr(LLM_KEY),
        TELNYX_API_KEY=SecretStr(TELNYX_KEY),
        MISSION_HTTP_TOKEN=SecretStr(HTTP_TOKEN),
        MISSION_WEBHOOK_SECRET=SecretStr(WEBHOOK_SECRET),
        MISSION_LLM_BASE_URL=None,
        MISSION_LLM_MODEL=None,
    )


def echoes(secret: str) -> list[str]:
    return [secret, secret.lower(), secret.upper(), secret.swapcase()]


def leaked(haystack: str) -> list[str]:
    low = haystack.lower()
    return [s for s in SECRETS if s.lower() in low]


def every_table(engine: Any) -> str:
    dump = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                dump.append(f"{table}: {tuple(row)!r}")
    return "\n".join(dump)


def test_the_scrubber_masks_every_secret_in_any_case_and_credential_shapes() -> None:
    scrubber = Scrubber(["Abcdef123"])
    for echo in echoes("Abcdef123"):
        assert scrubber.scrub(f"key {echo}!") == "key ***!"
    assert scrubber.scrub("Authorization: bearer tok.en-123") == "Authorization: bearer ***"
    assert scrubber.scrub("key sk-abcdefgh1234 used") == "key *** used"
    assert scrubber.scrub("task-abcdefgh1234 and desk-reservation") == (
        "task-abcdefgh1234 and desk-reservation"
    )
    assert scrubber.scrub_data({"a": ["x abcdef123", ("ABCDEF123",)], "n": 1}) == {
        "a": ["x ***", ("***",)],
        "n": 1,
    }
    assert Scrubber(["ab"]).scrub("ab") == "ab"  # too short to be a secret


@pytest.mark.parametrize("pad", ["x" * 300, '{"payload": "' + "é" * 300 + '"}'])
def test_a_long_text_is_masked_wherever_the_secret_or_a_credential_is_in_it(pad: str) -> None:
    """Texts past the remembered length (JSON payloads) skip the pattern when they hold none
    of the pieces a match starts from; any that holds one is still masked."""
    scrubber = Scrubber(["Abcdef123"])
    for echo in echoes("Abcdef123"):
        assert scrubber.scrub(f"{pad} key {echo}!") == f"{pad} key ***!"
        assert scrubber.scrub(f"{echo} {pad}") == f"*** {pad}"
    assert scrubber.scrub(f"{pad} BEARER tok.en-123") == f"{pad} BEARER ***"
    assert scrubber.scrub(f"{pad} SK-abcdefgh1234") == f"{pad} ***"
    assert scrubber.scrub(f"{pad} task-abcdefgh1234") == f"{pad} task-abcdefgh1234"
    assert scrubber.scrub(pad) == pad


def test_a_secret_with_a_letter_that_matches_an_ascii_one_is_masked_in_ascii_text() -> None:
    kelvin = "\u212aey-5551234"  # KELVIN SIGN: the pattern matches it against "k"
    assert Scrubber([kelvin]).scrub("x" * 300 + " key-5551234") == "x" * 300 + " ***"


def test_a_text_scrubbed_before_a_secret_was_added_is_scrubbed_for_it_after() -> None:
    scrubber = Scrubber()
    seen = "token Zq9xLm42Rt"
    assert scrubber.scrub(seen) == seen  # remembered as clean
    scrubber.add("Zq9xLm42Rt")
    assert scrubber.scrub(seen) == "token ***"
    assert scrubber.scrub_data([(seen, 3)]) == [("token ***", 3)]


def test_settings_register_every_secret_with_the_one_scrubber() -> None:
    settings()
    for secret in SECRETS:
        for echo in echoes(secret):
            assert scrub(f"<{echo}>") == "<***>"


def test_a_401_echoing_the_llm_key_leaves_it_in_no_table_log_or_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = " ".join(echoes(LLM_KEY) + echoes(TELNYX_KEY) + echoes(HTTP_TOKEN))

    def llm_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"error": {"message": f"Incorrect API key provided: {echoed} {WEBHOOK_SECRET}"}},
        )

    ctx = build_context(
        settings(),
        db_url=f"sqlite:///{tmp_path / 'secrets.db'}",
        simulate=True,
        world=WORLD,
        clock="virtual",
        ledger_path=tmp_path / "ledger.jsonl",
    )
    llm = OpenAICompatibleLLM(
        "http://127.0.0.1:9/v1",
        "model",
        SecretStr(LLM_KEY),
        transport=httpx.MockTransport(llm_server),
        sleep=lambda _s: None,
    )
    runner = MissionRunner(ctx, mode="inline", llm=llm)
    errors: list[str] = []
    try:
        try:
            run_id = runner.start(request="Get me the best catering deal for 50 people")
            runner.drain()
            detail = missions.get_run(ctx, run_id)
            errors.append(detail.model_dump_json())
        except Exception as exc:  # however the failure surfaces, its text must be clean
            errors += [str(exc), describe_error(exc)]
        logging.getLogger("test").warning("echo %s", echoed, exc_info=ValueError(echoed))
        tables = every_table(ctx.engine)
    finally:
        runner.close()
        ctx.engine.dispose()
    assert LLM_KEY.lower() in echoed.lower()  # the upstream did echo it
    assert "HTTP 401" in tables and "***" in tables  # the failure was recorded, scrubbed
    assert leaked(tables) == []
    assert leaked("\n".join(errors)) == []
    assert leaked(caplog.text) == []
    assert leaked("\n".join(r.getMessage() for r in caplog.records)) == []


def test_telnyx_errors_echoing_the_key_in_another_case_are_scrubbed() -> None:
    settings()

    def telnyx(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"errors": [{"code": "10009", "detail": f"bad key {TELNYX_KEY.lower()}"}]},
        )

    client = TelnyxClient(
        SecretStr(TELNYX_KEY),
        transport=httpx.MockTransport(checked(telnyx)),
        policy=RetryPolicy(max_attempts=1),
        sleep=lambda _s: None,
        clock=lambda: datetime.now(UTC),
    )
    with pytest.raises(ProviderError) as raised:
        client.request("GET", "/ai/assistants/x")
    assert leaked(str(raised.value)) == []
    assert "***" in str(raised.value)
    assert leaked(describe_error(raised.value)) == []


def test_cli_errors_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    settings()
    fail(f"upstream said {HTTP_TOKEN.upper()} and {WEBHOOK_SECRET.lower()}")
    assert leaked(capsys.readouterr().err) == []


def test_log_records_are_scrubbed_for_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    settings()
    install_logging()
    log = logging.getLogger("mission_server.test")
    for secret in SECRETS:
        for echo in echoes(secret):
            log.warning("got %s", echo)
            log.warning(f"Authorization: Bearer {echo}")
    assert leaked(caplog.text) == []
    assert json.dumps([r.getMessage() for r in caplog.records]).count("***") == 32
