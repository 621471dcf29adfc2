"""What the dispatcher's act phase reads about a claimed batch — its assistants, runs and
do-not-call entries, in a few queries — and the call-budget update that lets one call of a run
be placed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine

from mission_server.engine.queue import EVENTS, RUNS
from mission_server.insights.schema import parse_parameters
from mission_server.telephony.base import AskedField
from state import models as m


@dataclass
class Lookups:
    """Everything the act phase needs about a batch, loaded in a few queries."""

    assistants: dict[str, dict[str, Any]]
    runs: dict[str, dict[str, Any]]
    do_not_call: set[str]
    #: Per insight group: the fields its insights ask for (``CallRequest.asks``).
    asks: dict[str, tuple[AskedField, ...]]
    #: Per assistant of a call whose caller number is not fixed: its numbers, in order.
    numbers: dict[str, list[str]] = field(default_factory=dict)
    #: Calls in progress per caller number (of ``numbers``), counting this batch's.
    lines: Counter[str] = field(default_factory=Counter)

    def caller_for(self, row: dict[str, Any]) -> str:
        """The number to dial ``row`` from: its own when fixed, for a text, or when its
        assistant has no other; else the assistant's number with the fewest calls in progress
        (its own on a tie). The choice is counted as a call in progress."""
        own = row["telnyx_agent_target"]
        spread = not row["caller_fixed"] and row["telnyx_conversation_channel"] == "phone_call"
        choices = self.numbers.get(row["assistant_id"], []) if spread else []
        chosen = own
        if choices:
            ordered = ([own] if own in choices else []) + [n for n in choices if n != own]
            chosen = min(ordered, key=lambda number: self.lines[number])
        self.lines[chosen] += 1
        return chosen

    def asks_of(self, assistant: dict[str, Any]) -> tuple[AskedField, ...]:
        group = assistant.get("insight_group_id")
        return self.asks.get(group, ()) if group else ()

    @classmethod
    def load(cls, engine: Engine, rows: list[dict[str, Any]]) -> Lookups:
        """What the batch's rows need: the runs of every row; for the rows still to be placed
        (pending), their assistants, the asks of their insight groups, the do-not-call
        entries of their targets and their assistants' numbers. A batch of calls in progress
        only (a campaign's outcomes coming in) reads the runs alone."""
        pending = [r for r in rows if r["status"] == "pending"]
        assistant_ids = sorted({r["assistant_id"] for r in pending})
        run_ids = sorted({r["run_id"] for r in rows if r["run_id"]})
        targets = sorted({r["telnyx_end_user_target"] for r in pending})
        if not pending and not run_ids:
            return cls(assistants={}, runs={}, do_not_call=set(), asks={})
        with engine.connect() as conn:
            assistants = (
                {
                    r.assistant_id: dict(r._mapping)
                    for r in conn.execute(_ASSISTANTS, {"ids": assistant_ids})
                }
                if assistant_ids
                else {}
            )
            runs = (
                {r.run_id: dict(r._mapping) for r in conn.execute(_RUNS, {"ids": run_ids})}
                if run_ids
                else {}
            )
            blocked = (
                set(conn.execute(_BLOCKED, {"targets": targets}).scalars()) if targets else set()
            )
            groups = sorted(
                {a["insight_group_id"] for a in assistants.values() if a["insight_group_id"]}
            )
            asks = _asks(conn, groups) if groups else {}
            spread = {
                r["assistant_id"]
                for r in pending
                if not r["caller_fixed"] and r["telnyx_conversation_channel"] == "phone_call"
            }
            numbers, lines = _numbers(conn, spread) if spread else ({}, Counter())
        return cls(
            assistants=assistants,
            runs=runs,
            do_not_call=blocked,
            asks=asks,
            numbers=numbers,
            lines=lines,
        )

    def take_budget(self, engine: Engine, run: dict[str, Any]) -> bool:
        """Count one call against the run's budget; False when it is used up, or when the run
        can no longer place calls (it changed since the batch was loaded: see
        ``reload_run``)."""
        # The SQL twin of the run gate (``Dispatcher._run_gate``, ``domain.guardrails``): only a
        # running run that needs no approval, or has it, may still place a call.
        with engine.begin() as conn:
            taken = conn.execute(_TAKE_BUDGET, {"budget_run": run["run_id"]}).rowcount == 1
        if taken:
            run["calls_placed"] = run["calls_placed"] + 1
        return taken

    def reload_run(self, engine: Engine, run: dict[str, Any]) -> dict[str, Any]:
        """Read the run again (for this batch's later calls too) and return it."""
        with engine.connect() as conn:
            row = conn.execute(_RUNS, {"ids": [run["run_id"]]}).one()
        fresh = dict(row._mapping)
        self.runs[run["run_id"]] = fresh
        return fresh


_ASSISTANT_TABLE = m.Assistant.__table__
_DO_NOT_CALL = m.DoNotCall.__table__
_ASSISTANTS = select(_ASSISTANT_TABLE).where(
    _ASSISTANT_TABLE.c.assistant_id.in_(bindparam("ids", expanding=True))
)
_RUNS = select(RUNS).where(RUNS.c.run_id.in_(bindparam("ids", expanding=True)))
_BLOCKED = select(_DO_NOT_CALL.c.target).where(
    _DO_NOT_CALL.c.target.in_(bindparam("targets", expanding=True))
)
#: One call counted against the run's budget, where the run may still place it.
_TAKE_BUDGET = (
    update(RUNS)
    .where(RUNS.c.run_id == bindparam("budget_run"))
    .where(RUNS.c.status == "running")
    .where(RUNS.c.approval_required.is_(False) | RUNS.c.approved_at.is_not(None))
    .where(RUNS.c.call_budget.is_(None) | (RUNS.c.calls_placed < RUNS.c.call_budget))
    .values(calls_placed=RUNS.c.calls_placed + 1)
)


def _numbers(conn: Any, assistant_ids: set[str]) -> tuple[dict[str, list[str]], Counter[str]]:
    """The numbers of these assistants, and the calls in progress from each."""
    phones = m.PhoneNumber.__table__
    query = (
        select(phones.c.assistant_id, phones.c.phone_number)
        .where(phones.c.assistant_id.in_(assistant_ids))
        .order_by(phones.c.assistant_id, phones.c.hd_voice.desc(), phones.c.phone_number)
    )
    numbers: dict[str, list[str]] = {}
    for assistant_id, number in conn.execute(query):
        numbers.setdefault(assistant_id, []).append(number)
    held = [n for found in numbers.values() if len(found) > 1 for n in found]
    lines: Counter[str] = Counter()
    if held:
        busy = (
            select(EVENTS.c.telnyx_agent_target, func.count())
            .where(EVENTS.c.status == "in_progress", EVENTS.c.telnyx_agent_target.in_(held))
            .group_by(EVENTS.c.telnyx_agent_target)
        )
        lines.update({number: count for number, count in conn.execute(busy)})
    return numbers, lines


_MEMBERS = m.InsightGroupMember.__table__
_INSIGHTS = m.Insight.__table__
_ASKS = (
    select(_MEMBERS.c.insight_group_id, _INSIGHTS.c.insight_id, _INSIGHTS.c.parameters)
    .join(_INSIGHTS, _INSIGHTS.c.insight_id == _MEMBERS.c.insight_id)
    .where(_MEMBERS.c.insight_group_id.in_(bindparam("groups", expanding=True)))
    .order_by(_MEMBERS.c.insight_group_id, _MEMBERS.c.position)
)


def _asks(conn: Any, groups: list[str]) -> dict[str, tuple[AskedField, ...]]:
    found: dict[str, list[AskedField]] = {}
    for group, insight_id, raw in conn.execute(_ASKS, {"groups": groups}):
        found.setdefault(group, []).extend(_asked_fields(insight_id, raw))
    return {group: tuple(fields) for group, fields in found.items()}


#: The fields of an insight's parameters, by (insight, parameters as JSON): read once per
#: version of an insight, as a campaign's batches ask for the same few.
_fields_read: dict[tuple[str, str], tuple[AskedField, ...]] = {}


def _asked_fields(insight_id: str, raw: Any) -> tuple[AskedField, ...]:
    try:
        key = (insight_id, json.dumps(raw, sort_keys=True))
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _fields_read:
        return _fields_read[key]
    fields: list[AskedField] = []
    for parameter in parse_parameters(raw or [], field=f"insight {insight_id} parameters"):
        items = parameter.type[6:-1] if parameter.type.startswith("array(") else None
        fields.append(
            AskedField(
                name=parameter.name,
                type=parameter.type,
                description=parameter.description,
                enum=parameter.enum,
                items_type=items,
            )
        )
    read = tuple(fields)
    if key is not None and len(_fields_read) < 1000:
        _fields_read[key] = read
    return read
