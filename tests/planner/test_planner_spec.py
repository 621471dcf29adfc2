"""The mission spec: what a user writes, and the errors that name the field they got wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.errors import SpecError
from planner.spec import MissionSpec, load_spec, parse_spec, spec_json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def minimal(**changes):
    data = {
        "name": "Quotes",
        "objective": "Get quotes",
        "strategy": "parallel",
        "assistant": {"name": "Caller", "instructions": "Ask for their price per person."},
        "targets": [
            {"name": "Lakefront Catering", "phone": "+13125550101"},
            {"name": "Chicago Grill Co", "phone": "+13125550102"},
        ],
        "extract": [{"name": "price_per_person", "type": "number"}],
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "name", ["catering.yaml", "venue-availability.yaml", "appointment-reminders.yaml"]
)
def test_shipped_examples_are_valid_specs(name):
    spec = load_spec(EXAMPLES / name)
    assert spec.targets and spec.extract


def test_catering_example_matches_the_reference_scenario():
    spec = load_spec(EXAMPLES / "catering.yaml")
    assert [t.name for t in spec.targets] == [
        "Lakefront Catering",
        "Chicago Grill Co",
        "Prairie Table Events",
    ]
    assert spec.strategy == "sequential_leverage"
    assert spec.leverage is not None and spec.leverage.better == "lower"
    assert spec.leverage.quantity == 50
    assert "{{#best_quote}}" in spec.assistant.instructions


def test_missing_field_is_named():
    data = minimal()
    del data["targets"][1]["phone"]
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert err.value.field == "targets[1].phone"
    assert str(err.value) == "targets[1].phone is required"


def test_misspelt_field_is_an_error_not_ignored():
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(retyr={"max_retries_client_errors": 2}))
    assert err.value.field == "retyr"
    assert "not a known field" in str(err.value)


def test_unknown_strategy_lists_the_allowed_ones():
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(strategy="round_robin"))
    assert err.value.field == "strategy"
    assert "sequential_leverage" in str(err.value) and "'round_robin'" in str(err.value)


def test_extract_type_must_be_an_insight_parameter_type():
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(extract=[{"name": "price", "type": "money"}]))
    assert err.value.field == "extract[0].type"


def test_portal_spelling_of_typed_arrays_is_accepted():
    spec = parse_spec(minimal(extract=[{"name": "slots", "type": "array (string)"}]))
    assert spec.extract[0].type == "array(string)"


def test_sequential_leverage_needs_a_leverage_block():
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(strategy="sequential_leverage"))
    assert err.value.field == "leverage"


def test_leverage_field_must_be_a_numeric_extract_field():
    data = minimal(
        extract=[{"name": "notes", "type": "string"}],
        leverage={"field": "notes"},
    )
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert err.value.field == "leverage.field"
    assert err.value.value == "notes"


def test_duplicate_extract_names_are_rejected():
    data = minimal(extract=[{"name": "p", "type": "number"}, {"name": "p", "type": "string"}])
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert err.value.field == "extract[1].name"


def test_at_least_one_target():
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(targets=[]))
    assert err.value.field == "targets"
    assert "at least 1" in str(err.value)


def test_json_spec_file_loads(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(minimal()), encoding="utf-8")
    assert load_spec(path).name == "Quotes"


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\ntargets: [\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert err.value.field == "spec"
    assert "line" in str(err.value)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "nope.yaml")
    assert "readable file" in str(err.value)


def test_json_schema_describes_the_spec_for_the_llm():
    schema = spec_json_schema()
    assert set(MissionSpec.model_fields) <= set(schema["properties"])
    assert {"name", "objective", "assistant", "targets", "extract"} <= set(schema["required"])


README = Path(__file__).resolve().parents[2] / "README.md"


def test_extract_may_be_a_mapping_from_name_to_field():
    spec = parse_spec(
        minimal(
            extract={
                "total_price": {"type": "number", "required": True, "description": "In dollars"},
                "crew": {"type": "enum", "enum": ["two", "three"]},
            }
        )
    )
    assert spec.extract_parameters() == [
        {"name": "total_price", "type": "number", "description": "In dollars", "required": True},
        {
            "name": "crew",
            "type": "enum",
            "description": "",
            "required": False,
            "enum": ["two", "three"],
        },
    ]


def test_extract_mapping_errors_name_the_field_by_its_key():
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(extract={"total_price": {"type": "money"}}))
    assert err.value.field == "extract.total_price.type"
    assert "'money'" in str(err.value)
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(extract={"total_price": "number"}))
    assert str(err.value) == (
        "extract.total_price must be a mapping with type and optionally description, required, "
        "enum (e.g. total_price: {type: number}), got 'number'"
    )
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(extract={"total_price": {"type": "number", "name": "price"}}))
    assert err.value.field == "extract.total_price.name"
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(extract={}))
    assert str(err.value) == "extract must have at least 1 field, got {}"


def test_extract_mapping_reads_from_a_yaml_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: Moves\nobjective: Price a move\nstrategy: parallel\n"
        "assistant: {name: Caller, instructions: Ask for their total price.}\n"
        "targets: [{name: Acme Movers, phone: '+1 312 555 0101'}]\n"
        "extract:\n"
        "  total_price: {type: number, required: true}\n"
        "  crew_size:\n"
        "    type: integer\n"
        "    description: How many movers come\n",
        encoding="utf-8",
    )
    spec = load_spec(path)
    assert [(f.name, f.type, f.required) for f in spec.extract] == [
        ("total_price", "number", True),
        ("crew_size", "integer", False),
    ]


@pytest.mark.parametrize(
    ("window", "field", "bound"),
    [
        ({"start": "21:00", "end": "23:00"}, "calling_window.start", "before 21:00"),
        ({"start": "22:30"}, "calling_window.start", "before 21:00"),
        ({"start": "05:00", "end": "08:00"}, "calling_window.end", "after 08:00"),
        ({"days": ["sat"], "start": "06:00", "end": "07:30"}, "calling_window.end", "after 08:00"),
    ],
)
def test_a_calling_window_outside_the_legal_hours_is_refused(window, field, bound):
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(calling_window=window))
    assert err.value.field == field
    assert bound in str(err.value) and "08:00–21:00" in str(err.value)


def test_a_calling_window_that_meets_the_legal_hours_is_accepted():
    spec = parse_spec(minimal(calling_window={"start": "07:00", "end": "08:30"}))
    assert spec.calling_window is not None and spec.calling_window.end == "08:30"
    spec = parse_spec(minimal(calling_window={"start": "20:59", "end": "23:00"}))
    assert spec.calling_window is not None and spec.calling_window.start == "20:59"


def test_the_readme_spec_table_lists_every_spec_field():
    text = README.read_text(encoding="utf-8")
    section = text.split("### Mission specs", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {
        name
        for row in rows
        for name in row.split("|")[1].replace("`", " ").replace(",", " ").split()
    }
    # targets_file is read by load_spec (from a spec file) into targets.
    assert documented == set(MissionSpec.model_fields) | {"targets_file"}


# --------------------------------------------------------------------------- campaign size


def test_a_spec_of_10000_targets_is_taken_and_12000_refused_without_echoing_the_list():
    many = [{"name": f"Venue {i}", "phone": f"+1312555{i:04d}"} for i in range(12_000)]
    assert len(parse_spec(minimal(targets=many[:10_000])).targets) == 10_000
    with pytest.raises(SpecError) as caught:
        parse_spec(minimal(targets=many))
    assert str(caught.value) == "targets must have at most 10000 targets, got 12000"


def test_a_spec_without_targets_is_refused():
    with pytest.raises(SpecError, match=r"^targets must have at least 1 item$"):
        parse_spec(minimal(targets=[]))


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spec_file(tmp_path: Path, **changes) -> Path:
    data = minimal(**changes)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_targets_file_gives_targets_and_their_variables_from_columns(tmp_path):
    write_csv(
        tmp_path / "venues.csv",
        "name,phone,timezone,guest_count,contact",
        "Lakefront Catering,+13125550101,America/Chicago,50,Ann",
        "",
        "Chicago Grill Co,+13125550102,,60,",
    )
    data = minimal(targets_file="venues.csv")
    del data["targets"]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    spec = load_spec(path)
    assert [(t.name, t.phone, t.timezone) for t in spec.targets] == [
        ("Lakefront Catering", "+13125550101", "America/Chicago"),
        ("Chicago Grill Co", "+13125550102", None),
    ]
    assert spec.targets[0].variables == {"guest_count": "50", "contact": "Ann"}
    assert spec.targets[1].variables == {"guest_count": "60"}


def test_a_targets_file_given_separately_replaces_the_spec_targets(tmp_path):
    csv_path = write_csv(tmp_path / "t.csv", "to,name", "+13125550109,Only One")
    spec = load_spec(spec_file(tmp_path), csv_path)
    assert [(t.name, t.phone) for t in spec.targets] == [("Only One", "+13125550109")]


def test_a_bad_row_of_a_targets_file_is_named_by_row_and_column(tmp_path):
    write_csv(tmp_path / "t.csv", "phone,name,guest count", "+13125550101,A,1")
    with pytest.raises(SpecError, match=r"^targets_file row 1, column guest count must be a var"):
        load_spec(spec_file(tmp_path), tmp_path / "t.csv")
    write_csv(tmp_path / "t.csv", "phone,name", "+13125550101,A", ",B")
    with pytest.raises(SpecError, match=r"^targets_file row 3, column phone is required$"):
        load_spec(spec_file(tmp_path), tmp_path / "t.csv")
    long_name = "x" * 201
    write_csv(tmp_path / "t.csv", "phone,name", "+13125550101,A", f"+13125550102,{long_name}")
    with pytest.raises(SpecError, match=r"^targets_file row 3, column name "):
        load_spec(spec_file(tmp_path), tmp_path / "t.csv")


def test_a_targets_file_is_refused_with_targets_or_outside_a_spec_file(tmp_path):
    write_csv(tmp_path / "t.csv", "phone,name", "+13125550101,A")
    with pytest.raises(SpecError, match=r"^targets_file must not be given with targets"):
        load_spec(spec_file(tmp_path, targets_file="t.csv"))
    with pytest.raises(SpecError, match=r"^targets_file is only read from a spec file"):
        parse_spec(minimal(targets_file="t.csv"))
    with pytest.raises(SpecError, match=r"^targets_file must have a phone"):
        load_spec(spec_file(tmp_path), write_csv(tmp_path / "u.csv", "number,name", "1,A"))
    with pytest.raises(SpecError, match=r"^targets_file must be a readable file"):
        load_spec(spec_file(tmp_path), tmp_path / "missing.csv")
    rows = [f"+1312555{i:04d},V{i}" for i in range(10_001)]
    with pytest.raises(SpecError) as caught:
        load_spec(spec_file(tmp_path), write_csv(tmp_path / "big.csv", "phone,name", *rows))
    assert str(caught.value) == "targets_file must have at most 10000 targets, got 10001"
