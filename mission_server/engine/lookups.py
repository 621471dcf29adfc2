"""What the dispatcher's act phase reads about a claimed batch — its assistants, runs and
do-not-call entries, in a few queries — and the call-budget update that lets one call of a run
be placed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
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
        assistant_ids = {r["assistant_id"] for r in rows}
        run_ids = {r["run_id"] for r in rows if r["run_id"]}
        targets = {r["telnyx_end_user_target"] for r in rows}
        a_table = m.Assistant.__table__
        dnc = m.DoNotCall.__table__
        with engine.connect() as conn:
            assistants = {
                r.assistant_id: dict(r._mapping)
                for r in conn.execute(
                    select(a_table).where(a_table.c.assistant_id.in_(assistant_ids))
                )
            }
            runs = (
                {
                    r.run_id: dict(r._mapping)
                    for r in conn.execute(select(RUNS).where(RUNS.c.run_id.in_(run_ids)))
                }
                if run_ids
                else {}
            )
            blocked = set(
                conn.execute(select(dnc.c.target).where(dnc.c.target.in_(targets))).scalars()
            )
            groups = {a["insight_group_id"] for a in assistants.values() if a["insight_group_id"]}
            asks = _asks(conn, groups) if groups else {}
            spread = {
                r["assistant_id"]
                for r in rows
                if r["status"] == "pending"
                and not r["caller_fixed"]
                and r["telnyx_conversation_channel"] == "phone_call"
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
        statement = (
            update(RUNS)
            .where(RUNS.c.run_id == run["run_id"])
            .where(RUNS.c.status == "running")
            .where(RUNS.c.approval_required.is_(False) | RUNS.c.approved_at.is_not(None))
            .where(RUNS.c.call_budget.is_(None) | (RUNS.c.calls_placed < RUNS.c.call_budget))
            .values(calls_placed=RUNS.c.calls_placed + 1)
        )
        with engine.begin() as conn:
            taken = conn.execute(statement).rowcount == 1
        if taken:
            run["calls_placed"] = run["calls_placed"] + 1
        return taken

    def reload_run(self, engine: Engine, run: dict[str, Any]) -> dict[str, Any]:
        """Read the run again (for this batch's later calls too) and return it."""
        with engine.connect() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.run_id == run["run_id"])).one()
        fresh = dict(row._mapping)
        self.runs[run["run_id"]] = fresh
        return fresh


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


def _asks(conn: Any, groups: set[str]) -> dict[str, tuple[AskedField, ...]]:
    members = m.InsightGroupMember.__table__
    insights = m.Insight.__table__
    query = (
        select(members.c.insight_group_id, insights.c.insight_id, insights.c.parameters)
        .join(insights, insights.c.insight_id == members.c.insight_id)
        .where(members.c.insight_group_id.in_(groups))
        .order_by(members.c.insight_group_id, members.c.position)
    )
    found: dict[str, list[AskedField]] = {}
    for group, insight_id, raw in conn.execute(query):
        fields = found.setdefault(group, [])
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
    return {group: tuple(fields) for group, fields in found.items()}
