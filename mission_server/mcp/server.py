"""The MCP server: every mission, run, plan, event, assistant, call, variable, conversation and
insight operation of the service as MCP tools, resources and prompts.

``build_server(ctx)`` registers everything on one ``MCPServer``. Each tool is a thin adapter
over a service function (``missions``, ``assistants``, ``scheduling``, ``insights.service``):
the rules live there, once. Service errors (``MissionError``, ``StateError``) and argument
errors become tool errors (``isError``) whose text names the field, the rule and the value;
the server keeps serving.

To add a tool (e.g. the planner's ``run_mission``), write a function with ``Annotated``
parameters that returns a pydantic model and register it with ``ToolRegistrar.add`` inside
``build_server`` — error mapping and annotations come with it.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context as MCPContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ToolAnnotations
from pydantic import BaseModel, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import col, select

from mission_server.domain.targets import normalise_target
from mission_server.errors import MissionError, ValidationError
from mission_server.mcp.models import (
    AssistantList,
    CallWaitResult,
    ConversationDetail,
    ConversationInsights,
    EventList,
    MissionDetail,
    PhoneNumberList,
    PlanOut,
    PlanStepSpec,
    PriorConversationList,
    RunList,
    RunVariables,
    ScheduledCallList,
    ServerStatus,
    WebhookDeliveryList,
)
from mission_server.mcp.prompts import negotiate_quotes_prompt, plan_mission_prompt
from mission_server.services import assistants as assistant_service
from mission_server.services import insights as insight_service
from mission_server.services import missions as mission_service
from mission_server.services import scheduling as scheduling_service
from mission_server.services import webhooks as webhook_delivery
from mission_server.services.context import Context
from mission_server.services.insight_schemas import (
    AssistantInsightSettingsOut,
    InsightGroupOut,
    InsightOut,
    InsightResultOut,
    WebhookDeliveryOut,
)
from mission_server.services.missions import MissionPage, RunDetail
from mission_server.services.schemas import (
    AssistantOut,
    ConversationOut,
    EventOut,
    MissionOut,
    PhoneNumberOut,
    PlanStepOut,
    RunOut,
    ScheduledEventOut,
)
from state import models as m
from state.db import session_scope
from state.errors import NotFound, StateError
from state.transitions import TERMINAL_EVENT

log = logging.getLogger(__name__)

SERVER_NAME = "agent-missions"
#: Longest a single wait_for_call may block (wall-clock seconds).
MAX_WAIT_SECS = 300.0
DEFAULT_WAIT_SECS = 60.0
#: How often wait_for_call sends a progress notification when nothing changed.
PROGRESS_HEARTBEAT_SECS = 5.0
#: After a call ends, how long wait_for_call waits (within its timeout) for the insight
#: results to be extracted; an LLM extractor takes seconds per insight.
INSIGHT_GRACE_SECS = 30.0

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

F = TypeVar("F", bound=Callable[..., Any])


def _server_version() -> str:
    try:
        return package_version("agent-missions")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


# --------------------------------------------------------------------------- error mapping


def describe_error(exc: Exception) -> str:
    """The user-facing text of a service or argument error (never includes a traceback)."""
    if isinstance(exc, PydanticValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            parts.append(f"{where} {err['msg'][:1].lower()}{err['msg'][1:]}, got {err['input']!r}")
        return "; ".join(parts)
    return str(exc)


_EXPECTED = (MissionError, StateError, PydanticValidationError)


def as_tool(fn: F) -> F:
    """Wrap a tool function so expected errors become ``ToolError`` (an ``isError`` result
    whose text names the field, rule and value). Anything else stays a crash: the SDK logs it
    and the client sees a generic message, so internals never leak."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except _EXPECTED as exc:
                raise ToolError(describe_error(exc)) from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _EXPECTED as exc:
            raise ToolError(describe_error(exc)) from exc

    return wrapper  # type: ignore[return-value]


def as_resource(fn: F) -> F:
    """Wrap a resource function: an unknown id is a not-found error, other expected errors a
    resource error, both with the service's message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        except _EXPECTED as exc:
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


class ToolRegistrar:
    """Registers tool functions with error mapping and MCP annotations."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server

    def add(
        self,
        fn: Callable[..., Any],
        *,
        title: str,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
    ) -> None:
        """Register ``fn`` under its own name; its docstring is the description.

        ``open_world`` marks tools that reach the telephony provider (real phones, when the
        provider is Telnyx).
        """
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=False if read_only else destructive,
            idempotent_hint=True if read_only else idempotent,
            open_world_hint=open_world,
        )
        self.server.add_tool(
            as_tool(fn),
            name=fn.__name__,
            title=title,
            description=inspect.cleandoc(fn.__doc__ or ""),
            annotations=annotations,
        )


# --------------------------------------------------------------------------- shared reads


def conversation_detail(ctx: Context, conversation_id: str) -> ConversationDetail:
    """A conversation with its transcript and insight results.

    Raises:
        NotFound: unknown conversation.
    """
    with session_scope(ctx.engine) as session:
        row = session.get(m.Conversation, conversation_id)
        if row is None:
            raise NotFound("conversation", conversation_id)
        messages = session.exec(
            select(m.Message)
            .where(m.Message.conversation_id == conversation_id)
            .order_by(col(m.Message.seq))
        ).all()
        base = ConversationOut.of(row, list(messages))
    return ConversationDetail(
        **base.model_dump(), insights=conversation_insights(ctx, conversation_id)
    )


def conversation_insights(ctx: Context, conversation_id: str) -> list[InsightResultOut]:
    """The conversation's insight results (empty when none were extracted).

    Raises:
        NotFound: unknown conversation.
    """
    return list(insight_service.get_conversation_insights(ctx.engine, conversation_id))


def _expected_insights(ctx: Context, assistant_id: str) -> int:
    """How many insight results a conversation of this assistant will get: one per insight
    of its group, or the default summary when it has none."""
    group_id = assistant_service.get_assistant(ctx, assistant_id).insight_group_id
    if not group_id:
        return 1
    try:
        return len(insight_service.get_insight_group(ctx.engine, group_id).insight_ids)
    except NotFound:
        return 0


def calling_hours_note(event: ScheduledEventOut) -> str | None:
    """One sentence per calling-hours move of the event, or None when it never moved."""
    if not event.deferrals:
        return None
    return " ".join(
        f"Moved from {d.requested.isoformat()} to {d.moved_to.isoformat()} "
        f"(decided at {d.recorded_at.isoformat()}): {d.reason}."
        for d in event.deferrals
    )


def run_result_markdown(detail: RunDetail) -> str:
    """The run's result as markdown: the summary, then the payload as a JSON block."""
    lines = [
        f"# {detail.mission_name} — run {detail.run_id}",
        "",
        f"Status: **{detail.status}**"
        + (f" (finished {detail.finished_at.isoformat()})" if detail.finished_at else ""),
        "",
    ]
    if detail.error:
        lines += [f"Error: {detail.error}", ""]
    lines += [detail.result_summary or "_No result summary recorded yet._", ""]
    lines += ["## result_payload", "", "```json"]
    lines.append(json.dumps(detail.result_payload, indent=2, default=str))
    lines += ["```", ""]
    return "\n".join(lines)


def _json(model: BaseModel) -> str:
    return model.model_dump_json(indent=2)


# --------------------------------------------------------------------------- the server


def build_server(
    ctx: Context,
    *,
    dispatcher_running: Callable[[], bool] | None = None,
    auth_token: SecretStr | None = None,
    wait_poll_secs: float = 0.2,
    extra_tools: Sequence[Callable[[ToolRegistrar, Context], None]] = (),
) -> MCPServer:
    """Build the MCP server over a service context.

    ``dispatcher_running`` tells ``server_status`` whether this process places due calls.
    ``auth_token`` turns on bearer-token checking for the HTTP transport (stdio ignores it).
    ``wait_poll_secs`` is how often ``wait_for_call`` re-reads the event. Each of
    ``extra_tools`` is called with the registrar and the context to add more tools (e.g.
    the planner's ``run_mission``/``approve_run``) with the same error mapping.

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
        version=_server_version(),
        **auth_kwargs,
    )
    tools = ToolRegistrar(server)
    running = dispatcher_running or (lambda: False)
    _register_status_tools(tools, ctx, running)
    _register_mission_tools(tools, ctx)
    _register_plan_and_event_tools(tools, ctx)
    _register_assistant_tools(tools, ctx)
    _register_call_tools(tools, ctx, wait_poll_secs)
    _register_insight_tools(tools, ctx)
    for register in extra_tools:
        register(tools, ctx)
    _register_resources(server, ctx)
    _register_prompts(server)
    return server


# --------------------------------------------------------------------------- tools: status


def _register_status_tools(
    tools: ToolRegistrar, ctx: Context, dispatcher_running: Callable[[], bool]
) -> None:
    version = _server_version()

    def server_status() -> ServerStatus:
        """Where and when this server runs. Call it first.

        Returns the telephony provider ('simulated': nothing real is dialled; 'telnyx': REAL
        calls), the server's current time (simulated time in simulation — scheduled_at values
        are in this time), the simulation speed, the database kind and whether this process
        places due calls (dispatcher_running; when false, `mission worker` processes must run).
        """
        clock_kind = getattr(ctx.clock, "kind", type(ctx.clock).__name__.lower())
        return ServerStatus(
            provider=ctx.provider.name,
            real_calls=ctx.provider.name == "telnyx",
            server_time=ctx.now(),
            clock=clock_kind,
            sim_speed=float(ctx.clock.speed) if clock_kind == "accelerated" else None,  # type: ignore[attr-defined]
            database=ctx.engine.dialect.name,
            dispatcher_running=dispatcher_running(),
            version=version,
        )

    tools.add(server_status, title="Server status", read_only=True)


# --------------------------------------------------------------------------- tools: missions


def _register_mission_tools(tools: ToolRegistrar, ctx: Context) -> None:
    def create_mission(
        name: Annotated[str, Field(description="Short name, e.g. 'Corporate catering quotes'.")],
        instructions: Annotated[
            str | None, Field(description="What the mission must achieve, in full.")
        ] = None,
        description: Annotated[str | None, Field(description="One-line summary.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Free-form key/values.")
        ] = None,
    ) -> MissionOut:
        """Create a mission: the reusable definition of a task (e.g. 'get catering quotes').

        Use once per kind of task, then start_run for each execution. Returns the mission with
        its mission_id.
        """
        return mission_service.create_mission(
            ctx, name=name, instructions=instructions, description=description, metadata=metadata
        )

    def list_missions(
        limit: Annotated[int | None, Field(description="Page size, 1..500 (default 50).")] = None,
        cursor: Annotated[
            str | None, Field(description="next_cursor from the previous page.")
        ] = None,
    ) -> MissionPage:
        """List missions, newest first, one page at a time.

        Returns missions and next_cursor (pass it as cursor for the next page; null on the
        last page).
        """
        return mission_service.list_missions(ctx, limit=limit, cursor=cursor)

    def get_mission(
        mission_id: Annotated[str, Field(description="The mission's id.")],
    ) -> MissionOut:
        """Get one mission by id."""
        return mission_service.get_mission(ctx, mission_id)

    def start_run(
        mission_id: Annotated[str, Field(description="The mission to run.")],
        input: Annotated[
            dict[str, Any] | None,
            Field(description="The request's parameters, e.g. {'guests': 50, 'city': 'Chicago'}."),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Free-form key/values.")
        ] = None,
    ) -> RunOut:
        """Start a run (one execution) of a mission; it is 'running' at once.

        Next: create_plan for the run, then create the assistant with run_id so it is linked.
        Returns the run with its run_id.
        """
        return mission_service.start_run(ctx, mission_id, input=input, metadata=metadata)

    def get_run(run_id: Annotated[str, Field(description="The run's id.")]) -> RunDetail:
        """Get a run with everything it touched: status, input, variables, result, its plan
        steps, linked assistants (with their numbers), scheduled calls (with call_attempts
        and calling-hours deferrals) and conversations.

        Use it to see where a mission stands.
        """
        return mission_service.get_run(ctx, run_id)

    def list_runs(
        mission_id: Annotated[str | None, Field(description="Only runs of this mission.")] = None,
        status: Annotated[
            str | None,
            Field(
                description="Only runs with this status: pending, running, paused, "
                "succeeded, failed or cancelled."
            ),
        ] = None,
        limit: Annotated[int | None, Field(description="At most this many, 1..500.")] = None,
    ) -> RunList:
        """List runs, newest first, optionally of one mission and/or one status."""
        return RunList(
            runs=mission_service.list_runs(ctx, mission_id=mission_id, status=status, limit=limit)
        )

    def update_run(
        run_id: Annotated[str, Field(description="The run's id.")],
        status: Annotated[
            str | None,
            Field(
                description="New status: running, paused, succeeded, failed or cancelled. "
                "Finished runs (succeeded, failed, cancelled) cannot change status."
            ),
        ] = None,
        result_summary: Annotated[
            str | None,
            Field(description="The outcome for a human, markdown (tables welcome)."),
        ] = None,
        result_payload: Annotated[
            dict[str, Any] | None,
            Field(
                description="The outcome as data, e.g. quotes per business, the "
                "recommendation, conversation_ids."
            ),
        ] = None,
        error: Annotated[str | None, Field(description="Why the run failed.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Merged into the run's metadata.")
        ] = None,
    ) -> RunOut:
        """Change a run's status and/or record its result.

        Finish a mission with status='succeeded', result_summary and result_payload. Moving to
        cancelled, failed or succeeded cancels the run's pending calls; paused holds them.
        """
        return mission_service.update_run(
            ctx,
            run_id,
            status=status,
            result_summary=result_summary,
            result_payload=result_payload,
            error=error,
            metadata=metadata,
        )

    def cancel_run(
        run_id: Annotated[str, Field(description="The run's id.")],
        reason: Annotated[
            str | None, Field(description="Why, recorded as the run's error.")
        ] = None,
    ) -> RunOut:
        """Cancel a run and every pending call of it (calls already finished stay recorded).
        Cannot be undone."""
        return mission_service.cancel_run(ctx, run_id, reason=reason)

    def pause_run(run_id: Annotated[str, Field(description="The run's id.")]) -> RunOut:
        """Pause a run: its pending calls are held (not placed) until resume_run."""
        return mission_service.pause_run(ctx, run_id)

    def resume_run(run_id: Annotated[str, Field(description="The run's id.")]) -> RunOut:
        """Resume a paused run: its held calls become due again."""
        return mission_service.resume_run(ctx, run_id)

    tools.add(create_mission, title="Create mission")
    tools.add(list_missions, title="List missions", read_only=True)
    tools.add(get_mission, title="Get mission", read_only=True)
    tools.add(start_run, title="Start run")
    tools.add(get_run, title="Get run", read_only=True)
    tools.add(list_runs, title="List runs", read_only=True)
    tools.add(update_run, title="Update run", destructive=True, idempotent=True)
    tools.add(cancel_run, title="Cancel run", destructive=True, idempotent=True)
    tools.add(pause_run, title="Pause run", idempotent=True)
    tools.add(resume_run, title="Resume run", idempotent=True)

    def set_run_variables(
        run_id: Annotated[str, Field(description="The run's id.")],
        variables: Annotated[
            dict[str, Any],
            Field(
                description="Name → string, number or boolean, e.g. {'best_quote': '$65 per "
                "person from Lakefront Catering'}. null removes a variable."
            ),
        ],
    ) -> RunVariables:
        """Set interim values (e.g. best_quote) that every later call of the run receives as
        dynamic variables — the assistant's {{best_quote}} placeholders and
        {{#best_quote}}…{{/best_quote}} sections. Merged into the existing variables.

        Use after each call's insights, before the next call is placed.
        """
        merged = mission_service.set_run_variables(ctx, run_id, variables)
        return RunVariables(run_id=run_id, variables=merged)

    def get_run_variables(
        run_id: Annotated[str, Field(description="The run's id.")],
    ) -> RunVariables:
        """Get the run's interim variables (see set_run_variables)."""
        return RunVariables(run_id=run_id, variables=mission_service.get_run_variables(ctx, run_id))

    tools.add(set_run_variables, title="Set run variables", destructive=True, idempotent=True)
    tools.add(get_run_variables, title="Get run variables", read_only=True)


# --------------------------------------------------------------------------- tools: plan, events


def _register_plan_and_event_tools(tools: ToolRegistrar, ctx: Context) -> None:
    def create_plan(
        run_id: Annotated[str, Field(description="The run's id.")],
        steps: Annotated[
            list[PlanStepSpec],
            Field(
                description="The steps in order, e.g. [{'step_id': 'create-assistant', "
                "'description': 'Create the negotiator assistant', 'sequence': 1}, …]."
            ),
        ],
    ) -> PlanOut:
        """Write the run's plan: all steps in one go (all or nothing). Every step starts
        'pending'.

        Plan before acting: a typical negotiation plan is create-assistant → baseline call →
        one leverage call per remaining business → compare-and-recommend. Returns the steps.
        """
        created = mission_service.create_plan(
            ctx, run_id, [s.model_dump(exclude_none=True) for s in steps]
        )
        return PlanOut(run_id=run_id, steps=created)

    def add_plan_step(
        run_id: Annotated[str, Field(description="The run's id.")],
        step_id: Annotated[str, Field(description="Slug unique within the run.")],
        description: Annotated[str, Field(description="What the step does.")],
        sequence: Annotated[
            int | None, Field(description="Order; omitted: after the last step.")
        ] = None,
        parent_step_id: Annotated[str | None, Field(description="Parent step, if any.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Key/values.")] = None,
    ) -> PlanStepOut:
        """Add one step to an existing plan (e.g. a follow-up call you decided on later)."""
        return mission_service.add_plan_step(
            ctx,
            run_id,
            step_id=step_id,
            description=description,
            sequence=sequence,
            parent_step_id=parent_step_id,
            metadata=metadata,
        )

    def update_plan_step(
        run_id: Annotated[str, Field(description="The run's id.")],
        step_id: Annotated[str, Field(description="The step to change.")],
        status: Annotated[
            str,
            Field(description="pending, in_progress, completed, skipped or failed."),
        ],
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Merged into the step's metadata.")
        ] = None,
    ) -> PlanStepOut:
        """Move a plan step to a new status. The matching event (step_started,
        step_completed, step_failed) is logged for you — do not log it again.

        Mark a step in_progress when you start it and completed/failed when done.
        """
        return mission_service.update_plan_step(ctx, run_id, step_id, status, metadata=metadata)

    def log_event(
        run_id: Annotated[str, Field(description="The run's id.")],
        type: Annotated[
            str,
            Field(
                description="status_change, step_started, step_completed, step_failed, "
                "tool_call, tool_result, message, error or custom."
            ),
        ],
        summary: Annotated[str, Field(description="One line for the audit trail.")],
        step_id: Annotated[str | None, Field(description="The step it belongs to.")] = None,
        agent_id: Annotated[str | None, Field(description="Who logged it.")] = None,
        payload: Annotated[dict[str, Any] | None, Field(description="Details as data.")] = None,
        idempotency_key: Annotated[
            str | None,
            Field(
                description="Makes retries safe: a repeated key returns the first event and "
                "writes nothing."
            ),
        ] = None,
    ) -> EventOut:
        """Append an event to the run's audit trail (decisions, findings, errors).

        Returns the event; with a repeated idempotency_key, the event first logged with it.
        """
        return mission_service.log_event(
            ctx,
            run_id,
            type,
            summary,
            step_id=step_id,
            agent_id=agent_id,
            payload=payload,
            idempotency_key=idempotency_key,
        )

    def list_events(
        run_id: Annotated[str, Field(description="The run's id.")],
        type: Annotated[str | None, Field(description="Only events of this type.")] = None,
        step_id: Annotated[str | None, Field(description="Only events of this step.")] = None,
        limit: Annotated[int | None, Field(description="At most this many, 1..5000.")] = None,
    ) -> EventList:
        """List the run's events, oldest first: the audit trail of what happened."""
        return EventList(
            run_id=run_id,
            events=mission_service.list_events(
                ctx, run_id, type=type, step_id=step_id, limit=limit
            ),
        )

    tools.add(create_plan, title="Create plan")
    tools.add(add_plan_step, title="Add plan step")
    tools.add(update_plan_step, title="Update plan step", idempotent=True)
    tools.add(log_event, title="Log event")
    tools.add(list_events, title="List events", read_only=True)


# --------------------------------------------------------------------------- tools: assistants


def _register_assistant_tools(tools: ToolRegistrar, ctx: Context) -> None:
    def create_assistant(
        name: Annotated[str, Field(description="e.g. 'Catering Quote Negotiator'.")],
        instructions: Annotated[
            str,
            Field(
                description="System prompt. Use {{placeholders}} for values that change per "
                "call and sections like {{#best_quote}}We have an offer of {{best_quote}}."
                "{{/best_quote}} that appear only once the variable is set."
            ),
        ],
        greeting: Annotated[
            str | None, Field(description="First sentence the assistant says.")
        ] = None,
        model: Annotated[str | None, Field(description="LLM model name, if not default.")] = None,
        voice: Annotated[str | None, Field(description="Voice name, if not default.")] = None,
        dynamic_variables: Annotated[
            dict[str, Any] | None,
            Field(description="Default values for placeholders."),
        ] = None,
        insight_group_id: Annotated[
            str | None,
            Field(description="Insight group whose insights are extracted from every call."),
        ] = None,
        run_id: Annotated[
            str | None, Field(description="Link the assistant to this run (recommended).")
        ] = None,
    ) -> AssistantOut:
        """Create a voice assistant at the telephony provider and record it.

        One assistant can serve the baseline call and the leverage calls: put the interim
        values in {{placeholders}} and set them with set_run_variables. Next:
        assign_phone_number. Returns the assistant with its assistant_id.
        """
        return assistant_service.create_assistant(
            ctx,
            name=name,
            instructions=instructions,
            greeting=greeting,
            model=model,
            voice=voice,
            dynamic_variables=dynamic_variables,
            insight_group_id=insight_group_id,
            run_id=run_id,
        )

    def update_assistant(
        assistant_id: Annotated[str, Field(description="The assistant's id.")],
        name: Annotated[str | None, Field(description="New name.")] = None,
        instructions: Annotated[str | None, Field(description="New system prompt.")] = None,
        greeting: Annotated[str | None, Field(description="New greeting.")] = None,
        model: Annotated[str | None, Field(description="New model.")] = None,
        voice: Annotated[str | None, Field(description="New voice.")] = None,
        dynamic_variables: Annotated[
            dict[str, Any] | None, Field(description="Replaces the default values.")
        ] = None,
        insight_group_id: Annotated[str | None, Field(description="New insight group.")] = None,
    ) -> AssistantOut:
        """Change an assistant; only the fields given change. Calls already placed keep what
        they were placed with."""
        return assistant_service.update_assistant(
            ctx,
            assistant_id,
            name=name,
            instructions=instructions,
            greeting=greeting,
            model=model,
            voice=voice,
            dynamic_variables=dynamic_variables,
            insight_group_id=insight_group_id,
        )

    def list_assistants(
        run_id: Annotated[str | None, Field(description="Only assistants of this run.")] = None,
        limit: Annotated[int, Field(description="At most this many.", ge=1, le=500)] = 100,
    ) -> AssistantList:
        """List assistants, newest first, with their phone numbers."""
        return AssistantList(
            assistants=assistant_service.list_assistants(ctx, run_id=run_id, limit=limit)
        )

    def list_phone_numbers(
        available_only: Annotated[
            bool, Field(description="Only numbers not assigned to any assistant.")
        ] = False,
    ) -> PhoneNumberList:
        """List the account's phone numbers (caller IDs) and which assistant each is
        assigned to."""
        return PhoneNumberList(
            phone_numbers=assistant_service.list_phone_numbers(ctx, available_only=available_only)
        )

    def assign_phone_number(
        assistant_id: Annotated[str, Field(description="The assistant's id.")],
        phone_number: Annotated[
            str | None,
            Field(
                description="E.164 number of the account; omitted: a free one is picked "
                "(an assistant that already has one keeps it)."
            ),
        ] = None,
        run_id: Annotated[
            str | None, Field(description="Record the assignment in this run's events.")
        ] = None,
    ) -> PhoneNumberOut:
        """Give the assistant a phone number to call from. Required before schedule_call.

        If no number is free the error says how to get one.
        """
        return assistant_service.assign_phone_number(
            ctx, assistant_id, phone_number=phone_number, run_id=run_id
        )

    tools.add(create_assistant, title="Create assistant", open_world=True)
    tools.add(
        update_assistant,
        title="Update assistant",
        destructive=True,
        idempotent=True,
        open_world=True,
    )
    tools.add(list_assistants, title="List assistants", read_only=True)
    tools.add(list_phone_numbers, title="List phone numbers", read_only=True, open_world=True)
    tools.add(assign_phone_number, title="Assign phone number", idempotent=True, open_world=True)


# --------------------------------------------------------------------------- tools: calls

ScheduledAt = Annotated[
    str | None,
    Field(
        description="ISO-8601 with offset, in server time (see server_status), e.g. "
        "'2026-03-10T15:00:00Z'; must be in the future. Omitted: as soon as the recipient's "
        "calling window allows. A time outside calling hours is moved to the next opening (the "
        "result's deferrals say when and why)."
    ),
]
RunIdArg = Annotated[str | None, Field(description="The run this call belongs to (recommended).")]
StepIdArg = Annotated[str | None, Field(description="The plan step this call carries out.")]
IdempotencyKeyArg = Annotated[
    str | None,
    Field(
        description="Makes retries of this request safe: the same key and request return "
        "the first scheduled event unchanged (even after its time has passed); the same key "
        "with different arguments is an error naming the field that differs."
    ),
]
DynamicVariablesArg = Annotated[
    dict[str, Any] | None,
    Field(
        description="Per-call values for the assistant's placeholders (win over run "
        "variables and assistant defaults), e.g. {'business_name': 'Chicago Grill Co'}."
    ),
]
MetadataArg = Annotated[
    dict[str, Any] | None,
    Field(description="Key/values attached to the resulting conversation."),
]


def _register_call_tools(tools: ToolRegistrar, ctx: Context, poll_secs: float) -> None:
    def schedule_call(
        assistant_id: Annotated[str, Field(description="The assistant that will call.")],
        to: Annotated[str, Field(description="Recipient, E.164 (e.g. '+13125550101') or SIP URI.")],
        scheduled_at: ScheduledAt = None,
        from_number: Annotated[
            str | None,
            Field(description="Caller ID; omitted: the assistant's assigned number."),
        ] = None,
        dynamic_variables: DynamicVariablesArg = None,
        conversation_metadata: MetadataArg = None,
        max_retries_client_errors: Annotated[
            int | None,
            Field(
                description="Retries after the first attempt on busy, no-answer, failed or "
                "canceled, 0..10 (default 0)."
            ),
        ] = None,
        retry_interval_secs: Annotated[
            int | None,
            Field(
                description="Seconds between attempts, 60..86400; required when "
                "max_retries_client_errors > 0, rejected otherwise."
            ),
        ] = None,
        run_id: RunIdArg = None,
        step_id: StepIdArg = None,
        idempotency_key: IdempotencyKeyArg = None,
        timezone: Annotated[
            str | None,
            Field(
                description="Recipient's IANA timezone when the number does not tell "
                "(e.g. SIP URIs), e.g. 'America/Chicago'."
            ),
        ] = None,
    ) -> ScheduledEventOut:
        """Schedule an outbound AI phone call inside the recipient's legal calling hours, with
        an optional retry budget.

        Run variables (set_run_variables) are read when the call is placed, not now. Returns
        the scheduled event (scheduled_event_id, scheduled_at_fixed_datetime, status
        'pending', deferrals if calling hours moved it). Then wait_for_call.
        """
        return scheduling_service.create_scheduled_event(
            ctx,
            assistant_id=assistant_id,
            channel="phone_call",
            to=to,
            from_number=from_number,
            scheduled_at=scheduled_at,
            dynamic_variables=dynamic_variables,
            conversation_metadata=conversation_metadata,
            max_retries_client_errors=max_retries_client_errors,
            retry_interval_secs=retry_interval_secs,
            run_id=run_id,
            step_id=step_id,
            idempotency_key=idempotency_key,
            timezone=timezone,
        )

    def schedule_sms(
        assistant_id: Annotated[str, Field(description="The assistant that sends it.")],
        to: Annotated[str, Field(description="Recipient, E.164.")],
        text: Annotated[
            str, Field(description="Message body (placeholders allowed), up to 1600 chars.")
        ],
        scheduled_at: ScheduledAt = None,
        from_number: Annotated[
            str | None, Field(description="Sender; omitted: the assistant's number.")
        ] = None,
        dynamic_variables: DynamicVariablesArg = None,
        conversation_metadata: MetadataArg = None,
        run_id: RunIdArg = None,
        step_id: StepIdArg = None,
        idempotency_key: IdempotencyKeyArg = None,
        timezone: Annotated[
            str | None, Field(description="Recipient's IANA timezone, if not from the number.")
        ] = None,
    ) -> ScheduledEventOut:
        """Schedule an SMS from the assistant's number (no retries: they are phone-call only).
        Returns the scheduled event."""
        return scheduling_service.create_scheduled_event(
            ctx,
            assistant_id=assistant_id,
            channel="sms_chat",
            to=to,
            text=text,
            from_number=from_number,
            scheduled_at=scheduled_at,
            dynamic_variables=dynamic_variables,
            conversation_metadata=conversation_metadata,
            run_id=run_id,
            step_id=step_id,
            idempotency_key=idempotency_key,
            timezone=timezone,
        )

    def get_scheduled_call(
        scheduled_event_id: Annotated[str, Field(description="The scheduled event's id.")],
    ) -> ScheduledEventOut:
        """Get a scheduled call or SMS now, without waiting: status (pending, in_progress,
        completed, failed, cancelled), call_status, call_attempts, errors, deferrals."""
        return scheduling_service.get_scheduled_event(ctx, scheduled_event_id)

    def list_scheduled_calls(
        run_id: Annotated[str | None, Field(description="Only calls of this run.")] = None,
        status: Annotated[
            str | None,
            Field(description="pending, in_progress, completed, failed or cancelled."),
        ] = None,
        limit: Annotated[int | None, Field(description="At most this many, 1..5000.")] = None,
    ) -> ScheduledCallList:
        """List scheduled calls and SMS in scheduled order."""
        return ScheduledCallList(
            scheduled_calls=scheduling_service.list_scheduled_events(
                ctx, run_id=run_id, status=status, limit=limit
            )
        )

    def cancel_scheduled_call(
        scheduled_event_id: Annotated[str, Field(description="The scheduled event's id.")],
    ) -> ScheduledEventOut:
        """Cancel a pending call: no further attempts. Attempts already made stay recorded.
        A call in progress or finished cannot be cancelled; cancelling an already cancelled
        call returns it unchanged. While a dispatcher is placing the call at this very moment
        the cancel is refused: try again in a moment."""
        return scheduling_service.cancel_scheduled_event(ctx, scheduled_event_id)

    async def wait_for_call(
        scheduled_event_id: Annotated[str, Field(description="The scheduled event's id.")],
        mcp_ctx: MCPContext,
        timeout_secs: Annotated[
            float | None,
            Field(
                description="Most wall-clock seconds to wait, 0..300 (default 60).",
                # Shown in the schema only: the range is checked below, with its own message.
                json_schema_extra={"minimum": 0, "maximum": MAX_WAIT_SECS},
            ),
        ] = DEFAULT_WAIT_SECS,
    ) -> CallWaitResult:
        """Wait until a scheduled call is finished (completed, failed or cancelled), then
        return everything about it in one answer: status, call_status, call_attempts,
        conversation_id, the transcript and the insight results (extraction starts when the
        call ends; the tool waits for it within timeout_secs) — plus when and why calling
        hours moved the call.

        Sends progress notifications while waiting. If timeout_secs passes first it returns
        the current state with timed_out=true; call it again to keep waiting.
        """
        wait = DEFAULT_WAIT_SECS if timeout_secs is None else timeout_secs
        if not 0 <= wait <= MAX_WAIT_SECS:
            raise ValidationError(
                "timeout_secs", f"must be between 0 and {MAX_WAIT_SECS:g} seconds", timeout_secs
            )
        # Insights are extracted where calls are dispatched; a worker is configured like this
        # server, so our own extractor says whether results will come.
        extracting = ctx.extractor is not None
        return await _wait_for_call(
            ctx, mcp_ctx, scheduled_event_id, wait, poll_secs, extracting=extracting
        )

    tools.add(schedule_call, title="Schedule call", open_world=True)
    tools.add(schedule_sms, title="Schedule SMS", open_world=True)
    tools.add(get_scheduled_call, title="Get scheduled call", read_only=True)
    tools.add(list_scheduled_calls, title="List scheduled calls", read_only=True)
    # Idempotent: cancelling a cancelled call returns the same event and writes nothing.
    tools.add(
        cancel_scheduled_call, title="Cancel scheduled call", destructive=True, idempotent=True
    )
    tools.add(wait_for_call, title="Wait for call", read_only=True)


def _progress_message(event: ScheduledEventOut) -> str:
    attempts = len(event.call_attempts)
    budget = 1 + event.max_retries_client_errors
    text = f"{event.status}"
    if event.status == "pending":
        text += f", due {event.scheduled_at_fixed_datetime.isoformat()}"
        if event.hold_reason:
            text += f" (held: {event.hold_reason.replace('_', ' ')})"
    if event.call_status:
        text += f", last call_status {event.call_status}"
    return f"{text}; {attempts} of {budget} attempts used"


async def _wait_for_call(
    ctx: Context,
    mcp_ctx: MCPContext,
    scheduled_event_id: str,
    wait: float,
    poll_secs: float,
    *,
    extracting: bool,
) -> CallWaitResult:
    started = time.monotonic()
    deadline = started + wait

    def read() -> ScheduledEventOut:
        return scheduling_service.get_scheduled_event(ctx, scheduled_event_id)

    last: dict[str, Any] = {"message": None, "sent": 0.0}

    async def progress(message: str) -> None:
        now = time.monotonic()
        if message != last["message"] or now - last["sent"] >= PROGRESS_HEARTBEAT_SECS:
            await mcp_ctx.report_progress(round(now - started, 3), wait, message)
            last.update(message=message, sent=now)

    event = await anyio.to_thread.run_sync(read)
    while True:
        await progress(_progress_message(event))
        now = time.monotonic()
        if event.status in TERMINAL_EVENT or now >= deadline:
            break
        await anyio.sleep(min(poll_secs, max(0.0, deadline - now)))
        event = await anyio.to_thread.run_sync(read)

    terminal = event.status in TERMINAL_EVENT
    insights: list[InsightResultOut] = []
    transcript = []
    if event.conversation_id:
        # Insights are extracted by a listener right after the call is recorded; wait for
        # them (within the timeout) so the agent gets them in this answer.
        expected = (
            await anyio.to_thread.run_sync(_expected_insights, ctx, event.assistant_id)
            if extracting
            else 0
        )
        grace_end = min(deadline, time.monotonic() + INSIGHT_GRACE_SECS) if terminal else 0.0
        while True:
            try:
                detail = await anyio.to_thread.run_sync(
                    conversation_detail, ctx, event.conversation_id
                )
            except NotFound:  # the dispatcher records the conversation in the same commit
                detail = None
            if detail is not None:
                transcript, insights = detail.messages, detail.insights
            ready = len([i for i in insights if i.status in {"completed", "failed"}])
            if (detail is not None and ready >= expected) or time.monotonic() >= grace_end:
                break
            await progress(f"{event.status}; insights: {ready} of {expected} extracted")
            await anyio.sleep(poll_secs)
    return CallWaitResult(
        **event.model_dump(),
        terminal=terminal,
        timed_out=not terminal,
        waited_secs=round(time.monotonic() - started, 3),
        server_time=ctx.now(),
        calling_hours_note=calling_hours_note(event),
        transcript=transcript,
        insights=insights,
    )


# --------------------------------------------------------------------------- tools: insights


def _register_insight_tools(tools: ToolRegistrar, ctx: Context) -> None:
    def get_conversation(
        conversation_id: Annotated[str, Field(description="The conversation's id.")],
    ) -> ConversationDetail:
        """Get a conversation (one answered call or SMS thread): who was called, when, the
        rendered greeting and instructions the assistant used, the full transcript
        (messages) and its insight results."""
        return conversation_detail(ctx, conversation_id)

    def get_conversation_insights(
        conversation_id: Annotated[str, Field(description="The conversation's id.")],
    ) -> ConversationInsights:
        """Get the insight results extracted from a conversation (e.g. the quoted price):
        one per insight of the assistant's insight group (or a free-text summary when it has
        none), each with status (pending, in_progress, completed, failed), result and, for
        failures, the reason."""
        return ConversationInsights(
            conversation_id=conversation_id,
            insights=insight_service.get_conversation_insights(ctx.engine, conversation_id),
        )

    def create_insight(
        name: Annotated[str, Field(description="e.g. 'quote'.")],
        instructions: Annotated[str, Field(description="What to extract from the conversation.")],
        parameters: Annotated[
            list[dict[str, Any]] | None,
            Field(
                description="Structured output fields: [{'name': 'price_per_person', "
                "'type': 'number', 'required': true, 'description': '…'}]. Types: string, enum "
                "(with 'enum': [...]), number, integer, boolean, array, array(string), "
                "array(number), array(boolean), object. Omitted: free-text insight."
            ),
        ] = None,
    ) -> InsightOut:
        """Define an insight: a question answered from every conversation of the assistants
        whose insight group contains it. Next: create_insight_group."""
        return insight_service.create_insight(
            ctx.engine,
            name=name,
            instructions=instructions,
            parameters=parameters,
            now=ctx.now(),
        )

    def create_insight_group(
        name: Annotated[str, Field(description="e.g. 'Catering quote insights'.")],
        insight_ids: Annotated[list[str], Field(description="The insights of the group.")],
        webhook_url: Annotated[
            str | None,
            Field(description="HTTPS URL that receives the results of every conversation."),
        ] = None,
    ) -> InsightGroupOut:
        """Group insights so they can be attached to an assistant (assign_insight_group or
        create_assistant's insight_group_id)."""
        return insight_service.create_insight_group(
            ctx.engine,
            name=name,
            insight_ids=insight_ids,
            webhook_url=webhook_url,
            now=ctx.now(),
        )

    def assign_insight_group(
        assistant_id: Annotated[str, Field(description="The assistant's id.")],
        insight_group_id: Annotated[
            str | None, Field(description="The insight group's id; null removes the group.")
        ],
        webhook_url: Annotated[
            str | None,
            Field(description="Overrides the group's webhook URL for this assistant."),
        ] = None,
    ) -> AssistantInsightSettingsOut:
        """Attach an insight group to an assistant (replacing any previous one): its insights
        are extracted from every later conversation of that assistant."""
        return insight_service.assign_insight_group(
            ctx.engine,
            assistant_id,
            insight_group_id,
            webhook_url=webhook_url,
            now=ctx.now(),
        )

    def list_prior_conversations(
        target: Annotated[
            str,
            Field(
                description="The end user's phone number in any common form ('+13125550101', "
                "'312-555-0101', '+1 312 555 0101'; no '+' means US/Canada) or SIP URI."
            ),
        ],
        metadata: Annotated[
            dict[str, Any] | None,
            Field(
                description="Only conversations whose metadata (schedule_call's "
                "conversation_metadata) has every one of these key/values, e.g. "
                "{'customer_id': '123'}."
            ),
        ] = None,
        limit: Annotated[
            int | None, Field(description="At most this many, 1..100 (default 5).")
        ] = None,
    ) -> PriorConversationList:
        """Memory: the earlier conversations with this end user, newest first, each with its
        insight results (e.g. the price they quoted last time, the summary).

        Use before calling someone again, to give the call context: put what matters into the
        assistant's instructions or dynamic_variables. Returns the target as matched (E.164)
        and the conversations; an empty list means no earlier conversation.
        """
        matched = normalise_target(target, field="target")
        return PriorConversationList(
            target=matched,
            conversations=insight_service.list_prior_conversations(
                ctx.engine,
                end_user_target=matched,
                metadata=metadata,
                limit=5 if limit is None else limit,
            ),
        )

    def list_webhook_deliveries(
        conversation_id: Annotated[
            str | None, Field(description="Only this conversation's deliveries.")
        ] = None,
        status: Annotated[
            str | None,
            Field(
                description="'failed' (no attempt got a 2xx answer: gave up after retries, "
                "refused, or not sent because MISSION_WEBHOOK_SECRET is not set) or "
                "'delivered'."
            ),
        ] = None,
        limit: Annotated[
            int | None, Field(description="At most this many deliveries, 1..500 (default 50).")
        ] = None,
    ) -> WebhookDeliveryList:
        """List insight-webhook deliveries (the signed conversation.insights.completed POSTs
        to an insight group's or assistant's webhook_url), newest first, each with every
        attempt: status_code, latency_ms, error, delivered.

        Use it to check that results reached the endpoint, or with status='failed' to find
        the deliveries to re-send with redeliver_webhook. URLs have credentials and query
        values masked.
        """
        return WebhookDeliveryList(
            deliveries=webhook_delivery.list_deliveries(
                ctx.engine,
                conversation_id,
                status=status,
                limit=50 if limit is None else limit,
            )
        )

    def redeliver_webhook(
        delivery_id: Annotated[
            str,
            Field(
                description="A delivery_id from list_webhook_deliveries (a conversation_id "
                "also works)."
            ),
        ],
    ) -> WebhookDeliveryOut:
        """Send a conversation's insights webhook again, as a new signed delivery with fresh
        attempts: the conversation's current insight results, to the webhook URL configured
        now (fix the endpoint or the URL first). Retries within the usual bound.

        Returns the new delivery with its attempts; delivered=false means it failed again
        (attempts[].error says why). Refused, with nothing sent, when the id is unknown, the
        conversation has no webhook configured, or MISSION_WEBHOOK_SECRET is not set.
        """
        return webhook_delivery.redeliver(
            ctx.engine,
            delivery_id,
            now=ctx.now(),
            sender=webhook_delivery.WebhookSender.from_settings(ctx.settings),
        )

    tools.add(get_conversation, title="Get conversation", read_only=True)
    tools.add(get_conversation_insights, title="Get conversation insights", read_only=True)
    tools.add(create_insight, title="Create insight")
    tools.add(create_insight_group, title="Create insight group")
    tools.add(assign_insight_group, title="Assign insight group", destructive=True, idempotent=True)
    tools.add(list_prior_conversations, title="List prior conversations", read_only=True)
    tools.add(list_webhook_deliveries, title="List webhook deliveries", read_only=True)
    # Open world: it POSTs to an outside endpoint. Not idempotent: each call is a new delivery.
    tools.add(redeliver_webhook, title="Redeliver webhook", open_world=True)


# --------------------------------------------------------------------------- resources


def _register_resources(server: MCPServer, ctx: Context) -> None:
    json_type = "application/json"

    @server.resource(
        "mission://missions",
        name="missions",
        title="Missions",
        description="The 100 newest missions (JSON); use the list_missions tool to page.",
        mime_type=json_type,
    )
    @as_resource
    def missions_resource() -> str:
        return _json(mission_service.list_missions(ctx, limit=100))

    @server.resource(
        "mission://missions/{mission_id}",
        name="mission",
        title="Mission",
        description="One mission with its 50 newest runs (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def mission_resource(mission_id: str) -> str:
        mission = mission_service.get_mission(ctx, mission_id)
        runs = mission_service.list_runs(ctx, mission_id=mission_id, limit=50)
        return _json(MissionDetail(**mission.model_dump(), runs=runs))

    @server.resource(
        "mission://runs/{run_id}",
        name="run",
        title="Run",
        description="A run with its plan, assistants, scheduled calls and conversations (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def run_resource(run_id: str) -> str:
        return _json(mission_service.get_run(ctx, run_id))

    @server.resource(
        "mission://runs/{run_id}/plan",
        name="run-plan",
        title="Run plan",
        description="The run's plan steps in order, with status (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def plan_resource(run_id: str) -> str:
        return _json(PlanOut(run_id=run_id, steps=mission_service.get_plan(ctx, run_id)))

    @server.resource(
        "mission://runs/{run_id}/events",
        name="run-events",
        title="Run events",
        description="The run's audit trail, oldest first (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def events_resource(run_id: str) -> str:
        events = mission_service.list_events(ctx, run_id, limit=5000)
        return _json(EventList(run_id=run_id, events=events))

    @server.resource(
        "mission://runs/{run_id}/calls",
        name="run-calls",
        title="Run calls",
        description="The run's scheduled calls with call_attempts and deferrals (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def calls_resource(run_id: str) -> str:
        mission_service.get_run_variables(ctx, run_id)  # unknown run → not found, not []
        calls = scheduling_service.list_scheduled_events(ctx, run_id=run_id, limit=5000)
        return _json(ScheduledCallList(scheduled_calls=calls))

    @server.resource(
        "mission://runs/{run_id}/result",
        name="run-result",
        title="Run result",
        description="The run's result_summary (markdown) followed by its result_payload.",
        mime_type="text/markdown",
    )
    @as_resource
    def result_resource(run_id: str) -> str:
        return run_result_markdown(mission_service.get_run(ctx, run_id))

    @server.resource(
        "mission://conversations/{conversation_id}",
        name="conversation",
        title="Conversation",
        description="A conversation's transcript and insight results (JSON).",
        mime_type=json_type,
    )
    @as_resource
    def conversation_resource(conversation_id: str) -> str:
        return _json(conversation_detail(ctx, conversation_id))


# --------------------------------------------------------------------------- prompts


def _register_prompts(server: MCPServer) -> None:
    @server.prompt(
        name="plan_mission",
        title="Plan a mission",
        description="Walks you through planning and running a phone mission with these tools, "
        "from a request in plain words.",
    )
    def plan_mission(request: str) -> str:
        return plan_mission_prompt(request)

    @server.prompt(
        name="negotiate_quotes",
        title="Negotiate quotes",
        description="Baseline call first, then leverage calls armed with the best quote so "
        "far; ends with a recommendation.",
    )
    def negotiate_quotes(service: str, targets: str) -> str:
        return negotiate_quotes_prompt(service, targets)
