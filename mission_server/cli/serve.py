"""``mission serve``: the MCP server over stdio (default) or streamable HTTP.

The dispatcher runs in the same process (APScheduler real-time trigger) unless
``--no-dispatcher`` is given, in which case ``mission worker`` processes place the calls.
Everything the server logs goes to stderr: on stdio, stdout carries the protocol alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from mission_server.cli.common import (
    DbOption,
    ExtractorOption,
    SeedOption,
    SimulateOption,
    WorldOption,
    err_console,
    fail,
    ledger_path_for,
    setup_logging,
    user_errors,
)

# Not server_http (the MCP SDK) nor settings (pydantic): they would slow every other `mission`
# command down, `mission --help` included.
from mission_server.defaults import DEFAULT_HTTP_HOST as DEFAULT_HOST
from mission_server.defaults import DEFAULT_HTTP_PORT as DEFAULT_PORT

log = logging.getLogger("mission_server.serve")

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings
    from pydantic import SecretStr
    from starlette.applications import Starlette

    from mission_server.services.context import Context


def http_app(
    server: MCPServer,
    ctx: Context,
    host: str,
    security: TransportSecuritySettings,
    token: SecretStr | None,
) -> Starlette:
    """The HTTP application of ``mission serve --http``: MCP at ``/mcp`` and the run pages at
    ``/`` (``mission_server.web``), under the same Host rules and the same token (the pages
    take it once, at /login, for a session cookie). ``token`` None serves both without one
    (``--no-auth``, loopback only)."""
    from starlette.requests import Request
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    from mission_server.web.app import build_web_app

    def to_mcp(request: Request) -> RedirectResponse:
        # What Starlette did for /mcp/ before the pages took every other path.
        return RedirectResponse(request.url.replace(path="/mcp"), status_code=307)

    asgi = server.streamable_http_app(host=host, transport_security=security)
    asgi.router.routes += [
        Route("/mcp/", to_mcp, methods=["GET", "POST", "DELETE"]),
        Mount("/", app=build_web_app(ctx, token=token, security=security)),
    ]
    return asgi


def serve(
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve streamable HTTP instead of stdio: MCP at /mcp, the run pages at /.",
        ),
    ] = False,
    host: Annotated[
        str, typer.Option(help="HTTP bind address (loopback unless --allowed-host is given).")
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="HTTP port.", min=1, max=65535)] = DEFAULT_PORT,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="HTTP without the bearer token; loopback hosts only (MCP Inspector, "
            "conformance suite).",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Host header value clients use (repeatable), e.g. mcp.example.com:8765; "
            "required to bind a non-loopback address.",
        ),
    ] = None,
    db: DbOption = None,
    simulate: SimulateOption = False,
    world: WorldOption = None,
    sim_speed: Annotated[
        float | None,
        typer.Option(
            help="Simulated seconds per wall-clock second (default 60, or MISSION_SIM_SPEED)."
        ),
    ] = None,
    seed: SeedOption = None,
    extractor: ExtractorOption = None,
    no_dispatcher: Annotated[
        bool,
        typer.Option(
            "--no-dispatcher",
            help="Do not place calls from this process; run `mission worker` instead.",
        ),
    ] = False,
    poll_secs: Annotated[
        float, typer.Option(help="Dispatcher safety sweep interval (seconds).", min=0.05)
    ] = 1.0,
) -> None:
    """Serve the mission tools, resources and prompts over MCP (stdio by default)."""
    from mission_server.app import MissionApp
    from mission_server.mcp.http import check_http_options
    from mission_server.mcp.server import build_server
    from mission_server.settings import load_settings

    setup_logging()
    if sim_speed is not None and not sim_speed > 0:
        # build_context treats a falsy speed as "not given", so 0 would silently become 60.
        raise fail(f"--sim-speed must be greater than 0, got {sim_speed:g}")
    with user_errors():
        settings = load_settings(extractor=extractor)
        security = (
            check_http_options(host, settings.http_token, no_auth, allowed_host) if http else None
        )
        app = MissionApp.open(
            settings,
            background_extraction=True,
            db_url=db,
            simulate=simulate or None,
            world=world,
            seed=seed,
            sim_speed=sim_speed,
            # Placements survive a restart: the next process resolves calls in flight.
            ledger_path=ledger_path_for(db if db is not None else settings.db_url),
        )
    try:
        with user_errors():
            # Before the dispatcher starts: runs interrupted by a stop continue where they were.
            resumed = app.recover()
        if resumed:
            log.info("resumed %d unfinished mission run(s)", len(resumed))
        server = build_server(
            app.ctx,
            runner=lambda: app.runner,
            dispatcher_running=lambda: app.dispatching,
            auth_token=settings.http_token if http and not no_auth else None,
        )
        if not no_dispatcher:
            app.start_dispatching(poll_secs)
        else:
            app.start_mirroring()  # the Telnyx Portal mirror, when on (workers deliver it too)
        ctx = app.ctx
        where = "in this process" if not no_dispatcher else "external (mission worker)"
        if http:
            import uvicorn

            from mission_server.mcp.telnyx_webhooks import PATH, install_telnyx_webhooks

            assert security is not None  # http: check_http_options gave it
            # Telnyx's own webhooks, verified by their Ed25519 signature (not the bearer).
            install_telnyx_webhooks(server, ctx)
            asgi = http_app(server, ctx, host, security, None if no_auth else settings.http_token)
            auth_text = "no auth (loopback only)" if no_auth else "bearer token required"
            err_console.print(
                f"MCP over streamable HTTP at http://{host}:{port}/mcp ({auth_text}); "
                f"run pages at http://{host}:{port}/; "
                f"provider {ctx.provider.name}; dispatcher {where}; Telnyx webhooks at "
                f"http://{host}:{port}{PATH}"
                + ("" if settings.telnyx_public_key else " (refused: TELNYX_PUBLIC_KEY is not set)")
            )
            from mission_server.mcp.idle import idle_timeout_protocol

            # log_config=None keeps uvicorn on our stderr logging (its default sends access
            # logs to stdout).
            uvicorn.Server(
                uvicorn.Config(
                    asgi,
                    host=host,
                    port=port,
                    log_config=None,
                    access_log=False,
                    lifespan="on",
                    http=idle_timeout_protocol(settings.http_idle_secs),
                )
            ).run()
        else:
            import anyio

            log.info("MCP over stdio; provider %s; dispatcher %s", ctx.provider.name, where)
            anyio.run(server.run_stdio_async)
    finally:
        app.close()
