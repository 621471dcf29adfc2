"""The one retrying HTTP transport every adapter sends through.

``RetryPolicy`` says how often and how long to try; ``HttpClient.send`` is the one loop that
does it. The rules:

* Retries are opt-in per request (``retry=True`` or a policy); without, a request is sent once.
* Retryable answers are defined once, in ``RETRYABLE_STATUSES`` (408, 425, 429, 500, 502, 503,
  504), plus transport errors and timeouts. Any other answer is final and returned as it is.
* Attempts are bounded (``max_attempts``) and so is the total time spent waiting
  (``max_total_wait``). Waits back off exponentially (``backoff_base * 2**(n-1)``, capped at
  ``backoff_max``, with optional equal jitter), unless the server sent ``Retry-After`` (seconds
  or an HTTP date), which is honoured as given; a server that asks for longer than
  ``max_retry_after`` is not retried at all (stop reason ``retry_after``).
* A request that is not idempotent (POST and PATCH, unless the caller passes
  ``idempotent=True`` because it has a guarantee, e.g. an idempotency key the server honours)
  is never re-sent blindly after an ambiguous failure, one where it may have reached the
  server: a timeout or broken connection once it was sent, or 408/5xx. It is re-sent only when
  the failure shows it had no effect (the connection was never made; 425, 429), or when the
  caller's ``before_resend`` hook, called just before the re-send, checks and says so.
* Every wait goes through the injectable ``sleep``; time is read through ``timer`` (latency)
  and ``now`` (HTTP dates), so tests neither sleep nor depend on the wall clock.
* The bearer key lives in one ``SecretStr`` (``BearerAuth``) and is registered with the one
  scrubber (``mission_server.secrets``); ``scrub`` removes it, every other configured secret
  and credential-shaped text, in any case, from any text built from an answer or an error;
  log lines name the method and the URL without its query or credentials.

``send`` never raises for an HTTP or transport failure: it returns an ``Exchange`` (every
``Attempt`` and why it stopped) and the caller turns that into its own result or error.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from mission_server.errors import ValidationError
from mission_server.secrets import SCRUBBER

__all__ = [
    "IDEMPOTENT_METHODS",
    "NOT_ACTED_STATUSES",
    "RETRYABLE_STATUSES",
    "Attempt",
    "BearerAuth",
    "Exchange",
    "HttpClient",
    "RetryPolicy",
    "StopReason",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

#: The answers worth trying again: request timeout, too early, rate limited, and the server
#: errors that are usually transient. Everything else is final.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Of those, the answers that say the server did not act on the request, so even a request
#: that is not idempotent may be sent again.
NOT_ACTED_STATUSES: frozenset[int] = frozenset({425, 429})
#: Methods whose repetition has the effect of one request (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# Raised before the request left this process: it certainly had no effect.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Retrying cannot help: the URL or the request itself is unusable.
_FINAL_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)

_MASK = "**********"

#: Why ``send`` stopped: ``done`` (the last answer or error is not retryable, success
#: included), ``exhausted`` (``max_attempts`` reached), ``wait_budget`` (the next wait would
#: pass ``max_total_wait``), ``retry_after`` (the server asked for a longer wait than
#: ``max_retry_after``), ``unsafe`` (a non-idempotent request failed ambiguously and there is
#: no ``before_resend`` hook) and ``declined`` (the hook said not to re-send).
StopReason = Literal["done", "exhausted", "wait_budget", "retry_after", "unsafe", "declined"]


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>`` per request, so the key lives in one ``SecretStr``
    and not in a client's default headers (nor in its repr)."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth(api_key=SecretStr('{_MASK}'))"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to try one request.

    Args:
        max_attempts: attempts in all, the first included (1 = never retry).
        backoff_base: the wait before the first retry; it doubles per retry.
        backoff_max: the longest backoff wait.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one stops the retries.
        max_total_wait: the most time spent waiting across all retries of one request.
        jitter: equal jitter (a random wait between half the backoff and all of it), so
            clients that failed together spread out.
    """

    max_attempts: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    max_retry_after: float = 60.0
    max_total_wait: float = 120.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ValidationError(
                "max_attempts", "must be an integer of at least 1", self.max_attempts
            )
        for name in ("backoff_base", "backoff_max", "max_retry_after", "max_total_wait"):
            if getattr(self, name) < 0:
                raise ValidationError(name, "must not be negative", getattr(self, name))

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (1 for the first) when the server named
        none: exponential, capped, jittered if the policy says so."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        if not self.jitter:
            return ceiling
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


#: A request that did not opt in to retries: one attempt.
ONCE = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header in seconds from ``now``: delay-seconds or an HTTP date
    (never negative); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Attempt:
    """One try of a request: the answer or the transport error, how long it took
    (``elapsed``, seconds), how long had been waited before it in all (``waited``), and
    whether it may have reached the server and had its effect without us knowing the result
    (``maybe_sent``)."""

    number: int
    response: httpx.Response | None
    error: httpx.TransportError | None
    elapsed: float
    waited: float
    maybe_sent: bool

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def retryable(self) -> bool:
        """Whether the failure is worth another attempt (a success is not)."""
        if self.error is not None:
            return not isinstance(self.error, _FINAL_ERRORS)
        return self.response is not None and self.response.status_code in RETRYABLE_STATUSES


@dataclass(frozen=True)
class Exchange:
    """Every attempt of one request and why the sending stopped (``retry_after``: the wait
    the server asked for, when that is the reason)."""

    attempts: tuple[Attempt, ...]
    stop: StopReason
    retry_after: float | None = None

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def response(self) -> httpx.Response | None:
        return self.last.response

    @property
    def error(self) -> httpx.TransportError | None:
        return self.last.error

    @property
    def maybe_sent(self) -> bool:
        """Whether some attempt may have reached the server without a usable answer."""
        return any(a.maybe_sent for a in self.attempts)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _shown_url(url: httpx.URL) -> str:
    """The URL for a log line: no credentials, no query."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


class HttpClient:
    """An ``httpx.Client`` that sends through ``RetryPolicy``; see the module docstring.

    Args:
        base_url: prefixed to relative request URLs.
        api_key: sent as a bearer token (``BearerAuth``) and scrubbed from every text built here.
        timeout: seconds (or an ``httpx.Timeout``) per attempt.
        headers: default headers.
        policy: the policy of requests sent with ``retry=True``.
        name: how log lines name the peer ("Telnyx", "LLM").
        transport: replaces the network (tests use ``httpx.MockTransport``).
        sleep, timer, now, rng: the seams for waiting, measuring, dating and jitter.
    """

    def __init__(
        self,
        *,
        base_url: str = "",
        api_key: SecretStr | None = None,
        timeout: float | httpx.Timeout = 30.0,
        headers: Mapping[str, str] | None = None,
        policy: RetryPolicy | None = None,
        name: str = "HTTP",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timer: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.name = name
        self._api_key = api_key if api_key is not None and api_key.get_secret_value() else None
        if self._api_key is not None:
            SCRUBBER.add(self._api_key.get_secret_value())
        self._sleep = sleep
        self._timer = timer
        self._now = now
        self._rng = rng
        self._client = httpx.Client(
            base_url=base_url,
            auth=BearerAuth(self._api_key) if self._api_key is not None else None,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            headers=dict(headers or {}),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpClient(name={self.name!r}, base_url={str(self._client.base_url)!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        """``text`` with the API key and every other known secret masked, whatever their case
        (servers may echo them back), by the one scrubber."""
        return SCRUBBER.scrub(text)

    def describe(self, attempt: Attempt) -> str:
        """A short, secret-free account of a failed attempt: ``HTTP 503`` or
        ``ReadTimeout: timed out``."""
        if attempt.error is not None:
            return self.scrub(f"{type(attempt.error).__name__}: {attempt.error}".rstrip(": "))
        return f"HTTP {attempt.status_code}"

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | RetryPolicy = False,
        idempotent: bool | None = None,
        before_resend: Callable[[Attempt], bool] | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
        label: str | None = None,
    ) -> Exchange:
        """Send the request, retrying as ``retry`` allows; see the module docstring.

        Args:
            retry: False sends once; True uses the client's policy; a policy overrides it.
            idempotent: whether re-sending has the effect of sending once; by default true for
                GET, HEAD, OPTIONS, PUT, DELETE and TRACE.
            before_resend: for a request that is not idempotent, called after an ambiguous
                failure and the wait, just before re-sending it: True re-sends, False stops
                (``declined``). Without it such a request stops there (``unsafe``).
            on_attempt: called after every attempt (e.g. to record it).
            label: names the request in log lines (default: the method and the URL without
                its query).

        Never raises for HTTP or transport failures; exceptions from the hooks propagate.
        """
        policy = self.policy if retry is True else retry if isinstance(retry, RetryPolicy) else ONCE
        method = method.upper()
        safe = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        attempts: list[Attempt] = []
        waited = 0.0
        number = 0
        while True:
            number += 1
            request = self._client.build_request(
                method, url, params=params, json=json, content=content, headers=headers
            )
            where = label or f"{method} {_shown_url(request.url)}"
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            started = self._timer()
            try:
                response = self._client.send(request)
            except httpx.TransportError as exc:
                error = exc
            elapsed = self._timer() - started
            if error is not None:
                maybe_sent = not isinstance(error, _NOT_SENT + _FINAL_ERRORS)
            else:
                assert response is not None
                log.debug(
                    "%s %s -> HTTP %d (attempt %d)", self.name, where, response.status_code, number
                )
                maybe_sent = (
                    response.status_code in RETRYABLE_STATUSES
                    and response.status_code not in NOT_ACTED_STATUSES
                )
            attempt = Attempt(number, response, error, elapsed, waited, maybe_sent)
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)

            if not attempt.retryable:
                return Exchange(tuple(attempts), "done")
            ask_first = attempt.maybe_sent and not safe
            if ask_first and before_resend is None:
                return Exchange(tuple(attempts), "unsafe")
            if number >= policy.max_attempts:
                return Exchange(tuple(attempts), "exhausted")
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After"), self._now())
                if response is not None
                else None
            )
            if retry_after is not None and retry_after > policy.max_retry_after:
                return Exchange(tuple(attempts), "retry_after", retry_after)
            delay = retry_after if retry_after is not None else policy.backoff(number, self._rng)
            if waited + delay > policy.max_total_wait:
                return Exchange(tuple(attempts), "wait_budget")
            log.warning(
                "%s %s failed (%s)%s; retry %d of %d in %.2fs",
                self.name,
                where,
                self.describe(attempt),
                " and may have reached the server, which is checked first" if ask_first else "",
                number,
                policy.max_attempts - 1,
                delay,
            )
            self._sleep(delay)
            waited += delay
            if ask_first and before_resend is not None and not before_resend(attempt):
                return Exchange(tuple(attempts), "declined")
