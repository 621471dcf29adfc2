"""The insight-delivery and memory tools of the MCP server, driven in process through the SDK's
``Client``: deliveries are listed and a failed one re-sent, signed with the secret of the
server's own settings, to a real HTTP server on 127.0.0.1; prior conversations are found
however the number is written. Every error is an ``isError`` result naming field, rule and
value, and nothing is sent or written then."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp.client import Client
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mission_server.clock import VirtualClock
from mission_server.insights.offline import OfflineExtractor
from mission_server.mcp.server import build_server
from mission_server.net.webhooks import SIGNATURE_HEADER, WebhookSender, verify_signature
from mission_server.services import extraction
from mission_server.services import insights as service
from mission_server.services.context import Context
from mission_server.services.webhooks import deliver_conversation_insights
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state import models as m
from tests.support.mcpkit import err, ok

pytestmark = pytest.mark.anyio

SECRET = "whsec-mcp-SECRET-4d2e"
NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
TURNS = [
    ("assistant", "What would you charge per person for 40 guests?"),
    ("user", "We'd be at $62 per person. Delivery is included."),
]


@pytest.fixture(autouse=True)
def no_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tools must use the server's settings, not whatever the environment holds.
    monkeypatch.delenv("MISSION_WEBHOOK_SECRET", raising=False)


def make_ctx(engine: Engine, secret: str | None) -> Context:
    return Context(
        engine=engine,
        clock=VirtualClock(NOW),
        provider=ScriptedProvider(numbers=[]),
        settings=Settings(webhook_secret=SecretStr(secret) if secret is not None else None),
    )


@pytest.fixture
def setup(engine: Engine, seed: Callable[..., Any], receiver: Any) -> dict[str, Any]:
    """A quote insight in a group whose webhook is the receiver, assigned to the assistant of
    conv-1, whose results are extracted (without delivery)."""
    quote = service.create_insight(
        engine,
        name="Quote",
        now=NOW,
        parameters=[
            {"name": "price_per_person", "type": "number", "required": True},
        ],
    )
    group = service.create_insight_group(
        engine, "Catering", [quote.insight_id], webhook_url=f"{receiver.base_url}/hook", now=NOW
    )
    seeded = seed(engine, TURNS, metadata={"customer_id": "123"})
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    extraction.extract_conversation_insights(
        engine, "conv-1", OfflineExtractor(), now=NOW, deliver=False
    )
    return {"quote": quote, "group": group, "seeded": seeded}


def failed_delivery(engine: Engine, receiver: Any) -> str:
    receiver.statuses[:] = [404]  # final at once: no backoff to wait through
    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=WebhookSender(secret=SECRET)
    )
    assert delivery is not None and not delivery.delivered
    return delivery.delivery_id


def delivery_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(m.WebhookDelivery)).all())


# --------------------------------------------------------------------------- deliveries


async def test_a_failed_delivery_is_listed_and_redelivered_signed_with_the_servers_secret(
    engine: Engine, setup: dict[str, Any], receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failed_id = failed_delivery(engine, receiver)
    server = build_server(make_ctx(engine, SECRET))
    async with Client(server) as client:
        failed = await ok(client, "list_webhook_deliveries", status="failed")
        again = await ok(client, "redeliver_webhook", delivery_id=failed_id)
        delivered = await ok(
            client, "list_webhook_deliveries", conversation_id="conv-1", status="delivered"
        )
        everything = await ok(client, "list_webhook_deliveries")
        newest = await ok(client, "list_webhook_deliveries", limit=1)

    [listed] = failed["deliveries"]
    assert listed["delivery_id"] == failed_id and listed["delivered"] is False
    [attempt] = listed["attempts"]
    assert attempt["status_code"] == 404 and attempt["error"] == "HTTP 404"
    assert attempt["latency_ms"] is not None

    assert again["delivered"] is True and again["delivery_id"] != failed_id
    assert again["conversation_id"] == "conv-1"
    assert again["attempts"][0]["status_code"] == 200
    first, resent = receiver.received
    assert resent.body == first.body
    # Signed with the secret of the server's settings (the environment has none).
    assert verify_signature(SECRET, resent.body, resent.headers[SIGNATURE_HEADER])

    assert [d["delivery_id"] for d in delivered["deliveries"]] == [again["delivery_id"]]
    assert [d["delivery_id"] for d in everything["deliveries"]] == [again["delivery_id"], failed_id]
    assert [d["delivery_id"] for d in newest["deliveries"]] == [again["delivery_id"]]
    shown = str(failed) + str(again) + str(everything) + caplog.text
    assert SECRET not in shown


async def test_redeliver_without_a_secret_is_refused_and_sends_nothing(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    failed_id = failed_delivery(engine, receiver)
    server = build_server(make_ctx(engine, None))
    async with Client(server) as client:
        refused = await err(client, "redeliver_webhook", delivery_id=failed_id)
        still_serving = await ok(client, "list_webhook_deliveries", status="failed")

    assert "MISSION_WEBHOOK_SECRET is not set" in refused
    assert "nothing was sent" in refused
    assert len(receiver.received) == 1  # only the original, failed attempt
    assert delivery_rows(engine) == 1
    assert [d["delivery_id"] for d in still_serving["deliveries"]] == [failed_id]


async def test_a_conversation_extracted_without_a_secret_shows_up_as_failed(
    engine: Engine, setup: dict[str, Any], receiver: Any
) -> None:
    # What a finished call does with no secret configured: extraction, then delivery.
    extraction.extract_conversation_insights(engine, "conv-1", OfflineExtractor(), now=NOW)
    server = build_server(make_ctx(engine, None))
    async with Client(server) as client:
        failed = await ok(client, "list_webhook_deliveries", status="failed")

    assert receiver.received == []
    [delivery] = failed["deliveries"]
    [attempt] = delivery["attempts"]
    assert "status_code" not in attempt
    assert "MISSION_WEBHOOK_SECRET is not set" in attempt["error"]


async def test_delivery_tool_errors_name_field_rule_and_value(
    engine: Engine, setup: dict[str, Any], seed: Callable[..., Any], receiver: Any
) -> None:
    seed(engine, TURNS, conversation_id="conv-plain")  # an assistant without a group
    server = build_server(make_ctx(engine, SECRET))
    async with Client(server) as client:
        bad_status = await err(client, "list_webhook_deliveries", status="broken")
        bad_limit = await err(client, "list_webhook_deliveries", limit=0)
        unknown_conversation = await err(client, "list_webhook_deliveries", conversation_id="ghost")
        unknown_delivery = await err(client, "redeliver_webhook", delivery_id="nope")
        no_webhook = await err(client, "redeliver_webhook", delivery_id="conv-plain")
        missing = await err(client, "redeliver_webhook")
        listed = await ok(client, "list_webhook_deliveries")

    assert "status must be one of 'failed' or 'delivered', got 'broken'" in bad_status
    assert "limit must be between 1 and 500, got 0" in bad_limit
    assert "conversation 'ghost' not found" in unknown_conversation
    assert "webhook delivery or conversation 'nope' not found" in unknown_delivery
    assert "conversation 'conv-plain' has no insights webhook" in no_webhook
    assert "delivery_id" in missing
    assert receiver.received == [] and listed["deliveries"] == []


# --------------------------------------------------------------------------- memory


async def test_prior_conversations_are_found_however_the_number_is_written(
    engine: Engine, setup: dict[str, Any], seed: Callable[..., Any]
) -> None:
    assistant_id = setup["seeded"].assistant_id
    seed(
        engine,
        TURNS,
        conversation_id="conv-2",
        assistant_id=assistant_id,
        metadata={"customer_id": "123"},
        created_at=NOW + timedelta(hours=1),
    )
    seed(
        engine,
        TURNS,
        conversation_id="conv-other-customer",
        assistant_id=assistant_id,
        metadata={"customer_id": "999"},
        created_at=NOW + timedelta(hours=2),
    )
    seed(
        engine,
        TURNS,
        conversation_id="conv-other-number",
        assistant_id=assistant_id,
        end_user_target="+13125550202",
        created_at=NOW + timedelta(hours=3),
    )
    server = build_server(make_ctx(engine, SECRET))
    async with Client(server) as client:
        dashed = await ok(client, "list_prior_conversations", target="312-555-0101")
        spaced = await ok(
            client,
            "list_prior_conversations",
            target="+1 312 555 0101",
            metadata={"customer_id": "123"},
        )
        newest = await ok(client, "list_prior_conversations", target="(312) 555-0101", limit=1)
        nobody = await ok(client, "list_prior_conversations", target="+13125550188")

    assert dashed["target"] == "+13125550101"
    assert [c["conversation_id"] for c in dashed["conversations"]] == [
        "conv-other-customer",
        "conv-2",
        "conv-1",
    ]
    assert [c["conversation_id"] for c in spaced["conversations"]] == ["conv-2", "conv-1"]
    oldest = spaced["conversations"][1]
    assert oldest["metadata"] == {"customer_id": "123"}
    [quote] = oldest["insights"]
    assert quote["insight_name"] == "Quote" and quote["status"] == "completed"
    assert quote["result"] == {"price_per_person": 62}
    assert [c["conversation_id"] for c in newest["conversations"]] == ["conv-other-customer"]
    assert nobody == {"target": "+13125550188", "conversations": [], "next_cursor": None}


async def test_prior_conversation_errors_name_field_rule_and_value(engine: Engine) -> None:
    server = build_server(make_ctx(engine, SECRET))
    async with Client(server) as client:
        not_a_number = await err(client, "list_prior_conversations", target="the caterer")
        too_many = await err(client, "list_prior_conversations", target="+13125550101", limit=101)
        bad_metadata = await err(
            client, "list_prior_conversations", target="+13125550101", metadata=["customer_id"]
        )
        missing = await err(client, "list_prior_conversations")

    assert "target must be a phone number in E.164 form" in not_a_number
    assert "got 'the caterer'" in not_a_number
    assert "limit must be between 1 and 100, got 101" in too_many
    assert "metadata" in bad_metadata and '["customer_id"]' in bad_metadata  # JSON, not a repr
    assert "target" in missing
