"""Reading a natural-language request without a model."""

from __future__ import annotations

import pytest

from planner.errors import SpecError
from planner.request import spec_from_request_text

CATERING = (
    "Find catering companies in Chicago for a corporate event with 50 people. Call Lakefront "
    "Catering at +1 312 555 0101, Chicago Grill Co at (312) 555-0102 and Prairie Table Events "
    "at 312-555-0103. Get a baseline quote from the first one, then use that to negotiate "
    "better rates with the others. Compare all quotes and recommend the best option."
)


def test_the_reference_request_becomes_a_leverage_negotiation():
    spec = spec_from_request_text(CATERING)
    assert [(t.name, t.phone) for t in spec.targets] == [
        ("Lakefront Catering", "+13125550101"),
        ("Chicago Grill Co", "+13125550102"),
        ("Prairie Table Events", "+13125550103"),
    ]
    assert spec.strategy == "sequential_leverage"
    assert spec.leverage is not None
    assert spec.leverage.quantity == 50
    assert "{{#best_quote}}" in spec.assistant.instructions
    assert "a corporate event" in spec.assistant.instructions


def test_a_quote_survey_without_negotiation_runs_in_parallel():
    spec = spec_from_request_text(
        "Get prices from Lakefront Catering +13125550101 and Chicago Grill Co +13125550102"
    )
    assert spec.strategy == "parallel"
    assert spec.leverage is not None  # still compared, for the recommendation


def test_availability_request():
    spec = spec_from_request_text(
        "Check availability for a reception on Friday March 20 at The Riverside Loft "
        "(312) 555-0111 and Wicker Park Hall (312) 555-0112."
    )
    assert spec.strategy == "parallel"
    assert spec.leverage is None
    assert [t.name for t in spec.targets] == ["The Riverside Loft", "Wicker Park Hall"]
    assert "Friday March 20" in spec.assistant.instructions


def test_reminder_request():
    spec = spec_from_request_text(
        "Remind Dana Whitfield at 773-555-0121 about her appointment on Monday March 16."
    )
    assert [t.name for t in spec.targets] == ["Dana Whitfield"]
    assert "Remind" in spec.assistant.instructions


def test_request_without_numbers_needs_a_spec_or_an_llm():
    with pytest.raises(SpecError) as err:
        spec_from_request_text("Find me a caterer in Chicago and negotiate the best price")
    assert err.value.field == "request"
    assert "spec file or an LLM" in str(err.value)


def test_request_with_no_recognisable_subject_needs_a_spec_or_an_llm():
    with pytest.raises(SpecError) as err:
        spec_from_request_text("Call Lakefront Catering at +13125550101 and say hello")
    assert "spec file or an LLM" in str(err.value)


def test_a_number_nobody_is_named_for_is_an_error():
    with pytest.raises(SpecError) as err:
        spec_from_request_text("get a quote from 312-555-0101")
    assert err.value.field == "request"
    assert "name each target" in str(err.value)
