"""Webhook delivery against a real HTTP server on 127.0.0.1: payload, signature, retries,
the retry bound, recorded attempts and redelivery."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission_server.clock import VirtualClock
from mission_server.engine.listeners import install_listeners
from mission_server.errors import ConfigurationError, NotFound, ValidationError
from mission_server.insights.offline import OfflineExtractor
from mission_server.net.webhooks import (
    DELIVERY_HEADER,
    NO_ANSWER_ERROR,
    NOT_SIGNED_ERROR,
    SIGNATURE_HEADER,
    WebhookSender,
    redact_url,
    verify_signature,
)
from mission_server.services import extraction
from mission_server.services import insights as service
from mission_server.services.context import CallFinished, Context
from mission_server.services.webhooks import (
    deliver_conversation_insights,
    list_deliveries,
    redeliver,
)
from mission_server.settings import Settings, load_settings
from mission_server.telephony.scripted import ScriptedProvider
from state import models as m

SECRET = "whsec-test-secret"

TURNS = [
    ("assistant", "What would you charge per person for 40 guests?"),
    ("user", "We'd be at $62 per person. Delivery is included."),
    ("assistant", "Is a deposit required?"),
    ("user", "Yes, 20 percent."),
]


NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


@pytest.fixture
def setup(engine: Engine, seed: Callable[..., Any], receiver: Any) -> dict[str, Any]:
    """A group of two insights with the receiver as its webhook, assigned to the assistant
    of a conversation whose results are already extracted (without delivery)."""
    now = NOW
    quote = service.create_insight(
        engine,
        name="Quote",
        now=now,
        parameters=[
            {"name": "price_per_person", "type": "number", "required": True},
            {"name": "deposit_required", "type": "boolean"},
        ],
    )
    summary = service.ensure_default_summary_insight(engine, now=now)
    group = service.create_insight_group(
        engine,
        "Catering",
        [quote.insight_id, summary.insight_id],
        webhook_url=f"{receiver.base_url}/hooks/insights",
        now=now,
    )
    seeded = seed(engine, TURNS)
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=now)
    extraction.extract_conversation_insights(
        engine, seeded.conversation_id, OfflineExtractor(), now=now, deliver=False
    )
    return {"quote": quote, "summary": summary, "group": group, "seeded": seeded}


def sender(sleeps: list[float] | None = None, **options: Any) -> WebhookSender:
    return WebhookSender(
        secret=SECRET, sleep=(sleeps.append if sleeps is not None else lambda _s: None), **options
    )


def rows(engine: Engine) -> list[m.WebhookDelivery]:
    with Session(engine) as session:
        return list(
            session.exec(select(m.WebhookDelivery).order_by(col(m.WebhookDelivery.id))).all()
        )


def test_the_payload_is_the_reference_shape_and_the_signature_verifies(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    delivery = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    assert delivery is not None and delivery.delivered
    [request] = receiver.received
    assert request.path == "/hooks/insights"
    assert verify_signature(SECRET, request.body, request.headers[SIGNATURE_HEADER])
    assert not verify_signature("another-secret", request.body, request.headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET, request.body + b" ", request.headers[SIGNATURE_HEADER])
    assert request.headers[DELIVERY_HEADER] == delivery.delivery_id

    payload = json.loads(request.body)
    assert list(payload) == [
        "event_type",
        "conversation_id",
        "insight_group_id",
        "insight_group_name",
        "insights",
    ]
    assert payload["event_type"] == "conversation.insights.completed"
    assert payload["conversation_id"] == "conv-1"
    assert payload["insight_group_id"] == setup["group"].insight_group_id
    assert payload["insight_group_name"] == "Catering"
    quote, summary = payload["insights"]
    assert quote == {
        "insight_id": setup["quote"].insight_id,
        "insight_name": "Quote",
        "result": {"price_per_person": 62, "deposit_required": True},
    }
    assert summary["insight_name"] == "Summary"
    assert "$62 per person" in summary["result"]

    [row] = rows(engine)
    assert row.delivered and row.status_code == 200 and row.attempt == 1
    assert row.latency_ms is not None and row.latency_ms >= 0
    assert SECRET not in repr(row.model_dump())


def test_retries_on_500_then_succeeds_recording_every_attempt(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    receiver.statuses[:] = [500, 503]
    sleeps: list[float] = []
    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=sender(sleeps, backoff_secs=2)
    )
    assert delivery is not None and delivery.delivered
    assert [a.status_code for a in delivery.attempts] == [500, 503, 200]
    assert sleeps == [2, 4]
    # Every attempt of one delivery carries the same id and the same signed bytes.
    assert len({r.headers[DELIVERY_HEADER] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1

    recorded = rows(engine)
    assert [(r.attempt, r.status_code, r.delivered, r.error) for r in recorded] == [
        (1, 500, False, "HTTP 500"),
        (2, 503, False, "HTTP 503"),
        (3, 200, True, None),
    ]
    # Attempts are stamped at the time they were made, backoff included.
    assert [(r.created_at - NOW).total_seconds() for r in recorded] == [0, 2, 6]


def test_gives_up_after_the_bound_and_records_it(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    receiver.statuses[:] = [500] * 10
    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=sender(max_attempts=3)
    )
    assert delivery is not None and not delivery.delivered
    assert len(receiver.received) == 3
    assert [(r.attempt, r.delivered) for r in rows(engine)] == [(1, False), (2, False), (3, False)]
    [listed] = list_deliveries(engine, "conv-1")
    assert listed.delivery_id == delivery.delivery_id and not listed.delivered
    assert len(listed.attempts) == 3


def test_a_client_error_is_final(engine: Engine, setup: dict[str, Any], receiver: Any) -> None:
    receiver.statuses[:] = [404]
    delivery = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    assert delivery is not None and not delivery.delivered
    assert len(receiver.received) == 1
    assert delivery.attempts[0].error == "HTTP 404"


def test_an_unreachable_endpoint_records_no_answer_and_nothing_that_maps_ports(
    engine: Engine, setup: dict[str, Any]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service.assign_insight_group(
        engine,
        setup["seeded"].assistant_id,
        setup["group"].insight_group_id,
        webhook_url=f"http://127.0.0.1:{port}/down",
        now=NOW,
    )
    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=sender(max_attempts=2)
    )
    assert delivery is not None and not delivery.delivered
    assert [a.status_code for a in delivery.attempts] == [None, None]
    # Not "ConnectError: Connection refused" nor a latency: a closed port must read like a
    # silent one, or deliveries become a port scanner.
    assert all(a.error == NO_ANSWER_ERROR for a in delivery.attempts)
    assert all(a.latency_ms is None for a in delivery.attempts)


def test_the_assistants_override_wins_over_the_groups_url(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    settings = service.assign_insight_group(
        engine,
        setup["seeded"].assistant_id,
        setup["group"].insight_group_id,
        webhook_url=f"{receiver.base_url}/staging",
        now=NOW,
    )
    assert settings.effective_webhook_url == f"{receiver.base_url}/staging"
    deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    assert [r.path for r in receiver.received] == ["/staging"]


def test_without_a_secret_nothing_is_sent_and_a_failed_attempt_names_the_variable(
    engine: Engine,
    setup: dict[str, Any],
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("MISSION_WEBHOOK_SECRET", raising=False)
    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=WebhookSender.from_settings()
    )
    assert receiver.received == []  # never POSTed unsigned
    assert delivery is not None and not delivery.delivered
    [attempt] = delivery.attempts
    assert attempt.error == NOT_SIGNED_ERROR and "MISSION_WEBHOOK_SECRET" in attempt.error
    assert attempt.status_code is None and not attempt.delivered
    assert "MISSION_WEBHOOK_SECRET is not set" in caplog.text
    # Visible among the failed deliveries...
    [failed] = list_deliveries(engine, status="failed")
    assert failed.delivery_id == delivery.delivery_id
    # ...and a re-send without a secret is refused up front, writing nothing.
    with pytest.raises(ConfigurationError, match="MISSION_WEBHOOK_SECRET is not set"):
        redeliver(engine, delivery.delivery_id, now=NOW, sender=WebhookSender())
    assert len(rows(engine)) == 1 and receiver.received == []
    # Once the secret is configured the same delivery id re-sends, signed.
    monkeypatch.setenv("MISSION_WEBHOOK_SECRET", SECRET)
    again = redeliver(
        engine,
        delivery.delivery_id,
        now=NOW,
        sender=WebhookSender.from_settings(sleep=lambda _s: None),
    )
    assert again.delivered
    [request] = receiver.received
    assert verify_signature(SECRET, request.body, request.headers[SIGNATURE_HEADER])


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_a_missing_or_blank_secret_never_posts(
    engine: Engine, setup: dict[str, Any], receiver: Any, secret: str | None
) -> None:
    settings = Settings(webhook_secret=None if secret is None else SecretStr(secret))
    sent = WebhookSender.from_settings(settings)
    assert not sent.signed
    delivery = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sent)
    assert delivery is not None and not delivery.delivered
    assert receiver.received == []


def test_extraction_without_a_secret_records_the_unsent_webhook(
    engine: Engine, setup: dict[str, Any], receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path a finished call takes: extraction, then delivery with the default sender.
    monkeypatch.delenv("MISSION_WEBHOOK_SECRET", raising=False)
    extraction.extract_conversation_insights(engine, "conv-1", OfflineExtractor(), now=NOW)
    assert receiver.received == []
    [row] = rows(engine)
    assert (row.delivered, row.status_code, row.error) == (False, None, NOT_SIGNED_ERROR)


def test_the_secret_comes_from_settings(
    engine: Engine, setup: dict[str, Any], receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISSION_WEBHOOK_SECRET", "from-env")
    assert load_settings().webhook_secret == SecretStr("from-env")
    # Explicit settings are used as given (the service's ctx.settings), not the environment.
    explicit = WebhookSender.from_settings(
        Settings(webhook_secret=SecretStr("from-ctx")), sleep=lambda _s: None
    )
    deliver_conversation_insights(engine, "conv-1", now=NOW, sender=explicit)
    # Without settings the environment is read through Settings.
    deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=WebhookSender.from_settings(sleep=lambda _s: None)
    )
    first, second = receiver.received
    assert verify_signature("from-ctx", first.body, first.headers[SIGNATURE_HEADER])
    assert verify_signature("from-env", second.body, second.headers[SIGNATURE_HEADER])
    assert "from-env" not in repr(WebhookSender.from_settings())
    assert "from-env" not in repr(load_settings())


def test_a_finished_call_is_delivered_signed_with_the_services_secret(
    engine: Engine, setup: dict[str, Any], receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The automatic path (the dispatcher's listener) signs with ctx.settings, not the
    # environment of whoever imported the module.
    monkeypatch.delenv("MISSION_WEBHOOK_SECRET", raising=False)
    ctx = Context(
        engine=engine,
        clock=VirtualClock(NOW),
        provider=ScriptedProvider(),
        settings=Settings(webhook_secret=SecretStr("from-ctx")),
        extractor=OfflineExtractor(),
    )
    install_listeners(ctx)
    ctx.notify_call_finished(
        CallFinished(
            scheduled_event_id="sev-1",
            run_id=None,
            step_id=None,
            assistant_id="a-1",
            status="completed",
            call_status="completed",
            conversation_id="conv-1",
            attempts=1,
            finished_at=NOW,
            end_user_target="+13125550101",
        )
    )
    [post] = receiver.received
    assert verify_signature("from-ctx", post.body, post.headers[SIGNATURE_HEADER])


def test_the_secret_never_appears_in_logs_errors_or_records(
    engine: Engine,
    setup: dict[str, Any],
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "whsec-TOP-SECRET-value-7c1f"
    monkeypatch.setenv("MISSION_WEBHOOK_SECRET", secret)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    receiver.statuses[:] = [500, 500, 404]
    sent = WebhookSender.from_settings(sleep=lambda _s: None, max_attempts=2)
    seen.append(repr(sent))
    failed = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sent)
    assert failed is not None and not failed.delivered
    seen.append(failed.model_dump_json())
    refused = redeliver(engine, failed.delivery_id, now=NOW, sender=sent)
    seen.append(refused.model_dump_json())
    with pytest.raises(NotFound) as unknown:
        redeliver(engine, "no-such-delivery", now=NOW, sender=sent)
    seen.append(str(unknown.value))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service.assign_insight_group(
        engine,
        setup["seeded"].assistant_id,
        setup["group"].insight_group_id,
        webhook_url=f"http://127.0.0.1:{port}/down",
        now=NOW,
    )
    down = redeliver(engine, "conv-1", now=NOW, sender=sent)
    assert not down.delivered
    seen.append(down.model_dump_json())
    seen.extend(d.model_dump_json() for d in list_deliveries(engine, "conv-1"))
    seen.extend(repr(r.model_dump()) for r in rows(engine))
    seen.append(caplog.text)
    seen.append(repr(load_settings()))
    assert len(rows(engine)) == 5
    for text in seen:
        assert secret not in text
    # It was used all the same: the requests that got through are signed with it.
    assert all(
        verify_signature(secret, r.body, r.headers[SIGNATURE_HEADER]) for r in receiver.received
    )


def test_redeliver_by_delivery_id_or_conversation_id(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    receiver.statuses[:] = [500]
    first = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender(max_attempts=1))
    assert first is not None and not first.delivered
    again = redeliver(engine, first.delivery_id, now=NOW, sender=sender())
    assert again.delivered and again.delivery_id != first.delivery_id
    by_conversation = redeliver(engine, "conv-1", now=NOW, sender=sender())
    assert by_conversation.delivered
    assert len(receiver.received) == 3
    # Newest first.
    assert [d.delivery_id for d in list_deliveries(engine, "conv-1")] == [
        by_conversation.delivery_id,
        again.delivery_id,
        first.delivery_id,
    ]
    assert [d.delivered for d in list_deliveries(engine, "conv-1")] == [True, True, False]


def test_list_deliveries_filters_by_conversation_status_and_limit(
    engine: Engine, setup: dict[str, Any], receiver: Any, seed: Callable[..., Any]
) -> None:
    other = seed(engine, TURNS, conversation_id="conv-2", assistant_id=setup["seeded"].assistant_id)
    receiver.statuses[:] = [404]
    failed_1 = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    ok_1 = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    receiver.statuses[:] = [404]
    failed_2 = deliver_conversation_insights(
        engine, other.conversation_id, now=NOW, sender=sender()
    )
    ok_2 = deliver_conversation_insights(engine, other.conversation_id, now=NOW, sender=sender())
    assert failed_1 and ok_1 and failed_2 and ok_2
    assert not failed_1.delivered and not failed_2.delivered and ok_2.delivered

    def ids(**filters: Any) -> list[str]:
        return [d.delivery_id for d in list_deliveries(engine, **filters)]

    assert ids() == [ok_2.delivery_id, failed_2.delivery_id, ok_1.delivery_id, failed_1.delivery_id]
    assert ids(status="failed") == [failed_2.delivery_id, failed_1.delivery_id]
    assert ids(status="delivered", conversation_id="conv-1") == [ok_1.delivery_id]
    assert ids(limit=1) == [ok_2.delivery_id]
    paged, cursor = [], None
    while True:  # pages of one, each delivery once, newest first
        page = list_deliveries(engine, limit=1, cursor=cursor)
        paged.extend(d.delivery_id for d in page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert paged == ids()
    failed_page = list_deliveries(engine, status="failed", limit=1)
    assert [d.delivery_id for d in failed_page] == [failed_2.delivery_id]
    later = list_deliveries(engine, status="failed", limit=1, cursor=failed_page.next_cursor)
    assert [d.delivery_id for d in later] == [failed_1.delivery_id] and later.next_cursor is None
    with pytest.raises(ValidationError) as other_filters:
        list_deliveries(engine, status="delivered", cursor=failed_page.next_cursor)
    assert other_filters.value.field == "cursor"
    [listed] = list_deliveries(engine, "conv-1", status="failed")
    assert listed.attempts[0].error == "HTTP 404" and listed.attempts[0].status_code == 404
    with pytest.raises(ValidationError) as bad_status:
        list_deliveries(engine, status="broken")
    assert bad_status.value.field == "status"
    with pytest.raises(ValidationError) as bad_limit:
        list_deliveries(engine, limit=0)
    assert bad_limit.value.field == "limit"
    with pytest.raises(NotFound):
        list_deliveries(engine, "ghost")


def test_redeliver_refuses_unknown_ids_and_conversations_without_a_webhook(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    with pytest.raises(NotFound):
        redeliver(engine, "nope", now=NOW, sender=sender())
    seed(engine, TURNS, conversation_id="conv-plain")
    with pytest.raises(ConfigurationError, match="no insights webhook"):
        redeliver(engine, "conv-plain", now=NOW, sender=sender())
    assert deliver_conversation_insights(engine, "conv-plain", now=NOW, sender=sender()) is None


def test_credentials_in_a_webhook_url_are_masked_in_records() -> None:
    assert redact_url("https://user:pw@hooks.example.com/in?token=abc&x=1") == (
        "https://***@hooks.example.com/in?token=%2A%2A%2A&x=%2A%2A%2A"
    )
