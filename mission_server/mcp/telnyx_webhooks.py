"""``POST /telnyx/webhooks`` on ``mission serve --http``: Telnyx's own webhooks.

Telnyx cannot send our bearer token, so the route is outside it (an MCP custom route); what
guards it is Telnyx's Ed25519 signature, checked against ``TELNYX_PUBLIC_KEY`` with a 300 s
timestamp tolerance on the context's wall clock (``telephony.telnyx.webhooks``). Anything unsigned,
badly signed or stale is answered 401 and changes nothing. A verified body goes to
``services.telnyx_events`` (wake the dispatcher or the extraction).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mission_server.services.context import Context
from mission_server.services.telnyx_events import handle_telnyx_event
from mission_server.telephony.telnyx.webhooks import WebhookRefused, verify_signature

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

log = logging.getLogger(__name__)

PATH = "/telnyx/webhooks"
#: Telnyx webhook bodies are a few kilobytes; a conversation's messages can make them larger.
MAX_BODY_BYTES = 1_000_000


def telnyx_webhook_handler(ctx: Context) -> Any:
    async def handle(request: Request) -> Response:
        import anyio.to_thread

        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            # Telnyx signs with real time: the wall clock, whatever the service clock is.
            verify_signature(
                body, request.headers, ctx.settings.telnyx_public_key, ctx.wall_clock.now()
            )
        except WebhookRefused as refused:
            log.warning("refused a Telnyx webhook: %s", refused)
            return JSONResponse({"error": f"not a verified Telnyx webhook: {refused}"}, 401)
        try:
            event = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        outcome = await anyio.to_thread.run_sync(handle_telnyx_event, ctx, event)
        return JSONResponse(
            {
                "received": True,
                "event_type": outcome.event_type,
                "calls_woken": outcome.calls_woken,
                "extraction_woken": outcome.extraction_woken,
            }
        )

    return handle


def install_telnyx_webhooks(server: MCPServer, ctx: Context) -> None:
    """Serve ``POST /telnyx/webhooks`` beside ``/mcp`` on the server's HTTP app."""
    server.custom_route(PATH, methods=["POST"], include_in_schema=False)(
        telnyx_webhook_handler(ctx)
    )
