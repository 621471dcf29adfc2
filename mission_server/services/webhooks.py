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

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, case, func
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from mission_server.clock import ensure_utc
from mission_server.errors import ConfigurationError, NotFound, ValidationError
from mission_server.net.retry import Attempt, HttpClient
from mission_server.net.webhooks import (
    DELIVERY_HEADER,
    DELIVERY_STATUSES,
    EVENT_HEADER,
    EVENT_TYPE,
    NO_ANSWER_ERROR,
    NOT_SIGNED_ERROR,
    SIGNATURE_HEADER,
    WEBHOOK_SECRET_ENV,
    WebhookRefused,
    WebhookSender,
    _allow_private,
    _GuardedTransport,
    redact_url,
    sign,
)
from mission_server.secrets import scrub
from mission_server.services.insight_schemas import WebhookAttemptOut, WebhookDeliveryOut
from mission_server.services.paging import Keyset, Page, page_limit
from state import models as m
from state.db import reader, session_scope
from state.types import new_id

__all__ = [
    "CONVERSATION_GROUP",
    "deliver_conversation_insights",
    "list_deliveries",
    "redeliver",
    "webhook_target",
]

log = logging.getLogger(__name__)


_CONVERSATIONS = m.Conversation.__table__
_ASSISTANTS = m.Assistant.__table__
_GROUPS = m.InsightGroup.__table__
_MEMBERS = m.InsightGroupMember.__table__
_INSIGHTS = m.Insight.__table__
_RESULTS = m.InsightResult.__table__
#: A conversation with its assistant and the assistant's insight group (either may be absent).
CONVERSATION_GROUP = _CONVERSATIONS.outerjoin(
    _ASSISTANTS, _ASSISTANTS.c.assistant_id == _CONVERSATIONS.c.assistant_id
).outerjoin(_GROUPS, _GROUPS.c.insight_group_id == _ASSISTANTS.c.insight_group_id)
_TARGET = (
    core_select(
        _ASSISTANTS.c.insight_group_id.label("assistant_group_id"),
        _GROUPS.c.insight_group_id,
        _GROUPS.c.name,
        _ASSISTANTS.c.webhook_url.label("assistant_url"),
        _GROUPS.c.webhook_url.label("group_url"),
    )
    .select_from(CONVERSATION_GROUP)
    .where(_CONVERSATIONS.c.conversation_id == bindparam("conversation_id"))
)
#: The group's insights in order with the conversation's result of each (if any).
_GROUP_RESULTS = (
    core_select(
        _MEMBERS.c.insight_id,
        _INSIGHTS.c.name,
        _RESULTS.c.status,
        _RESULTS.c.result,
    )
    .select_from(
        _MEMBERS.outerjoin(_INSIGHTS, _INSIGHTS.c.insight_id == _MEMBERS.c.insight_id).outerjoin(
            _RESULTS,
            (_RESULTS.c.insight_id == _MEMBERS.c.insight_id)
            & (_RESULTS.c.conversation_id == bindparam("conversation_id")),
        )
    )
    .where(_MEMBERS.c.insight_group_id == bindparam("insight_group_id"))
    .order_by(_MEMBERS.c.position)
)


def _target(conn: Connection, conversation_id: str) -> tuple[bool, Any, str | None]:
    """Whether the conversation exists; its group's row (None when its assistant has none)
    and the URL that applies (the assistant's own, else the group's)."""
    row = conn.execute(_TARGET, {"conversation_id": conversation_id}).first()
    if row is None:
        return False, None, None
    if not row.assistant_group_id or row.insight_group_id is None:
        return True, None, None
    return True, row, row.assistant_url or row.group_url


def webhook_target(conn: Connection, conversation_id: str) -> tuple[str | None, str | None] | None:
    """The conversation's insight group id and the webhook URL that applies (the assistant's
    own override, else the group's), read in one query on ``conn``: the group is None when
    the assistant has none, the URL None when neither has one. None when there is no such
    conversation."""
    found, group, url = _target(conn, conversation_id)
    if not found:
        return None
    return (group.insight_group_id if group is not None else None), url or None


def _payload(conn: Connection, conversation_id: str, group: Any) -> dict[str, Any]:
    rows = conn.execute(
        _GROUP_RESULTS,
        {"conversation_id": conversation_id, "insight_group_id": group.insight_group_id},
    ).all()
    return {
        "event_type": EVENT_TYPE,
        "conversation_id": conversation_id,
        "insight_group_id": group.insight_group_id,
        "insight_group_name": group.name,
        "insights": [
            {"insight_id": row.insight_id, "insight_name": row.name or "", "result": row.result}
            for row in rows
            if row.status == "completed"
        ],
    }


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
    with reader(engine).connect() as conn:  # one cheap query when no webhook applies
        found, group, url = _target(conn, conversation_id)
        if not found:
            raise NotFound("conversation", conversation_id)
        if group is None or not url:
            return None
        payload = _payload(conn, conversation_id, group)
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


#: A delivery's place in the list: its first attempt's row id (later attempts do not move it).
_FIRST_ROW = func.min(col(m.WebhookDelivery.id)).label("first_row")
DELIVERIES = Keyset("list_webhook_deliveries", (_FIRST_ROW, int), descending=True)


def list_deliveries(
    engine: Engine,
    conversation_id: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[WebhookDeliveryOut]:
    """Recorded webhook deliveries with their attempts, newest first (by their first
    attempt), ``limit`` deliveries per page (see ``services.paging``).

    ``conversation_id`` keeps one conversation's; ``status`` keeps the ``delivered`` ones (an
    attempt got a 2xx answer) or the ``failed`` ones (none did: it gave up, was refused, was
    not sent for want of a secret — or is still retrying).

    Raises:
        NotFound: ``conversation_id`` names no conversation.
        ValidationError: ``status`` not delivered/failed, ``limit`` outside 1–500, or a
            cursor not of this list (with these filters).
    """
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationError("status", "must be 'delivered' or 'failed'", status)
    limit = page_limit(limit)
    scope = (conversation_id, status)
    key = DELIVERIES.decode(cursor, scope)
    table = m.WebhookDelivery
    delivered_any = func.max(case((col(table.delivered), 1), else_=0))
    with Session(engine) as session:
        if conversation_id is not None and session.get(m.Conversation, conversation_id) is None:
            raise NotFound("conversation", conversation_id)
        chosen = select(col(table.delivery_id), _FIRST_ROW).group_by(col(table.delivery_id))
        if conversation_id is not None:
            chosen = chosen.where(col(table.conversation_id) == conversation_id)
        if status is not None:
            chosen = chosen.having(delivered_any == (1 if status == "delivered" else 0))
        if key is not None:
            chosen = chosen.having(DELIVERIES.after(key))
        found = list(session.exec(chosen.order_by(*DELIVERIES.order_by()).limit(limit + 1)).all())
        page = DELIVERIES.page(found, limit, lambda r: (r[1],), scope)
        ids = [delivery_id for delivery_id, _ in page]
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
    return Page((deliveries[i] for i in ids if i in deliveries), page.next_cursor)
