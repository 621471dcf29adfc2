"""``mission ui``: the run inspection pages (``mission_server.web``) for a local database, on
127.0.0.1 only and without a token. ``mission serve --http`` serves the same pages beside
``/mcp``, behind its token."""

from __future__ import annotations

from typing import Annotated

import typer

from mission_server.cli.common import DbOption, err_console, setup_logging, user_errors

DEFAULT_UI_PORT = 8766
UI_HOST = "127.0.0.1"


def ui(
    db: DbOption = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = (
        DEFAULT_UI_PORT
    ),
) -> None:
    """Serve the Missions, Run and Conversation pages on 127.0.0.1 (read-only, no token)."""
    import uvicorn

    from mission_server.app import records_context
    from mission_server.mcp.http import transport_security
    from mission_server.web.app import build_web_app

    setup_logging()
    with user_errors():
        ctx = records_context(db)
    try:
        app = build_web_app(ctx, token=None, security=transport_security(UI_HOST, None))
        err_console.print(
            f"Run pages at http://{UI_HOST}:{port}/ (read-only; loopback only, no token)"
        )
        uvicorn.Server(
            uvicorn.Config(app, host=UI_HOST, port=port, log_config=None, access_log=False)
        ).run()
    finally:
        ctx.engine.dispose()
