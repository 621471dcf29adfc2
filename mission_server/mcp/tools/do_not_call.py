"""The do-not-call list over MCP: ``add_do_not_call``, ``remove_do_not_call`` and
``list_do_not_call``. They call the same service functions as ``mission dnc add|remove|list``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mission_server.domain.targets import normalise_target
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.services import do_not_call as do_not_call_service
from mission_server.services.context import Context
from mission_server.services.do_not_call import DoNotCallEntry
from mission_server.services.paging import next_cursor_field
from mission_server.services.schemas import OutModel


class DoNotCallAdded(DoNotCallEntry):
    already_listed: bool = Field(description="Listed before; its first reason stays.")
    open_calls: int = Field(
        description="Its calls pending or in progress; each fails with do_not_call when due."
    )


class DoNotCallRemoved(OutModel):
    target: str = Field(description="Normalised: E.164 or SIP URI.")
    removed: bool  # false: it was not on the list (the tool says so)


class DoNotCallList(OutModel):
    entries: list[DoNotCallEntry]
    next_cursor: str | None = next_cursor_field()


TargetArg = Annotated[
    str,
    Field(description="E.164 such as '+13125550101' (no '+': US/Canada) or SIP URI."),
]


def register(tools: ToolRegistrar, ctx: Context) -> None:
    """Add ``add_do_not_call``, ``remove_do_not_call`` and ``list_do_not_call``."""

    def add_do_not_call(
        target: TargetArg,
        reason: Annotated[
            str | None,
            Field(description="e.g. 'asked not to be called'."),
        ] = None,
    ) -> DoNotCallAdded:
        """Put a phone number or SIP URI on the do-not-call list: scheduling a call or SMS to
        it is refused, and calls already scheduled to it are not placed (the list is checked
        before every placement). Adding a listed target changes nothing."""
        entry, already = do_not_call_service.put_do_not_call(ctx, target, reason)
        return DoNotCallAdded(
            **entry.model_dump(),
            already_listed=already,
            open_calls=do_not_call_service.open_calls_to(ctx, entry.target),
        )

    def remove_do_not_call(target: TargetArg) -> DoNotCallRemoved:
        """Take a phone number or SIP URI off the do-not-call list. Calls that already failed
        because of it stay failed: schedule new ones. Removing an unlisted target changes
        nothing (removed: false)."""
        removed = do_not_call_service.remove_do_not_call(ctx, target)
        return DoNotCallRemoved(target=normalise_target(target, "target"), removed=removed)

    def list_do_not_call(limit: LimitArg = None, cursor: CursorArg = None) -> DoNotCallList:
        """List the do-not-call list in target order.

        Pass next_cursor back as cursor.
        """
        page = do_not_call_service.do_not_call_page(ctx, limit=limit, cursor=cursor)
        return DoNotCallList(entries=page, next_cursor=page.next_cursor)

    tools.add(add_do_not_call, title="Add to do-not-call list", idempotent=True)
    tools.add(
        remove_do_not_call,
        title="Remove from do-not-call list",
        destructive=True,
        idempotent=True,
    )
    tools.add(list_do_not_call, title="List do-not-call list", read_only=True)
