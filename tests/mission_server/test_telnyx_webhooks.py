"""Telnyx webhooks at ``/telnyx/webhooks`` on the HTTP server: an Ed25519-signed
``call.conversation.ended`` brings the call's outcome check forward and wakes the dispatcher;
``call.conversation_insights.generated`` ends the extraction's wait; an unsigned, badly
signed or stale one is answered 401 and changes nothing. The route needs no bearer token
(Telnyx cannot send one), while ``/mcp`` still does."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr
from sqlalchemy import select
from starlette.testclient import TestClient

from mission_server.insights.wakeup import INSIGHTS_READY
from mission_server.mcp.server import build_server
from mission_server.mcp.telnyx_webhooks import PATH, install_telnyx_webhooks
from mission_server.services.context import Context
from mission_server.settings import Settings
from state import models as m
from tests.conftest import T0

KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
CALL_CONTROL_ID = "v3:call-control-7f2"
TOKEN = "mcp-http-token-for-the-webhook-test"


def signed(body: bytes, at: datetime, key: Ed25519PrivateKey = KEY) -> dict[str, str]:
    stamp = str(int(at.timestamp()))
    signature = key.sign(stamp.encode() + b"|" + body)
    return {
        "Telnyx-Signature-Ed25519": base64.b64encode(signature).decode(),
        "Telnyx-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def webhook(event_type: str, **payload: Any) -> bytes:
    body = {"data": {"event_type": event_type, "id": "e-1", "payload": payload}, "meta": {}}
    return json.dumps(body).encode()


@pytest.fixture
def served(ctx: Context) -> tuple[Context, TestClient, list[datetime]]:
    ctx.settings = Settings(TELNYX_PUBLIC_KEY=PUBLIC)
    ctx.wall_clock = ctx.clock  # the tolerance is checked on the wall clock: pinned here
    woken: list[datetime] = []
    ctx.wakeups.append(woken.append)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        conn.execute(
            m.Assistant.__table__.insert().values(
                assistant_id="a1",
                name="Caller",
                instructions="x",
                provider="telnyx",
                provider_ref="assistant-telnyx-1",
                keep_number=False,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            m.ScheduledEvent.__table__.insert().values(
                scheduled_event_id="se-1",
                assistant_id="a1",
                telnyx_conversation_channel="phone_call",
                telnyx_end_user_target="+13125550101",
                telnyx_agent_target="+13125550100",
                scheduled_at_fixed_datetime=now,
                requested_at=now,
                due_at=now + timedelta(minutes=10),  # the next outcome poll
                status="in_progress",
                current_attempt=1,
                in_flight_call_control_id=CALL_CONTROL_ID,
                created_at=now,
                updated_at=now,
            )
        )
    server = build_server(ctx, auth_token=SecretStr(TOKEN))
    install_telnyx_webhooks(server, ctx)
    return ctx, TestClient(server.streamable_http_app()), woken


def due_at(ctx: Context) -> datetime:
    with ctx.engine.connect() as conn:
        return conn.execute(
            select(m.ScheduledEvent.__table__.c.due_at).where(
                m.ScheduledEvent.__table__.c.scheduled_event_id == "se-1"
            )
        ).scalar_one()


def test_a_signed_conversation_ended_checks_the_call_at_once(served) -> None:
    ctx, client, woken = served
    body = webhook("call.conversation.ended", call_control_id=CALL_CONTROL_ID, to="+13125550101")
    answer = client.post(PATH, content=body, headers=signed(body, ctx.now()))  # no bearer
    assert answer.status_code == 200, answer.text
    assert answer.json()["calls_woken"] == 1
    assert due_at(ctx) == T0  # checked now, not at the next poll in 10 minutes
    assert woken == [T0]


def test_the_call_is_found_by_its_assistant_and_callee_too(served) -> None:
    ctx, client, _ = served
    body = webhook("call.conversation.ended", assistant_id="assistant-telnyx-1", to="+13125550101")
    answer = client.post(
        PATH, content=body, headers=signed(body, ctx.now() - timedelta(seconds=299))
    )
    assert answer.json()["calls_woken"] == 1 and due_at(ctx) == T0


def test_insights_generated_ends_the_extractions_wait(served) -> None:
    ctx, client, _ = served
    started = threading.Event()

    def wait_for_insights() -> None:
        started.set()
        INSIGHTS_READY.sleep(600)

    waiting = threading.Thread(target=wait_for_insights, daemon=True)
    waiting.start()
    started.wait(10)
    body = webhook("call.conversation_insights.generated", call_control_id=CALL_CONTROL_ID)
    while waiting.is_alive():  # a wake before the sleep began is not remembered: send again
        answer = client.post(PATH, content=body, headers=signed(body, ctx.now()))
        assert answer.status_code == 200 and answer.json()["extraction_woken"] is True
        waiting.join(0.2)
    assert not waiting.is_alive()


@pytest.mark.parametrize(
    "case",
    ["bad signature", "other key", "stale", "from the future", "missing", "no timestamp"],
)
def test_an_unverified_webhook_is_refused_and_changes_nothing(served, case: str) -> None:
    ctx, client, woken = served
    body = webhook("call.conversation.ended", call_control_id=CALL_CONTROL_ID)
    headers = signed(body, ctx.now())
    if case == "bad signature":
        headers = signed(body.replace(b"e-1", b"e-2"), ctx.now())  # signed another body
    elif case == "other key":
        headers = signed(body, ctx.now(), Ed25519PrivateKey.generate())
    elif case == "stale":
        headers = signed(body, ctx.now() - timedelta(seconds=301))
    elif case == "from the future":
        headers = signed(body, ctx.now() + timedelta(seconds=301))
    elif case == "missing":
        headers = {"Content-Type": "application/json"}
    else:
        del headers["Telnyx-Timestamp"]
    wakes = INSIGHTS_READY.wakes
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == 401
    assert "not a verified Telnyx webhook" in answer.json()["error"]
    assert due_at(ctx) == T0 + timedelta(minutes=10) and woken == []
    assert INSIGHTS_READY.wakes == wakes


def test_without_telnyx_public_key_every_webhook_is_refused(served) -> None:
    ctx, client, woken = served
    ctx.settings = Settings(TELNYX_PUBLIC_KEY=None)
    body = webhook("call.conversation.ended", call_control_id=CALL_CONTROL_ID)
    answer = client.post(PATH, content=body, headers=signed(body, ctx.now()))
    assert answer.status_code == 401 and "TELNYX_PUBLIC_KEY is not set" in answer.json()["error"]
    assert due_at(ctx) == T0 + timedelta(minutes=10) and woken == []


def test_mcp_itself_still_needs_the_bearer_token(served) -> None:
    _, client, _ = served
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert answer.status_code == 401


@pytest.mark.slow
def test_mission_serve_http_answers_telnyx_webhooks_without_the_bearer(tmp_path) -> None:
    from tests.mission_server.test_server_transports import free_port, http_server, server_env

    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    env = server_env(MISSION_HTTP_TOKEN=TOKEN, TELNYX_PUBLIC_KEY=PUBLIC)
    body = webhook("call.conversation_insights.generated", call_control_id=CALL_CONTROL_ID)
    with http_server(tmp_path, port, env) as log:
        now = datetime.now(UTC)  # the server checks Telnyx's timestamp on the wall clock
        good = httpx.post(url, content=body, headers=signed(body, now), timeout=30)
        unsigned = httpx.post(url, content=body, timeout=30)
        forged = httpx.post(
            url, content=body, headers=signed(body, now, Ed25519PrivateKey.generate()), timeout=30
        )
        server_log = log.read_text()
    assert good.status_code == 200, good.text
    assert good.json()["extraction_woken"] is True
    assert unsigned.status_code == forged.status_code == 401
    assert f"Telnyx webhooks at http://127.0.0.1:{port}{PATH}" in server_log


def test_the_telnyx_extractor_waits_between_polls_on_the_insights_webhook(monkeypatch) -> None:
    """Between polls the extractor sleeps on ``INSIGHTS_READY``, so the webhook's wake ends
    the wait (shown above); polling is still how it reads the results."""
    from mission_server.app import make_extractor
    from mission_server.insights import wakeup
    from mission_server.insights.base import InsightDefinition
    from mission_server.telephony.telnyx.provider import TelnyxProvider
    from tests.support.telnyx import FakeTelnyx, reply

    class Recorded(wakeup.Wakeup):
        def __init__(self) -> None:
            super().__init__()
            self.waits: list[float] = []

        def sleep(self, seconds: float) -> None:
            self.waits.append(seconds)  # returns at once, as after a wake

    recorded = Recorded()
    monkeypatch.setattr(wakeup, "INSIGHTS_READY", recorded)
    fake = FakeTelnyx()
    path = "/ai/conversations/conv-1/conversations-insights"
    record = {"id": "r1", "created_at": "2026-03-10T15:00:00Z"}
    meta = {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": 1}
    fake.on(
        "GET",
        path,
        reply(
            200,
            {
                "data": [record | {"status": "in_progress", "conversation_insights": []}],
                "meta": meta,
            },
        ),
        reply(
            200,
            {
                "data": [
                    record
                    | {
                        "status": "completed",
                        "conversation_insights": [{"insight_id": "i1", "result": "Yes, $62."}],
                    }
                ],
                "meta": meta,
            },
        ),
    )
    provider = TelnyxProvider(SecretStr("KEY-never-logged"), transport=httpx.MockTransport(fake))
    try:
        extractor = make_extractor(Settings(), provider)
        result = extractor.extract(
            InsightDefinition("i1", "Quote", "What was quoted?"), [], conversation_id="conv-1"
        )
    finally:
        provider.close()
    assert (result.status, result.result) == ("completed", "Yes, $62.")
    assert len(recorded.waits) == 1  # one wait, on the webhook's wakeup, between the two polls
