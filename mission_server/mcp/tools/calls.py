"""Call and SMS tools: schedule, inspect, cancel, and wait for a call with progress."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context as MCPContext
from pydantic import Field

from mission_server.errors import ValidationError
from mission_server.mcp.models import (
    CallWaitResult,
    ScheduledCallList,
)
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.mcp.views import (
    calling_hours_note,
    conversation_detail,
    expected_insights,
)
from mission_server.services import scheduling as scheduling_service
from mission_server.services.context import Context
from mission_server.services.insight_schemas import (
    InsightResultOut,
)
from mission_server.services.schemas import (
    ScheduledEventOut,
)
from state.errors import NotFound
from state.transitions import TERMINAL_EVENT, EventStatus

log = logging.getLogger(__name__)

#: Longest a single wait_for_call may block (wall-clock seconds).
MAX_WAIT_SECS = 300.0
DEFAULT_WAIT_SECS = 60.0
#: How often wait_for_call sends a progress notification when nothing changed.
PROGRESS_HEARTBEAT_SECS = 5.0
#: After a call ends, how long wait_for_call waits (within its timeout) for the insight
#: results to be extracted; an LLM extractor takes seconds per insight.
INSIGHT_GRACE_SECS = 30.0

ScheduledAt = Annotated[
    str | None,
    Field(
        description="ISO-8601 with offset in server time, in the future, e.g. "
        "'2026-03-10T15:00:00Z'. "
        "Omitted: as soon as calling hours allow; outside them it moves to the next opening "
        "(see deferrals)."
    ),
]
RunIdArg = Annotated[str | None, Field(description="Its run (recommended).")]
IdempotencyKeyArg = Annotated[
    str | None,
    Field(
        description="Makes retries safe: the same key and arguments return the first event "
        "unchanged (even past its time); other arguments are an error."
    ),
]
DynamicVariablesArg = Annotated[
    dict[str, Any] | None,
    Field(description="Placeholder values; win over run variables and assistant defaults."),
]
MetadataArg = Annotated[
    dict[str, Any] | None,
    Field(description="Attached to the conversation."),
]
TimezoneArg = Annotated[
    str | None,
    Field(
        description="IANA zone, e.g. 'America/Chicago'; required for SIP URIs and numbers of "
        "unknown zone, else it narrows calling hours, never widens them."
    ),
]


def register(tools: ToolRegistrar, ctx: Context, poll_secs: float) -> None:
    def schedule_call(
        assistant_id: str,
        to: Annotated[str, Field(description="E.164 (e.g. '+13125550101') or SIP URI.")],
        scheduled_at: ScheduledAt = None,
        from_number: Annotated[
            str | None,
            Field(
                description="Caller ID for every attempt; omitted: the assistant's least busy "
                "number when the call goes out."
            ),
        ] = None,
        dynamic_variables: DynamicVariablesArg = None,
        conversation_metadata: MetadataArg = None,
        max_retries_client_errors: Annotated[
            int | None,
            Field(
                strict=True,
                description="Retries on busy, no-answer, failed or canceled, 0..10 (default 0).",
            ),
        ] = None,
        retry_interval_secs: Annotated[
            int | None,
            Field(
                strict=True,
                description="60..86400; required if max_retries_client_errors > 0, else refused.",
            ),
        ] = None,
        run_id: RunIdArg = None,
        step_id: str | None = None,
        idempotency_key: IdempotencyKeyArg = None,
        timezone: TimezoneArg = None,
    ) -> ScheduledEventOut:
        """Schedule an outbound AI phone call within the recipient's legal calling hours, with
        optional retries. Run variables are read when the call is placed, not now. Then
        wait_for_call.
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
        assistant_id: str,
        to: Annotated[str, Field(description="E.164.")],
        text: Annotated[str, Field(description="Placeholders allowed; up to 1600 chars.")],
        scheduled_at: ScheduledAt = None,
        from_number: Annotated[
            str | None, Field(description="Sender; omitted: the assistant's number.")
        ] = None,
        dynamic_variables: DynamicVariablesArg = None,
        conversation_metadata: MetadataArg = None,
        run_id: RunIdArg = None,
        step_id: str | None = None,
        idempotency_key: IdempotencyKeyArg = None,
        timezone: TimezoneArg = None,
    ) -> ScheduledEventOut:
        """Schedule an SMS from the assistant's number (no retries: phone calls only)."""
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

    def get_scheduled_call(scheduled_event_id: str) -> ScheduledEventOut:
        """Get a scheduled call or SMS now, without waiting (wait_for_call waits)."""
        return scheduling_service.get_scheduled_event(ctx, scheduled_event_id)

    def list_scheduled_calls(
        run_id: Annotated[str | None, Field(description="Only calls of this run.")] = None,
        status: EventStatus | None = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> ScheduledCallList:
        """List scheduled calls and SMS in the order they were scheduled.

        Pass next_cursor back as cursor; calls scheduled meanwhile appear on later pages.
        """
        page = scheduling_service.list_scheduled_events(
            ctx, run_id=run_id, status=status, limit=limit, cursor=cursor
        )
        return ScheduledCallList(scheduled_calls=page, next_cursor=page.next_cursor)

    def cancel_scheduled_call(scheduled_event_id: str) -> ScheduledEventOut:
        """Cancel a pending call: no further attempts (those made stay recorded). A call in
        progress or finished cannot be cancelled; a cancelled one is returned unchanged.
        Refused while a dispatcher is placing it this very moment: try again shortly."""
        return scheduling_service.cancel_scheduled_event(ctx, scheduled_event_id)

    async def wait_for_call(
        scheduled_event_id: str,
        mcp_ctx: MCPContext,
        timeout_secs: Annotated[
            float | None,
            Field(
                description="Most wall-clock seconds to wait.",
                # Shown in the schema only: the range is checked below, with its own message.
                json_schema_extra={"minimum": 0, "maximum": MAX_WAIT_SECS},
            ),
        ] = DEFAULT_WAIT_SECS,
    ) -> CallWaitResult:
        """Wait until a scheduled call is finished (completed, failed or cancelled), then
        return it with its transcript, its insight results (waited for within timeout_secs)
        and when and why calling hours moved it.

        Sends progress notifications. If timeout_secs passes first it returns with
        timed_out=true: call again to keep waiting.
        """
        wait = wait_secs(timeout_secs)
        # Insights are extracted where calls are dispatched; a worker is configured like this
        # server, so our own extractor says whether results will come.
        extracting = ctx.extractor is not None
        return await _wait_for_call(
            ctx, mcp_ctx, scheduled_event_id, wait, poll_secs, extracting=extracting
        )

    tools.add(schedule_call, title="Schedule call", open_world=True)
    no_sms_retries = (
        "SMS is not retried (retries are phone-call only, as on Telnyx, which answers 400); "
        "drop it, or use schedule_call for a call with retries"
    )
    tools.add(
        schedule_sms,
        title="Schedule SMS",
        open_world=True,
        refused={
            "max_retries_client_errors": no_sms_retries,
            "retry_interval_secs": no_sms_retries,
        },
    )
    tools.add(get_scheduled_call, title="Get scheduled call", read_only=True)
    tools.add(list_scheduled_calls, title="List scheduled calls", read_only=True)
    # Idempotent: cancelling a cancelled call returns the same event and writes nothing.
    tools.add(
        cancel_scheduled_call, title="Cancel scheduled call", destructive=True, idempotent=True
    )
    tools.add(wait_for_call, title="Wait for call", read_only=True)


def wait_secs(timeout_secs: float | None) -> float:
    """A wait tool's timeout_secs: the default when omitted.

    Raises:
        ValidationError: outside 0..MAX_WAIT_SECS.
    """
    wait = DEFAULT_WAIT_SECS if timeout_secs is None else timeout_secs
    if not 0 <= wait <= MAX_WAIT_SECS:
        raise ValidationError(
            "timeout_secs", f"must be between 0 and {MAX_WAIT_SECS:g} seconds", timeout_secs
        )
    return wait


def progress_reporter(
    mcp_ctx: MCPContext, started: float, wait: float
) -> Callable[[str], Awaitable[None]]:
    """How a wait tool reports progress: a notification when the message changes, and a
    heartbeat every PROGRESS_HEARTBEAT_SECS while it does not."""
    last: dict[str, Any] = {"message": None, "sent": 0.0}

    async def progress(message: str) -> None:
        now = time.monotonic()
        if message != last["message"] or now - last["sent"] >= PROGRESS_HEARTBEAT_SECS:
            await mcp_ctx.report_progress(round(now - started, 3), wait, message)
            last.update(message=message, sent=now)

    return progress


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

    progress = progress_reporter(mcp_ctx, started, wait)

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
            await anyio.to_thread.run_sync(expected_insights, ctx, event.assistant_id)
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
