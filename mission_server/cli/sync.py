"""``mission sync``: the mirror of missions to the Telnyx Missions API (the Telnyx Portal).

``status`` shows the outbox: how many records are pending, delivered and failed, the oldest
pending one, when the next try is due, and the last error (scrubbed of secrets). ``retry``
sends the failed records again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from mission_server.cli.common import DbOption, print_json, user_errors

sync_app = typer.Typer(
    help="The mirror of missions, runs, plans and events to the Telnyx Portal.",
    no_args_is_help=True,
)


def _mode() -> str:
    from mission_server.settings import load_settings

    settings = load_settings()
    if settings.telnyx_api_key is None or not settings.telnyx_api_key.get_secret_value():
        return "off (TELNYX_API_KEY is not set)"
    if not settings.telnyx_sync:
        return "off (MISSION_TELNYX_SYNC=off)"
    return "on (Telnyx calls are mirrored; MISSION_TELNYX_SYNC=off to stop)"


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


@sync_app.command("status")
def status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How far the Telnyx mirror has got: pending, delivered and failed records, the oldest
    pending one and the last error."""
    from mission_server.app import records_context
    from mission_server.services.mirror import sync_status

    with user_errors():
        mode = _mode()
        ctx = records_context(db)
        try:
            found = sync_status(ctx.engine)
        finally:
            ctx.engine.dispose()
    if as_json:
        print_json(
            {
                "mirror": mode,
                "pending": found.pending,
                "delivered": found.delivered,
                "failed": found.failed,
                "oldest_pending_at": _when(found.oldest_pending_at),
                "next_attempt_at": _when(found.next_attempt_at),
                "last_delivered_at": _when(found.last_delivered_at),
                "last_error": found.last_error,
            }
        )
        return
    # Plain lines, never wrapped: one "name: value" per line, for people and scripts alike.
    for name, value in (
        ("mirror", mode),
        ("pending", found.pending),
        ("delivered", found.delivered),
        ("failed", found.failed),
        ("oldest pending", _when(found.oldest_pending_at)),
        ("next attempt", _when(found.next_attempt_at)),
        ("last delivered", _when(found.last_delivered_at)),
        ("last error", found.last_error or "-"),
    ):
        typer.echo(f"{name + ':':<16} {value}")


@sync_app.command("retry")
def retry(db: DbOption = None) -> None:
    """Send the failed records again, from their first try."""
    from mission_server.app import records_context
    from mission_server.services.mirror import requeue_failed

    with user_errors():
        ctx = records_context(db)
        try:
            count = requeue_failed(ctx.engine, ctx.now())
        finally:
            ctx.engine.dispose()
    typer.echo(f"{count} failed record{'s' if count != 1 else ''} queued again")
