"""What the tools publish: every input and output schema as an agent reads it in
``tools/list``, slimmed and portable, and the results that match them.

pydantic writes a ``title`` on every property (the field name, title-cased) and a ``default``
on every optional one. In an output schema neither says anything a client can use: every
field of a result is always present, and the name is the title. They are a third of
``tools/list``. ``slim`` drops them (in input schemas only the ``null`` defaults, which the
``required`` list already says) and keeps every type, format, enum, bound, ``required`` list
and field description. A model's docstring (the result's, and every ``$defs`` entry's) goes
too: it is written for developers, and the tool's or the field's description says what an
agent needs.

No ``type`` lists (``["string", "null"]``): they are legal JSON Schema but do not map onto
single-``type`` dialects (Gemini's function declarations, OpenAPI 3.0), and MCP Inspector's
``--strict`` warns on each. An optional result field (one with a default) that has no value is
left out of the result (``result_content``), so its schema is just its type, and it is not in
``required``; a required field that may be null (``next_cursor``) keeps pydantic's ``anyOf`` of
its type and ``null``. An optional argument is published as its type too: leave it out rather
than send null (the server still reads a null as left out). A value that may be anything lists
each JSON type as an ``anyOf`` arm (``ANY_JSON``): a bare ``{}`` accepts anything too, but
portability checkers flag it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

#: The schema of a value that may be any JSON value, spelled with a validation keyword per arm
#: (a bare ``{}`` accepts anything too, but portability checkers flag it as unconstrained).
ANY_JSON: dict[str, Any] = {
    "anyOf": [
        {"type": "object"},
        {"type": "array"},
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
}

#: The keywords that constrain a value; a schema with none of them accepts anything.
_VALIDATION = frozenset(
    {"type", "anyOf", "oneOf", "allOf", "not", "$ref", "enum", "const", "items", "properties"}
)
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA = ("items", "additionalProperties", "not")


def slim(schema: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """Drop the generated titles and the defaults that say nothing, in place (and return it).

    ``output``: the schema of a tool result, where no default says anything (every field is
    always present); in an input schema only ``null`` defaults go.
    """
    # A result's root is its model, whose docstring the tool's description says.
    _slim(schema, output=output, model=output)
    return schema


def _slim(node: Any, *, output: bool, model: bool = False) -> None:
    if not isinstance(node, dict):
        return
    if isinstance(node.get("title"), str):
        del node["title"]
    if model:  # a model's docstring: written for developers, the tool (or field) says it
        node.pop("description", None)
    if isinstance(node.get("properties"), dict):
        required = set(node.get("required") or [])
        for name, prop in node["properties"].items():
            if name not in required:
                _drop_null_arm(prop)
    if "default" in node and (output or node["default"] is None):
        del node["default"]
    if node.get("additionalProperties") is True and node.get("type") == "object":
        del node["additionalProperties"]  # the default of JSON Schema
    if not _VALIDATION & node.keys():  # any value (``Any``): say so with a keyword per type
        node.update(ANY_JSON)
        return
    for child in (node.get("$defs") or {}).values():
        _slim(child, output=output, model=True)
    for key in ("properties", "patternProperties"):
        for child in (node.get(key) or {}).values():
            _slim(child, output=output)
    for key in _SUBSCHEMA:
        _slim(node.get(key), output=output)
    for key in _SUBSCHEMA_LISTS:
        for child in node.get(key) or []:
            _slim(child, output=output)


def _drop_null_arm(prop: dict[str, Any]) -> None:
    """``{"anyOf": [X, {"type": "null"}], ...}`` becomes ``{...X, ...}``: the field is left out
    of a result when it has no value, so null is never sent."""
    arms = prop.get("anyOf")
    if not isinstance(arms, list) or {"type": "null"} not in arms:
        return
    rest = [arm for arm in arms if arm != {"type": "null"}]
    del prop["anyOf"]
    if len(rest) == 1 and not (rest[0].keys() & prop.keys()):
        prop.update(rest[0])
    else:
        prop["anyOf"] = rest


def result_content(model: BaseModel) -> dict[str, Any]:
    """``model`` as a tool's structured content: JSON values, with every optional field that
    has no value left out (nested models too; free-form dicts keep their nulls)."""
    data = model.model_dump(mode="json", by_alias=True)
    _omit_nulls(model, data)
    return data


def _omit_nulls(model: BaseModel, data: dict[str, Any]) -> None:
    for name, field in type(model).model_fields.items():
        key = field.alias or name
        value = getattr(model, name)
        if value is None:
            if not field.is_required():
                data.pop(key, None)
        elif isinstance(value, BaseModel):
            _omit_nulls(value, data[key])
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for item, dumped in zip(value, data[key], strict=True):
                _omit_nulls(item, dumped)


def type_lists(node: Any, path: str = "") -> list[str]:
    """Where ``node`` holds a ``type`` list: the paths MCP Inspector's ``--strict`` warns on."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), list):
            found.append(path or "/")
        for key, child in node.items():
            found += type_lists(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found += type_lists(child, f"{path}/{i}")
    return found
