"""Compiling a mission's result: the summary table, the recommendation and the saving."""

from __future__ import annotations

from pathlib import Path

from planner.ops import AttemptInfo, CallResult
from planner.result import build_outcome, compile_result
from planner.spec import load_spec

SPEC = load_spec(Path(__file__).resolve().parents[2] / "examples" / "catering.yaml")


def answered(initial: float, final: float, attempts: int = 1) -> CallResult:
    statuses = ["busy"] * (attempts - 1) + ["completed"]
    return CallResult(
        scheduled_event_id="e",
        status="completed",
        call_status="completed",
        conversation_id="c",
        attempts=tuple(
            AttemptInfo(
                i + 1, s, 90.0 if s == "completed" else None, 0.1 if s == "completed" else 0.0
            )
            for i, s in enumerate(statuses)
        ),
        insight_status="completed",
        insights={"initial_price_per_person": initial, "final_price_per_person": final},
        ready=True,
    )


def unreachable(attempts: int) -> CallResult:
    return CallResult(
        scheduled_event_id="e",
        status="failed",
        call_status="no-answer",
        conversation_id=None,
        attempts=tuple(AttemptInfo(i + 1, "no-answer") for i in range(attempts)),
        errors=("client-error retry budget exhausted",),
        ready=True,
    )


def reference_outcomes():
    lakefront = build_outcome(SPEC, 0, answered(65, 65), offered=None)
    grill = build_outcome(
        SPEC, 1, answered(68, 62), offered={"name": "Lakefront Catering", "value": 65.0}
    )
    prairie = build_outcome(
        SPEC,
        2,
        answered(70, 65, attempts=2),
        offered={"name": "Chicago Grill Co", "value": 62.0},
    )
    return [lakefront, grill, prairie]


def test_reference_summary_recommends_the_lowest_final_quote_with_the_saving():
    result = compile_result(SPEC, reference_outcomes())
    assert result.status == "succeeded"
    rec = result.payload["recommendation"]
    assert rec["name"] == "Chicago Grill Co"
    assert rec["value"] == 62
    assert rec["baseline"] == {"name": "Lakefront Catering", "value": 65}
    assert rec["saving"] == 150  # ($65 - $62) x 50 guests
    assert "| Lakefront Catering | $65 | Baseline |" in result.summary
    assert "| Chicago Grill Co | $62 | ✅ Yes, down from $68 |" in result.summary
    assert (
        "**Recommendation:** Chicago Grill Co offers the best value at $62/person — $150 "
        "savings over the baseline for 50 guests." in result.summary
    )


def test_payload_has_per_target_details_and_totals():
    payload = compile_result(SPEC, reference_outcomes()).payload
    grill = payload["targets"][1]
    assert grill["initial_value"] == 68 and grill["final_value"] == 62
    assert grill["negotiated"] is True
    assert grill["leverage_offered"] == {"name": "Lakefront Catering", "value": 65.0}
    assert payload["targets"][0]["negotiated"] is False
    assert payload["totals"]["calls_placed"] == 4
    assert payload["totals"]["minutes"] == 4.5
    assert payload["totals"]["cost"] == 0.3


def test_unreachable_target_is_reported_and_does_not_sink_the_run():
    outcomes = [*reference_outcomes()[:2], build_outcome(SPEC, 2, unreachable(3), offered=None)]
    result = compile_result(SPEC, outcomes)
    assert result.status == "succeeded"
    prairie = result.payload["targets"][2]
    assert prairie["status"] == "unreachable"
    assert prairie["attempts"] == 3
    assert prairie["outcome"] == "unreachable"
    assert prairie["reason"] == "not reached in 3 attempts (no-answer, no-answer, no-answer)"
    assert (
        "**Unreachable:** Prairie Table Events (+1 312 555 0103): not reached in 3 attempts "
        "(no-answer, no-answer, no-answer)" in result.summary
    )


def test_nothing_usable_fails_with_the_reasons():
    outcomes = [build_outcome(SPEC, i, unreachable(2), offered=None) for i in range(3)]
    result = compile_result(SPEC, outcomes)
    assert result.status == "failed"
    assert result.payload["recommendation"] is None
    assert result.error is not None
    assert "Lakefront Catering: unreachable — not reached in 2 attempts" in result.error


def test_baseline_is_the_first_usable_quote_when_the_first_target_is_unreachable():
    outcomes = [
        build_outcome(SPEC, 0, unreachable(3), offered=None),
        build_outcome(SPEC, 1, answered(68, 68), offered=None),
        build_outcome(
            SPEC, 2, answered(70, 65), offered={"name": "Chicago Grill Co", "value": 68.0}
        ),
    ]
    rec = compile_result(SPEC, outcomes).payload["recommendation"]
    assert rec["baseline"]["name"] == "Chicago Grill Co"
    assert rec["name"] == "Prairie Table Events"
    assert rec["saving"] == 150  # ($68 - $65) x 50


def test_a_connected_call_whose_answers_cannot_be_read_is_not_usable():
    result = CallResult(
        scheduled_event_id="e",
        status="completed",
        call_status="completed",
        conversation_id="c",
        attempts=(AttemptInfo(1, "completed", 60.0, 0.05),),
        insight_status="failed",
        insight_error="required field(s) not found",
        ready=True,
    )
    outcome = build_outcome(SPEC, 0, result, offered=None)
    assert outcome["status"] == "no_result"
    assert "required field(s) not found" in outcome["notes"]


def said(result: CallResult, *lines: str) -> CallResult:
    from dataclasses import replace

    return replace(result, transcript=tuple(("assistant", line) for line in lines))


def test_notes_claim_only_what_the_values_and_the_transcript_show():
    offer = {"name": "Lakefront Catering", "value": 65.0}
    mention = "We have a quote of $65 per person from Lakefront Catering. Can you do better?"
    below = build_outcome(SPEC, 1, said(answered(60, 60), mention), offered=offer)
    assert below["notes"] == "Already below Lakefront Catering's $65: quoted $60"
    refused = build_outcome(SPEC, 1, said(answered(70, 70), mention), offered=offer)
    assert refused["notes"] == "Refused to go below $70 after hearing Lakefront Catering's $65"
    matched = build_outcome(SPEC, 1, said(answered(70, 65), mention), offered=offer)
    assert matched["notes"] == "Matched after hearing Lakefront Catering's $65: $70 → $65"
    lowered = build_outcome(SPEC, 1, said(answered(68, 62), mention), offered=offer)
    assert lowered["notes"] == "Lowered from $68 to $62 after hearing Lakefront Catering's $65"
    # The competitor's figure never said on the call: no "after hearing".
    unsaid = build_outcome(SPEC, 1, said(answered(68, 62), "What is your price?"), offered=offer)
    assert "after hearing" not in unsaid["notes"]
    assert "the transcript does not show it being mentioned" in unsaid["notes"]


def test_money_is_shown_with_thousands_separators():
    from planner.result import format_value

    assert format_value(1850, SPEC.leverage) == "$1,850"
    assert format_value(11250.5, SPEC.leverage) == "$11,250.50"


def test_voicemail_and_cancelled_calls_have_an_outcome_and_a_reason():
    from dataclasses import replace

    voicemail = replace(
        answered(65, 65), attempts=(AttemptInfo(1, "completed", 20.0, 0.05, voicemail=True),)
    )
    outcome = build_outcome(SPEC, 0, voicemail, offered=None)
    assert (outcome["outcome"], outcome["reason"]) == (
        "unreachable",
        "reached voicemail only, 1 attempt (completed)",
    )
    cancelled = CallResult(
        scheduled_event_id="e",
        status="cancelled",
        call_status=None,
        conversation_id=None,
        errors=("run is cancelled",),
        error_codes=("run_finished",),
        ready=True,
    )
    outcome = build_outcome(SPEC, 0, cancelled, offered=None)
    assert (outcome["outcome"], outcome["reason"]) == (
        "not_called",
        "the run was cancelled or finished first",
    )
    result = compile_result(SPEC, [outcome], run_status="cancelled")
    assert result.summary.startswith("**Mission cancelled: Corporate catering quotes**")
    assert "No call was placed." in result.summary
