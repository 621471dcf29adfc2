"""Sending webhooks safely: HMAC-signed POSTs, never to an address inside this machine's
networks unless ``MISSION_WEBHOOK_ALLOW_PRIVATE=1``.

A URL is checked when it is configured (a literal address or ``localhost``) and again before
every attempt on every address the name resolves to; the connection then goes to the address
that was checked (DNS rebinding cannot redirect it), redirects are not followed, and a refused
address is final. Connection failures are reported with one text, so a delivery record cannot
map which ports are open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from mission_server.errors import ValidationError
from mission_server.net.retry import RetryPolicy
from mission_server.settings import Settings, load_settings

log = logging.getLogger(__name__)


EVENT_TYPE = "conversation.insights.completed"
SIGNATURE_HEADER = "X-Mission-Signature"
EVENT_HEADER = "X-Mission-Event"
DELIVERY_HEADER = "X-Mission-Delivery"
WEBHOOK_SECRET_ENV = "MISSION_WEBHOOK_SECRET"
ALLOW_PRIVATE_ENV = "MISSION_WEBHOOK_ALLOW_PRIVATE"
#: The recorded error of any transport failure: the same for a refused connection, a reset and
#: a timeout, so the records cannot map the receiver's ports.
NO_ANSWER_ERROR = "no answer from the receiver (could not connect, or it did not answer in time)"

#: The recorded error of a delivery that was not sent because no signing secret is set.
NOT_SIGNED_ERROR = (
    f"not sent: {WEBHOOK_SECRET_ENV} is not set, and insight webhooks are only sent signed "
    "(HMAC-SHA256); set it, then redeliver"
)
DELIVERY_STATUSES = ("delivered", "failed")


def _secret_bytes(secret: SecretStr | str | bytes) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: SecretStr | str | bytes, body: bytes) -> str:
    """The ``X-Mission-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: SecretStr | str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of the raw ``body`` under ``secret`` (constant-time
    comparison; a missing header is not valid)."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def redact_url(url: str) -> str:
    """``url`` with credentials and query-string values masked, for records and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = urlencode([(k, "***") for k, _v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def refused_address_class(address: str) -> str | None:
    """Why a webhook may not go to ``address`` (an IP address): ``loopback``, ``link-local``,
    ``unspecified``, ``multicast``, ``private`` or ``reserved`` (anything not globally
    routable); None when it may. An IPv4-mapped IPv6 address is judged as its IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name, refused in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("reserved", not ip.is_global),
    ):
        if refused:
            return name
    return None


def _allow_private(allow: bool | None) -> bool:
    return load_settings().webhook_allow_private if allow is None else allow


def _refusal(host: str, address: str, kind: str) -> str:
    shown_host = host if host == address else f"{host} ({address})"
    return (
        f"{shown_host} is a {kind} address; webhooks go only to public addresses "
        f"(set {ALLOW_PRIVATE_ENV}=1 to allow private ones, for local testing)"
    )


def _numeric_addresses(host: str) -> list[str]:
    """The addresses a numeric host stands for (``2130706433``, ``0x7f000001``, ``::1`` …),
    without asking DNS; empty for a name."""
    try:
        found = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return []
    return [str(info[4][0]) for info in found]


def validate_webhook_url(
    url: Any, field: str = "webhook_url", *, allow_private: bool | None = None
) -> str | None:
    """Check a webhook URL: None/empty means none; otherwise an absolute http(s) URL whose
    host is not a loopback, link-local, private, multicast or reserved address (nor
    ``localhost``), unless ``allow_private`` (default: ``MISSION_WEBHOOK_ALLOW_PRIVATE``).
    Names are resolved, and checked again, when the webhook is sent.

    Raises:
        ValidationError: not a string, not http(s), no host, longer than 2048 characters, or
            a refused address.
    """
    if url is None:
        return None
    if not isinstance(url, str):
        raise ValidationError(field, "must be an http(s) URL", url)
    url = url.strip()
    if not url:
        return None
    if len(url) > 2048:
        raise ValidationError(field, "must be at most 2048 characters", f"{len(url)} characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError(field, "must be an http(s) URL", redact_url(url)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(field, "must be an absolute http(s) URL", redact_url(url))
    if not _allow_private(allow_private):
        host = parts.hostname.rstrip(".")
        if host == "localhost" or host.endswith(".localhost"):
            raise ValidationError(field, _refusal(host, host, "loopback"), redact_url(url))
        for address in _numeric_addresses(host):
            kind = refused_address_class(address)
            if kind is not None:
                raise ValidationError(field, _refusal(host, address, kind), redact_url(url))
    return url


class WebhookRefused(httpx.UnsupportedProtocol):
    """The receiver's host resolves to a refused address, or does not resolve: the URL is
    unusable, so the transport treats it as final and never retries it."""


Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class _GuardedTransport(httpx.BaseTransport):
    """Checks, at every attempt, every address the request's host resolves to, and connects
    to the checked address itself (the ``Host`` header and TLS name stay the host's), so a DNS
    answer that changes between check and connect cannot reach a refused address."""

    def __init__(self, inner: httpx.BaseTransport, allow_private: bool, resolve: Resolver):
        self._inner = inner
        self._allow_private = allow_private
        self._resolve = resolve

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            addresses = self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise WebhookRefused(f"{host} could not be resolved", request=request) from exc
        if not addresses:
            raise WebhookRefused(f"{host} could not be resolved", request=request)
        if not self._allow_private:
            for address in addresses:
                kind = refused_address_class(address)
                if kind is not None:
                    raise WebhookRefused(_refusal(host, address, kind), request=request)
        address = addresses[0].split("%", 1)[0]
        if address != host:
            request.url = request.url.copy_with(host=address)
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class WebhookSender:
    """How webhooks are sent: the signing secret, the retry bounds and backoff, and seams for
    tests (``sleep``, ``transport``, ``timer``)."""

    secret: SecretStr | None = None
    max_attempts: int = 5
    backoff_secs: float = 1.0
    max_backoff_secs: float = 60.0
    max_total_wait_secs: float = 300.0
    timeout_secs: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None
    timer: Callable[[], float] = field(default=time.perf_counter)
    #: Send to loopback/private/link-local addresses too; None: ``MISSION_WEBHOOK_ALLOW_PRIVATE``.
    allow_private: bool | None = None
    resolve: Resolver = resolve_host

    def __post_init__(self) -> None:
        if isinstance(self.secret, str):
            self.secret = SecretStr(self.secret)
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or (self.max_attempts < 1)
        ):
            raise ValidationError(
                "max_attempts", "must be an integer of at least 1", self.max_attempts
            )
        if self.backoff_secs < 0 or self.max_backoff_secs < 0:
            raise ValidationError("backoff_secs", "must not be negative", self.backoff_secs)
        if self.max_total_wait_secs < 0:
            raise ValidationError(
                "max_total_wait_secs", "must not be negative", self.max_total_wait_secs
            )

    def __repr__(self) -> str:
        return f"WebhookSender(signed={self.signed}, max_attempts={self.max_attempts})"

    @property
    def signed(self) -> bool:
        """Whether there is a (non-blank) secret to sign with; without one nothing is sent."""
        return self.secret is not None and bool(self.secret.get_secret_value().strip())

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> WebhookSender:
        """The secret from ``settings.webhook_secret`` (``MISSION_WEBHOOK_SECRET``); with no
        settings given they are read from the environment. ``options`` set the rest."""
        if settings is None:
            settings = load_settings()
        options.setdefault("allow_private", settings.webhook_allow_private)
        return cls(secret=settings.webhook_secret, **options)

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy of one delivery."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_secs,
            backoff_max=self.max_backoff_secs,
            max_retry_after=self.max_backoff_secs,
            max_total_wait=self.max_total_wait_secs,
        )
