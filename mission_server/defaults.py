"""Defaults that commands show before anything is configured (``mission serve --help``), in a
module that imports nothing, so showing them loads no settings machinery."""

from __future__ import annotations

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8765
