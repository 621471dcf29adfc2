"""Assistant and phone-number tools."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import Field

from mission_server.mcp.models import (
    AssistantList,
    PhoneNumberList,
)
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.services import assistants as assistant_service
from mission_server.services.context import Context
from mission_server.services.schemas import (
    AssistantOut,
    PhoneNumberOut,
)

log = logging.getLogger(__name__)


def register(tools: ToolRegistrar, ctx: Context) -> None:
    def create_assistant(
        name: Annotated[str, Field(description="e.g. 'Catering Quote Negotiator'.")],
        instructions: Annotated[
            str,
            Field(
                description="System prompt: {{placeholders}} for per-call values; sections like "
                "{{#best_quote}}Offer: {{best_quote}}.{{/best_quote}} appear once the variable "
                "is set."
            ),
        ],
        greeting: Annotated[
            str | None, Field(description="First sentence the assistant says.")
        ] = None,
        model: str | None = None,
        voice: str | None = None,
        dynamic_variables: Annotated[
            dict[str, Any] | None,
            Field(description="Default values for placeholders."),
        ] = None,
        insight_group_id: Annotated[
            str | None,
            Field(description="Its insights are extracted from every call."),
        ] = None,
        run_id: Annotated[
            str | None,
            Field(
                description="Link to this run (recommended): its number is released when the "
                "run ends."
            ),
        ] = None,
        keep_number: Annotated[
            bool,
            Field(description="Keep its number when its runs end (default: released)."),
        ] = False,
    ) -> AssistantOut:
        """Create a voice assistant at the telephony provider. One assistant can serve the
        baseline and the leverage calls: put interim values in {{placeholders}} and set them
        with set_run_variables. Next: assign_phone_number."""
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
            keep_number=keep_number,
        )

    def update_assistant(
        assistant_id: str,
        name: str | None = None,
        instructions: Annotated[str | None, Field(description="System prompt.")] = None,
        greeting: str | None = None,
        model: str | None = None,
        voice: str | None = None,
        dynamic_variables: Annotated[
            dict[str, Any] | None, Field(description="Replaces the defaults.")
        ] = None,
        insight_group_id: str | None = None,
        keep_number: Annotated[
            bool | None, Field(description="Keep its number when its runs end.")
        ] = None,
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
            keep_number=keep_number,
        )

    def list_assistants(
        run_id: Annotated[str | None, Field(description="Only assistants of this run.")] = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> AssistantList:
        """List assistants, newest first, with their phone numbers.

        Pass next_cursor back as cursor (new assistants: read page one again).
        """
        page = assistant_service.list_assistants(ctx, run_id=run_id, limit=limit, cursor=cursor)
        return AssistantList(assistants=page, next_cursor=page.next_cursor)

    def list_phone_numbers(
        available_only: Annotated[bool, Field(description="Only unassigned numbers.")] = False,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> PhoneNumberList:
        """List the account's phone numbers (caller IDs) in number order, each with its
        assistant.

        Pass next_cursor back as cursor.
        """
        page = assistant_service.list_phone_numbers(
            ctx, available_only=available_only, limit=limit, cursor=cursor
        )
        return PhoneNumberList(phone_numbers=page, next_cursor=page.next_cursor)

    def assign_phone_number(
        assistant_id: str,
        phone_number: Annotated[
            str | None,
            Field(
                description="An account number (E.164), added to the assistant's (a campaign "
                "spreads over them); omitted: a free one (an assistant with one keeps it)."
            ),
        ] = None,
        run_id: Annotated[
            str | None,
            Field(description="Record it in this run's events and link the assistant to it."),
        ] = None,
    ) -> PhoneNumberOut:
        """Give the assistant a phone number to call from: required before schedule_call. It
        comes back by itself when the assistant's run ends (unless keep_number). If none is
        free the error names the runs holding them and how to get one."""
        return assistant_service.assign_phone_number(
            ctx, assistant_id, phone_number=phone_number, run_id=run_id
        )

    def release_phone_number(
        phone_number: Annotated[str, Field(description="E.164 number of the account.")],
        run_id: Annotated[
            str | None,
            Field(
                description="Record the release in this run's events (default: in those of "
                "every run its assistant is linked to)."
            ),
        ] = None,
    ) -> PhoneNumberOut:
        """Free a phone number now (unassigned from its assistant at the provider) for another
        assistant. Numbers are released by themselves when their run ends: use this for an
        assistant with keep_number or without a run. A free number is returned as is."""
        return assistant_service.release_phone_number(ctx, phone_number, run_id=run_id)

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
    tools.add(
        release_phone_number,
        title="Release phone number",
        destructive=True,
        idempotent=True,
        open_world=True,
    )


# --------------------------------------------------------------------------- tools: calls
