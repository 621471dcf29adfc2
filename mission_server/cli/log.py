"""Logging for the ``mission`` commands: everything to stderr (stdout carries results and, for
``mission serve`` on stdio, the protocol), chatty libraries held at WARNING."""

from __future__ import annotations

import logging
import sys

_NOISY = ("httpx", "httpcore", "apscheduler", "alembic")


def setup_logging(level: int) -> None:
    """Send log records at ``level`` and above to stderr."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
