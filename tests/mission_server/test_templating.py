"""Dynamic-variable templating: the examples of reference/03_dynamic-variables.md and our rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mission_server.domain.templating import (
    flatten_sections,
    placeholders,
    render,
    resolve_variables,
    validate_variable_names,
)
from mission_server.errors import ValidationError

# The moment every example in the reference is rendered at.
NOW = datetime(2025, 2, 24, 16, 4, 15, tzinfo=UTC)


def r(template: str, variables: dict[str, str] | None = None, now: datetime = NOW) -> str:
    return render(template, variables or {}, now)


# --- reference examples ----------------------------------------------------------------------


def test_reference_greeting_with_customer_variables() -> None:
    variables = {
        "full_name": "James Smith",
        "facility_name": "Cleveland Clinic Main Campus",
        "facility_department": "Emergency Department",
    }
    template = (
        "Hello, this is ABC Ambulance. Am I speaking with {{full_name}} with "
        "{{facility_name}} - {{facility_department}}?"
    )
    assert r(template, variables) == (
        "Hello, this is ABC Ambulance. Am I speaking with James Smith with "
        "Cleveland Clinic Main Campus - Emergency Department?"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{telnyx_current_time}}", "Monday, February 24 2025 04:04:15 PM UTC"),
        ("{{telnyx_current_time_America/New_York}}", "Monday, February 24 2025 11:04:15 AM EST"),
        ("{{telnyx_current_date}}", "February 24 2025"),
        ("{{telnyx_current_time_of_day}}", "04:04:15 PM UTC"),
        ("{{telnyx_current_time_of_day_America/New_York}}", "11:04:15 AM EST"),
        ("{{telnyx_current_weekday}}", "Monday"),
        ("{{telnyx_current_month}}", "February"),
        ("{{telnyx_current_day}}", "24"),
        ("{{telnyx_current_year}}", "2025"),
        ("{{telnyx_current_time_Australia/Sydney}}", "Tuesday, February 25 2025 03:04:15 AM AEDT"),
        ("{{telnyx_current_time_of_day_Europe/London}}", "04:04:15 PM GMT"),
    ],
)
def test_reference_date_and_time_variables(template: str, expected: str) -> None:
    assert r(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{ telnyx_current_time | date: "%A, %B %d, %Y" }}', "Monday, February 24, 2025"),
        ('{{ telnyx_current_time | date: "%I:%M %p", "America/New_York" }}', "11:04 AM"),
        (
            '{{ telnyx_current_time | date: "%A, %B %d, %Y at %I:%M %p %Z", '
            '"America/Los_Angeles" }}',
            "Monday, February 24, 2025 at 08:04 AM PST",
        ),
    ],
)
def test_reference_date_filter_examples(template: str, expected: str) -> None:
    assert r(template) == expected


@pytest.mark.parametrize(
    ("fmt", "zone", "expected"),
    [
        ("%A", None, "Monday"),
        ("%a", None, "Mon"),
        ("%B", None, "February"),
        ("%b", None, "Feb"),
        ("%d", None, "24"),
        ("%Y", None, "2025"),
        ("%I:%M %p", "America/New_York", "11:04 AM"),
        ("%H:%M", None, "16:04"),
        ("%Z", "America/Los_Angeles", "PST"),
        ("%z", "America/Los_Angeles", "-0800"),
        ("%A, %B %d at %I:%M %p %Z", "America/Los_Angeles", "Monday, February 24 at 08:04 AM PST"),
    ],
)
def test_reference_common_format_codes(fmt: str, zone: str | None, expected: str) -> None:
    zone_arg = "" if zone is None else f', "{zone}"'
    assert r(f'{{{{ telnyx_current_time | date: "{fmt}"{zone_arg} }}}}') == expected


def test_reference_system_variables_arrive_through_variables() -> None:
    variables = resolve_variables(
        system={
            "telnyx_conversation_channel": "phone_call",
            "telnyx_agent_target": "+13128675309",
            "telnyx_end_user_target": "+15551234567",
            "telnyx_shaken_stir_attestation": "a",
            "call_control_id": "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO",
        }
    )
    template = (
        "{{telnyx_conversation_channel}} from {{telnyx_agent_target}} to "
        "{{telnyx_end_user_target}} ({{telnyx_shaken_stir_attestation}}) {{call_control_id}}"
    )
    assert r(template, variables) == (
        "phone_call from +13128675309 to +15551234567 (a) v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO"
    )


def test_reference_unset_variable_stays_raw() -> None:
    assert r("Hi {{full_name}}!") == "Hi {{full_name}}!"


def test_reference_api_value_beats_assistant_default() -> None:
    variables = resolve_variables(
        assistant_defaults={"test_variable": "DEFAULT_VALUE"},
        call_variables={"test_variable": "API_VALUE"},
    )
    assert r("{{test_variable}}", variables) == "API_VALUE"


def test_reference_defaults_are_the_fallback() -> None:
    variables = resolve_variables(
        assistant_defaults={"full_name": "Valued customer", "facility_name": "UCHealth"},
        call_variables={"full_name": "Rachel Thomas"},
    )
    assert r("{{full_name}} at {{facility_name}}", variables) == "Rachel Thomas at UCHealth"


# --- placeholder syntax ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "template", ["{{name}}", "{{ name }}", "{{  name}}", "{{\n  name\n}}", "{{\tname }}"]
)
def test_whitespace_inside_braces_is_ignored(template: str) -> None:
    assert r(template, {"name": "Ada"}) == "Ada"


def test_names_are_case_sensitive() -> None:
    assert r("{{Name}}", {"name": "Ada"}) == "{{Name}}"


def test_names_with_dashes_dots_and_digits() -> None:
    variables = {"customer-id": "C1", "order.total": "9", "2nd_choice": "B"}
    assert r("{{customer-id}} {{order.total}} {{2nd_choice}}", variables) == "C1 9 B"


@pytest.mark.parametrize(
    "template",
    [
        '{"type": "object", "properties": {}}',
        '{{"a": 1}}',
        "{{}}",
        "{{ }}",
        "{{full name}}",
        "{single}",
        "{{unterminated",
        "closing only }}",
    ],
)
def test_braces_that_are_not_placeholders_stay_as_written(template: str) -> None:
    assert r(template, {"a": "x", "full": "x", "name": "x", "single": "x"}) == template


def test_triple_braces_keep_the_outer_braces_literal() -> None:
    assert r("{{{quote}}}", {"quote": "450"}) == "{450}"


def test_stray_opener_does_not_swallow_the_next_placeholder() -> None:
    assert r("{{ oops {{name}}", {"name": "Ada"}) == "{{ oops Ada"


def test_adjacent_placeholders() -> None:
    assert r("{{a}}{{b}}{{a}}", {"a": "1", "b": "2"}) == "121"


# --- values ----------------------------------------------------------------------------------


def test_values_are_inserted_verbatim_and_never_re_expanded() -> None:
    variables = {
        "note": "{{secret}} and {{telnyx_current_time}}",
        "secret": "XYZ",
        "section": "{{#secret}}shown{{/secret}}",
    }
    assert r("{{note}}|{{section}}", variables) == (
        "{{secret}} and {{telnyx_current_time}}|{{#secret}}shown{{/secret}}"
    )


def test_empty_value_renders_empty() -> None:
    assert r("[{{x}}]", {"x": ""}) == "[]"


def test_time_variables_cannot_be_shadowed_by_variables() -> None:
    variables = {"telnyx_current_year": "1999", "telnyx_current_time": "yesterday"}
    assert r("{{telnyx_current_year}} {{telnyx_current_time}}", variables) == (
        "2025 Monday, February 24 2025 04:04:15 PM UTC"
    )


# --- time ------------------------------------------------------------------------------------


def test_now_in_another_offset_is_rendered_in_utc() -> None:
    chicago_offset = timezone(timedelta(hours=-6))
    assert r("{{telnyx_current_time}}", now=NOW.astimezone(chicago_offset)) == (
        "Monday, February 24 2025 04:04:15 PM UTC"
    )


def test_naive_now_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        r("{{telnyx_current_time}}", now=datetime(2025, 2, 24, 16, 4, 15))
    assert caught.value.field == "now"


def test_zone_variant_follows_daylight_saving_time() -> None:
    july = datetime(2025, 7, 4, 16, 4, 15, tzinfo=UTC)
    assert r("{{telnyx_current_time_America/New_York}}", now=july) == (
        "Friday, July 04 2025 12:04:15 PM EDT"
    )


def test_shorthands_are_evaluated_in_utc_even_when_the_zone_date_differs() -> None:
    late = datetime(2025, 2, 24, 23, 30, tzinfo=UTC)
    template = "{{telnyx_current_weekday}} / {{telnyx_current_time_Australia/Sydney}}"
    assert r(template, now=late) == "Monday / Tuesday, February 25 2025 10:30:00 AM AEDT"


def test_date_filter_accepts_single_quotes_and_no_spaces() -> None:
    assert r("{{telnyx_current_time|date:'%H:%M','Asia/Tokyo'}}") == "01:04"


def test_date_filter_unpadded_and_percent_codes() -> None:
    early = datetime(2025, 3, 5, 9, 7, tzinfo=UTC)
    template = '{{ telnyx_current_time | date: "%B %-d, %-I:%M %p (100%%)" }}'
    assert r(template, now=early) == "March 5, 9:07 AM (100%)"


def test_date_filter_c99_composites() -> None:
    template = '{{ telnyx_current_time | date: "%F %T|%D|%R|%c" }}'
    assert r(template) == "2025-02-24 16:04:15|02/24/25|16:04|Mon Feb 24 16:04:15 2025"


@pytest.mark.parametrize(
    "template",
    [
        "{{telnyx_current_time_Mars/Olympus_Mons}}",
        "{{telnyx_current_time_of_day_Nowhere}}",
        "{{telnyx_current_time_america/new_york}}",
        "{{telnyx_current_time_localtime}}",
        "{{telnyx_current_time_}}",
        "{{telnyx_current_time_of_day_}}",
        "{{telnyx_current_time_../../etc/passwd}}",
        "{{telnyx_current_timezone}}",
        '{{ telnyx_current_time | date: "%H:%M", "Mars/Olympus_Mons" }}',
        '{{ telnyx_current_time | date: "%H:%M", "" }}',
        '{{ telnyx_current_time | date: "%Q" }}',
        '{{ telnyx_current_time | date: "%H:%" }}',
        '{{ telnyx_current_time | date: "%-A" }}',
        '{{ telnyx_current_time | date: "" }}',
        "{{ telnyx_current_time | date: %H:%M }}",
        "{{ telnyx_current_time | upcase }}",
        '{{ telnyx_current_time | date: "%H", "UTC", "extra" }}',
        '{{ best_quote | date: "%H:%M" }}',
    ],
)
def test_unknown_zones_formats_and_filters_stay_untouched(template: str) -> None:
    assert r(template, {"best_quote": "2025-02-24T16:04:15Z"}) == template


def test_a_bad_placeholder_does_not_affect_its_neighbours() -> None:
    template = "{{telnyx_current_time_Nowhere}} {{telnyx_current_year}} {{missing}} {{x}}"
    assert r(template, {"x": "ok"}) == "{{telnyx_current_time_Nowhere}} 2025 {{missing}} ok"


# --- sections --------------------------------------------------------------------------------

LEVERAGE = (
    "Ask for a quote for 40 guests."
    "{{#best_quote}} Another caterer quoted {{best_quote}} USD; ask if you can beat it."
    "{{/best_quote}}"
    "{{^best_quote}} This is the first call: just get a baseline.{{/best_quote}}"
)


def test_section_renders_with_placeholders_when_set() -> None:
    assert r(LEVERAGE, {"best_quote": "2450"}) == (
        "Ask for a quote for 40 guests. Another caterer quoted 2450 USD; ask if you can beat it."
    )


@pytest.mark.parametrize("variables", [{}, {"best_quote": ""}])
def test_inverted_section_renders_when_unset_or_empty(variables: dict[str, str]) -> None:
    assert r(LEVERAGE, variables) == (
        "Ask for a quote for 40 guests. This is the first call: just get a baseline."
    )


def test_section_value_false_is_still_a_non_empty_value() -> None:
    # The rule is "set and non-empty": the text "false" is set.
    assert r("{{#flag}}on{{/flag}}", resolve_variables(run_variables={"flag": False})) == "on"


def test_section_tags_accept_whitespace() -> None:
    assert r("{{ # a }}yes{{ / a }}{{ ^ a }}no{{ /a }}", {"a": "1"}) == "yes"


def test_nested_sections_of_different_names() -> None:
    template = "{{#a}}A[{{#b}}B{{/b}}{{^b}}no-b{{/b}}]{{/a}}{{^a}}no-a{{/a}}"
    assert r(template, {"a": "1", "b": "1"}) == "A[B]"
    assert r(template, {"a": "1"}) == "A[no-b]"
    assert r(template, {"b": "1"}) == "no-a"


def test_nested_sections_of_the_same_name() -> None:
    assert r("{{#a}}1{{#a}}2{{/a}}3{{/a}}4", {"a": "x"}) == "1234"
    assert r("{{#a}}1{{#a}}2{{/a}}3{{/a}}4") == "4"


def test_section_spanning_lines() -> None:
    template = "Line 1\n{{#vip}}\nTreat {{name}} as VIP.\n{{/vip}}\nLine 2"
    assert r(template, {"vip": "yes", "name": "Ada"}) == ("Line 1\n\nTreat Ada as VIP.\n\nLine 2")


def test_section_can_test_a_system_variable() -> None:
    template = "{{#telnyx_end_user_target}}to {{telnyx_end_user_target}}{{/telnyx_end_user_target}}"
    assert r(template, {"telnyx_end_user_target": "+15551234567"}) == "to +15551234567"
    assert r(template) == ""


def test_unclosed_section_stays_as_text_and_its_body_renders() -> None:
    assert r("{{#a}}hello {{name}}", {"name": "Ada"}) == "{{#a}}hello Ada"


def test_stray_closer_stays_as_text() -> None:
    assert r("{{/a}}done", {"a": "1"}) == "{{/a}}done"


def test_mismatched_close_leaves_inner_opener_as_text() -> None:
    # {{/a}} closes a; the {{#b}} opened inside it never closes, so it is plain text.
    assert r("{{#a}}x{{#b}}y{{/a}}z{{/b}}", {"a": "1", "b": "1"}) == "x{{#b}}yz{{/b}}"


def test_hidden_section_hides_its_unresolvable_placeholders_too() -> None:
    assert r("{{#a}}{{missing}}{{/a}}end") == "end"


def test_deeply_nested_sections_render_without_recursion_errors() -> None:
    depth = 20_000
    template = "{{#a}}" * depth + "core" + "{{/a}}" * depth
    assert r(template, {"a": "1"}) == "core"
    assert r(template) == ""


# --- placeholders() --------------------------------------------------------------------------


def test_placeholders_lists_variables_sections_and_filters() -> None:
    template = (
        LEVERAGE
        + " {{ full_name }} {{telnyx_current_time_America/New_York}}"
        + ' {{ telnyx_current_time | date: "%H" }} {"json": {{"no": 1}}} {{/stray}}'
    )
    assert placeholders(template) == {
        "best_quote",
        "full_name",
        "telnyx_current_time_America/New_York",
        "telnyx_current_time",
    }


def test_placeholders_of_plain_text_is_empty() -> None:
    assert placeholders("no variables here { } }}") == set()


# --- resolve_variables -----------------------------------------------------------------------


def test_precedence_call_over_run_over_assistant_defaults() -> None:
    merged = resolve_variables(
        assistant_defaults={"a": "default", "b": "default", "c": "default"},
        run_variables={"b": "run", "c": "run"},
        call_variables={"c": "call"},
    )
    assert merged == {"a": "default", "b": "run", "c": "call"}


def test_none_means_not_provided_so_a_lower_source_still_applies() -> None:
    merged = resolve_variables(
        run_variables={"best_quote": 2450, "gone": None}, call_variables={"best_quote": None}
    )
    assert merged == {"best_quote": "2450"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("as is", "as is"),
        (True, "true"),
        (False, "false"),
        (65.0, "65"),
        (-0.0, "0"),
        (65.5, "65.5"),
        (42, "42"),
        (Decimal("19.90"), "19.90"),
        ({"low": 1, "vendors": ["A", "B"]}, '{"low":1,"vendors":["A","B"]}'),
        ([1, "zwei", None], '[1,"zwei",null]'),
        ({"café": "ü"}, '{"café":"ü"}'),
        (datetime(2025, 2, 24, 16, 4, tzinfo=UTC), "2025-02-24T16:04:00+00:00"),
    ],
)
def test_values_become_text(value: object, expected: str) -> None:
    assert resolve_variables(call_variables={"v": value}) == {"v": expected}


def test_system_values_fill_in_and_win_over_user_values() -> None:
    merged = resolve_variables(
        call_variables={"call_control_id": "forged", "full_name": "Ada"},
        system={"call_control_id": "v3:real", "telnyx_conversation_channel": "phone_call"},
    )
    assert merged == {
        "call_control_id": "v3:real",
        "full_name": "Ada",
        "telnyx_conversation_channel": "phone_call",
    }


def test_user_values_in_the_reserved_telnyx_namespace_are_ignored() -> None:
    merged = resolve_variables(
        assistant_defaults={"telnyx_end_user_target": "+10000000000"},
        run_variables={"telnyx_shaken_stir_attestation": "a"},
        call_variables={"telnyx_current_time": "never"},
    )
    assert merged == {}
    assert r("{{telnyx_shaken_stir_attestation}}", merged) == "{{telnyx_shaken_stir_attestation}}"


def test_resolve_rejects_a_non_string_name_naming_the_source() -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_variables(run_variables={3: "x"})  # type: ignore[dict-item]
    assert caught.value.field == "run_variables"
    assert caught.value.value == 3


def test_resolve_with_no_sources_is_empty() -> None:
    assert resolve_variables() == {}


# --- validate_variable_names -----------------------------------------------------------------


def test_valid_names_pass() -> None:
    validate_variable_names({"best_quote": 1, "customer-id": "x", "2nd": "y"}, field="vars")


def test_reserved_prefix_is_rejected_naming_field_rule_and_value() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_variable_names({"telnyx_agent_target": "+1"}, field="dynamic_variables")
    assert caught.value.field == "dynamic_variables.telnyx_agent_target"
    assert "reserved" in caught.value.rule
    assert "'telnyx_agent_target'" in str(caught.value)


@pytest.mark.parametrize("name", ["full name", "", "-x", "a}}b", "#a"])
def test_names_no_placeholder_can_reach_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_variable_names({name: "x"}, field="dynamic_variables")
    assert caught.value.field == f"dynamic_variables.{name}"
    assert caught.value.value == name


def test_non_string_name_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_variable_names({None: "x"}, field="dynamic_variables")  # type: ignore[dict-item]
    assert caught.value.field == "dynamic_variables"


# --- properties ------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "{{", "}}", "{", "}", "#", "^", "/", " ", "\n", "|", ":", ",", '"', "'", "%", "%-",
        "a", "b", "x", "date", "telnyx_current_time", "telnyx_current_time_of_day_",
        "_America/New_York", "Europe/London", "Nowhere/Zone", "%A", "%Q", "%Z", "\x00", "\udcff",
    ]
)  # fmt: skip
_TEMPLATES = st.lists(_FRAGMENTS | st.text(max_size=4), max_size=40).map("".join)
_VARIABLES = st.dictionaries(
    st.sampled_from(["a", "b", "x", "telnyx_current_time", "date"]) | st.text(max_size=5),
    _TEMPLATES,
    max_size=5,
)


@given(
    template=_TEMPLATES | st.text(),
    variables=_VARIABLES,
    now=st.datetimes(timezones=st.just(UTC)),
)
def test_render_never_raises(template: str, variables: dict[str, str], now: datetime) -> None:
    assert isinstance(render(template, variables, now), str)


@given(template=st.text().filter(lambda text: "{{" not in text), variables=_VARIABLES)
def test_text_without_placeholders_is_returned_unchanged(
    template: str, variables: dict[str, str]
) -> None:
    assert render(template, variables, NOW) == template


@given(value=_TEMPLATES | st.text())
def test_any_value_is_inserted_exactly(value: str) -> None:
    assert render("<{{v}}>", {"v": value, "a": "A", "b": "B"}, NOW) == f"<{value}>"


@given(
    template=_TEMPLATES.filter(
        lambda text: not any(mark in text for mark in ("#", "^", "/", "telnyx_current"))
    )
)
def test_unknown_placeholders_leave_any_template_unchanged(template: str) -> None:
    # Without sections or time variables, nothing in an empty context can resolve.
    assert render(template, {}, NOW) == template


@given(
    template=_TEMPLATES | st.text(),
    variables=_VARIABLES,
    now=st.datetimes(timezones=st.just(UTC)),
)
def test_a_flattened_template_filled_with_its_rendered_sections_reads_the_same(
    template: str, variables: dict[str, str], now: datetime
) -> None:
    # What a platform that substitutes plain {{name}} only (Telnyx) ends up saying.
    flat, sections = flatten_sections(template)
    filled = {**variables, **{name: render(src, variables, now) for name, src in sections.items()}}
    assert render(flat, filled, now) == render(template, variables, now)


def test_flattening_names_each_outermost_section_once_in_order() -> None:
    template = (
        "Hi {{name}}. {{#best_quote}}Beat {{best_quote}}{{#rush}} fast{{/rush}}.{{/best_quote}}"
        "{{^best_quote}}First call.{{/best_quote}} {{#unclosed}}"
    )
    flat, sections = flatten_sections(template)
    assert flat == (
        "Hi {{name}}. {{mission_section_1_best_quote}}{{mission_section_2_best_quote}} "
        "{{#unclosed}}"
    )
    assert sections == {
        "mission_section_1_best_quote": (
            "{{#best_quote}}Beat {{best_quote}}{{#rush}} fast{{/rush}}.{{/best_quote}}"
        ),
        "mission_section_2_best_quote": "{{^best_quote}}First call.{{/best_quote}}",
    }
    assert flatten_sections("no sections {{here}}") == ("no sections {{here}}", {})
