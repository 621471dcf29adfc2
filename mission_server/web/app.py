"""The pages' Starlette application: Missions, Run and Conversation, read-only (GET only,
besides the sign-in form), server-rendered with Jinja2 (autoescape on), behind ``auth.Gate``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from mission_server.errors import USER_ERRORS
from mission_server.services.context import Context
from mission_server.web import views
from mission_server.web.auth import SESSION_COOKIE, SESSION_SECS, Gate, GateMiddleware
from state.errors import NotFound
from state.transitions import RUN_STATUSES

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
MAX_LOGIN_BODY = 4096
LIVE_POLL_MS = 2000
#: The run page lists this many events; the rest are counted (``mission runs events``).
EVENTS_SHOWN = 200


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True
    )
    env.filters.update(
        when=views.when,
        span=views.span,
        pretty_json=views.pretty_json,
        first_line=views.first_line,
    )
    env.globals.update(statuses=RUN_STATUSES, poll_ms=LIVE_POLL_MS, events_shown=EVENTS_SHOWN)
    return env


def _cut(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + f"… ({len(value)} characters)"


def _safe_next(value: str | None) -> str:
    """Only a path on this server: never another origin (``//host``, ``/\\host``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def build_web_app(
    ctx: Context,
    *,
    token: SecretStr | None,
    security: TransportSecuritySettings,
) -> ASGIApp:
    """The pages over ``ctx``'s records. With ``token``, a browser signs in once at /login
    (or sends ``Authorization: Bearer``); without, every page is open (``mission ui``, on
    loopback). ``security`` is the Host/Origin policy (the one ``mission serve`` gives MCP).
    """
    env = _environment()
    gate = Gate(token, security, ctx.wall_clock)

    def page(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("signs_in", gate.signs_in)
        return HTMLResponse(env.get_template(name).render(**values), status_code=status_code)

    def problem(exc: Exception) -> HTMLResponse:
        status = 404 if isinstance(exc, NotFound) else 400
        return page(
            "problem.html",
            status,
            title="Not found" if status == 404 else "Refused",
            message=_cut(str(exc), 300),
        )

    def missions(request: Request) -> Response:
        status = request.query_params.get("status") or None
        cursor = request.query_params.get("cursor") or None
        try:
            data = views.missions_page(ctx, status=status, cursor=cursor)
        except USER_ERRORS as exc:
            return problem(exc)
        return page("missions.html", title="Missions", data=data, md_inline=views.markdown_inline)

    def run(request: Request) -> Response:
        try:
            data = views.run_page(ctx, request.path_params["run_id"])
        except USER_ERRORS as exc:
            return problem(exc)
        return page(
            "run.html",
            title=data.detail.mission_name,
            data=data,
            run=data.detail,
            summary_html=views.markdown_html(data.detail.result_summary),
        )

    def conversation(request: Request) -> Response:
        try:
            data = views.conversation_page(ctx, request.path_params["conversation_id"])
        except USER_ERRORS as exc:
            return problem(exc)
        return page(
            "conversation.html",
            title=data.conversation.name or "Conversation",
            data=data,
            talk=data.conversation,
        )

    async def login_form(request: Request) -> Response:
        if not gate.signs_in:
            return RedirectResponse("/", status_code=303)
        return page(
            "login.html", title="Sign in", next=_safe_next(request.query_params.get("next"))
        )

    async def login(request: Request) -> Response:
        if not gate.signs_in:
            return RedirectResponse("/", status_code=303)
        body = await request.body()
        if len(body) > MAX_LOGIN_BODY:
            return page("login.html", 413, title="Sign in", next="/", error="Too long.")
        form = parse_qs(body.decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        target = _safe_next((form.get("next") or ["/"])[0])
        if not gate.token_ok(given):
            return page(
                "login.html",
                401,
                title="Sign in",
                next=target,
                error="That is not the server's token.",
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            gate.issue(),
            max_age=SESSION_SECS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def unauthorised(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page("login.html", 401, title="Sign in", next=_safe_next(target))

    routes = [
        Route("/", missions, methods=["GET"]),
        Route("/runs/{run_id}", run, methods=["GET"]),
        Route("/conversations/{conversation_id:path}", conversation, methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return GateMiddleware(Starlette(routes=routes), gate, unauthorised)
