"""The one retrying transport (mission_server.net.retry) against httpx.MockTransport, with a
fake sleep: Retry-After, the bounds, what is never re-sent blindly, and secrets. No real
network, no real sleeping."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from mission_server.errors import ValidationError
from mission_server.net.retry import (
    RETRYABLE_STATUSES,
    Attempt,
    BearerAuth,
    HttpClient,
    RetryPolicy,
    parse_retry_after,
)

NOW = datetime(2026, 5, 7, 14, 30, tzinfo=UTC)
KEY = "sk-net-test-do-not-leak"
URL = "https://api.example.test/v1/things"

Step = httpx.Response | type[httpx.TransportError]


class Server:
    """Serves the scripted answers in order (the last one repeating); an exception class is
    raised as a transport error. Records every request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, httpx.Response):
            return step
        raise step("boom", request=request)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(sleeps: list[float]) -> Callable[..., tuple[HttpClient, Server]]:
    def build(*steps: Step, **options: object) -> tuple[HttpClient, Server]:
        server = Server(*steps)
        options.setdefault("policy", RetryPolicy(max_attempts=4))
        client = HttpClient(
            transport=httpx.MockTransport(server),
            sleep=sleeps.append,
            now=lambda: NOW,
            **options,  # type: ignore[arg-type]
        )
        return client, server

    return build


def test_the_retryable_statuses_are_defined_once() -> None:
    assert frozenset({408, 425, 429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


# ---------------------------------------------------------------------- Retry-After


def test_retry_after_in_seconds_is_honoured(make, sleeps) -> None:
    client, server = make(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200))
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "done" and exchange.response is not None
    assert exchange.response.status_code == 200
    assert sleeps == [3.0] and len(server.requests) == 2


def test_retry_after_as_an_http_date_is_honoured(make, sleeps) -> None:
    when = (NOW + timedelta(seconds=7)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    client, _ = make(httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200))
    assert client.send("GET", URL, retry=True).stop == "done"
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("Thu, 07 May 2026 14:30:07 GMT", 7.0),
        ("Thu, 07 May 2026 14:00:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_a_retry_after_longer_than_the_bound_stops_without_waiting(make, sleeps) -> None:
    client, server = make(
        httpx.Response(429, headers={"Retry-After": "3600"}),
        policy=RetryPolicy(max_attempts=4, max_retry_after=30),
    )
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "retry_after" and exchange.retry_after == 3600
    assert sleeps == [] and len(server.requests) == 1


# ---------------------------------------------------------------------- bounds


def test_backoff_doubles_up_to_the_cap_and_attempts_are_bounded(make, sleeps) -> None:
    client, server = make(
        httpx.Response(503),
        policy=RetryPolicy(max_attempts=6, backoff_base=1, backoff_max=4, max_total_wait=100),
    )
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "exhausted"
    assert len(server.requests) == 6 and len(exchange.attempts) == 6
    assert sleeps == [1, 2, 4, 4, 4]
    assert [a.waited for a in exchange.attempts] == [0, 1, 3, 7, 11, 15]


def test_the_total_wait_is_bounded(make, sleeps) -> None:
    client, server = make(
        httpx.Response(500),
        policy=RetryPolicy(max_attempts=10, backoff_base=10, backoff_max=60, max_total_wait=25),
    )
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "wait_budget"
    assert sleeps == [10] and len(server.requests) == 2  # 10 + 20 would pass 25


def test_jitter_stays_between_half_the_backoff_and_all_of_it() -> None:
    policy = RetryPolicy(backoff_base=2, backoff_max=30, jitter=True)
    rng = random.Random(7)
    for retry, ceiling in ((1, 2), (2, 4), (3, 8), (6, 30)):
        for _ in range(20):
            assert ceiling / 2 <= policy.backoff(retry, rng) <= ceiling


def test_retries_are_opt_in_per_request(make, sleeps) -> None:
    client, server = make(httpx.Response(503), httpx.Response(503), httpx.Response(200))
    exchange = client.send("GET", URL)
    assert exchange.stop == "exhausted" and len(exchange.attempts) == 1
    assert sleeps == [] and len(server.requests) == 1
    override = client.send("GET", URL, retry=RetryPolicy(max_attempts=2, backoff_base=0.25))
    assert override.stop == "done" and sleeps == [0.25]


def test_a_final_answer_is_not_retried(make, sleeps) -> None:
    client, server = make(httpx.Response(404), httpx.Response(200))
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "done" and exchange.last.status_code == 404
    assert sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"backoff_base": -1}, "backoff_base"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"max_total_wait": -1}, "max_total_wait"),
    ],
)
def test_bad_policies_are_rejected_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == field


# ---------------------------------------------------------------------- transport errors


def test_transport_errors_and_timeouts_are_retried(make, sleeps) -> None:
    client, server = make(httpx.ConnectError, httpx.ReadTimeout, httpx.Response(200))
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "done" and exchange.response is not None
    assert [type(a.error) for a in exchange.attempts[:2]] == [
        httpx.ConnectError,
        httpx.ReadTimeout,
    ]
    assert [a.maybe_sent for a in exchange.attempts] == [False, True, False]
    assert sleeps == [1.0, 2.0] and len(server.requests) == 3


def test_exhausted_transport_errors_are_returned_not_raised(make) -> None:
    client, server = make(httpx.ReadTimeout)
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "exhausted" and exchange.response is None
    assert isinstance(exchange.error, httpx.ReadTimeout)
    assert client.describe(exchange.last) == "ReadTimeout: boom"
    assert len(server.requests) == 4


def test_an_unusable_url_is_not_retried(make, sleeps) -> None:
    client, server = make(httpx.UnsupportedProtocol)
    exchange = client.send("GET", URL, retry=True)
    assert exchange.stop == "done" and isinstance(exchange.error, httpx.UnsupportedProtocol)
    assert sleeps == [] and len(server.requests) == 1


# ---------------------------------------------------------------------- non-idempotent requests


@pytest.mark.parametrize("failure", [httpx.Response(503), httpx.Response(500), httpx.ReadTimeout])
def test_a_post_that_may_have_reached_the_server_is_not_sent_again(make, sleeps, failure) -> None:
    client, server = make(failure, httpx.Response(201))
    exchange = client.send("POST", URL, json={"a": 1}, retry=True)
    assert exchange.stop == "unsafe" and exchange.maybe_sent
    assert sleeps == [] and len(server.requests) == 1


def test_a_patch_is_not_idempotent_by_default_either(make) -> None:
    client, server = make(httpx.Response(502), httpx.Response(200))
    assert client.send("PATCH", URL, json={}, retry=True).stop == "unsafe"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "failure", [httpx.Response(429), httpx.Response(425), httpx.ConnectError, httpx.ConnectTimeout]
)
def test_a_post_that_certainly_had_no_effect_is_sent_again(make, sleeps, failure) -> None:
    client, server = make(failure, httpx.Response(201))
    exchange = client.send("POST", URL, json={"a": 1}, retry=True)
    assert exchange.stop == "done" and not exchange.maybe_sent
    assert exchange.last.status_code == 201 and len(server.requests) == 2
    assert server.requests[0].content == server.requests[1].content


def test_a_post_declared_idempotent_is_retried(make, sleeps) -> None:
    client, server = make(httpx.ReadTimeout, httpx.Response(503), httpx.Response(200))
    exchange = client.send("POST", URL, json={}, retry=True, idempotent=True)
    assert exchange.stop == "done" and len(server.requests) == 3 and sleeps == [1.0, 2.0]


def test_the_caller_checks_before_a_post_is_sent_again(make, sleeps) -> None:
    client, server = make(httpx.ReadTimeout, httpx.Response(201))
    checked: list[Attempt] = []

    def before_resend(attempt: Attempt) -> bool:
        checked.append(attempt)
        assert sleeps == [1.0]  # the check comes after the wait, just before the re-send
        return True

    exchange = client.send("POST", URL, json={}, retry=True, before_resend=before_resend)
    assert exchange.stop == "done" and exchange.last.status_code == 201
    assert [a.number for a in checked] == [1] and checked[0].maybe_sent
    assert len(server.requests) == 2


def test_the_caller_can_decline_the_re_send(make, sleeps) -> None:
    client, server = make(httpx.Response(503), httpx.Response(201))
    exchange = client.send("POST", URL, json={}, retry=True, before_resend=lambda _a: False)
    assert exchange.stop == "declined" and exchange.last.status_code == 503
    assert len(server.requests) == 1


def test_every_attempt_is_reported_with_its_latency_and_wait(sleeps) -> None:
    ticks = iter(range(100))
    server = Server(httpx.Response(500), httpx.Response(200))
    client = HttpClient(
        transport=httpx.MockTransport(server),
        sleep=sleeps.append,
        timer=lambda: float(next(ticks)),
        policy=RetryPolicy(backoff_base=2),
    )
    seen: list[Attempt] = []
    client.send("POST", URL, content=b"{}", retry=True, idempotent=True, on_attempt=seen.append)
    assert [(a.number, a.status_code, a.elapsed, a.waited) for a in seen] == [
        (1, 500, 1.0, 0.0),
        (2, 200, 1.0, 2.0),
    ]


# ---------------------------------------------------------------------- secrets


def test_the_key_is_sent_as_a_bearer_token_and_never_logged_or_shown(
    make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text=request.headers["Authorization"])

    client = HttpClient(
        api_key=SecretStr(KEY),
        transport=httpx.MockTransport(echo),
        sleep=lambda _s: None,
        policy=RetryPolicy(max_attempts=2),
    )
    exchange = client.send("GET", f"{URL}?token=query-secret", retry=True)
    assert exchange.response is not None
    assert exchange.response.request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in client.scrub(exchange.response.text)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("mission_server")]
    assert any("retry 1 of 1" in message for message in ours)
    for message in ours:
        assert KEY not in message and "query-secret" not in message
    assert KEY not in repr(client) and KEY not in repr(BearerAuth(SecretStr(KEY)))
    assert KEY not in repr(vars(client))
