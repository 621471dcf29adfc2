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
            str | None,
            Field(
                description="Link the assistant to this run (recommended): its phone number "
                "is released when the run ends."
            ),
        ] = None,
        keep_number: Annotated[
            bool,
            Field(
                description="Keep the assistant's phone number when its runs end (default: "
                "the number is released for the next mission)."
            ),
        ] = False,
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
            keep_number=keep_number,
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
        keep_number: Annotated[
            bool | None,
            Field(description="Keep the phone number when the assistant's runs end."),
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
        """List assistants, newest first, with their phone numbers, one page at a time.

        Pass next_cursor back as cursor for the next page. New
        assistants are not seen (read page one again).
        """
        page = assistant_service.list_assistants(ctx, run_id=run_id, limit=limit, cursor=cursor)
        return AssistantList(assistants=page, next_cursor=page.next_cursor)

    def list_phone_numbers(
        available_only: Annotated[
            bool, Field(description="Only numbers not assigned to any assistant.")
        ] = False,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> PhoneNumberList:
        """List the account's phone numbers (caller IDs) in number order, one page at a
        time, and which assistant each is assigned to.

        Pass next_cursor back as cursor for the next page.
        """
        page = assistant_service.list_phone_numbers(
            ctx, available_only=available_only, limit=limit, cursor=cursor
        )
        return PhoneNumberList(phone_numbers=page, next_cursor=page.next_cursor)

    def assign_phone_number(
        assistant_id: Annotated[str, Field(description="The assistant's id.")],
        phone_number: Annotated[
            str | None,
            Field(
                description="E.164 number of the account, added to the assistant's numbers "
                "(a campaign spreads over them); omitted: a free one is picked (an assistant "
                "that already has one keeps it)."
            ),
        ] = None,
        run_id: Annotated[
            str | None,
            Field(
                description="Record the assignment in this run's events and link the "
                "assistant to the run (the number is released when the run ends)."
            ),
        ] = None,
    ) -> PhoneNumberOut:
        """Give the assistant a phone number to call from. Required before schedule_call.

        A number comes back by itself when the assistant's run ends (unless the assistant has
        keep_number). If no number is free the error names the runs holding them and says how
        to get one.
        """
        return assistant_service.assign_phone_number(
            ctx, assistant_id, phone_number=phone_number, run_id=run_id
        )

    def release_phone_number(
        phone_number: Annotated[str, Field(description="E.164 number of the account.")],
        run_id: Annotated[
            str | None,
            Field(
                description="Record the release in this run's events (default: in the events "
                "of every run its assistant is linked to)."
            ),
        ] = None,
    ) -> PhoneNumberOut:
        """Free a phone number now (it is unassigned from its assistant at the provider) so
        another assistant can call from it. Numbers are released by themselves when their
        run ends; use this for an assistant with keep_number or one without a run. A free
        number is returned as is."""
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
