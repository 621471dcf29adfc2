"""HTTP transport security for the MCP server: a static bearer token checked in constant time,
host rules (loopback by default) and DNS-rebinding protection that is always on.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr

from mission_server.errors import ConfigurationError
from mission_server.settings import DEFAULT_HTTP_HOST as DEFAULT_HOST
from mission_server.settings import DEFAULT_HTTP_PORT as DEFAULT_PORT

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "StaticTokenVerifier",
    "bearer_auth",
    "check_http_options",
    "is_loopback",
    "transport_security",
]
_LOOPBACK_HOST_HEADERS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]


class StaticTokenVerifier:
    """Accepts exactly one bearer token (``MISSION_HTTP_TOKEN``), compared in constant time."""

    def __init__(self, token: SecretStr) -> None:
        secret = token.get_secret_value()
        if not secret:
            raise ConfigurationError("MISSION_HTTP_TOKEN must not be empty")
        self._token = secret.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token="mission-http-token", client_id="mission-http", scopes=[])
        return None


def bearer_auth(token: SecretStr) -> dict[str, Any]:
    """``MCPServer`` keyword arguments that require ``Authorization: Bearer <token>``.

    Raises:
        ConfigurationError: the token is empty.
    """
    return {
        "token_verifier": StaticTokenVerifier(token),
        # A resource server only: no OAuth endpoints are served, so the issuer is nominal.
        # Validated from the string (the model keeps a path-less URL without a trailing
        # slash); AnyHttpUrl("http://127.0.0.1") built first would add one.
        "auth": AuthSettings.model_validate(
            {"issuer_url": "http://127.0.0.1", "resource_server_url": None}
        ),
    }


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(host: str, allowed_hosts: list[str] | None) -> TransportSecuritySettings:
    """DNS-rebinding protection for ``host``: Host and Origin headers must name this server.

    On loopback the loopback names are allowed (plus ``allowed_hosts``); any other bind
    address needs ``allowed_hosts`` (``Host`` header values such as ``mcp.example.com`` or
    ``mcp.example.com:*``).

    Raises:
        ConfigurationError: a non-loopback host without allowed hosts.
    """
    extra = [h.strip() for h in (allowed_hosts or []) if h.strip()]
    if is_loopback(host):
        hosts = list(_LOOPBACK_HOST_HEADERS)
        if host not in ("127.0.0.1", "localhost", "::1"):
            hosts.append(f"{host}:*")
    else:
        if not extra:
            raise ConfigurationError(
                f"--host {host} is not a loopback address; refusing to serve without "
                "--allowed-host (the Host header values clients will use, e.g. "
                "mcp.example.com:8765) so DNS-rebinding protection can check requests"
            )
        hosts = []
    hosts += extra
    origins: list[str] = []
    for value in hosts:
        origins += [f"http://{value}", f"https://{value}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def check_http_options(
    host: str, token: SecretStr | None, no_auth: bool, allowed_hosts: list[str] | None
) -> TransportSecuritySettings:
    """Validate the HTTP serving options; return the transport security to use.

    Raises:
        ConfigurationError: no token without ``--no-auth``; ``--no-auth`` off loopback; a
            non-loopback host without allowed hosts.
    """
    if no_auth:
        if not is_loopback(host):
            raise ConfigurationError(
                f"--no-auth is only accepted on a loopback host (127.0.0.1, ::1, localhost), "
                f"got --host {host}"
            )
    elif token is None or not token.get_secret_value():
        raise ConfigurationError(
            "MISSION_HTTP_TOKEN is not set: the HTTP server requires "
            "'Authorization: Bearer $MISSION_HTTP_TOKEN'. Set it, or pass --no-auth for a "
            "local tool on 127.0.0.1"
        )
    return transport_security(host, allowed_hosts)
