"""Error mapping of the MCP layer: a user error (``USER_ERRORS``) or an argument error
becomes a tool error (``isError``) or a resource error whose text names the field, the rule and
the value; anything else stays a crash, which the SDK reports without internals.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mcp.server.mcpserver import Context as MCPContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, Icon, TextContent, ToolAnnotations
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from mission_server.errors import USER_ERRORS, shown
from mission_server.mcp.schemas import result_content, slim
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
            if err["type"] == "missing":  # its input is the whole object: nothing to show
                parts.append(f"{where} is required")
                continue
            if err["type"] == "literal_error":  # as the service's require_choice says it
                expected = (err.get("ctx") or {}).get("expected", "")
                parts.append(f"{where} must be one of {expected}, got {shown(err['input'])}")
                continue
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
                return tool_result(await fn(*args, **kwargs))
            except EXPECTED as exc:
                raise ToolError(describe_error(exc)) from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return tool_result(fn(*args, **kwargs))
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


def unknown_arguments(
    tool: str,
    arguments: Mapping[str, Any],
    known: Mapping[str, Any],
    explained: Mapping[str, str] | None = None,
) -> str | None:
    """The error for the ``arguments`` a tool does not take (``known`` are its parameters), or
    ``None`` when there are none. Each one is named with the closest known name, or with
    ``explained``'s reason when the tool refuses it on purpose (``schedule_sms`` and the retry
    arguments)."""
    unknown = [name for name in arguments if name not in known]
    if not unknown:
        return None
    parts = []
    for name in unknown:
        text = f"unknown argument {shown(name)}"
        reason = (explained or {}).get(name)
        if reason:
            text += f": {reason}"
        else:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
            if close:
                text += f"; did you mean {shown(close[0])}?"
            else:
                text += f"; {tool} takes {', '.join(known) or 'no arguments'}"
        parts.append(f"{text} (got {shown(arguments[name])})")
    return f"Error executing tool {tool}: {'; '.join(parts)}. Nothing was done."


def tool_result(result: Any) -> Any:
    """A tool's return value, scrubbed of secrets; a model becomes the ``CallToolResult`` the
    client gets: its structured content without the optional fields that have no value
    (``mcp.schemas.result_content``), and the same JSON, compact, as the text block for clients
    that read only text (the SDK would repeat it indented, half again the bytes)."""
    if not isinstance(result, BaseModel):
        return scrub_data(result)
    content = scrub_data(result_content(result))
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=content)


class MissionMCPServer(MCPServer):
    """``MCPServer`` whose tools take exactly their arguments: an unknown one is refused,
    naming it and the closest known name, before anything runs (input schemas say
    ``additionalProperties: false``). Argument errors read like the service's: one line per
    problem naming the field, the rule and the value (no pydantic boilerplate); a bad prompt
    request is "invalid params", not an internal error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: tool name → argument name → why the tool refuses that argument on purpose.
        self._explained: dict[str, dict[str, str]] = {}

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        """Add a tool whose input schema refuses unknown properties; both its schemas are
        published slimmed (``mcp.schemas.slim``)."""
        super().add_tool(fn, name, title, description, annotations, icons, meta, structured_output)
        tool = self._tool_manager.get_tool(name or fn.__name__)
        if tool is not None:
            slim(tool.parameters, output=False)["additionalProperties"] = False
            if tool.fn_metadata.output_schema is not None:
                slim(tool.fn_metadata.output_schema, output=True)

    def explain_refused(self, tool: str, reasons: Mapping[str, str]) -> None:
        """Say why ``tool`` refuses these arguments (argument name → reason), in place of the
        "did you mean" of an unknown argument."""
        self._explained.setdefault(tool, {}).update(reasons)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: MCPContext | None = None
    ) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            known = tool.parameters.get("properties", {})
            problem = unknown_arguments(name, arguments, known, self._explained.get(name))
            if problem:
                log.info("Tool %r refused unknown arguments: %r", name, sorted(arguments))
                raise ToolError(scrub(problem))
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
