"""What the pages show, computed from the service's records: the missions list, the run's
timeline (one lane per target, drawn as SVG on the server), its variables as they changed,
its cost and minutes, and a conversation with its insight results.

Everything here is plain data; the templates escape every string they print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from markdown_it import MarkdownIt

from mission_server.services import conversations, extraction
from mission_server.services import missions as mission_service
from mission_server.services.context import Context
from mission_server.services.insight_schemas import InsightResultOut
from mission_server.services.missions import RunDetail
from mission_server.services.schemas import ConversationOut, MissionOut, RunOut
from state.transitions import TERMINAL_RUN

PAGE_SIZE = 20
RUNS_PER_MISSION = 5

# commonmark with tables and strikethrough; raw HTML is never passed through (it is shown as
# text), and markdown-it's link check refuses javascript:, vbscript:, file: and data: URLs.
_MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown_html(text: str | None) -> str:
    """The markdown rendered to HTML, with any HTML in it escaped."""
    return _MD.render(text or "")


def markdown_inline(text: str | None) -> str:
    return _MD.renderInline(text or "")


def first_line(text: str | None) -> str:
    """The summary's first non-empty line."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


# --------------------------------------------------------------------------- missions page


@dataclass
class MissionRow:
    mission: MissionOut
    runs: list[RunOut]
    more_runs: bool


@dataclass
class MissionsPage:
    rows: list[MissionRow]
    status: str | None
    next_cursor: str | None


def missions_page(
    ctx: Context, status: str | None = None, cursor: str | None = None
) -> MissionsPage:
    """A page of missions, newest first, each with its newest runs (only those in ``status``
    when given).

    Raises:
        ValidationError: an unknown status or a stale cursor.
    """
    page = mission_service.list_missions(ctx, limit=PAGE_SIZE, cursor=cursor, run_status=status)
    rows = []
    for mission in page.missions:
        runs = mission_service.list_runs(
            ctx, mission_id=mission.mission_id, status=status, limit=RUNS_PER_MISSION + 1
        )
        rows.append(MissionRow(mission, runs[:RUNS_PER_MISSION], len(runs) > RUNS_PER_MISSION))
    return MissionsPage(rows=rows, status=status, next_cursor=page.next_cursor)


# --------------------------------------------------------------------------- run page


@dataclass
class Mark:
    """One shape on a lane: ``kind`` is attempt, retry, deferral or scheduled."""

    kind: str
    x: float
    width: float
    label: str
    title: str
    status: str = ""


@dataclass
class Lane:
    name: str
    target: str
    y: float
    marks: list[Mark] = field(default_factory=list)


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class Timeline:
    lanes: list[Lane]
    ticks: list[Tick]
    width: float
    height: float
    left: float
    lane_height: float


TL_LEFT = 10.0
TL_WIDTH = 960.0
TL_RIGHT = 10.0
TL_LANE = 56.0
TL_TOP = 8.0
TL_AXIS = 30.0
MIN_MARK = 4.0


def timeline(detail: RunDetail, now: datetime) -> Timeline:
    """One lane per target, in the order they were first called: each attempt as a bar
    coloured by its outcome, the wait before a retry, each calling-hours deferral (with its
    reason) and a call still waiting for its time."""
    lanes: dict[str, Lane] = {}
    times: list[datetime] = []
    for call in detail.scheduled_calls:
        times.append(call.requested_at)
        times.append(call.scheduled_at_fixed_datetime)
        for attempt in call.call_attempts:
            times.append(attempt.attempted_at)
            times.append(attempt.ended_at or attempt.attempted_at)
        for deferral in call.deferrals:
            times += [deferral.requested, deferral.moved_to]
    if not times:
        return Timeline([], [], TL_LEFT + TL_WIDTH + TL_RIGHT, TL_TOP, TL_LEFT, TL_LANE)
    start = min(times)
    end = max(times)
    if detail.status not in TERMINAL_RUN and now > end and now - end < timedelta(days=7):
        end = now
    total = max((end - start).total_seconds(), 1.0)

    def x_of(moment: datetime) -> float:
        return TL_LEFT + TL_WIDTH * (moment - start).total_seconds() / total

    def bar(a: datetime, b: datetime) -> tuple[float, float]:
        x0, x1 = x_of(a), x_of(b)
        width = max(x1 - x0, MIN_MARK)
        return min(x0, TL_LEFT + TL_WIDTH - width), width

    for call in detail.scheduled_calls:
        name = call.target_name or call.telnyx_end_user_target
        lane = lanes.get(name)
        if lane is None:
            lane = lanes[name] = Lane(
                name=name,
                target=call.telnyx_end_user_target,
                y=TL_TOP + TL_LANE * len(lanes),
            )
        for deferral in call.deferrals:
            x, width = bar(deferral.requested, deferral.moved_to)
            lane.marks.append(
                Mark(
                    "deferral",
                    x,
                    width,
                    "deferred",
                    f"Deferred from {when(deferral.requested)} to {when(deferral.moved_to)}: "
                    f"{deferral.reason}",
                )
            )
        previous_end: datetime | None = None
        attempts = call.call_attempts
        for attempt in attempts:
            if previous_end is not None and attempt.attempted_at > previous_end:
                x, width = bar(previous_end, attempt.attempted_at)
                wait = (attempt.attempted_at - previous_end).total_seconds()
                lane.marks.append(
                    Mark(
                        "retry",
                        x,
                        width,
                        f"retry after {span(wait)}",
                        f"Retry: attempt {attempt.attempt_number} {span(wait)} after the "
                        f"previous one ended",
                    )
                )
            ended = attempt.ended_at or attempt.attempted_at
            x, width = bar(attempt.attempted_at, ended)
            length = f" ({span(attempt.call_duration)})" if attempt.call_duration else ""
            lane.marks.append(
                Mark(
                    "attempt",
                    x,
                    width,
                    attempt.call_status,
                    f"Attempt {attempt.attempt_number}: {attempt.call_status} at "
                    f"{when(attempt.attempted_at)}{length}",
                    status=attempt.call_status,
                )
            )
            previous_end = ended
        if call.status in ("pending", "in_progress") and not (
            call.status == "in_progress" and not attempts
        ):
            due = call.scheduled_at_fixed_datetime
            if previous_end is not None and due > previous_end:
                x, width = bar(previous_end, due)
                lane.marks.append(
                    Mark("retry", x, width, "retry pending", f"Next attempt at {when(due)}")
                )
            x, width = bar(due, due)
            lane.marks.append(
                Mark("scheduled", x, width, call.status, f"Scheduled for {when(due)}", call.status)
            )
    ticks = []
    multi_day = (end - start) >= timedelta(days=1)
    for i in range(5):
        moment = start + (end - start) * i / 4
        label = moment.strftime("%a %H:%M" if multi_day else "%H:%M:%S")
        ticks.append(Tick(x_of(moment), label))
    height = TL_TOP + TL_LANE * len(lanes) + TL_AXIS
    return Timeline(
        list(lanes.values()), ticks, TL_LEFT + TL_WIDTH + TL_RIGHT, height, TL_LEFT, TL_LANE
    )


@dataclass
class VariableChange:
    at: datetime
    summary: str
    changes: list[tuple[str, Any, Any]]


def variable_history(detail: RunDetail) -> list[VariableChange]:
    """The run's variables as they changed, from its events (each change once)."""
    current: dict[str, Any] = {}
    history = []
    for event in detail.events:
        values = event.payload.get("variables")
        if not isinstance(values, dict):
            continue
        changes = [(k, current.get(k), v) for k, v in values.items() if current.get(k) != v]
        current.update(values)
        if changes:
            history.append(VariableChange(event.created_at, event.summary, changes))
    return history


@dataclass
class Totals:
    attempts: int
    minutes: float
    cost: float | None


def totals(detail: RunDetail) -> Totals:
    attempts = [a for c in detail.scheduled_calls for a in c.call_attempts]
    costs = [a.cost for a in attempts if a.cost is not None]
    seconds = sum(a.call_duration or 0 for a in attempts)
    return Totals(len(attempts), seconds / 60, sum(costs) if costs else None)


@dataclass
class RunPage:
    detail: RunDetail
    timeline: Timeline
    variables: list[VariableChange]
    totals: Totals
    live: bool


def run_page(ctx: Context, run_id: str) -> RunPage:
    """Raises: NotFound."""
    detail = mission_service.get_run(ctx, run_id)
    return RunPage(
        detail=detail,
        timeline=timeline(detail, ctx.now()),
        variables=variable_history(detail),
        totals=totals(detail),
        live=detail.status not in TERMINAL_RUN,
    )


# --------------------------------------------------------------------------- conversation


@dataclass
class FieldRow:
    name: str
    read: Any
    said: Any
    known: bool  # the truth is known for this conversation

    @property
    def verdict(self) -> str:
        if not self.known:
            return ""
        return "right" if self.read == self.said else "wrong"


@dataclass
class InsightView:
    result: InsightResultOut
    rows: list[FieldRow]
    text: str | None


def insight_view(result: InsightResultOut) -> InsightView:
    truth = result.truth
    if isinstance(result.result, dict):
        names = list(result.result)
        names += [k for k in (truth or {}) if k not in result.result]
        rows = [
            FieldRow(n, result.result.get(n), (truth or {}).get(n), truth is not None)
            for n in names
        ]
        return InsightView(result, rows, None)
    text = None if result.result is None else str(result.result)
    return InsightView(result, [], text)


@dataclass
class ConversationPage:
    conversation: ConversationOut
    insights: list[InsightView]


def conversation_page(ctx: Context, conversation_id: str) -> ConversationPage:
    """Raises: NotFound."""
    conversation = conversations.get_conversation(ctx, conversation_id)
    results = extraction.get_conversation_insights(ctx.engine, conversation_id)
    return ConversationPage(conversation, [insight_view(r) for r in results])
