"""``TelnyxClient``: the HTTP side of the Telnyx v2 API over the shared retrying transport
(``mission_server.net.retry``): auth, requests, pagination, decoding and errors.

Bearer ``TELNYX_API_KEY``; timeouts on every request; bounded retries with jittered
exponential backoff on the transport's retryable statuses (408, 425, 429, 500, 502, 503, 504)
and transport errors, honouring ``Retry-After`` (seconds or HTTP date; a longer wait than the
client's ``max_retry_after`` fails fast as retryable). A request that is not idempotent
(creating an assistant, placing a call) is re-sent only when Telnyx certainly did not act on
it (429, connection not established), unless the caller checks first (``before_resend``).
The API key is held as a ``SecretStr`` and is scrubbed from every message built here, so it
never reaches a log record, an exception or a repr.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from mission_server.errors import ConfigurationError, ProviderError, ValidationError
from mission_server.net.retry import RETRYABLE_STATUSES, Attempt, Exchange, HttpClient, RetryPolicy
from mission_server.telephony.telnyx.mapping import failure_summary, parse_error_body

__all__ = ["DEFAULT_BASE_URL", "SENT_MAYBE", "TelnyxClient", "seg"]

DEFAULT_BASE_URL = "https://api.telnyx.com/v2"
#: How error messages say that a request may have had its effect.
SENT_MAYBE = "may have reached Telnyx"

_PAGE_SIZE = 100
# A guard against a server that keeps reporting more pages; far above any real account.
_MAX_PAGES = 1000


def seg(value: str) -> str:
    """One URL path segment; ids come from outside, so they must not add path levels."""
    if not value:
        raise ValidationError("id", "must not be empty", value)
    return quote(value, safe="")


class TelnyxClient:
    """Telnyx API calls that answer decoded JSON or raise ``ProviderError`` (``code`` and
    ``detail`` carry Telnyx's error code and text; ``retryable`` says whether trying later may
    help) or ``ConfigurationError`` (an unusable base URL)."""

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = 30.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = HttpClient(
            base_url=self.base_url,
            api_key=api_key,
            timeout=timeout,
            headers={"Accept": "application/json"},
            policy=policy,
            name="Telnyx",
            transport=transport,
            sleep=sleep,
            now=clock,
            rng=rng,
        )
        self.policy = self._http.policy

    def __repr__(self) -> str:
        return f"TelnyxClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._http.close()

    def scrub(self, text: str) -> str:
        """``text`` without the API key."""
        return self._http.scrub(text)

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        before_resend: Callable[[Attempt], bool] | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> Exchange:
        """Send with the client's retry policy; ``result`` turns the exchange into the
        decoded body or an error. ``idempotent`` defaults to the method's (GET yes, POST and
        PATCH no)."""
        return self._http.send(
            method,
            path,
            params=params,
            json=json,
            headers=headers,
            retry=True,
            idempotent=idempotent,
            before_resend=before_resend,
            on_attempt=on_attempt,
            label=f"{method} {path}",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One API call with bounded retries; the decoded JSON body (None when empty).

        Raises:
            ProviderError: a 4xx, an exhausted retry budget, or an unsafe-to-retry failure.
            ConfigurationError: the base URL has an unsupported scheme.
        """
        exchange = self.send(
            method, path, params=params, json=json, headers=headers, idempotent=idempotent
        )
        return self.result(exchange, f"{method} {path}")

    def result(self, exchange: Exchange, where: str) -> Any:
        """The decoded body of a successful exchange.

        Raises:
            ProviderError: see ``request``. Errors are raised ``from None``: httpx exceptions
                hold the Request, whose headers carry the bearer key, and exception chains end
                up in error reporters.
            ConfigurationError: the base URL has an unsupported scheme.
        """
        last = exchange.last
        tries = len(exchange.attempts)
        after = f"after {tries} attempt{'s' if tries != 1 else ''}"
        if last.error is not None:
            if isinstance(last.error, httpx.UnsupportedProtocol):
                raise ConfigurationError(
                    f"TELNYX_BASE_URL {self.base_url!r} has an unsupported scheme; use https://"
                )
            failure = self._http.describe(last)
            if exchange.stop == "unsafe":
                raise ProviderError(
                    f"Telnyx {where} failed ({failure}) and was not retried: the request "
                    f"{SENT_MAYBE} and is not idempotent; check before retrying",
                    retryable=True,
                )
            raise ProviderError(
                f"Telnyx {where} failed {after}; last error: {failure}",
                retryable=last.retryable,
            )
        response = last.response
        assert response is not None
        status = response.status_code
        if status < 400:
            return self._decode(response, where)
        error = self.error_for(response, where)
        if exchange.stop == "done":
            raise error
        if exchange.stop == "unsafe":
            raise ProviderError(
                f"{error} Not retried: the request {SENT_MAYBE} and is not idempotent; "
                "check before retrying",
                status_code=status,
                code=error.code,
                detail=error.detail,
                retryable=True,
            )
        if exchange.stop == "retry_after":
            raise ProviderError(
                f"Telnyx {where} answered HTTP {status} and asked to retry after "
                f"{exchange.retry_after or 0:.0f}s, longer than the "
                f"{self.policy.max_retry_after:.0f}s this client waits; try again later",
                status_code=status,
                code=error.code,
                detail=error.detail,
                retryable=True,
            )
        raise ProviderError(
            f"Telnyx {where} failed {after}; last error: {failure_summary(status, error)}",
            status_code=status,
            retryable=True,
        )

    def paginate(
        self, path: str, *, params: Mapping[str, Any] | None = None, page_size: int = _PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (``page[number]``/``page[size]``, ``meta.total_pages``)."""
        for page in range(1, _MAX_PAGES + 1):
            query = {**(params or {}), "page[number]": page, "page[size]": page_size}
            body = self.request("GET", path, params=query)
            items = body.get("data") if isinstance(body, dict) else body
            items = [item for item in items or [] if isinstance(item, dict)]
            yield from items
            meta = body.get("meta") if isinstance(body, dict) else None
            total_pages = meta.get("total_pages") if isinstance(meta, dict) else None
            if isinstance(total_pages, int):
                if page >= total_pages:
                    return
            elif len(items) < page_size:
                return
            if not items:
                return

    def _decode(self, response: httpx.Response, where: str) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                f"Telnyx {where} answered HTTP {response.status_code} with a body that is not "
                f"JSON: {self.scrub(response.text[:200])!r}",
                status_code=response.status_code,
                retryable=True,
            ) from None

    def error_for(self, response: httpx.Response, where: str) -> ProviderError:
        """The ``ProviderError`` for a Telnyx error answer, naming its code and detail."""
        status = response.status_code
        code, detail = parse_error_body(response)
        code = self.scrub(code) if code else None
        detail = self.scrub(detail) if detail else None
        telnyx_says = " ".join(part for part in (code, detail) if part)
        suffix = f": {telnyx_says}" if telnyx_says else ""
        if status == 401:
            message = (
                f"TELNYX_API_KEY was rejected by Telnyx (HTTP 401 on {where}){suffix}; "
                "check that the key is a current API v2 key"
            )
        elif status == 403:
            message = (
                f"TELNYX_API_KEY is not allowed to {where} (HTTP 403){suffix}; check the key's "
                "permissions and the account's enabled products"
            )
        elif status == 404:
            message = f"Telnyx {where}: not found (HTTP 404){suffix}"
        else:
            message = f"Telnyx rejected {where} (HTTP {status}){suffix}"
        return ProviderError(
            message,
            status_code=status,
            code=code,
            detail=detail,
            # A later try may help: what the transport retries, a conflict (the idempotency
            # key in use) and any other server error.
            retryable=status in RETRYABLE_STATUSES or status == 409 or status >= 500,
        )
