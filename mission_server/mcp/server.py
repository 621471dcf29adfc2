"""The MCP server: every mission, run, plan, event, assistant, call, variable, conversation and
insight operation of the service as MCP tools, resources and prompts.

``build_server(ctx)`` registers every tool, resource and prompt on one ``MCPServer``; it is the
only place the server is assembled, for ``mission serve`` and the tests alike. Each tool is a
thin adapter over a service function (``mission_server.services``): the rules live there, once.
User errors (``USER_ERRORS``) and argument errors become tool errors (``isError``) whose text
names the field, the rule and the value (``mcp.errors``); the server keeps serving.

The tools live in ``mcp/tools/`` by group, each module with one ``register(tools, ctx)``. To
add a tool, write a function with ``Annotated`` parameters that returns a pydantic model and
add it with ``ToolRegistrar.add`` in its group's ``register``: error mapping and annotations
come with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr

from mission_server.mcp.errors import MissionMCPServer
from mission_server.mcp.prompts import register_prompts
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.mcp.resources import register_resources
from mission_server.mcp.tools import (
    assistants,
    calls,
    do_not_call,
    insights,
    planner,
    plans,
    runs,
    status,
)
from mission_server.mcp.version import SERVER_NAME, server_version
from mission_server.services.context import Context

if TYPE_CHECKING:
    from mission_server.engine.runner import MissionRunner

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Agent missions: plan and run phone-call missions (quotes, negotiations, surveys) and record
every step. Workflow: create_mission → start_run → create_plan → create_assistant (with
{{placeholders}} for interim values) → assign_phone_number → schedule_call → wait_for_call →
read insights → set_run_variables (e.g. best_quote) → next calls → update_plan_step as you go →
update_run(status="succeeded", result_summary=..., result_payload=...). Call server_status
first: it says whether calls are real or simulated and what time it is on the server
(scheduled_at values are in server time). To hand a whole mission to the built-in planner
instead, call run_mission with a spec or a request (and approve_run if it waits for approval),
then follow it with get_run. Read-only views are also resources under mission://."""


# --------------------------------------------------------------------------- the server


def build_server(
    ctx: Context,
    *,
    runner: Callable[[], MissionRunner] | None = None,
    dispatcher_running: Callable[[], bool] | None = None,
    auth_token: SecretStr | None = None,
    wait_poll_secs: float = 0.2,
) -> MCPServer:
    """Build the MCP server over a service context.

    ``runner`` gives the mission runner the planner tools drive (``MissionApp.runner``); by
    default the server makes its own on first use. ``dispatcher_running`` tells
    ``server_status`` whether this process places due calls. ``auth_token`` turns on
    bearer-token checking for the HTTP transport (stdio ignores it). ``wait_poll_secs`` is how
    often ``wait_for_call`` and ``wait_for_run`` re-read what they wait on. Every tool,
    resource and prompt is registered here: this is the whole contract clients see
    (``tests/mission_server/test_contract.py`` pins it).

    Raises:
        ConfigurationError: ``auth_token`` is empty.
    """
    auth_kwargs: dict[str, Any] = {}
    if auth_token is not None:
        from mission_server.mcp.http import bearer_auth

        auth_kwargs = bearer_auth(auth_token)
    server: MCPServer = MissionMCPServer(
        SERVER_NAME,
        title="Agent missions",
        instructions=INSTRUCTIONS,
        version=server_version(),
        **auth_kwargs,
    )
    tools = ToolRegistrar(server)
    running = dispatcher_running or (lambda: False)
    status.register(tools, ctx, running)
    runs.register(tools, ctx, wait_poll_secs)
    plans.register(tools, ctx)
    assistants.register(tools, ctx)
    calls.register(tools, ctx, wait_poll_secs)
    insights.register(tools, ctx)
    do_not_call.register(tools, ctx)
    planner.register(tools, ctx, runner or _lazy_runner(ctx))
    register_resources(server, ctx)
    register_prompts(server)
    return server


def _lazy_runner(ctx: Context) -> Callable[[], MissionRunner]:
    """A runner made on first use, for a server built without a ``MissionApp`` (tests, and
    embedding): the planner is only loaded when a planner tool is called."""
    from mission_server.app import MissionApp

    app = MissionApp(ctx)
    return lambda: app.runner
