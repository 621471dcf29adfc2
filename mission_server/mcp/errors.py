"""Error mapping of the MCP layer: a user error (``USER_ERRORS``) or an argument error
becomes a tool error (``isError``) or a resource error whose text names the field, the rule and
the value; anything else stays a crash, which the SDK reports without internals.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import Context as MCPContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import ValidationError as PydanticValidationError

from mission_server.errors import USER_ERRORS, shown
from mission_server.secrets import scrub, scrub_data
from state.errors import NotFound

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def describe_error(exc: Exception) -> str:
    """The user-facing text of a service or argument error (never includes a traceback nor
    a secret)."""
    if isinstance(exc, PydanticValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            parts.append(
                f"{where} {err['msg'][:1].lower()}{err['msg'][1:]}, got {shown(err['input'])}"
            )
        return scrub("; ".join(parts))
    return scrub(str(exc))


#: What becomes an error result: a user error, or arguments that fail their schema.
EXPECTED = (*USER_ERRORS, PydanticValidationError)


def as_tool(fn: F) -> F:
    """Wrap a tool function so its result is scrubbed of secrets and expected errors become
    ``ToolError`` (an ``isError`` result
    whose text names the field, rule and value). Anything else stays a crash: the SDK logs it
    and the client sees a generic message, so internals never leak."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return scrub_data(await fn(*args, **kwargs))
            except EXPECTED as exc:
                raise ToolError(describe_error(exc)) from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return scrub_data(fn(*args, **kwargs))
        except EXPECTED as exc:
            raise ToolError(describe_error(exc)) from exc

    return wrapper  # type: ignore[return-value]


def as_resource(fn: F) -> F:
    """Wrap a resource function: an unknown id is a not-found error, other expected errors a
    resource error, both with the service's message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return scrub_data(fn(*args, **kwargs))
        except NotFound as exc:
            raise ResourceNotFoundError(scrub(str(exc))) from exc
        except EXPECTED as exc:
            raise ResourceError(describe_error(exc)) from exc

    return wrapper  # type: ignore[return-value]


class MissionMCPServer(MCPServer):
    """``MCPServer`` whose argument errors read like the service's: one line per problem
    naming the field, the rule and the value (no pydantic boilerplate); a bad prompt request
    is "invalid params", not an internal error."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: MCPContext | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, PydanticValidationError):
                raise ToolError(
                    f"Error executing tool {name}: invalid arguments: {describe_error(cause)}"
                ) from cause
            raise

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        context: MCPContext | None = None,
    ) -> Any:
        # The SDK reports a missing argument or an unknown prompt as an internal error; it is
        # the caller's mistake, so say so with "invalid params" and the SDK's message.
        try:
            return await super().get_prompt(name, arguments, context)
        except ValueError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
