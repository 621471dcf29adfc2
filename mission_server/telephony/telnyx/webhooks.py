"""Telnyx webhook signatures: Ed25519 over ``f"{timestamp}|{raw_body}"``.

The scheme is the official SDK's (``telnyx`` 4.189, ``lib/webhook_verification.py`` and
``resources/webhooks.py``): header ``telnyx-signature-ed25519`` is the base64 signature (64
bytes), ``telnyx-timestamp`` the Unix time in seconds, the key Telnyx's base64 public key
(32 bytes, ``TELNYX_PUBLIC_KEY``), and a timestamp more than 300 s from now is refused (a
replay). Header names are case-insensitive. Verified with ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECS",
    "WebhookRefused",
    "verify_signature",
]

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_SECS = 300


class WebhookRefused(Exception):
    """The webhook is not from Telnyx as far as we can tell; the message says why (it names
    no key and echoes no signature)."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _b64(value: str, what: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused(f"{what} is not base64") from None
    if len(raw) != size:
        raise WebhookRefused(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    public_key: str | None,
    now: datetime,
    *,
    tolerance_secs: int = TOLERANCE_SECS,
) -> None:
    """Accept the webhook or raise ``WebhookRefused``: no key configured, a missing header, a
    stale or malformed timestamp, or a signature that does not verify."""
    if not public_key or not public_key.strip():
        raise WebhookRefused("TELNYX_PUBLIC_KEY is not set, so no Telnyx webhook can be verified")
    signature = _header(headers, SIGNATURE_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER)
    if not signature:
        raise WebhookRefused(f"the {SIGNATURE_HEADER} header is missing")
    if not stamp:
        raise WebhookRefused(f"the {TIMESTAMP_HEADER} header is missing")
    try:
        sent_at = int(stamp.strip())
    except ValueError:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
    skew = abs(now.timestamp() - sent_at)
    if skew > tolerance_secs:
        raise WebhookRefused(
            f"{TIMESTAMP_HEADER} is {skew:.0f}s from now, more than the {tolerance_secs}s allowed"
        )
    key = _b64(public_key, "TELNYX_PUBLIC_KEY", 32)
    raw_signature = _b64(signature, SIGNATURE_HEADER, 64)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(raw_signature, stamp.encode() + b"|" + body)
    except InvalidSignature:
        raise WebhookRefused("the signature does not match the body and timestamp") from None
