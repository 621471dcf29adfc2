"""Who may see the pages: the Host check (as for MCP), the bearer token or the session cookie
it buys, and the headers every answer carries.

The session cookie is ``<issued>.<mac>``: the wall-clock second it was issued and an
HMAC-SHA256 of it under a key derived from the token, so it proves the browser once knew the
token, expires after ``SESSION_SECS`` and dies when the token changes. It is HttpOnly and
SameSite=Strict (Secure too when the page was served over https).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mission_server.clock import Clock

SESSION_COOKIE = "mission_session"
SESSION_SECS = 12 * 3600
#: Paths answered without a session: the sign-in form, our own CSS and JavaScript (they hold
#: no record), and /.well-known/ (an MCP client's OAuth discovery must keep getting 404 there,
#: not a sign-in page).
PUBLIC_PREFIXES = ("/login", "/static/", "/.well-known/")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make form posts send Origin: null
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _matches(value: str, allowed: list[str]) -> bool:
    """The MCP SDK's rule for Host and Origin values: exact, or ``base:*`` for any port."""
    if value in allowed:
        return True
    return any(a.endswith(":*") and value.startswith(a[:-2] + ":") for a in allowed)


class Gate:
    """The checks of one web server: ``token`` None means no sign-in (``mission ui``, loopback
    only); ``security`` is the Host/Origin policy ``mission serve`` gives MCP."""

    def __init__(
        self, token: SecretStr | None, security: TransportSecuritySettings, wall_clock: Clock
    ) -> None:
        secret = token.get_secret_value() if token is not None else None
        self.signs_in = secret is not None
        self._token = (secret or "").encode()
        self._key = hmac.new(self._token, b"mission-web-session-v1", hashlib.sha256).digest()
        self._security = security
        self._clock = wall_clock

    # ---------------------------------------------------------------- headers

    def host_ok(self, host: str | None) -> bool:
        if not self._security.enable_dns_rebinding_protection:
            return True
        return bool(host) and _matches(host or "", self._security.allowed_hosts)

    def origin_ok(self, origin: str | None) -> bool:
        """A missing Origin is a same-origin request (or no browser at all)."""
        if not origin or not self._security.enable_dns_rebinding_protection:
            return True
        return _matches(origin, self._security.allowed_origins)

    # ---------------------------------------------------------------- credentials

    def token_ok(self, given: str) -> bool:
        return self.signs_in and hmac.compare_digest(given.encode(), self._token)

    def issue(self) -> str:
        issued = str(int(self._clock.now().timestamp()))
        return f"{issued}.{self._mac(issued)}"

    def session_ok(self, cookie: str | None) -> bool:
        if not cookie or "." not in cookie:
            return False
        issued, mac = cookie.split(".", 1)
        if not issued.isdigit() or not hmac.compare_digest(mac, self._mac(issued)):
            return False
        age = self._clock.now().timestamp() - int(issued)
        return 0 <= age < SESSION_SECS

    def authorised(self, request: Request) -> bool:
        if not self.signs_in:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given and self.token_ok(given.strip()):
            return True
        return self.session_ok(request.cookies.get(SESSION_COOKIE))

    def _mac(self, issued: str) -> str:
        return hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()


class GateMiddleware:
    """Host check (421), then the session (401 with the sign-in form), then the app; every
    answer gets ``SECURITY_HEADERS``."""

    def __init__(
        self,
        app: ASGIApp,
        gate: Gate,
        unauthorised: Callable[[Request], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.gate = gate
        self.unauthorised = unauthorised

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        request = Request(scope)
        if not self.gate.host_ok(request.headers.get("host")):
            response: Response = PlainTextResponse("Invalid Host header", status_code=421)
        elif not self.gate.origin_ok(request.headers.get("origin")):
            response = PlainTextResponse("Invalid Origin header", status_code=403)
        elif self.gate.authorised(request) or scope["path"].startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send_with_headers)
            return
        else:
            response = await self.unauthorised(request)
        await response(scope, receive, send_with_headers)
