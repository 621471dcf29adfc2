"""Webhooks go only to public addresses unless MISSION_WEBHOOK_ALLOW_PRIVATE=1: every address
class is refused when configured and, after resolution, when sent (DNS rebinding); redirects
are not followed. DNS is faked (``socket.getaddrinfo``); the network is 127.0.0.1 only."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from mission_server.errors import ValidationError
from mission_server.insights.offline import OfflineExtractor
from mission_server.net.webhooks import WebhookSender, refused_address_class, validate_webhook_url
from mission_server.services import extraction
from mission_server.services import insights as service
from mission_server.services.webhooks import deliver_conversation_insights

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC = "93.184.216.34"

REFUSED = [
    ("http://127.0.0.1:5432/", "loopback"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://app.localhost/hook", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("https://192.168.1.1/", "private"),
    ("http://[fd00::1]/", "private"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "reserved"),
]


TURNS = [
    ("assistant", "What would you charge per person for 40 guests?"),
    ("user", "We'd be at $62 per person. Delivery is included."),
]


@pytest.fixture
def setup(engine: Engine, seed: Callable[..., Any]) -> dict[str, Any]:
    """conv-1 with an extracted result in a group with no URL of its own."""
    quote = service.create_insight(
        engine,
        name="Quote",
        now=NOW,
        parameters=[{"name": "price_per_person", "type": "number", "required": True}],
    )
    group = service.create_insight_group(engine, "Catering", [quote.insight_id], now=NOW)
    seeded = seed(engine, TURNS)
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    extraction.extract_conversation_insights(
        engine, seeded.conversation_id, OfflineExtractor(), now=NOW, deliver=False
    )
    return {"group": group, "seeded": seeded}


@pytest.fixture(autouse=True)
def no_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISSION_WEBHOOK_ALLOW_PRIVATE", "0")


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_every_non_public_address_class_is_refused_when_configured(url: str, kind: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_webhook_url(url)
    assert kind in str(refused.value) and "MISSION_WEBHOOK_ALLOW_PRIVATE" in str(refused.value)
    assert validate_webhook_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("239.1.1.1", "multicast"),
        ("198.18.0.1", "private"),
        ("100.64.0.1", "reserved"),
        (PUBLIC, None),
        ("2606:4700::1111", None),
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    assert refused_address_class(address) == kind


def test_public_urls_and_names_are_accepted_when_configured() -> None:
    assert validate_webhook_url(f"http://{PUBLIC}/hook") == f"http://{PUBLIC}/hook"
    assert validate_webhook_url("https://hooks.example.com/in") == "https://hooks.example.com/in"


def test_the_opt_in_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISSION_WEBHOOK_ALLOW_PRIVATE", "1")
    assert validate_webhook_url("http://127.0.0.1:5432/") == "http://127.0.0.1:5432/"


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> None:
    """``getaddrinfo`` answering ``answers[host]`` in turn (the last one repeats); numeric
    hosts and AI_NUMERICHOST behave as the real one."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        if kwargs.get("flags", 0) & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "not numeric")
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def point_webhook(engine: Engine, setup: dict[str, Any], url: str) -> None:
    service.assign_insight_group(
        engine,
        setup["seeded"].assistant_id,
        setup["group"].insight_group_id,
        webhook_url=url,
        now=NOW,
    )


def sender(transport: httpx.BaseTransport | None = None, **options: Any) -> WebhookSender:
    return WebhookSender(secret="s3cret-key", sleep=lambda _s: None, transport=transport, **options)


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["169.254.169.254"], ["10.0.0.1"], ["::1"], [PUBLIC, "127.0.0.1"]],
)
def test_a_name_resolving_to_a_refused_address_is_not_sent(
    engine: Engine,
    setup: dict[str, Any],
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
    addresses: list[str],
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    fake_dns(monkeypatch, {"hooks.example.com": [addresses]})
    point_webhook(engine, setup, f"http://hooks.example.com:{port}/hook")
    delivery = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    assert delivery is not None and not delivery.delivered
    [attempt] = delivery.attempts  # refused, never retried
    assert attempt.error and attempt.error.startswith("not sent:")
    assert attempt.latency_ms is None and attempt.status_code is None
    assert receiver.received == []


def test_dns_rebinding_cannot_reach_the_local_receiver(
    engine: Engine, setup: dict[str, Any], receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public when configured and at the first attempt, loopback at the retry: the retry is
    checked again, and each connection goes to the address that was checked."""
    port = receiver.base_url.rsplit(":", 1)[1]
    fake_dns(monkeypatch, {"rebind.example.com": [[PUBLIC], ["127.0.0.1"]]})
    point_webhook(engine, setup, f"http://rebind.example.com:{port}/hook")
    seen: list[httpx.Request] = []
    real = httpx.HTTPTransport()

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if request.url.host == PUBLIC:
                return httpx.Response(503)
            return real.handle_request(request)

    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=sender(Recording(), max_attempts=3)
    )
    assert delivery is not None and not delivery.delivered
    assert [a.status_code for a in delivery.attempts] == [503, None]
    assert "loopback" in (delivery.attempts[-1].error or "")
    assert [r.url.host for r in seen] == [PUBLIC]  # pinned to the checked address
    assert seen[0].headers["Host"] == f"rebind.example.com:{port}"
    assert receiver.received == []


def test_https_keeps_the_name_for_tls_while_connecting_to_the_checked_address(
    engine: Engine, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {"hooks.example.com": [[PUBLIC]]})
    point_webhook(engine, setup, "https://hooks.example.com/hook")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=sender(httpx.MockTransport(answer))
    )
    assert delivery is not None and delivery.delivered
    [request] = seen
    assert request.url.host == PUBLIC
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["Host"] == "hooks.example.com"


def test_redirects_are_not_followed(
    engine: Engine, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {"hooks.example.com": [[PUBLIC]]})
    point_webhook(engine, setup, "http://hooks.example.com/hook")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:5432/"})

    delivery = deliver_conversation_insights(
        engine, "conv-1", now=NOW, sender=sender(httpx.MockTransport(answer))
    )
    assert delivery is not None and not delivery.delivered
    assert [a.error for a in delivery.attempts] == ["HTTP 302"]
    assert len(seen) == 1


def test_a_url_configured_with_the_opt_in_is_refused_at_send_time_without_it(
    engine: Engine, setup: dict[str, Any], receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISSION_WEBHOOK_ALLOW_PRIVATE", "1")
    point_webhook(engine, setup, f"{receiver.base_url}/hook")
    assert deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender()).delivered  # type: ignore[union-attr]
    monkeypatch.setenv("MISSION_WEBHOOK_ALLOW_PRIVATE", "0")
    again = deliver_conversation_insights(engine, "conv-1", now=NOW, sender=sender())
    assert again is not None and not again.delivered
    assert "loopback" in (again.attempts[0].error or "")
    assert len(receiver.received) == 1
