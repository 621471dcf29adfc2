"""Rich renderings of records for the CLI."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from mission_server.services.missions import RunDetail


def render_run_detail(console: Console, detail: RunDetail) -> None:
    console.print(
        f"[bold]{detail.mission_name}[/] run [cyan]{detail.run_id}[/] — [bold]{detail.status}[/]"
    )
    if detail.plan:
        plan = Table("#", "step", "status", "description", title="Plan")
        for step in detail.plan:
            plan.add_row(str(step.sequence), step.step_id, step.status, step.description)
        console.print(plan)
    if detail.scheduled_calls:
        calls = Table("to", "status", "call_status", "attempts", "scheduled", title="Calls")
        for call in detail.scheduled_calls:
            attempts = ", ".join(a.call_status for a in call.call_attempts) or "-"
            calls.add_row(
                call.telnyx_end_user_target,
                call.status,
                call.call_status or "-",
                attempts,
                call.scheduled_at_fixed_datetime.isoformat(),
            )
        console.print(calls)
    if detail.result_summary:
        console.print(Markdown(detail.result_summary))
    if detail.error:
        console.print(f"[red]error:[/] {detail.error}")
