"""Small input checks shared by the service functions. Each raises ``ValidationError`` naming
the field, the rule and the value."""

from __future__ import annotations

import json
import re
from typing import Any

from mission_server.errors import ValidationError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
#: The largest key/value mapping (metadata, dynamic variables, run input), as JSON.
MAX_MAPPING_BYTES = 16_384
_NUL = "\x00"


def require_text(
    value: Any, field: str, *, max_length: int = 200, allow_empty: bool = False
) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string", value)
    value = value.strip()
    if _NUL in value:
        raise ValidationError(field, "must not contain NUL characters (\\u0000)", show_value=False)
    if not value and not allow_empty:
        raise ValidationError(field, "must not be empty", value)
    if len(value) > max_length:
        raise ValidationError(
            field,
            f"must be at most {max_length} characters",
            f"{len(value)} characters",
        )
    return value


def optional_text(value: Any, field: str, *, max_length: int = 20_000) -> str | None:
    if value is None:
        return None
    return require_text(value, field, max_length=max_length, allow_empty=True)


def require_mapping(
    value: Any, field: str, *, max_bytes: int = MAX_MAPPING_BYTES
) -> dict[str, Any]:
    """A JSON object of at most ``max_bytes`` (as JSON), with string keys and no NUL
    characters anywhere in it (PostgreSQL cannot store them)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(field, "must be an object (key/value mapping)", value)
    for key in value:
        if not isinstance(key, str):
            raise ValidationError(field, "must have string keys", key)
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise ValidationError(field, "must hold JSON values only", show_value=False) from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise ValidationError(field, f"must be at most {max_bytes} bytes as JSON", f"{size} bytes")
    if _NUL in encoded or "\\u0000" in encoded:
        raise ValidationError(field, "must not contain NUL characters (\\u0000)", show_value=False)
    return dict(value)


def require_choice(value: Any, field: str, choices: tuple[str, ...] | frozenset[str]) -> str:
    if value not in choices:
        raise ValidationError(field, f"must be one of {', '.join(sorted(choices))}", value)
    return value


def require_slug(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise ValidationError(
            field,
            "must be a slug of lowercase letters, digits, '-', '_' or '.' (at most 100 chars, "
            "starting with a letter or digit)",
            value,
        )
    return value


def require_int(
    value: Any, field: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer", value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValidationError(field, f"must be between {minimum} and {maximum}", value)
    if minimum is not None and value < minimum:
        raise ValidationError(field, f"must be at least {minimum}", value)
    if maximum is not None and value > maximum:
        raise ValidationError(field, f"must be at most {maximum}", value)
    return value


def require_limit(value: Any, field: str = "limit", maximum: int = 500) -> int:
    if value is None:
        return 50
    return require_int(value, field, minimum=1, maximum=maximum)
