"""Which extractor a context gets: Telnyx's own results on Telnyx, else an LLM when one is
configured, else the offline reader, so a simulated run extracts with no configuration."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mission_server.app import build_context, make_extractor
from mission_server.insights.llm import LLMExtractor
from mission_server.insights.offline import OfflineExtractor
from mission_server.insights.telnyx import TelnyxInsightsExtractor
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from mission_server.telephony.telnyx.provider import TelnyxProvider

LLM = {"MISSION_LLM_BASE_URL": "http://127.0.0.1:9/v1", "MISSION_LLM_MODEL": "small"}


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MISSION_LLM_BASE_URL",
        "MISSION_LLM_MODEL",
        "MISSION_LLM_API_KEY",
        "TELNYX_API_KEY",
        "MISSION_DB_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_simulated_context_reads_transcripts_offline(tmp_path) -> None:
    ctx = build_context(db_url=str(tmp_path / "m.db"), simulate=True, clock="virtual")
    assert isinstance(ctx.extractor, OfflineExtractor)


def test_a_configured_llm_is_used_off_telnyx() -> None:
    extractor = make_extractor(Settings(**LLM), ScriptedProvider())
    assert isinstance(extractor, LLMExtractor)
    assert extractor.model == "small"


def test_telnyx_conversations_use_the_platforms_results_even_with_an_llm() -> None:
    provider = TelnyxProvider(SecretStr("KEY-never-logged"))
    try:
        extractor = make_extractor(Settings(**LLM), provider)
    finally:
        provider.close()
    assert isinstance(extractor, TelnyxInsightsExtractor)
