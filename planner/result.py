"""Per-target outcomes and the mission's final result (summary markdown and payload).

Pure functions of the spec and what the calls returned, so a resumed run compiles exactly the
same result as an uninterrupted one.

One vocabulary, used by the summary, the payload (and so the CLI and MCP) and the event log:
every target has an ``outcome`` and a ``reason``.

* ``usable`` — answered, and the fields the mission needs were read;
* ``unreadable`` — answered, but the answers could not be read (``unread_fields`` and the
  reader's error say which and why);
* ``unreachable`` — no conversation after N attempts (each attempt's status is listed), or
  only a voicemail;
* ``not_called`` — never called, or stopped before the retries ran out: the do-not-call list,
  the run's call budget, the run being cancelled, no calling hours at all;
* ``declined`` — the business would not answer (the recorded conversation says so);
* ``call_back`` — the business asked to be called back (and when, where recorded).

``status`` is kept beside it for older readers (completed, no_result, voicemail, unreachable,
not_called, cancelled).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from planner.ops import CallResult
from planner.spec import Leverage, MissionSpec, Target

USABLE = "completed"

Outcome = Literal["usable", "unreadable", "unreachable", "not_called", "declined", "call_back"]

#: How each outcome reads in a summary.
OUTCOME_LABELS: dict[str, str] = {
    "usable": "usable answer",
    "unreadable": "answered, unreadable",
    "unreachable": "unreachable",
    "not_called": "not called",
    "declined": "declined",
    "call_back": "call back requested",
}

#: Call statuses after which nobody was reached.
_UNANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})

#: What each recorded cost is (``CallResult.cost_basis``).
COST_BASIS = {
    "simulated": "simulated from the world's rates",
    "provider": "as reported by the provider",
}

_DECLINED = re.compile(r" — declined$")
_CALL_BACK = re.compile(r" — call back requested(?: (?P<when>.+))?$")
_FIGURE = re.compile(r"(?<![\d.])\$?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")


@dataclass(frozen=True)
class CompiledResult:
    status: Literal["succeeded", "failed"]
    summary: str
    payload: dict[str, Any]
    error: str | None


def _number_text(number: float, money: bool) -> str:
    if number.is_integer():
        return f"{number:,.0f}"
    return f"{number:,.2f}" if money else f"{number:,}"


def format_value(value: float | int | None, leverage: Leverage | None) -> str:
    """``$1,850`` / ``$62.50`` for money, ``4.5`` otherwise; ``—`` when unknown."""
    if value is None:
        return "—"
    money = leverage is None or leverage.money
    text = _number_text(float(value), money)
    return f"${text}" if money else text


def variable_value(value: float | int) -> str:
    """How a leverage value is written into a run variable: plain digits, no currency sign,
    so the assistant's template decides how to say it (``${{best_quote}}``)."""
    number = float(value)
    return f"{number:.0f}" if number.is_integer() else f"{number:.2f}"


def is_better(candidate: float, current: float | None, leverage: Leverage) -> bool:
    if current is None:
        return True
    return candidate < current if leverage.better == "lower" else candidate > current


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _attempts_text(statuses: list[str]) -> str:
    """``3 attempts (busy, no-answer, no-answer)``: every attempt's status, in order."""
    return f"{_plural(len(statuses), 'attempt')} ({', '.join(statuses)})"


def _blank(spec: MissionSpec, index: int, target: Target | None = None) -> dict[str, Any]:
    target = spec.targets[index] if target is None else target
    return {
        "index": index,
        "name": target.name,
        "phone": target.phone,
        "outcome": "not_called",
        "reason": "",
        "status": "not_called",
        "attempts": 0,
        "attempt_statuses": [],
        "conversation_id": None,
        "extracted": {},
        "unread_fields": [],
        "initial_value": None,
        "final_value": None,
        "negotiated": None,
        "leverage_offered": None,
        "notes": "",
        "minutes": 0.0,
        "cost": 0.0,
        "cost_basis": None,
        "deferrals": 0,
        "error": None,
    }


def _not_called_reason(result: CallResult, spec: MissionSpec) -> str | None:
    """Why a guardrail stopped the call, from the codes the service recorded; None when
    nothing stopped it."""
    codes = set(result.error_codes)
    statuses = [a.call_status for a in result.attempts]
    if "do_not_call" in codes:
        why = "on the do-not-call list"
    elif "call_budget_exhausted" in codes:
        detail = next((e for e in result.errors if "budget" in e), "")
        why = "stopped by the run's call budget" + (f" ({detail})" if detail else "")
        retries = spec.retry.max_retries_client_errors
        if statuses and len(statuses) - 1 < retries:
            left = retries - (len(statuses) - 1)
            return (
                f"{why} after {_attempts_text(statuses)}, with "
                f"{_plural(left, 'retry', 'retries')} of {retries} still allowed"
            )
    elif result.status == "cancelled" or "run_finished" in codes:
        why = "the run was cancelled or finished first"
    else:
        return None
    return f"{why} after {_attempts_text(statuses)}" if statuses else why


def _disposition(result: CallResult) -> tuple[str, str] | None:
    """Declined or asked for a call back, as the recorded conversation's name says."""
    name = result.conversation_name or ""
    if _DECLINED.search(name):
        return "declined", "declined to answer (the conversation is recorded as declined)"
    found = _CALL_BACK.search(name)
    if found:
        when = found.group("when")
        return "call_back", "asked to be called back" + (f" {when}" if when else "")
    return None


def _said(transcript: tuple[tuple[str, str], ...] | None, value: float) -> bool | None:
    """Whether the assistant said ``value`` on the call; None without a transcript."""
    if transcript is None:
        return None
    for role, text in transcript:
        if role != "assistant":
            continue
        for whole, fraction in _FIGURE.findall(text):
            if float(whole.replace(",", "") + (fraction or "")) == value:
                return True
    return False


def build_outcome(
    spec: MissionSpec,
    index: int,
    result: CallResult,
    *,
    offered: dict[str, Any] | None,
    target: Target | None = None,
) -> dict[str, Any]:
    """Turn one finished call into the target's outcome record.

    ``offered`` is the leverage the call carried (``{"name", "value"}``), None for a call
    placed without leverage. ``target`` is the target at ``index`` (default: the spec's own;
    the planner passes it, its spec header has no targets).
    """
    leverage = spec.leverage
    statuses = [a.call_status for a in result.attempts]
    costs = [a.cost for a in result.attempts if a.cost is not None]
    outcome = _blank(spec, index, target)
    outcome.update(
        {
            "attempts": len(statuses),
            "attempt_statuses": statuses,
            "conversation_id": result.conversation_id,
            "extracted": dict(result.insights or {}),
            "leverage_offered": offered,
            "minutes": round(sum(a.duration_secs or 0.0 for a in result.attempts) / 60.0, 2),
            # None when attempts were placed and none of them reported a cost.
            "cost": round(sum(costs), 4) if costs or not statuses else None,
            "cost_basis": result.cost_basis,
            "deferrals": result.deferrals,
        }
    )

    def finish(kind: str, status: str, reason: str, error: str | None = None) -> dict[str, Any]:
        outcome.update({"outcome": kind, "status": status, "reason": reason, "error": error})
        if not outcome["notes"]:
            outcome["notes"] = reason
        return outcome

    stopped = _not_called_reason(result, spec)
    if stopped is not None:
        status = "cancelled" if result.status == "cancelled" else "not_called"
        return finish("not_called", status, stopped, "; ".join(result.errors) or stopped)
    if result.status == "failed":
        error = "; ".join(result.errors) or None
        if not statuses:
            return finish("not_called", "not_called", error or "the call was not placed", error)
        reason = f"not reached in {_attempts_text(statuses)}"
        if not all(s in _UNANSWERED for s in statuses) and error:
            reason += f": {error}"
        return finish("unreachable", "unreachable", reason, error)
    if result.status == "cancelled":
        return finish("not_called", "cancelled", "cancelled before it connected")
    if result.voicemail:
        return finish(
            "unreachable", "voicemail", f"reached voicemail only, {_attempts_text(statuses)}"
        )
    disposition = _disposition(result)
    if disposition is not None:
        return finish(disposition[0], "no_result", disposition[1])
    required = [f.name for f in spec.extract if f.required] or [f.name for f in spec.extract]
    if result.insight_status != "completed" or result.insights is None:
        why = result.insight_error or "no insights were extracted"
        outcome["unread_fields"] = [f for f in required if f not in outcome["extracted"]]
        fields = ", ".join(outcome["unread_fields"])
        reason = f"answered, but the answers could not be read: {why}"
        if fields and fields not in why:
            reason += f" (fields not read: {fields})"
        return finish("unreadable", "no_result", reason, why)
    answered = "answered" + (
        f" on attempt {len(statuses)} ({', '.join(statuses)})" if len(statuses) > 1 else ""
    )
    if leverage is None:
        return finish("usable", USABLE, answered)
    final = _number(result.insights.get(leverage.field))
    if final is None:
        outcome["unread_fields"] = [leverage.field]
        reason = f"answered, but no {leverage.label.lower()} was read ({leverage.field})"
        return finish("unreadable", "no_result", reason, reason)
    initial = (
        _number(result.insights.get(leverage.initial_field)) if leverage.initial_field else None
    )
    outcome["initial_value"] = initial
    outcome["final_value"] = final
    outcome["negotiated"] = (
        None if initial is None else (is_better(final, initial, leverage) and final != initial)
    )
    heard = None if offered is None else _said(result.transcript, float(offered["value"]))
    outcome["notes"] = _leverage_note(outcome, leverage, spec.strategy, heard)
    return finish("usable", USABLE, answered)


def _leverage_note(
    outcome: dict[str, Any], leverage: Leverage, strategy: str, heard: bool | None
) -> str:
    """What the values (and the transcript) show about the negotiation, and nothing more."""
    offered = outcome["leverage_offered"]
    final: float = outcome["final_value"]
    initial: float | None = outcome["initial_value"]
    show = lambda v: format_value(v, leverage)  # noqa: E731
    lower = leverage.better == "lower"
    if offered is None:
        if strategy != "sequential_leverage":
            return ""
        return "First call, no competitor's figure given"
    best = float(offered["value"])
    theirs = f"{offered['name']}'s {show(best)}"
    beyond, moved = ("below", "Lowered") if lower else ("above", "Raised")
    if heard:
        context = f"after hearing {theirs}"
    elif heard is False:
        context = f"against {theirs} (the transcript does not show it being mentioned)"
    else:
        context = f"against {theirs}"
    if initial is not None and is_better(initial, best, leverage) and initial != best:
        text = f"Already {beyond} {theirs}: quoted {show(initial)}"
        return text if final == initial else f"{text}, final {show(final)}"
    if initial is None:
        relation = (
            "the same as"
            if final == best
            else (beyond if is_better(final, best, leverage) else ("above" if lower else "below"))
        )
        return f"Final {show(final)}, {relation} {theirs}"
    if final == best:
        if initial == final:
            return f"Quoted {show(final)}, the same as {theirs}"
        return f"Matched {context}: {show(initial)} → {show(final)}"
    if is_better(final, best, leverage):
        return f"{moved} from {show(initial)} to {show(final)} {context}"
    if final != initial and is_better(final, initial, leverage):
        return f"{moved} from {show(initial)} to {show(final)} {context}, but not to it"
    if heard:
        return f"Refused to go {beyond} {show(initial)} {context}"
    return f"Kept {show(initial)} {context}"


def not_called_outcome(
    spec: MissionSpec,
    index: int,
    reason: str,
    *,
    code: str | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """The outcome of a target whose call a guardrail refused (``code`` names the rule)."""
    why = {
        "do_not_call": "on the do-not-call list",
        "run_finished": "the run was cancelled or finished first",
        "no_calling_hours": "outside every calling window",
    }.get(code or "")
    outcome = _blank(spec, index, target)
    text = f"{why} ({reason})" if why == "outside every calling window" else (why or reason)
    outcome.update({"reason": text, "notes": f"Not called: {text}", "error": reason})
    return outcome


def is_usable(outcome: dict[str, Any], spec: MissionSpec) -> bool:
    if outcome.get("outcome", "usable" if outcome["status"] == USABLE else None) != "usable":
        return False
    return spec.leverage is None or outcome["final_value"] is not None


def describe_outcome(outcome: dict[str, Any], spec: MissionSpec) -> str:
    """One line for the run's event log and the live display."""
    name = outcome["name"]
    leverage = spec.leverage
    if is_usable(outcome, spec) and leverage is not None:
        value = format_value(outcome["final_value"], leverage)
        per = f" per {leverage.unit}" if leverage.unit else ""
        text = f"{leverage.label} from {name}: {value}{per}"
        if outcome["negotiated"]:
            direction = "down" if leverage.better == "lower" else "up"
            text += f" ({direction} from {format_value(outcome['initial_value'], leverage)})"
        return text
    if is_usable(outcome, spec):
        fields = ", ".join(f"{k}={_cell(v)}" for k, v in outcome["extracted"].items())
        return f"Result from {name}: {fields}"
    return f"No result from {name}: {OUTCOME_LABELS[outcome['outcome']]} — {outcome['reason']}"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "—"
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _negotiated_cell(outcome: dict[str, Any], leverage: Leverage, baseline: bool) -> str:
    if outcome["outcome"] != "usable":
        return "—"
    if baseline:
        return "Baseline"
    if outcome["negotiated"]:
        direction = "down" if leverage.better == "lower" else "up"
        return f"✅ Yes, {direction} from {format_value(outcome['initial_value'], leverage)}"
    if outcome["negotiated"] is None:
        return "—"
    return "❌ No"


def _best(usable: list[dict[str, Any]], leverage: Leverage) -> dict[str, Any]:
    best = usable[0]
    for candidate in usable[1:]:
        if is_better(candidate["final_value"], best["final_value"], leverage):
            best = candidate
    return best


def _recommendation(
    spec: MissionSpec, usable: list[dict[str, Any]], leverage: Leverage
) -> dict[str, Any] | None:
    """The best usable value, compared with the baseline (the first quote of a sequential
    mission) or, in a survey, with the next best."""
    if not usable:
        return None
    best = _best(usable, leverage)
    baseline = usable[0] if spec.strategy == "sequential_leverage" else None
    others = [o for o in usable if o["index"] != best["index"]]
    runner_up = _best(others, leverage) if others else None
    compared = baseline if baseline is not None else runner_up
    per_unit = None
    if compared is not None:
        per_unit = abs(compared["final_value"] - best["final_value"])
    advantage = None if per_unit is None else round(per_unit * (leverage.quantity or 1), 2)
    lower = leverage.better == "lower"
    return {
        "name": best["name"],
        "phone": best["phone"],
        "value": best["final_value"],
        "better": leverage.better,
        "compared_with": None if compared is None else ("baseline" if baseline else "runner_up"),
        "advantage": advantage,
        "advantage_per_unit": None if per_unit is None else round(per_unit, 2),
        "saving": advantage if lower else None,
        "saving_per_unit": (round(per_unit, 2) if per_unit is not None else None)
        if lower
        else None,
        "quantity": leverage.quantity,
        "baseline": None
        if baseline is None
        else {"name": baseline["name"], "value": baseline["final_value"]},
        "runner_up": None
        if runner_up is None
        else {"name": runner_up["name"], "value": runner_up["final_value"]},
    }


def _count(ordered: list[dict[str, Any]], kind: str) -> int:
    return sum(1 for o in ordered if o["outcome"] == kind)


def _totals(
    spec: MissionSpec, ordered: list[dict[str, Any]], target_count: int | None
) -> dict[str, Any]:
    costs = [o["cost"] for o in ordered if o["cost"] is not None]
    unknown = any(o["cost"] is None for o in ordered)
    bases = sorted({o["cost_basis"] for o in ordered if o["attempts"] and o["cost_basis"]})
    return {
        "targets": len(spec.targets) if target_count is None else target_count,
        "reached": sum(
            1 for o in ordered if o["outcome"] in ("usable", "unreadable", "declined", "call_back")
        ),
        "usable": _count(ordered, "usable"),
        "unreadable": _count(ordered, "unreadable"),
        "declined": _count(ordered, "declined"),
        "call_back": _count(ordered, "call_back"),
        "unreachable": _count(ordered, "unreachable"),
        "not_called": _count(ordered, "not_called"),
        "calls_placed": sum(o["attempts"] for o in ordered),
        "minutes": round(sum(o["minutes"] for o in ordered), 2),
        # None when a placed call reported no cost: a total would understate it.
        "cost": None if unknown else round(sum(costs), 4),
        "cost_basis": bases[0] if len(bases) == 1 else (None if not bases else "mixed"),
        "per_target": [
            {
                "name": o["name"],
                "attempts": o["attempts"],
                "minutes": o["minutes"],
                "cost": o["cost"],
            }
            for o in ordered
        ],
    }


def compile_result(
    spec: MissionSpec,
    outcomes: list[dict[str, Any]],
    *,
    run_id: str | None = None,
    run_status: str | None = None,
    target_count: int | None = None,
) -> CompiledResult:
    """The run's ``result_summary`` (markdown) and ``result_payload``, and whether it
    succeeded: it does when at least one target gave a usable result. ``run_status`` is the
    run's status as it stands (a run cancelled meanwhile is headed as cancelled);
    ``target_count`` the number of targets (default: the spec's).

    A large mission's payload lists the first targets that fit in ``PAYLOAD_BUDGET`` bytes
    (``listed`` says how many of how many), and its summary the first ``SUMMARY_ROWS``; every
    target's outcome is in its plan step and the run's event log."""
    leverage = spec.leverage
    ordered = sorted(outcomes, key=lambda o: o["index"])
    usable = [o for o in ordered if is_usable(o, spec)]
    recommendation = _recommendation(spec, usable, leverage) if leverage is not None else None
    totals = _totals(spec, ordered, target_count)
    payload: dict[str, Any] = {
        "mission": spec.name,
        "strategy": spec.strategy,
        "targets": [_payload_target(o) for o in ordered],
        "recommendation": recommendation,
        "totals": totals,
    }
    if run_id is not None:
        payload["run_id"] = run_id
    _fit(payload, totals["targets"])
    status: Literal["succeeded", "failed"] = "succeeded" if usable else "failed"
    shown = run_status if run_status in ("cancelled",) else status
    summary = _summary(spec, ordered, recommendation, totals, shown)
    if usable:
        return CompiledResult("succeeded", summary, payload, None)
    reasons = "; ".join(
        f"{o['name']}: {OUTCOME_LABELS[o['outcome']]} — {o['reason']}"
        for o in ordered[:ERROR_TARGETS]
    )
    if len(ordered) > ERROR_TARGETS:
        reasons += f"; … ({len(ordered) - ERROR_TARGETS} more targets)"
    error = f"no usable answer from any target ({reasons})"
    return CompiledResult("failed", summary, payload, error)


#: The most bytes (as JSON) a result payload may take (the service stores at most 16 KiB).
PAYLOAD_BUDGET = 14_000
#: The most target rows a summary table shows, and targets named in each list of a summary.
SUMMARY_ROWS = 50
SUMMARY_NAMED = 20
#: The most targets whose reasons a failed run's error names.
ERROR_TARGETS = 10
_ALL_OUTCOMES = "every target's outcome is in its plan step (get_plan) and the run's events"


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def _fit(payload: dict[str, Any], count: int) -> None:
    """Cut the payload's target lists so that it fits in ``PAYLOAD_BUDGET``."""
    if _size(payload) <= PAYLOAD_BUDGET:
        return
    targets = payload["targets"]
    payload["totals"]["per_target"] = []
    payload["listed"] = {"targets": len(targets), "of": count, "note": _ALL_OUTCOMES}
    keep = len(targets)
    while keep > 0 and _size(payload) > PAYLOAD_BUDGET:
        keep = keep // 2 if _size(payload) > 2 * PAYLOAD_BUDGET else keep - max(1, keep // 10)
        payload["targets"] = targets[:keep]
        payload["listed"]["targets"] = keep


def _payload_target(outcome: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "phone",
        "outcome",
        "reason",
        "status",
        "attempts",
        "attempt_statuses",
        "conversation_id",
        "extracted",
        "unread_fields",
        "initial_value",
        "final_value",
        "negotiated",
        "leverage_offered",
        "notes",
        "minutes",
        "cost",
        "cost_basis",
        "deferrals",
        "error",
    )
    return {key: outcome[key] for key in keys}


def _counts_line(totals: dict[str, Any]) -> str:
    inner = [f"{totals['usable']} usable", f"{totals['unreadable']} unreadable"]
    if totals["declined"]:
        inner.append(f"{totals['declined']} declined")
    if totals["call_back"]:
        inner.append(f"{totals['call_back']} asked to be called back")
    return (
        f"{_plural(totals['targets'], 'target')}: {totals['reached']} reached "
        f"({', '.join(inner)}), {totals['unreachable']} unreachable, "
        f"{totals['not_called']} not called."
    )


def _calls_line(totals: dict[str, Any]) -> str:
    if not totals["calls_placed"]:
        return "No call was placed."
    if totals["cost"] is None:
        cost = "cost not reported"
    else:
        basis = COST_BASIS.get(totals["cost_basis"] or "", "")
        cost = f"${totals['cost']:,.2f}" + (f" ({basis})" if basis else "")
    return (
        f"{_plural(totals['calls_placed'], 'call attempt')}, {totals['minutes']:.1f} min, {cost}."
    )


def _heading(spec: MissionSpec, status: str, totals: dict[str, Any]) -> str:
    if status == "succeeded":
        return f"**Mission complete: {spec.name}**"
    parts = [
        f"{totals[k]} {label}"
        for k, label in (
            ("unreadable", "unreadable"),
            ("declined", "declined"),
            ("call_back", "asked to be called back"),
            ("unreachable", "unreachable"),
            ("not_called", "not called"),
        )
        if totals[k]
    ]
    why = "no target gave a usable answer" + (f" ({', '.join(parts)})" if parts else "")
    return f"**Mission {status}: {spec.name}** — {why}"


def _recommendation_line(
    spec: MissionSpec, recommendation: dict[str, Any] | None, leverage: Leverage
) -> str:
    if recommendation is None:
        return "**Recommendation:** none — no target gave a usable answer."
    lower = leverage.better == "lower"
    per = f"/{leverage.unit}" if leverage.unit else ""
    value = format_value(recommendation["value"], leverage)
    label = leverage.label.lower()
    name = recommendation["name"]
    scope = ""
    if leverage.quantity:
        scope = f" for {leverage.quantity:g} {leverage.quantity_label or leverage.unit or 'units'}"
    amount = format_value(recommendation["advantage"], leverage)
    baseline = recommendation["baseline"]
    if baseline is not None:
        lead = (
            f"**Recommendation:** {name} offers the best value at {value}{per}"
            if lower
            else f"**Recommendation:** {name} made the highest {label}, {value}{per}"
        )
        if name == baseline["name"]:
            return f"{lead} — the baseline itself; no other target beat it."
        word = "savings over" if lower else "more than"
        return f"{lead} — {amount} {word} the baseline{scope}."
    superlative = "lowest" if lower else "highest"
    runner = recommendation["runner_up"]
    lead = f"**Recommendation:** {name} gave the {superlative} {label}, {value}{per}"
    if runner is None:
        return f"{lead}; no other target gave one to compare it with."
    theirs = f"{runner['name']} ({format_value(runner['value'], leverage)}{per})"
    if recommendation["advantage"] == 0:
        return f"{lead}, the same as {theirs}."
    gap = format_value(recommendation["advantage_per_unit"], leverage) + per
    if scope:
        gap += f", {amount}{scope}"
    word = "less" if lower else "more"
    return f"{lead} — {gap} {word} than the next best, {theirs}."


def _summary(
    spec: MissionSpec,
    ordered: list[dict[str, Any]],
    recommendation: dict[str, Any] | None,
    totals: dict[str, Any],
    status: str,
) -> str:
    leverage = spec.leverage
    lines = [_heading(spec, status, totals), ""]
    lines.append(_counts_line(totals) + " " + _calls_line(totals))
    lines.append("")
    lines.append(f"Objective: {spec.objective.strip()}")
    lines.append("")
    sequential = spec.strategy == "sequential_leverage"
    if leverage is not None:
        baseline = recommendation["baseline"] if recommendation else None
        label = leverage.label + (f" (per {leverage.unit})" if leverage.unit else "")
        if sequential:
            lines.append(f"| Target | {label} | Negotiated? | Notes |")
            lines.append("|---|---|---|---|")
        else:
            lines.append(f"| Target | {label} | Notes |")
            lines.append("|---|---|---|")
        first_usable = next((o for o in ordered if o["outcome"] == "usable"), None)
        for o in ordered[:SUMMARY_ROWS]:
            is_baseline = baseline is not None and first_usable is not None and o is first_usable
            usable = o["outcome"] == "usable"
            notes = o["notes"] if usable else f"{OUTCOME_LABELS[o['outcome']]}: {o['reason']}"
            if is_baseline and o["leverage_offered"] is None:
                notes = "First call, established reference price"
            value = format_value(o["final_value"], leverage) if usable else "—"
            cells = [_cell(o["name"]), value]
            if sequential:
                cells.append(_negotiated_cell(o, leverage, is_baseline))
            cells.append(_cell(notes))
            lines.append("| " + " | ".join(cells) + " |")
    else:
        fields = [f.name for f in spec.extract]
        lines.append("| Target | Outcome | " + " | ".join(fields) + " | Notes |")
        lines.append("|---|---|" + "---|" * len(fields) + "---|")
        for o in ordered[:SUMMARY_ROWS]:
            usable = o["outcome"] == "usable"
            values = [_cell(o["extracted"].get(f)) if usable else "—" for f in fields]
            lines.append(
                f"| {_cell(o['name'])} | {OUTCOME_LABELS[o['outcome']]} | "
                + " | ".join(values)
                + f" | {_cell(o['reason'])} |"
            )
    if len(ordered) > SUMMARY_ROWS:
        lines.append("")
        lines.append(f"… and {len(ordered) - SUMMARY_ROWS} more targets; {_ALL_OUTCOMES}.")
    lines.append("")
    if leverage is not None:
        lines.append(_recommendation_line(spec, recommendation, leverage))
    else:
        lines.append(
            f"**Result:** {totals['usable']} of {totals['targets']} targets gave a usable "
            f"answer; {totals['reached']} were reached."
        )
    missed = [o for o in ordered if o["outcome"] != "usable"]
    for kind in ("unreadable", "declined", "call_back", "unreachable", "not_called"):
        group = [o for o in missed if o["outcome"] == kind]
        if group:
            named = "; ".join(
                f"{o['name']} ({o['phone']}): {o['reason']}" for o in group[:SUMMARY_NAMED]
            )
            if len(group) > SUMMARY_NAMED:
                named += f"; … ({len(group) - SUMMARY_NAMED} more)"
            lines.append("")
            lines.append(f"**{OUTCOME_LABELS[kind].capitalize()}:** {named}")
    return "\n".join(lines) + "\n"
