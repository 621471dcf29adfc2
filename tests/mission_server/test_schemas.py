"""The published output schemas: ``X | None`` as a type list where that is equivalent."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from jsonschema import Draft202012Validator

from mission_server.services.missions import RunDetail
from mission_server.services.schemas import OutModel


class Sample(OutModel):
    note: str | None = None
    count: int | None = None
    tags: list[str] | None = None
    mood: Literal["calm", "busy"] | None = None  # enum: must keep its anyOf
    plain: str = "x"


def test_nullable_plain_types_become_type_lists_and_enums_keep_anyof() -> None:
    properties = Sample.model_json_schema()["properties"]
    assert properties["note"]["type"] == ["string", "null"] and "anyOf" not in properties["note"]
    assert properties["count"]["type"] == ["integer", "null"]
    assert properties["tags"] == {
        "default": None,
        "title": "Tags",
        "type": ["array", "null"],
        "items": {"type": "string"},
    }
    assert "anyOf" in properties["mood"]
    assert properties["plain"]["type"] == "string"


@pytest.mark.parametrize(
    ("instance", "valid"),
    [
        ({"note": None, "count": None, "tags": None, "mood": None}, True),
        ({"note": "n", "count": 3, "tags": ["a"], "mood": "calm"}, True),
        ({"mood": "angry"}, False),
        ({"count": "3"}, False),
        ({"tags": [1]}, False),
    ],
)
def test_the_compact_schema_accepts_exactly_what_the_model_does(instance, valid) -> None:
    errors = list(Draft202012Validator(Sample.model_json_schema()).iter_errors(instance))
    assert (not errors) == valid


def test_the_run_detail_schema_is_valid_and_has_no_nullable_anyof_left() -> None:
    schema = RunDetail.model_json_schema()
    Draft202012Validator.check_schema(schema)
    assert '"anyOf"' not in json.dumps(schema)
    run = schema["properties"]
    assert run["result_summary"]["type"] == ["string", "null"]
    assert run["finished_at"] == {
        "default": None,
        "title": "Finished At",
        "type": ["string", "null"],
        "format": "date-time",
    }
