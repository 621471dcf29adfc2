"""Choose the extraction backend that fits the configured provider.

- Telnyx: the platform computes insights for its own conversations, so its results are used.
- Otherwise an OpenAI-compatible LLM when ``MISSION_LLM_BASE_URL`` and ``MISSION_LLM_MODEL``
  are set, and the offline extractor (transcript text only) when not, so a simulated run
  produces results with no configuration at all.
"""

from __future__ import annotations

from mission_server.insights.base import Extractor
from mission_server.settings import Settings
from mission_server.telephony.base import Provider


def make_extractor(settings: Settings, provider: Provider) -> Extractor:
    """Return the extractor for ``provider`` under ``settings``.

    Raises:
        ValidationError: the configured LLM base URL is not an http(s) URL.
    """
    from mission_server.telephony.telnyx import TelnyxProvider

    if isinstance(provider, TelnyxProvider):
        from mission_server.insights.telnyx import TelnyxInsightsExtractor

        return TelnyxInsightsExtractor(provider.get_conversation_insights)
    if settings.llm_configured:
        from mission_server.insights.llm import LLMExtractor

        return LLMExtractor.from_settings(settings)
    from mission_server.insights.offline import OfflineExtractor

    return OfflineExtractor()
