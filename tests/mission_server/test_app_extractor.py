"""Which extractor a context gets: MISSION_EXTRACTOR when set; else Telnyx's own results on
Telnyx, an LLM when one is configured, the rehearsal's ground truth in the simulated world,
and the offline reader otherwise."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mission_server.app import build_context, make_extractor
from mission_server.errors import ConfigurationError
from mission_server.insights.llm import LLMExtractor
from mission_server.insights.offline import OfflineExtractor
from mission_server.insights.simulated import SimulatedExtractor
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
        "MISSION_EXTRACTOR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_simulated_context_reads_the_ground_truth(tmp_path) -> None:
    ctx = build_context(db_url=str(tmp_path / "m.db"), simulate=True, clock="virtual")
    assert isinstance(ctx.extractor, SimulatedExtractor)
    assert ctx.extractor.name == "simulated"


def test_the_offline_reader_is_chosen_by_name_in_the_simulated_world(tmp_path) -> None:
    settings = Settings(MISSION_EXTRACTOR="offline")
    ctx = build_context(settings, db_url=str(tmp_path / "m.db"), simulate=True, clock="virtual")
    assert isinstance(ctx.extractor, OfflineExtractor)


def test_a_provider_without_truth_reads_offline_by_default() -> None:
    assert isinstance(make_extractor(Settings(), ScriptedProvider()), OfflineExtractor)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MISSION_EXTRACTOR": "magic"}, 'must be one of simulated, offline, llm, got "magic"'),
        ({"MISSION_EXTRACTOR": "llm"}, "needs MISSION_LLM_BASE_URL and MISSION_LLM_MODEL"),
    ],
)
def test_a_bad_extractor_choice_is_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_extractor(Settings(**settings), ScriptedProvider())


def test_the_simulated_extractor_is_refused_on_telnyx() -> None:
    provider = TelnyxProvider(SecretStr("KEY-never-logged"))
    try:
        with pytest.raises(ConfigurationError, match="real Telnyx calls do not have"):
            make_extractor(Settings(MISSION_EXTRACTOR="simulated"), provider)
    finally:
        provider.close()


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
