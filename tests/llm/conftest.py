"""tests/llm run against a real model server named by the project's own settings
(``MISSION_LLM_BASE_URL``, ``MISSION_LLM_MODEL``, ``MISSION_LLM_API_KEY``).

They are collected only with ``MISSION_LLM_TESTS=1`` (``tests/conftest.py``), which
``make test-llm`` sets after starting a server; there a missing server setting is a failure,
never a skip. Collected any other way without the settings, they skip.
"""

from __future__ import annotations

import os

import pytest

from mission_server.settings import Settings

REQUIRED = os.environ.get("MISSION_LLM_TESTS") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.llm)


@pytest.fixture
def llm_settings() -> Settings:
    settings = Settings()
    if not settings.llm_configured:
        message = "MISSION_LLM_BASE_URL and MISSION_LLM_MODEL name no model server"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return settings
