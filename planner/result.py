"""Per-target outcomes and the mission's final result (summary markdown and payload).

Pure functions of the spec and what the calls returned, so a resumed run compiles exactly the
same result as an uninterrupted one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from planner.ops import CallResult
from planner.spec import Leverage, MissionSpec

#: Target statuses in the payload.
#: completed — the call connected and the extracted fields came back;
#: no_result — the call connected but extraction failed (what was missing is in notes);
#: voicemail — only a voicemail was reached; unreachable — the retry budget ran out;
#: not_called — a guardrail refused the call; cancelled — the run or call was cancelled.
USABLE = "completed"


@dataclass(frozen=True)
class CompiledResult:
    status: Literal["succeeded", "failed"]
    summary: str
    payload: dict[str, Any]
    error: str | None


def format_value(value: float | int | None, leverage: Leverage | None) -> str:
    """``$62`` / ``$62.50`` for money, ``4.5`` otherwise; ``—`` when unknown."""
    if value is None:
        return "—"
    number = float(value)
    text = f"{number:.0f}" if number.is_integer() else f"{number:.2f}"
    if leverage is None or leverage.money:
        return f"${text}"
    return f"{number:g}"


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


def _status_list(result: CallResult) -> str:
    counts = Counter(a.call_status for a in result.attempts)
    return ", ".join(f"{status} ×{n}" if n > 1 else status for status, n in counts.items())


def build_outcome(
    spec: MissionSpec,
    index: int,
    result: CallResult,
    *,
    offered: dict[str, Any] | None,
) -> dict[str, Any]:
    """Turn one finished call into the target's outcome record.

    ``offered`` is the leverage the call carried (``{"name", "value"}``), None for a call
    placed without leverage.
    """
    target = spec.targets[index]
    leverage = spec.leverage
    attempts = len(result.attempts)
    minutes = sum(a.duration_secs or 0.0 for a in result.attempts) / 60.0
    cost = sum(a.cost or 0.0 for a in result.attempts)
    outcome: dict[str, Any] = {
        "index": index,
        "name": target.name,
        "phone": target.phone,
        "status": "completed",
        "attempts": attempts,
        "attempt_statuses": [a.call_status for a in result.attempts],
        "conversation_id": result.conversation_id,
        "extracted": dict(result.insights or {}),
        "initial_value": None,
        "final_value": None,
        "negotiated": None,
        "leverage_offered": offered,
        "notes": "",
        "minutes": round(minutes, 2),
        "cost": round(cost, 4),
        "deferrals": result.deferrals,
        "error": None,
    }
    if result.status == "cancelled":
        outcome["status"] = "cancelled"
        outcome["notes"] = "Cancelled before it connected"
        return outcome
    if result.status == "failed":
        retryable = {"busy", "no-answer", "failed", "canceled"}
        if attempts and all(a.call_status in retryable for a in result.attempts):
            outcome["status"] = "unreachable"
            outcome["notes"] = (
                f"Unreachable after {attempts} attempt{'s' * (attempts != 1)} "
                f"({_status_list(result)})"
            )
        else:
            outcome["status"] = "not_called" if not attempts else "unreachable"
            outcome["notes"] = "; ".join(result.errors) or "The call failed"
        outcome["error"] = "; ".join(result.errors) or None
        return outcome
    if result.voicemail:
        outcome["status"] = "voicemail"
        outcome["notes"] = "Reached voicemail only; left a message"
        return outcome
    if result.insight_status != "completed" or result.insights is None:
        outcome["status"] = "no_result"
        reason = result.insight_error or "no insights were extracted"
        outcome["notes"] = f"Connected, but the answers could not be read: {reason}"
        outcome["error"] = reason
        return outcome
    if leverage is None:
        if attempts > 1:
            outcome["notes"] = f"Answered on attempt {attempts} ({_status_list(result)})"
        return outcome
    final = _number(result.insights.get(leverage.field))
    initial = (
        _number(result.insights.get(leverage.initial_field)) if leverage.initial_field else None
    )
    if final is None:
        outcome["status"] = "no_result"
        outcome["notes"] = f"Connected, but no {leverage.label.lower()} was given"
        return outcome
    initial = final if initial is None else initial
    outcome["initial_value"] = initial
    outcome["final_value"] = final
    outcome["negotiated"] = is_better(final, initial, leverage) and final != initial
    outcome["notes"] = _leverage_note(outcome, leverage)
    return outcome


def _leverage_note(outcome: dict[str, Any], leverage: Leverage) -> str:
    offered = outcome["leverage_offered"]
    final = outcome["final_value"]
    initial = outcome["initial_value"]
    show = lambda v: format_value(v, leverage)  # noqa: E731
    if offered is None:
        return "Quoted without leverage"
    best = float(offered["value"])
    direction = "down" if leverage.better == "lower" else "up"
    if is_better(final, best, leverage) and final != best:
        return f"Beat the {offered['name']} quote ({show(best)}) when presented with it"
    if final == best:
        return f"Couldn't beat {show(best)} ({offered['name']}), matched it"
    if outcome["negotiated"]:
        return (
            f"Came {direction} from {show(initial)} but couldn't beat {show(best)} "
            f"({offered['name']})"
        )
    return f"Kept {show(final)}; wouldn't beat {show(best)} ({offered['name']})"


def not_called_outcome(spec: MissionSpec, index: int, reason: str) -> dict[str, Any]:
    """The outcome of a target whose call a guardrail refused."""
    target = spec.targets[index]
    return {
        "index": index,
        "name": target.name,
        "phone": target.phone,
        "status": "not_called",
        "attempts": 0,
        "attempt_statuses": [],
        "conversation_id": None,
        "extracted": {},
        "initial_value": None,
        "final_value": None,
        "negotiated": None,
        "leverage_offered": None,
        "notes": f"Not called: {reason}",
        "minutes": 0.0,
        "cost": 0.0,
        "deferrals": 0,
        "error": reason,
    }


def is_usable(outcome: dict[str, Any], spec: MissionSpec) -> bool:
    if outcome["status"] != USABLE:
        return False
    return spec.leverage is None or outcome["final_value"] is not None


def describe_outcome(outcome: dict[str, Any], spec: MissionSpec) -> str:
    """One line for the run's event log and the live display."""
    name = outcome["name"]
    leverage = spec.leverage
    if outcome["status"] == USABLE and leverage is not None:
        value = format_value(outcome["final_value"], leverage)
        per = f" per {leverage.unit}" if leverage.unit else ""
        text = f"{leverage.label} from {name}: {value}{per}"
        if outcome["negotiated"]:
            text += (
                f" (down from {format_value(outcome['initial_value'], leverage)})"
                if (leverage.better == "lower")
                else f" (up from {format_value(outcome['initial_value'], leverage)})"
            )
        return text
    if outcome["status"] == USABLE:
        fields = ", ".join(f"{k}={_cell(v)}" for k, v in outcome["extracted"].items())
        return f"Result from {name}: {fields}"
    return f"No result from {name}: {outcome['notes']}"


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
    if outcome["status"] != USABLE:
        return "—"
    if baseline:
        return "Baseline"
    if outcome["negotiated"]:
        direction = "down" if leverage.better == "lower" else "up"
        return f"✅ Yes, {direction} from {format_value(outcome['initial_value'], leverage)}"
    return "❌ No"


def compile_result(
    spec: MissionSpec, outcomes: list[dict[str, Any]], *, run_id: str | None = None
) -> CompiledResult:
    """The run's ``result_summary`` (markdown) and ``result_payload``, and whether it
    succeeded: it does when at least one target gave a usable result."""
    leverage = spec.leverage
    ordered = sorted(outcomes, key=lambda o: o["index"])
    usable = [o for o in ordered if is_usable(o, spec)]
    baseline = usable[0] if usable and leverage is not None else None
    recommendation: dict[str, Any] | None = None
    if leverage is not None and usable:
        best = usable[0]
        for candidate in usable[1:]:
            if is_better(candidate["final_value"], best["final_value"], leverage) and (
                candidate["final_value"] != best["final_value"]
            ):
                best = candidate
        assert baseline is not None
        per_unit = (
            baseline["final_value"] - best["final_value"]
            if leverage.better == "lower"
            else best["final_value"] - baseline["final_value"]
        )
        saving = per_unit * (leverage.quantity or 1)
        recommendation = {
            "name": best["name"],
            "phone": best["phone"],
            "value": best["final_value"],
            "saving": round(saving, 2),
            "saving_per_unit": round(per_unit, 2),
            "quantity": leverage.quantity,
            "baseline": {"name": baseline["name"], "value": baseline["final_value"]},
        }
    totals = {
        "targets": len(spec.targets),
        "reached": sum(1 for o in ordered if o["status"] in ("completed", "no_result")),
        "usable": len(usable),
        "unreachable": sum(1 for o in ordered if o["status"] == "unreachable"),
        "calls_placed": sum(o["attempts"] for o in ordered),
        "minutes": round(sum(o["minutes"] for o in ordered), 2),
        "cost": round(sum(o["cost"] for o in ordered), 4),
    }
    payload: dict[str, Any] = {
        "mission": spec.name,
        "strategy": spec.strategy,
        "targets": [_payload_target(o) for o in ordered],
        "recommendation": recommendation,
        "totals": totals,
    }
    if run_id is not None:
        payload["run_id"] = run_id
    summary = _summary(spec, ordered, baseline, recommendation, totals)
    if usable:
        return CompiledResult("succeeded", summary, payload, None)
    reasons = "; ".join(f"{o['name']}: {o['notes']}" for o in ordered)
    error = f"no usable result from any target ({reasons})"
    return CompiledResult("failed", summary, payload, error)


def _payload_target(outcome: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "phone",
        "status",
        "attempts",
        "attempt_statuses",
        "conversation_id",
        "extracted",
        "initial_value",
        "final_value",
        "negotiated",
        "leverage_offered",
        "notes",
        "minutes",
        "cost",
        "deferrals",
    )
    return {key: outcome[key] for key in keys}


def _summary(
    spec: MissionSpec,
    ordered: list[dict[str, Any]],
    baseline: dict[str, Any] | None,
    recommendation: dict[str, Any] | None,
    totals: dict[str, Any],
) -> str:
    leverage = spec.leverage
    lines = [f"**Mission Complete: {spec.name}**", ""]
    lines.append(
        f"Called {len(ordered)} target{'s' * (len(ordered) != 1)} "
        f"({totals['calls_placed']} call attempt{'s' * (totals['calls_placed'] != 1)}, "
        f"{totals['minutes']:.1f} min, ${totals['cost']:.2f}) — {spec.objective.strip()}"
    )
    lines.append("")
    if leverage is not None:
        label = leverage.label + (f" (per {leverage.unit})" if leverage.unit else "")
        lines.append(f"| Target | {label} | Negotiated? | Notes |")
        lines.append("|---|---|---|---|")
        for o in ordered:
            is_baseline = baseline is not None and o["index"] == baseline["index"]
            notes = o["notes"]
            if is_baseline and o["leverage_offered"] is None:
                notes = "First call, established reference price"
            value = format_value(o["final_value"], leverage) if o["status"] == USABLE else "—"
            lines.append(
                f"| {_cell(o['name'])} | {value} | "
                f"{_negotiated_cell(o, leverage, is_baseline)} | {_cell(notes)} |"
            )
    else:
        fields = [f.name for f in spec.extract]
        lines.append("| Target | Status | " + " | ".join(fields) + " | Notes |")
        lines.append("|---|---|" + "---|" * len(fields) + "---|")
        for o in ordered:
            values = [
                _cell(o["extracted"].get(f)) if o["status"] == USABLE else "—" for f in fields
            ]
            lines.append(
                f"| {_cell(o['name'])} | {o['status'].replace('_', ' ')} | "
                + " | ".join(values)
                + f" | {_cell(o['notes'])} |"
            )
    lines.append("")
    if recommendation is not None and leverage is not None:
        per = f"/{leverage.unit}" if leverage.unit else ""
        value = format_value(recommendation["value"], leverage)
        if recommendation["name"] == recommendation["baseline"]["name"]:
            text = (
                f"**Recommendation:** {recommendation['name']} offers the best value at "
                f"{value}{per} — the baseline itself; no other target beat it."
            )
        else:
            saving = format_value(recommendation["saving"], leverage)
            word = "savings" if leverage.better == "lower" else "more"
            scope = ""
            if leverage.quantity:
                amount = f"{leverage.quantity:g}"
                scope = f" for {amount} {leverage.quantity_label or leverage.unit or 'units'}"
            text = (
                f"**Recommendation:** {recommendation['name']} offers the best value at "
                f"{value}{per} — {saving} {word} over the baseline{scope}."
            )
        lines.append(text)
    elif leverage is not None:
        lines.append("**Recommendation:** none — no target gave a usable answer.")
    else:
        usable = sum(1 for o in ordered if o["status"] == USABLE)
        lines.append(f"**Result:** {usable} of {len(ordered)} targets answered.")
    unreachable = [o for o in ordered if o["status"] in ("unreachable", "not_called")]
    if unreachable:
        lines.append("")
        lines.append(
            "**Unreachable:** "
            + "; ".join(f"{o['name']} ({o['phone']}): {o['notes']}" for o in unreachable)
        )
    return "\n".join(lines) + "\n"
