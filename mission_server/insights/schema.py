"""Insight definitions: parsing, validation and compilation to JSON Schema.

A definition is what a user writes (``reference/18_creating-insights.md`` and
``20_structured-insights.md``)::

    {"name": "Quote", "instructions": "...",
     "parameters": [{"name": "final_price", "type": "number", "required": true,
                     "description": "...", "enum": []}]}

No parameters (or an empty list) means a free-text insight whose result is a string. Parameter
types are exactly the reference's: string, enum, number, integer, boolean, array,
array(string), array(number), array(boolean), object. The portal spells typed arrays with a
space (``array (string)``); that spelling is accepted and normalised. An ``enum`` parameter
needs its values, given as a list or as the portal's comma-separated text.

Structured definitions compile to a JSON Schema draft 2020-12 object schema with
``additionalProperties: false``, so an extractor that invents a field is caught too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator

from mission_server.domain.validation import require_text
from mission_server.errors import ValidationError
from mission_server.insights.base import PARAMETER_TYPES, InsightDefinition, InsightParameter

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "compile_schema",
    "definition_to_dict",
    "parameter_to_dict",
    "parse_definition",
    "parse_parameters",
    "validate_result",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Parameter names become JSON keys and are read by code downstream (webhook consumers), so
# they are held to identifier-like names the portal examples use (``sentiment_score``).
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_NAME = 200
_MAX_INSTRUCTIONS = 20_000
_MAX_DESCRIPTION = 2_000
_MAX_PARAMETERS = 50
_MAX_ENUM_VALUES = 100

_TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "array": {"type": "array"},
    "array(string)": {"type": "array", "items": {"type": "string"}},
    "array(number)": {"type": "array", "items": {"type": "number"}},
    "array(boolean)": {"type": "array", "items": {"type": "boolean"}},
    "object": {"type": "object"},
}


def _normalise_type(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be one of {', '.join(PARAMETER_TYPES)}", value)
    compact = re.sub(r"\s+", "", value).lower()
    if compact not in PARAMETER_TYPES:
        raise ValidationError(field, f"must be one of {', '.join(PARAMETER_TYPES)}", value)
    return compact


def _text(value: Any, field: str, *, max_length: int, allow_empty: bool) -> str:
    if value is None and allow_empty:
        return ""
    return require_text(value, field, max_length=max_length, allow_empty=allow_empty)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_answer(text: str) -> Any:
    """Parse a structured answer that may come wrapped in a markdown code fence (models and
    the platform both do that).

    Raises:
        ValueError: the text is not JSON.
    """
    text = text.strip()
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def _enum_values(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        # The portal's "Enum Values (comma separated)" box.
        items: list[Any] = [part.strip() for part in value.split(",")]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise ValidationError(field, "must be a list of strings or comma-separated text", value)
    values: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{field}[{index}]", "must be a non-empty string", item)
        item = item.strip()
        if item in values:
            raise ValidationError(f"{field}[{index}]", "must not repeat an earlier value", item)
        values.append(item)
    if len(values) > _MAX_ENUM_VALUES:
        raise ValidationError(field, f"must have at most {_MAX_ENUM_VALUES} values", len(values))
    return tuple(values)


def _parse_parameter(raw: Any, field: str) -> InsightParameter:
    if isinstance(raw, InsightParameter):
        raw = {
            "name": raw.name,
            "type": raw.type,
            "required": raw.required,
            "description": raw.description,
            "enum": list(raw.enum),
        }
    if not isinstance(raw, Mapping):
        raise ValidationError(field, "must be an object with name and type", raw)
    unknown = sorted(set(raw) - {"name", "type", "required", "description", "enum"})
    if unknown:
        raise ValidationError(
            f"{field}.{unknown[0]}",
            "is not a parameter setting (allowed: name, type, required, description, enum)",
            raw[unknown[0]],
        )
    name = raw.get("name")
    if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
        raise ValidationError(
            f"{field}.name",
            "must start with a letter or '_' and contain only letters, digits and '_' "
            "(at most 64 characters)",
            name,
        )
    type_ = _normalise_type(raw.get("type"), f"{field}.type")
    required = raw.get("required", False)
    if required is None:
        required = False
    if not isinstance(required, bool):
        raise ValidationError(f"{field}.required", "must be true or false", required)
    description = _text(
        raw.get("description"),
        f"{field}.description",
        max_length=_MAX_DESCRIPTION,
        allow_empty=True,
    )
    raw_enum = raw.get("enum")
    has_enum = raw_enum is not None and raw_enum != [] and raw_enum != ""
    if type_ == "enum":
        if not has_enum:
            raise ValidationError(
                f"{field}.enum", "must list the values of an enum parameter", raw_enum
            )
        enum = _enum_values(raw_enum, f"{field}.enum")
        if not enum:
            raise ValidationError(
                f"{field}.enum", "must list the values of an enum parameter", raw_enum
            )
    elif has_enum:
        raise ValidationError(f"{field}.enum", "is only allowed when type is enum", raw_enum)
    else:
        enum = ()
    return InsightParameter(
        name=name, type=type_, required=required, description=description, enum=enum
    )


def parse_parameters(raw: Any, field: str = "parameters") -> tuple[InsightParameter, ...]:
    """Validate a list of parameter objects.

    Raises:
        ValidationError: not a list, too many entries, a parameter with a bad name, type,
            required flag, description or enum, or two parameters with the same name. The
            field is named like ``parameters[2].type``.
    """
    if raw is None:
        return ()
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ValidationError(field, "must be a list of parameter objects", raw)
    if len(raw) > _MAX_PARAMETERS:
        raise ValidationError(field, f"must have at most {_MAX_PARAMETERS} entries", len(raw))
    parameters: list[InsightParameter] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        parameter = _parse_parameter(item, f"{field}[{index}]")
        if parameter.name in seen:
            raise ValidationError(
                f"{field}[{index}].name", "must be unique within the insight", parameter.name
            )
        seen.add(parameter.name)
        parameters.append(parameter)
    return tuple(parameters)


def parse_definition(raw: Any, *, insight_id: str = "") -> InsightDefinition:
    """Validate a user-written insight definition ``{name, instructions, parameters}``.

    ``instructions`` may be empty (the reference only requires the name).

    Raises:
        ValidationError: not an object, an unknown top-level key, an empty or over-long name,
            non-text instructions, or a bad parameter (see ``parse_parameters``).
    """
    if not isinstance(raw, Mapping):
        raise ValidationError(
            "insight", "must be an object with name, instructions, parameters", type(raw).__name__
        )
    unknown = sorted(set(raw) - {"name", "instructions", "parameters", "insight_id"})
    if unknown:
        raise ValidationError(
            unknown[0],
            "is not an insight setting (allowed: name, instructions, parameters)",
            raw[unknown[0]],
        )
    name = _text(raw.get("name"), "name", max_length=_MAX_NAME, allow_empty=False)
    instructions = _text(
        raw.get("instructions"), "instructions", max_length=_MAX_INSTRUCTIONS, allow_empty=True
    )
    parameters = parse_parameters(raw.get("parameters"))
    return InsightDefinition(
        insight_id=insight_id or str(raw.get("insight_id") or ""),
        name=name,
        instructions=instructions,
        parameters=parameters,
    )


def definition_to_dict(definition: InsightDefinition) -> dict[str, Any]:
    """The JSON form of a definition (what ``parse_definition`` reads back)."""
    return {
        "name": definition.name,
        "instructions": definition.instructions,
        "parameters": [parameter_to_dict(p) for p in definition.parameters],
    }


def parameter_to_dict(parameter: InsightParameter) -> dict[str, Any]:
    """The JSON form of one parameter; ``enum`` only for enum parameters."""
    out: dict[str, Any] = {
        "name": parameter.name,
        "type": parameter.type,
        "required": parameter.required,
        "description": parameter.description,
    }
    if parameter.type == "enum":
        out["enum"] = list(parameter.enum)
    return out


def _parameter_schema(parameter: InsightParameter) -> dict[str, Any]:
    if parameter.type == "enum":
        schema: dict[str, Any] = {"type": "string", "enum": list(parameter.enum)}
    else:
        schema = dict(_TYPE_SCHEMAS[parameter.type])
    if parameter.description:
        schema["description"] = parameter.description
    return schema


def compile_schema(definition: InsightDefinition) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) for the result of ``definition``.

    Free-text insights give ``{"type": "string"}``; structured ones an object with one property
    per parameter, ``required`` listing the required ones, and no other properties allowed.
    """
    if not definition.structured:
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": definition.name,
            "type": "string",
        }
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": definition.name,
        "type": "object",
        "properties": {p.name: _parameter_schema(p) for p in definition.parameters},
        "required": [p.name for p in definition.parameters if p.required],
        "additionalProperties": False,
    }


def _where(path: Sequence[Any]) -> str:
    if not path:
        return "result"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_result(definition: InsightDefinition, value: Any) -> list[str]:
    """Every way ``value`` breaks the definition's schema, as readable sentences naming the
    field (``final_price: 'sixty' is not of type 'number'``). Empty means valid."""
    validator = Draft202012Validator(compile_schema(definition))
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: (list(e.path), e.message)):
        problems.append(f"{_where(list(error.path))}: {error.message}")
    return problems
