"""Webhook delivery of a conversation's insight results (``reference/21_insight-groups.md``).

When the conversation's assistant has an insight group and a webhook URL applies (the
assistant's own override, else the group's), the service POSTs::

    {"event_type": "conversation.insights.completed", "conversation_id": "...",
     "insight_group_id": "...", "insight_group_name": "...",
     "insights": [{"insight_id": "...", "insight_name": "...", "result": {...} or "text"}]}

``insights`` holds the group's *completed* results in group order (a failed one has no result
to send). The body is compact UTF-8 JSON.

Headers:

* ``X-Mission-Signature: sha256=<hex>`` — HMAC-SHA256 of the **raw request body** keyed with
  the shared secret ``MISSION_WEBHOOK_SECRET``. Receivers recompute it over the bytes they
  received (before parsing) and compare in constant time (``verify_signature`` does this).
  Webhooks are only ever sent signed: with no secret configured (``Settings.webhook_secret``)
  nothing is POSTed; the delivery is recorded as a failed attempt whose error names
  ``MISSION_WEBHOOK_SECRET`` (and a warning is logged), so it shows up among the failed
  deliveries and can be re-sent once the secret is set.
* ``X-Mission-Event: conversation.insights.completed`` and ``X-Mission-Delivery: <id>`` (the
  same id on every attempt of one delivery, so receivers can de-duplicate).

Retries go through the shared transport (``mission_server.net.retry``): a connection error, a
timeout, or one of its retryable statuses (408/425/429/500/502/503/504) is retried up to
``max_attempts`` in all, waiting ``backoff_secs * 2**(n-1)`` (capped at ``max_backoff_secs``)
or the ``Retry-After`` the receiver asked for (seconds or an HTTP date; one longer than
``max_backoff_secs`` ends the delivery instead), at most ``max_total_wait_secs`` in all,
through an injectable ``sleep``. The POST is re-sent after a timeout because the
``X-Mission-Delivery`` id lets receivers drop a duplicate. Any other non-2xx answer is final.
Every attempt is written to ``WebhookDelivery`` in its own transaction (status code, latency,
error, delivered), so a crash mid-way keeps the history.
``redeliver`` sends the conversation's current results again as a new delivery;
``list_deliveries`` lists the recorded deliveries (e.g. the failed ones) with their attempts.
The secret never appears in a record, a log line or an error, and the body is scrubbed of
every configured secret (``mission_server.secrets``) before it is signed.

Where webhooks may go (server-side request forgery): by default a URL whose host is, or
resolves to, a loopback, link-local, private, multicast, unspecified or otherwise reserved
(not globally routable) address is refused — IPv4-mapped IPv6 and numeric forms such as
``2130706433`` or ``0x7f000001`` included. The URL is checked when it is configured, and at
send time every address the host resolves to is checked again and the connection is pinned to
the checked address (so DNS rebinding cannot swap it). Redirects are never followed. A failed
attempt records only "no answer from the receiver" (no connection error, no latency), so
deliveries cannot be used to tell open ports from closed ones. ``MISSION_WEBHOOK_ALLOW_PRIVATE=1``
(``Settings.webhook_allow_private``) is the explicit opt-in for local testing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr
from sqlalchemy import case, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission_server.clock import ensure_utc
from mission_server.errors import ConfigurationError, NotFound, ValidationError
from mission_server.net.retry import Attempt, HttpClient, RetryPolicy
from mission_server.secrets import scrub
from mission_server.services.insight_schemas import WebhookAttemptOut, WebhookDeliveryOut
from mission_server.settings import Settings, load_settings
from state import models as m
from state.db import session_scope
from state.types import new_id

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "EVENT_TYPE",
    "NOT_SIGNED_ERROR",
    "NO_ANSWER_ERROR",
    "SIGNATURE_HEADER",
    "WEBHOOK_SECRET_ENV",
    "WebhookSender",
    "build_payload",
    "deliver_conversation_insights",
    "list_deliveries",
    "redact_url",
    "redeliver",
    "refused_address_class",
    "sign",
    "validate_webhook_url",
    "verify_signature",
]

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


def _group_and_url(
    session: Session, conversation: m.Conversation
) -> tuple[m.InsightGroup | None, str | None]:
    if not conversation.assistant_id:
        return None, None
    assistant = session.get(m.Assistant, conversation.assistant_id)
    if assistant is None or not assistant.insight_group_id:
        return None, None
    group = session.get(m.InsightGroup, assistant.insight_group_id)
    if group is None:
        return None, None
    return group, assistant.webhook_url or group.webhook_url


def build_payload(engine: Engine, conversation_id: str) -> tuple[dict[str, Any], str | None]:
    """The ``conversation.insights.completed`` payload for the conversation, and the URL it
    goes to (None when no webhook applies).

    Raises:
        NotFound: no such conversation, or its assistant has no insight group.
    """
    with Session(engine) as session:
        conversation = session.get(m.Conversation, conversation_id)
        if conversation is None:
            raise NotFound("conversation", conversation_id)
        group, url = _group_and_url(session, conversation)
        if group is None:
            raise NotFound("insight group for conversation", conversation_id)
        members = session.exec(
            select(m.InsightGroupMember)
            .where(m.InsightGroupMember.insight_group_id == group.insight_group_id)
            .order_by(col(m.InsightGroupMember.position))
        ).all()
        results = {
            r.insight_id: r
            for r in session.exec(
                select(m.InsightResult).where(m.InsightResult.conversation_id == conversation_id)
            ).all()
        }
        insights = []
        for member in members:
            result = results.get(member.insight_id)
            if result is None or result.status != "completed":
                continue
            insight = session.get(m.Insight, member.insight_id)
            insights.append(
                {
                    "insight_id": member.insight_id,
                    "insight_name": insight.name if insight else "",
                    "result": result.result,
                }
            )
        payload = {
            "event_type": EVENT_TYPE,
            "conversation_id": conversation_id,
            "insight_group_id": group.insight_group_id,
            "insight_group_name": group.name,
            "insights": insights,
        }
        return payload, url


def _record(engine: Engine, row: m.WebhookDelivery) -> WebhookAttemptOut:
    with session_scope(engine) as session:
        session.add(row)
    return WebhookAttemptOut(
        attempt=row.attempt,
        status_code=row.status_code,
        latency_ms=row.latency_ms,
        error=row.error,
        delivered=row.delivered,
        created_at=row.created_at,
    )


def _send(
    engine: Engine,
    *,
    conversation_id: str,
    group_id: str | None,
    url: str,
    payload: dict[str, Any],
    now: datetime,
    sender: WebhookSender,
) -> WebhookDeliveryOut:
    body = scrub(json.dumps(payload, separators=(",", ":"), ensure_ascii=False)).encode("utf-8")
    delivery_id = new_id()
    shown_url = redact_url(url)
    if not sender.signed:
        # Never POST unsigned: record the delivery as failed so it is listed and re-sendable.
        log.warning(
            "insights webhook %s to %s not sent: %s is not set",
            delivery_id,
            shown_url,
            WEBHOOK_SECRET_ENV,
        )
        attempt = _record(
            engine,
            m.WebhookDelivery(
                delivery_id=delivery_id,
                conversation_id=conversation_id,
                insight_group_id=group_id,
                url=shown_url,
                attempt=1,
                status_code=None,
                latency_ms=None,
                error=NOT_SIGNED_ERROR,
                delivered=False,
                created_at=now,
            ),
        )
        return WebhookDeliveryOut(
            delivery_id=delivery_id,
            conversation_id=conversation_id,
            insight_group_id=group_id,
            url=shown_url,
            delivered=False,
            attempts=[attempt],
        )
    assert sender.secret is not None
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "agent-missions-webhooks/1",
        EVENT_HEADER: EVENT_TYPE,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: sign(sender.secret, body),
    }
    attempts: list[WebhookAttemptOut] = []

    def record(attempt: Attempt) -> None:
        response = attempt.response
        delivered = response is not None and response.is_success
        error: str | None = None
        latency_ms: float | None = round(attempt.elapsed * 1000, 3)
        if isinstance(attempt.error, WebhookRefused):
            error, latency_ms = f"not sent: {attempt.error}", None
        elif attempt.error is not None:
            # One text and no latency for every transport failure: refused, reset and timed
            # out look alike, so the records cannot tell closed ports from open ones.
            log.debug(
                "insights webhook %s attempt %d: %r", delivery_id, attempt.number, attempt.error
            )
            error, latency_ms = NO_ANSWER_ERROR, None
        elif not delivered:
            error = f"HTTP {attempt.status_code}"
        attempts.append(
            _record(
                engine,
                m.WebhookDelivery(
                    delivery_id=delivery_id,
                    conversation_id=conversation_id,
                    insight_group_id=group_id,
                    url=shown_url,
                    attempt=attempt.number,
                    status_code=attempt.status_code,
                    latency_ms=latency_ms,
                    error=scrub(error) if error else None,
                    delivered=delivered,
                    created_at=now + timedelta(seconds=attempt.waited),
                ),
            )
        )

    transport = _GuardedTransport(
        sender.transport or httpx.HTTPTransport(),
        _allow_private(sender.allow_private),
        sender.resolve,
    )
    with HttpClient(
        timeout=sender.timeout_secs,
        name="insights webhook",
        transport=transport,
        sleep=sender.sleep,
        timer=sender.timer,
    ) as client:
        client.send(
            "POST",
            url,
            content=body,
            headers=headers,
            retry=sender.policy,
            idempotent=True,  # receivers de-duplicate on X-Mission-Delivery
            on_attempt=record,
            label=f"{delivery_id} to {shown_url}",
        )
    if attempts and not attempts[-1].delivered:
        log.warning(
            "insights webhook %s to %s not delivered after %d attempt%s: %s",
            delivery_id,
            shown_url,
            len(attempts),
            "" if len(attempts) == 1 else "s",
            attempts[-1].error,
        )
    return WebhookDeliveryOut(
        delivery_id=delivery_id,
        conversation_id=conversation_id,
        insight_group_id=group_id,
        url=shown_url,
        delivered=bool(attempts and attempts[-1].delivered),
        attempts=attempts,
    )


def deliver_conversation_insights(
    engine: Engine,
    conversation_id: str,
    *,
    now: datetime,
    sender: WebhookSender | None = None,
) -> WebhookDeliveryOut | None:
    """POST the conversation's insight results to its webhook, retrying within the bound.

    Returns the delivery with its attempts, or None when no webhook URL applies (no group,
    or neither the group nor the assistant has a URL). A delivery that gives up, or is not
    sent because the sender has no secret (one failed attempt naming
    ``MISSION_WEBHOOK_SECRET``), is returned with ``delivered=False``, not raised: extraction
    results stand on their own. ``sender`` defaults to one built from the environment's
    settings.

    Raises:
        NotFound: no such conversation.
        ValidationError: ``now`` has no timezone.
    """
    now = ensure_utc(now, "now")
    with Session(engine) as session:
        conversation = session.get(m.Conversation, conversation_id)
        if conversation is None:
            raise NotFound("conversation", conversation_id)
        group, url = _group_and_url(session, conversation)
    if group is None or not url:
        return None
    payload, url = build_payload(engine, conversation_id)
    if not url:
        return None
    return _send(
        engine,
        conversation_id=conversation_id,
        group_id=group.insight_group_id,
        url=url,
        payload=payload,
        now=now,
        sender=sender or WebhookSender.from_settings(),
    )


def redeliver(
    engine: Engine,
    delivery_or_conversation_id: str,
    *,
    now: datetime,
    sender: WebhookSender | None = None,
) -> WebhookDeliveryOut:
    """Send a conversation's insights webhook again, as a new delivery with fresh attempts.

    ``delivery_or_conversation_id`` is either a ``delivery_id`` from an earlier delivery or a
    conversation id. The payload is rebuilt from the current results and sent to the URL
    configured now (usually the reason to redeliver is that the endpoint was fixed).

    Raises:
        NotFound: neither a delivery nor a conversation has that id.
        ConfigurationError: the sender has no secret (``MISSION_WEBHOOK_SECRET``; nothing is
            sent or recorded then), or the conversation has no insight webhook configured.
        ValidationError: ``now`` has no timezone, or the id is not a string.
    """
    if not isinstance(delivery_or_conversation_id, str) or not delivery_or_conversation_id:
        raise ValidationError(
            "delivery_id", "must be a non-empty id string", delivery_or_conversation_id
        )
    sender = sender or WebhookSender.from_settings()
    with Session(engine) as session:
        earlier = session.exec(
            select(m.WebhookDelivery)
            .where(m.WebhookDelivery.delivery_id == delivery_or_conversation_id)
            .limit(1)
        ).first()
        if earlier is not None:
            conversation_id = earlier.conversation_id
        elif session.get(m.Conversation, delivery_or_conversation_id) is not None:
            conversation_id = delivery_or_conversation_id
        else:
            raise NotFound("webhook delivery or conversation", delivery_or_conversation_id)
    if not sender.signed:
        raise ConfigurationError(
            f"{WEBHOOK_SECRET_ENV} is not set: insight webhooks are only sent signed "
            "(HMAC-SHA256), so nothing was sent; set it and redeliver"
        )
    delivery = deliver_conversation_insights(engine, conversation_id, now=now, sender=sender)
    if delivery is None:
        raise ConfigurationError(
            f"conversation {conversation_id!r} has no insights webhook: its assistant needs an "
            "insight group with a webhook URL, or its own webhook URL"
        )
    return delivery


def list_deliveries(
    engine: Engine,
    conversation_id: str | None = None,
    *,
    status: str | None = None,
    limit: int = 50,
) -> list[WebhookDeliveryOut]:
    """Recorded webhook deliveries with their attempts, newest first.

    ``conversation_id`` keeps one conversation's; ``status`` keeps the ``delivered`` ones (an
    attempt got a 2xx answer) or the ``failed`` ones (none did: it gave up, was refused, was
    not sent for want of a secret — or is still retrying); ``limit`` counts deliveries.

    Raises:
        NotFound: ``conversation_id`` names no conversation.
        ValidationError: ``status`` not delivered/failed, or ``limit`` outside 1–500.
    """
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationError("status", "must be 'delivered' or 'failed'", status)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
        raise ValidationError("limit", "must be an integer between 1 and 500", limit)
    table = m.WebhookDelivery
    delivered_any = func.max(case((col(table.delivered), 1), else_=0))
    first_row = func.min(col(table.id))
    with Session(engine) as session:
        if conversation_id is not None and session.get(m.Conversation, conversation_id) is None:
            raise NotFound("conversation", conversation_id)
        chosen = select(col(table.delivery_id)).group_by(col(table.delivery_id))
        if conversation_id is not None:
            chosen = chosen.where(col(table.conversation_id) == conversation_id)
        if status is not None:
            chosen = chosen.having(delivered_any == (1 if status == "delivered" else 0))
        ids = list(session.exec(chosen.order_by(first_row.desc()).limit(limit)).all())
        rows = (
            session.exec(
                select(table).where(col(table.delivery_id).in_(ids)).order_by(col(table.id))
            ).all()
            if ids
            else []
        )
    deliveries: dict[str, WebhookDeliveryOut] = {}
    for row in rows:
        out = deliveries.setdefault(
            row.delivery_id,
            WebhookDeliveryOut(
                delivery_id=row.delivery_id,
                conversation_id=row.conversation_id,
                insight_group_id=row.insight_group_id,
                url=row.url,
            ),
        )
        out.attempts.append(
            WebhookAttemptOut(
                attempt=row.attempt,
                status_code=row.status_code,
                latency_ms=row.latency_ms,
                error=row.error,
                delivered=row.delivered,
                created_at=row.created_at,
            )
        )
        out.delivered = out.delivered or row.delivered
    return [deliveries[i] for i in ids if i in deliveries]
