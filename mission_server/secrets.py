"""The one secret scrubber, applied at every boundary where text leaves the process or is kept.

``SCRUBBER`` knows every configured secret: ``Settings`` registers its secret values
(``MISSION_LLM_API_KEY``, ``TELNYX_API_KEY``, ``MISSION_HTTP_TOKEN``, ``MISSION_WEBHOOK_SECRET``)
when it is built, and a client may register the key it was handed. ``scrub`` replaces each of
them, matched case-insensitively (servers echo keys lower- or upper-cased), and anything shaped
like a credential — ``Bearer <token>`` and ``sk-…`` keys — with ``***``.

Where it is applied, one choke point per boundary:

* log records: ``install_logging`` wraps the record factory, so every handler (the CLI's, the
  server's, a test's) sees the scrubbed message and traceback;
* records: ``mission_server.app`` scrubs every string parameter written to the database, so
  no table (runs, events, deliveries, …) can hold a secret;
* user-facing errors: ``cli.common.fail`` and ``mcp.errors.describe_error``; MCP results
  (``mcp.errors.as_tool``); upstream error messages (``net.retry.HttpClient.scrub``);
* webhook bodies (``services.webhooks``), before they are signed;
* the Telnyx Portal mirror (``services.mirror``): its outbox holds ids only, what it sends is
  read from the (scrubbed) records, and the errors it keeps are scrubbed again.

This module imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["MASK", "SCRUBBER", "Scrubber", "install_logging", "scrub", "scrub_data"]

MASK = "***"
#: Secrets shorter than this are not registered: masking every "ab" would garble all text.
MIN_SECRET_LENGTH = 4

_SHAPES = (
    # ``Authorization: Bearer <token>``, however it is cased.
    r"(?<=bearer )[A-Za-z0-9._~+/=-]{4,}",
    # OpenAI-style keys (sk-..., sk-proj-...), not the tail of a longer word ("task-...").
    r"(?<![A-Za-z0-9_])sk-[A-Za-z0-9_-]{8,}",
)


class Scrubber:
    """Masks the registered secrets (case-insensitively) and credential-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern = self._compile()
        self._probe: tuple[str, ...] | None = self._probe_for(set())
        self._remembered: dict[str, str] = {}
        self.add(*secrets)

    def _compile(self) -> re.Pattern[str]:
        literal = [re.escape(s) for s in sorted(self._secrets, key=len, reverse=True)]
        return re.compile("|".join([*literal, *_SHAPES]), re.IGNORECASE)

    def add(self, *secrets: str | None) -> None:
        """Register secret values (None, blank and very short values are ignored)."""
        fresh = {
            s.strip()
            for s in secrets
            if s and len(s.strip()) >= MIN_SECRET_LENGTH and s.strip().lower() not in self._lower
        }
        if not fresh:
            return
        with self._lock:
            self._secrets |= fresh
            self._pattern = self._compile()
            self._probe = self._probe_for(self._secrets)
            # After the pattern: a scrub that reads the new memory also reads the new pattern.
            self._remembered = {}

    @staticmethod
    def _probe_for(secrets: set[str]) -> tuple[str, ...] | None:
        """What an ASCII text must contain (lower-cased) for the pattern to match anything in
        it: each secret lower-cased, "bearer " and "sk-"; None when a secret is not ASCII (a
        non-ASCII letter may match an ASCII one case-insensitively, "K" and "k")."""
        if not all(s.isascii() for s in secrets):
            return None
        return (*sorted({s.lower() for s in secrets}), "bearer ", "sk-")

    @property
    def _lower(self) -> set[str]:
        return {s.lower() for s in self._secrets}

    def scrub(self, text: str) -> str:
        """``text`` with every secret and credential-shaped token replaced by ``***``.

        Short texts are remembered (ids, numbers and statuses come back in every database
        statement); the memory is dropped whenever a secret is added."""
        if not text:
            return text
        if len(text) > _REMEMBERED_LENGTH:
            probe = self._probe
            if probe is not None and text.isascii():
                # A JSON column's text is ASCII (json.dumps escapes the rest): it needs the
                # pattern only if it holds one of the pieces any match starts from.
                lowered = text.lower()
                if not any(piece in lowered for piece in probe):
                    return text
            return self._pattern.sub(MASK, text)
        remembered = self._remembered  # read before the pattern: see ``add``
        done = remembered.get(text)
        if done is None:
            done = self._pattern.sub(MASK, text)
            if len(remembered) >= _REMEMBERED_TEXTS:
                remembered.clear()
            remembered[text] = done
        return done

    def scrub_data(self, data: Any) -> Any:
        """``data`` (strings, in dicts, lists, tuples and pydantic models) scrubbed, as a copy."""
        if type(data) in _PLAIN:  # most values of a database statement: nothing to scrub
            return data
        if isinstance(data, str):
            return self.scrub(data)
        # In a container, a value with no text is kept and a text scrubbed without a further
        # call (a batch of rows holds hundreds of thousands of them).
        if isinstance(data, dict):
            return dict(zip(self._items(data), self._items(data.values()), strict=True))  # type: ignore[arg-type]
        if isinstance(data, list):
            return self._items(data)  # type: ignore[arg-type]
        if isinstance(data, tuple):
            return tuple(self._items(data))  # type: ignore[arg-type]
        if _is_model(data):
            update = {
                name: self.scrub_data(getattr(data, name)) for name in type(data).model_fields
            }
            return data.model_copy(update=update)
        return data

    def _items(self, values: Iterable[Any]) -> list[Any]:
        plain, scrub, deeper = _PLAIN, self.scrub, self.scrub_data
        return [
            v if type(v) in plain else scrub(v) if type(v) is str else deeper(v) for v in values
        ]


#: Texts up to this length are remembered once scrubbed, this many at most.
_REMEMBERED_LENGTH = 200
_REMEMBERED_TEXTS = 8192

#: Values that hold no text (exact types: a str subclass is still scrubbed).
_PLAIN: frozenset[type] = frozenset({type(None), bool, int, float, Decimal, datetime, date})


def _is_model(data: Any) -> bool:
    """``data`` is a pydantic model. Pydantic is not imported for this: a process that has
    not loaded it (``mission --help``) holds no model."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(data, pydantic.BaseModel)


#: The process's scrubber; ``Settings`` registers its secrets here.
SCRUBBER = Scrubber()


def scrub(text: str) -> str:
    """``SCRUBBER.scrub``."""
    return SCRUBBER.scrub(text)


def scrub_data(data: Any) -> Any:
    """``SCRUBBER.scrub_data``."""
    return SCRUBBER.scrub_data(data)


_installed = False


def install_logging() -> None:
    """Scrub every log record when it is created (message, arguments and traceback), so no
    handler can write a secret. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the record as logging would
            return record
        record.msg, record.args = SCRUBBER.scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = SCRUBBER.scrub(formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = SCRUBBER.scrub(record.stack_info)
        return record

    logging.setLogRecordFactory(scrubbed_record)
