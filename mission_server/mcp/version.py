"""The server's name and version, as clients see them in ``initialize`` and ``server_status``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

SERVER_NAME = "agent-missions"


def server_version() -> str:
    try:
        return package_version("agent-missions")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"
