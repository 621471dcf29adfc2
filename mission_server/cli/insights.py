"""``mission insights``: try an insight definition on a transcript before using it in a mission.

    mission insights test quote.yaml call.txt          # offline extractor, rich table
    mission insights test quote.yaml call.json --llm   # the configured LLM (MISSION_LLM_*)
    mission insights test quote.yaml call.txt --json   # machine-readable
    mission insights schema quote.yaml                 # the compiled JSON Schema
    mission insights deliveries --failed               # webhook deliveries that failed
    mission insights redeliver DELIVERY_ID             # send one again (signed)

The insight file is YAML or JSON ``{name, instructions, parameters: [...]}``. The transcript
is either text with one turn per line, each starting ``assistant:`` or ``user:`` (any case;
blank lines are skipped), or a JSON list of ``{"role": ..., "text": ...}``.

Exit codes of ``test``: 0 the result validates against the insight's schema; 1 it does not
(failed extraction or schema violations); 2 bad input files or configuration. ``redeliver``
exits 0 when the endpoint accepted the delivery, 1 when it failed again, 2 when it was refused
(unknown id, no webhook configured, ``MISSION_WEBHOOK_SECRET`` not set: nothing is sent).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from mission_server.cli.common import CursorOption, DbOption, LimitOption, more_pages, user_errors
from mission_server.errors import ValidationError

if TYPE_CHECKING:
    # Imported where used: `mission --help` and the other commands do not load them.
    from mission_server.insights.base import ExtractionResult, Extractor, InsightDefinition
    from mission_server.services.insight_schemas import WebhookDeliveryOut
    from mission_server.telephony.base import TranscriptMessage

__all__ = ["insights_app", "load_definition", "load_transcript"]

insights_app = typer.Typer(
    help="Design and try insight definitions; list and re-send webhook deliveries.",
    no_args_is_help=True,
    add_completion=False,
)

_ROLES = ("assistant", "user")


def load_definition(path: Path) -> InsightDefinition:
    """Read an insight definition from a YAML or JSON file.

    Raises:
        ValidationError: the file cannot be read or parsed, or the definition is invalid
            (the field is named).
    """
    import yaml

    from mission_server.insights.schema import parse_definition

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            "insight_file", f"must be readable ({exc.strerror})", str(path)
        ) from None
    try:
        raw = yaml.safe_load(text)  # YAML is a superset of JSON, so one parser reads both
    except yaml.YAMLError as exc:
        raise ValidationError(
            "insight_file", f"must be valid YAML or JSON ({exc})", str(path), show_value=False
        ) from None
    return parse_definition(raw, insight_id=path.stem)


def load_transcript(path: Path) -> list[TranscriptMessage]:
    """Read a transcript: ``role: text`` lines, or a JSON list of ``{role, text}``.

    Raises:
        ValidationError: unreadable file, a line without an ``assistant:``/``user:`` prefix
            (named by line number), a JSON entry without a known role or text, or no turns.
    """
    from mission_server.clock import SystemClock
    from mission_server.telephony.base import TranscriptMessage

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            "transcript_file", f"must be readable ({exc.strerror})", str(path)
        ) from None
    # Turns are stamped one second apart from now: the extractors only read the order.
    start = SystemClock().now()
    turns: list[tuple[str, str]] = []
    if text.lstrip().startswith("["):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ValidationError(
                "transcript_file", f"must be valid JSON ({exc})", str(path), show_value=False
            ) from None
        for index, item in enumerate(raw):
            where = f"transcript[{index}]"
            if not isinstance(item, dict):
                raise ValidationError(where, "must be an object with role and text", item)
            role = str(item.get("role", "")).strip().lower()
            if role not in _ROLES:
                raise ValidationError(
                    f"{where}.role", "must be assistant or user", item.get("role")
                )
            if not isinstance(item.get("text"), str):
                raise ValidationError(f"{where}.text", "must be a string", item.get("text"))
            turns.append((role, item["text"]))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            role, sep, said = line.partition(":")
            role = role.strip().lower()
            if not sep or role not in _ROLES:
                raise ValidationError(
                    f"transcript line {number}",
                    "must start with 'assistant:' or 'user:'",
                    line[:80],
                )
            turns.append((role, said.strip()))
    if not turns:
        raise ValidationError("transcript_file", "must contain at least one turn", str(path))
    messages: list[TranscriptMessage] = []
    for i, (role, said) in enumerate(turns):
        speaker: Any = role  # checked against _ROLES above
        messages.append(
            TranscriptMessage(role=speaker, text=said, sent_at=start + timedelta(seconds=i))
        )
    return messages


def _extractor(use_llm: bool) -> Extractor:
    if not use_llm:
        from mission_server.insights.offline import OfflineExtractor

        return OfflineExtractor()
    from mission_server.insights.llm import LLMExtractor
    from mission_server.settings import load_settings

    return LLMExtractor.from_settings(load_settings())


def _report(
    definition: InsightDefinition, result: ExtractionResult, extractor: str
) -> dict[str, Any]:
    from mission_server.insights.schema import validate_result

    problems = validate_result(definition, result.result) if result.status == "completed" else []
    valid = result.status == "completed" and not problems
    return {
        "insight": definition.name,
        "extractor": extractor,
        "status": result.status,
        "valid": valid,
        "result": result.result,
        "error": result.error,
        "missing": list(result.missing),
        "reasons": dict(getattr(result, "reasons", {}) or {}),
        # What was found before the result failed (offline extractor), to help fix the insight.
        "partial": dict(getattr(result, "partial", {}) or {}),
        "problems": problems,
    }


def _show(console: Console, definition: InsightDefinition, report: dict[str, Any]) -> None:
    from rich.table import Table

    colour = "green" if report["valid"] else "red"
    console.print(
        f"[bold]{definition.name}[/bold] ({report['extractor']} extractor): "
        f"[{colour}]{report['status']}[/{colour}]"
    )
    if definition.structured:
        table = Table("field", "type", "required", "value", "note")
        values = report["result"] if isinstance(report["result"], dict) else {}
        partial = values or report["partial"]
        for parameter in definition.parameters:
            note = report["reasons"].get(parameter.name, "")
            shown = (
                json.dumps(partial[parameter.name], ensure_ascii=False)
                if (parameter.name in partial)
                else "—"
            )
            table.add_row(
                parameter.name, parameter.type, "yes" if parameter.required else "no", shown, note
            )
        console.print(table)
    elif report["result"] is not None:
        console.print(report["result"], markup=False, highlight=False)
    if report["error"]:
        console.print(f"[red]error:[/red] {report['error']}", highlight=False)
    for problem in report["problems"]:
        console.print(f"[red]schema:[/red] {problem}", highlight=False)
    verdict = "valid against the insight's schema" if report["valid"] else "NOT valid"
    console.print(f"[{colour}]{verdict}[/{colour}]")


@insights_app.command("test")
def test_command(
    insight_file: Annotated[Path, typer.Argument(help="Insight definition (YAML or JSON).")],
    transcript_file: Annotated[
        Path, typer.Argument(help="Transcript: 'assistant:'/'user:' lines or a JSON list.")
    ],
    llm: Annotated[bool, typer.Option("--llm", help="Use the configured LLM extractor.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Extract one insight from a transcript and check it against the insight's schema.
    Exit 0 when the result validates, 1 when it does not, 2 on bad input."""
    console = Console(stderr=False, soft_wrap=True)
    with user_errors():
        definition = load_definition(insight_file)
        transcript = load_transcript(transcript_file)
        extractor = _extractor(llm)
    result = extractor.extract(definition, transcript, conversation_id=None)
    report = _report(definition, result, extractor.name)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _show(console, definition, report)
    raise typer.Exit(0 if report["valid"] else 1)


@insights_app.command("schema")
def schema_command(
    insight_file: Annotated[Path, typer.Argument(help="Insight definition (YAML or JSON).")],
) -> None:
    """Print the JSON Schema (draft 2020-12) that the insight's results must match."""
    from mission_server.insights.schema import compile_schema

    with user_errors():
        definition = load_definition(insight_file)
    typer.echo(json.dumps(compile_schema(definition), indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- webhook deliveries


def _show_deliveries(console: Console, deliveries: list[WebhookDeliveryOut]) -> None:
    """One block per delivery (its id in full, for ``redeliver``), one line per attempt."""
    for delivery in deliveries:
        status = "[green]delivered[/green]" if delivery.delivered else "[red]failed[/red]"
        console.print(
            f"[bold]{delivery.delivery_id}[/bold]  {status}  "
            f"conversation {escape(delivery.conversation_id)}  -> {escape(delivery.url)}",
            highlight=False,
        )
        for attempt in delivery.attempts:
            outcome = (
                f"HTTP {attempt.status_code}" if attempt.status_code is not None else "no answer"
            )
            if attempt.error and not attempt.error.startswith("HTTP "):
                outcome = attempt.error
            latency = f"  {attempt.latency_ms:g} ms" if attempt.latency_ms is not None else ""
            console.print(
                f"  attempt {attempt.attempt}  {attempt.created_at or ''}  "
                f"{escape(outcome)}{latency}",
                highlight=False,
            )


@insights_app.command("deliveries")
def deliveries_command(
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Only this conversation's deliveries.")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only deliveries that were not delivered.")
    ] = False,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """List insight-webhook deliveries, newest first, with their attempts, one page at a time
    (stderr says how to get the next page).

    Every attempt shows its status code, latency and error; a failed delivery can be sent
    again with `mission insights redeliver`."""
    from mission_server.app import records_context
    from mission_server.services.webhooks import list_deliveries

    with user_errors():
        ctx = records_context(db)
        deliveries = list_deliveries(
            ctx.engine,
            conversation,
            status="failed" if failed else None,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        typer.echo(
            json.dumps(
                [d.model_dump(mode="json") for d in deliveries], indent=2, ensure_ascii=False
            )
        )
    elif not deliveries:
        Console(stderr=True).print(
            "no webhook deliveries recorded" + (" that failed" if failed else "")
        )
    else:
        _show_deliveries(Console(soft_wrap=True), deliveries)
    more_pages(deliveries.next_cursor)


@insights_app.command("redeliver")
def redeliver_command(
    delivery_id: Annotated[
        str,
        typer.Argument(
            help="A delivery_id from `mission insights deliveries` (a conversation_id also works)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Send an insights webhook again, signed with MISSION_WEBHOOK_SECRET.

    A new delivery with the conversation's current results goes to the URL configured now.
    Exit 0 when delivered, 1 when it failed again, 2 when refused (nothing sent)."""
    from mission_server.app import records_context
    from mission_server.net.webhooks import WebhookSender
    from mission_server.services.webhooks import redeliver

    with user_errors():
        ctx = records_context(db)
        delivery = redeliver(
            ctx.engine, delivery_id, now=ctx.now(), sender=WebhookSender.from_settings(ctx.settings)
        )
    if as_json:
        typer.echo(json.dumps(delivery.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        _show_deliveries(Console(soft_wrap=True), [delivery])
    raise typer.Exit(0 if delivery.delivered else 1)
