"""Insight definitions: parsing rules and the compiled JSON Schema."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from mission_server.errors import ValidationError
from mission_server.insights.schema import (
    JSON_SCHEMA_DIALECT,
    compile_schema,
    definition_to_dict,
    parse_definition,
    validate_result,
)

QUOTE = {
    "name": "Catering quote",
    "instructions": "Extract the quote.",
    "parameters": [
        {
            "name": "final_price",
            "type": "number",
            "required": True,
            "description": "Final price per person",
        },
        {"name": "guests", "type": "integer"},
        {"name": "delivery_included", "type": "boolean", "required": True},
        {"name": "style", "type": "enum", "enum": ["buffet", "plated"]},
        {"name": "notes", "type": "string"},
        {"name": "extras", "type": "array"},
        {"name": "dishes", "type": "array(string)"},
        {"name": "prices", "type": "array (number)"},
        {"name": "flags", "type": "Array(Boolean)"},
        {"name": "contact", "type": "object"},
    ],
}


def test_every_reference_type_compiles_to_a_draft_2020_12_schema() -> None:
    schema = compile_schema(parse_definition(QUOTE))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["required"] == ["final_price", "delivery_included"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["final_price"] == {"type": "number", "description": "Final price per person"}
    assert props["guests"] == {"type": "integer"}
    assert props["style"] == {"type": "string", "enum": ["buffet", "plated"]}
    assert props["extras"] == {"type": "array"}
    assert props["dishes"] == {"type": "array", "items": {"type": "string"}}
    assert props["prices"] == {"type": "array", "items": {"type": "number"}}
    assert props["flags"] == {"type": "array", "items": {"type": "boolean"}}
    assert props["contact"] == {"type": "object"}


def test_portal_spellings_are_normalised_and_round_trip() -> None:
    definition = parse_definition(
        {
            "name": "Mood",
            "parameters": [
                {"name": "sentiment", "type": "enum", "enum": "positive, negative, neutral"},
                {"name": "tags", "type": "array (string)"},
            ],
        }
    )
    assert definition.parameters[0].enum == ("positive", "negative", "neutral")
    assert definition.parameters[1].type == "array(string)"
    assert parse_definition(definition_to_dict(definition)) == definition


def test_free_text_insight_result_is_a_string() -> None:
    definition = parse_definition({"name": "Summary", "instructions": "Summarise."})
    assert not definition.structured
    assert compile_schema(definition)["type"] == "string"
    assert validate_result(definition, "A short call.") == []
    assert validate_result(definition, {"summary": "x"}) != []


@pytest.mark.parametrize(
    ("parameters", "field", "rule"),
    [
        ([{"name": "x", "type": "money"}], "parameters[0].type", "must be one of"),
        ([{"name": "x", "type": "enum"}], "parameters[0].enum", "must list the values"),
        ([{"name": "x", "type": "enum", "enum": []}], "parameters[0].enum", "must list"),
        (
            [{"name": "x", "type": "string", "enum": ["a"]}],
            "parameters[0].enum",
            "only allowed when type is enum",
        ),
        (
            [{"name": "x", "type": "enum", "enum": ["a", "a"]}],
            "parameters[0].enum[1]",
            "must not repeat",
        ),
        ([{"name": "final price", "type": "number"}], "parameters[0].name", "must start"),
        (
            [{"name": "a", "type": "string"}, {"name": "a", "type": "number"}],
            "parameters[1].name",
            "must be unique",
        ),
        (
            [{"name": "a", "type": "string", "required": "yes"}],
            "parameters[0].required",
            "must be true or false",
        ),
        (
            [{"name": "a", "type": "string", "format": "email"}],
            "parameters[0].format",
            "is not a parameter setting",
        ),
        ("final_price", "parameters", "must be a list"),
    ],
)
def test_bad_parameters_name_the_field_rule_and_value(
    parameters: object, field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_definition({"name": "Quote", "parameters": parameters})
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_a_name_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_definition({"name": "  ", "instructions": "x"})
    assert caught.value.field == "name"


def test_validate_result_names_each_offending_field() -> None:
    definition = parse_definition(QUOTE)
    problems = validate_result(
        definition,
        {
            "final_price": "sixty",
            "style": "family",
            "dishes": ["soup", 3],
            "surprise": 1,
        },
    )
    text = "\n".join(problems)
    assert "final_price: 'sixty' is not of type 'number'" in text
    assert "style: 'family' is not one of ['buffet', 'plated']" in text
    assert "dishes[1]: 3 is not of type 'string'" in text
    assert "'delivery_included' is a required property" in text
    assert "'surprise' was unexpected" in text


def test_a_whole_number_is_not_accepted_as_a_boolean_or_text_as_integer() -> None:
    definition = parse_definition(QUOTE)
    ok = {"final_price": 62, "delivery_included": True, "guests": 40}
    assert validate_result(definition, ok) == []
    assert validate_result(definition, {**ok, "delivery_included": 1}) != []
    assert validate_result(definition, {**ok, "guests": 40.5}) != []
