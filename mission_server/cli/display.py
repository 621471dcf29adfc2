"""Rich renderings of records for the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from mission_server.services.insight_schemas import InsightResultOut
from mission_server.services.missions import RunCallOut, RunConversationOut, RunDetail
from mission_server.services.schemas import EventOut, RunOut

#: A service time this far from the wall-clock time is shown beside it as simulated.
_SIMULATED_AFTER = timedelta(minutes=1)


def _at(moment: datetime | None, seconds: bool = True) -> str:
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _status(run: RunOut) -> str:
    return f"{run.status}, awaiting approval" if run.awaiting_approval else run.status


def _simulated(run: RunOut, seconds: bool = True) -> str:
    """The service-clock creation time, where it is not the wall-clock one."""
    if run.recorded_at is None or abs(run.created_at - run.recorded_at) > _SIMULATED_AFTER:
        return _at(run.created_at, seconds)
    return ""


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        line = line.strip().strip("*#").strip()
        if line:
            return line
    return ""


def render_runs(console: Console, runs: Sequence[RunOut], short: dict[str, str]) -> None:
    table = Table(title="Runs (times UTC)", box=box.SIMPLE_HEAD)
    table.add_column("run", no_wrap=True)
    table.add_column("status")
    table.add_column("created", no_wrap=True)
    table.add_column("simulated", no_wrap=True)
    table.add_column("summary")
    for run in runs:
        table.add_row(
            short.get(run.run_id, run.run_id),
            _status(run),
            _at(run.recorded_at, seconds=False),
            _simulated(run, seconds=False),
            escape(_first_line(run.result_summary or run.error)[:60]),
        )
    console.print(table)


def _target(name: str | None, address: str | None) -> str:
    if name and address:
        return f"{name} ({address})"
    return name or address or "-"


def _call_label(call: RunCallOut) -> str:
    return call.target_name or call.telnyx_end_user_target


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _readings(result: InsightResultOut) -> str:
    if not isinstance(result.result, dict):
        return _first_line(str(result.result)) if result.result is not None else "-"
    parts = []
    for key, value in result.result.items():
        part = f"{key} = {_value(value)}"
        if result.truth is not None and key in result.truth and result.truth[key] != value:
            part += f" (said {_value(result.truth[key])})"
        parts.append(part)
    return "\n".join(parts) or "-"


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    text = ": ".join(str(error[k]) for k in ("code", "detail") if error.get(k))
    return f"{text} (at {error['at']})" if error.get("at") else text or json.dumps(error)


def render_run_detail(console: Console, detail: RunDetail) -> None:
    console.print(
        f"[bold]{escape(detail.mission_name)}[/] run [cyan]{detail.run_id}[/] — "
        f"[bold]{escape(_status(detail))}[/]"
    )
    simulated = _simulated(detail)
    created = _at(detail.recorded_at) if detail.recorded_at else _at(detail.created_at)
    console.print(
        f"created {created} UTC"
        + (f" (simulated {simulated})" if simulated and detail.recorded_at else "")
        + (f", finished {_at(detail.finished_at)}" if detail.finished_at else "")
    )
    if detail.plan:
        plan = Table("#", "step", "status", "description", title="Plan")
        for step in detail.plan:
            plan.add_row(str(step.sequence), step.step_id, step.status, escape(step.description))
        console.print(plan)
    calls = detail.scheduled_calls
    if calls:
        table = Table("target", "status", "attempts", "scheduled", title="Calls")
        for call in calls:
            table.add_row(
                escape(_target(call.target_name, call.telnyx_end_user_target)),
                call.status + (f" ({call.hold_reason})" if call.hold_reason else ""),
                str(len(call.call_attempts)),
                _at(call.scheduled_at_fixed_datetime),
            )
        console.print(table)
        attempts = Table("target", "#", "at", "status", "duration", "cost", title="Attempts")
        for call in calls:
            for attempt in call.call_attempts:
                attempts.add_row(
                    escape(_call_label(call)),
                    str(attempt.attempt_number),
                    _at(attempt.attempted_at),
                    attempt.call_status + (" (voicemail)" if attempt.voicemail else ""),
                    _minutes(attempt.call_duration),
                    "-" if attempt.cost is None else f"${attempt.cost:.2f}",
                )
        if attempts.row_count:
            console.print(attempts)
        deferrals = Table("target", "requested", "moved to", "reason", title="Deferrals")
        for call in calls:
            for deferral in call.deferrals:
                deferrals.add_row(
                    escape(_call_label(call)),
                    _at(deferral.requested),
                    _at(deferral.moved_to),
                    escape(deferral.reason),
                )
        if deferrals.row_count:
            console.print(deferrals)
        for call in calls:
            for error in call.errors:
                console.print(f"[red]{escape(_call_label(call))}:[/] {escape(_error_text(error))}")
    results = [(talk, result) for talk in detail.conversations for result in talk.insights]
    if results:
        console.print("[bold]Insights[/]")
    for talk, result in results:
        console.print(
            f"  [bold]{escape(talk.target_name or str(talk.end_user_target))}[/] — "
            f"{escape(result.insight_name)}: {result.status}"
        )
        for line in _readings(result).splitlines():
            console.print(f"    {escape(line)}")
        if result.missing:
            console.print(f"    [yellow]not found:[/] {escape(', '.join(result.missing))}")
        if result.error:
            console.print(f"    [red]error:[/] {escape(result.error)}")
    if detail.result_summary:
        console.print(Markdown(detail.result_summary))
    if detail.error:
        console.print(f"[red]error:[/] {escape(detail.error)}")
    count = len(detail.events)
    hints = [f"{count} event{'' if count == 1 else 's'}: mission runs events {detail.run_id}"]
    if detail.conversations:
        hints.append(f"transcripts: mission runs transcript {detail.run_id}")
    console.print("[dim]" + escape("; ".join(hints)) + "[/]")


def render_events(console: Console, events: Sequence[EventOut]) -> None:
    table = Table(title="Events (times UTC)", box=box.SIMPLE_HEAD)
    table.add_column("at", no_wrap=True)
    table.add_column("type")
    table.add_column("step")
    table.add_column("summary")
    for event in events:
        table.add_row(_at(event.created_at), event.type, event.step_id or "", escape(event.summary))
    console.print(table)


def render_transcripts(console: Console, conversations: Sequence[RunConversationOut]) -> None:
    if not conversations:
        console.print("no conversations")
    for talk in conversations:
        heading = _target(talk.target_name, talk.end_user_target)
        facts = [
            f"attempt {talk.attempt_number}" if talk.attempt_number else "",
            talk.call_status or "",
            f"{_at(talk.started_at)} UTC" if talk.started_at else "",
            _minutes(talk.duration_secs) if talk.duration_secs is not None else "",
        ]
        console.print(f"\n[bold]{escape(heading)}[/] — " + escape(", ".join(f for f in facts if f)))
        if not talk.messages:
            console.print("  (no transcript)")
        for message in talk.messages:
            console.print(f"  [bold]{escape(message.role)}:[/] {escape(message.text)}")
