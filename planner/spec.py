"""The mission spec: what ``mission run`` and the ``run_mission`` tool accept.

A spec is YAML or JSON that a person (or the optional LLM) writes, so every mistake is reported
with the path of the bad field: ``targets[1].phone must be ...``. The pydantic models check the
structure; the rules the service owns (phone numbers, timezones, retry policy, calling window,
insight parameter names) are checked through ``MissionOps.check_spec`` so there is one
implementation of each.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.errors import SpecError
from planner.types import CALLING_HOURS_END, CALLING_HOURS_START
from planner.types import INSIGHT_PARAMETER_TYPES as PARAMETER_TYPES
from planner.types import InsightParameterType as ParameterType

__all__ = [
    "MAX_TARGETS",
    "PARAMETER_TYPES",
    "AssistantConfig",
    "ExtractField",
    "Leverage",
    "MissionSpec",
    "RetryPolicy",
    "Target",
    "load_spec",
    "parse_header",
    "parse_spec",
    "read_targets_file",
    "spec_header",
    "spec_json_schema",
]

Strategy = Literal["sequential_leverage", "parallel"]
#: The most targets one mission may have (batch calling elsewhere stops at 10,000 recipients).
MAX_TARGETS = 10_000
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
Scalar = str | int | float | bool


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt ``retyr:`` silently ignored would change what calls
    # are placed.
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _variable_name(value: str) -> str:
    if not _VARIABLE.match(value):
        raise ValueError("must be a variable name (a letter or '_' then letters, digits or '_')")
    return value


class AssistantConfig(_Model):
    """The voice assistant every call of the mission uses.

    ``instructions`` and ``greeting`` may hold ``{{placeholders}}`` and mustache sections
    (``{{#best_quote}}…{{/best_quote}}`` renders only once a best quote is known).
    ``variables`` are the assistant's default dynamic variables.
    """

    name: str = Field(max_length=200)
    instructions: str = Field(max_length=50_000)
    greeting: str | None = Field(default=None, max_length=5000)
    variables: dict[str, Scalar] = Field(default_factory=dict)
    model: str | None = None
    voice: str | None = None

    @field_validator("name", "instructions")
    @classmethod
    def _filled(cls, value: str) -> str:
        return _not_blank(value)

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in value:
            _variable_name(key)
        return value


class Target(_Model):
    """One party to call."""

    name: str = Field(max_length=200)
    phone: str
    timezone: str | None = None
    notes: str | None = Field(default=None, max_length=2000)
    variables: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("name", "phone")
    @classmethod
    def _filled(cls, value: str) -> str:
        return _not_blank(value)

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in value:
            _variable_name(key)
        return value


class ExtractField(_Model):
    """One structured insight parameter extracted from every conversation."""

    name: str
    type: ParameterType
    description: str = ""
    required: bool = False
    enum: list[str] = Field(default_factory=list)

    @field_validator("type", mode="before")
    @classmethod
    def _portal_spelling(cls, value: Any) -> Any:
        # The portal writes typed arrays with a space: "array (string)".
        return re.sub(r"\s+", "", value).lower() if isinstance(value, str) else value


class Leverage(_Model):
    """Which extracted value is carried from call to call, and which way is better.

    After each call the best ``field`` value so far goes into the run variable ``variable``
    (and the name of whoever offered it into ``name_variable``), so later calls render the
    assistant's ``{{#variable}}…{{/variable}}`` sections with it.
    """

    field: str
    initial_field: str | None = None
    better: Literal["lower", "higher"] = "lower"
    variable: str = "best_quote"
    name_variable: str | None = "best_company"
    label: str = "Quote"
    money: bool = True
    unit: str | None = None
    quantity: float | None = Field(default=None, gt=0)
    quantity_label: str | None = None

    @field_validator("variable", "name_variable")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _variable_name(value)


class RetryPolicy(_Model):
    """The reference's client-error retry budget, applied to every call."""

    max_retries_client_errors: int = 0
    retry_interval_secs: int | None = None


def _clock(value: str | None) -> time | None:
    # Only to compare with the legal hours; the service reports a malformed time.
    try:
        hours, minutes = str(value).strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        return None


class CallingWindowConfig(_Model):
    """Local days and hours (``HH:MM``, ``end`` exclusive; default Monday–Friday 09:00–17:00)
    in which calls may be placed. The service checks the days and the time format
    (``mission_server.domain.calling_hours``); here a window that cannot meet the legal
    calling hours (``planner.types``) is refused, since no call of it could ever be placed."""

    days: list[str] | None = None
    start: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _meets_legal_hours(self) -> CallingWindowConfig:
        legal = f"{CALLING_HOURS_START:%H:%M}–{CALLING_HOURS_END:%H:%M}"
        start, end = _clock(self.start), _clock(self.end)
        if end is not None and end <= CALLING_HOURS_START:
            raise SpecError(
                "end",
                f"must be after {CALLING_HOURS_START:%H:%M}: calls are only placed within the "
                f"legal calling hours {legal} local time, so this window never opens",
                self.end,
            )
        if start is not None and start >= CALLING_HOURS_END:
            raise SpecError(
                "start",
                f"must be before {CALLING_HOURS_END:%H:%M}: calls are only placed within the "
                f"legal calling hours {legal} local time, so this window never opens",
                self.start,
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class MissionSpec(_Model):
    """A whole mission: who to call, what to ask, what to extract and how to compare."""

    name: str = Field(max_length=200)
    objective: str = Field(max_length=20_000)
    strategy: Strategy = "sequential_leverage"
    assistant: AssistantConfig
    #: At least one (checked in ``_consistent``: a spec *header*, the spec without its
    #: targets that the planner checkpoints, has none), at most ``MAX_TARGETS``.
    targets: list[Target] = Field(default_factory=list, max_length=MAX_TARGETS)
    #: A list of fields, or a mapping from each name to the rest of its field.
    extract: list[ExtractField] = Field(min_length=1, max_length=50)
    leverage: Leverage | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    calling_window: CallingWindowConfig | None = None
    require_approval: bool = False
    call_budget: int | None = Field(default=None, ge=1, le=10_000)

    @field_validator("name", "objective")
    @classmethod
    def _filled(cls, value: str) -> str:
        return _not_blank(value)

    @field_validator("extract", mode="before")
    @classmethod
    def _mapping_form(cls, value: Any) -> Any:
        # ``extract: {total_price: {type: number}}`` is the list form keyed by name.
        if isinstance(value, Mapping) and not value:
            raise ValueError("must have at least 1 field")
        return _extract_list(value) if isinstance(value, Mapping) else value

    @model_validator(mode="after")
    def _consistent(self, info: pydantic.ValidationInfo) -> MissionSpec:
        if not self.targets and not (info.context or {}).get("header"):
            raise SpecError("targets", "must have at least 1 item", show_value=False)
        names = [f.name for f in self.extract]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise SpecError(f"extract[{index}].name", "must be unique", name)
        if self.strategy == "sequential_leverage" and self.leverage is None:
            raise SpecError(
                "leverage",
                "is required when strategy is sequential_leverage (name the extracted field "
                "carried to later calls)",
                show_value=False,
            )
        if self.leverage is not None:
            numeric = {f.name for f in self.extract if f.type in ("number", "integer")}
            for key in ("field", "initial_field"):
                value = getattr(self.leverage, key)
                if value is not None and value not in numeric:
                    raise SpecError(
                        f"leverage.{key}",
                        "must name a number or integer field of extract "
                        f"({', '.join(sorted(numeric)) or 'there is none'})",
                        value,
                    )
        return self

    def extract_parameters(self) -> list[dict[str, Any]]:
        """The ``extract`` list in the insight parameter form of the insights API."""
        return [
            {
                "name": f.name,
                "type": f.type,
                "description": f.description,
                "required": f.required,
                **({"enum": list(f.enum)} if f.type == "enum" else {}),
            }
            for f in self.extract
        ]


def _extract_list(fields: Mapping[Any, Any]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    for key, body in fields.items():
        if not isinstance(key, str) or not _VARIABLE.match(key):
            raise SpecError(
                str(key),
                "must be a field name (a letter or '_' then letters, digits or '_')",
                key if isinstance(key, str | int | float) else type(key).__name__,
            )
        if not isinstance(body, Mapping):
            raise SpecError(
                key,
                "must be a mapping with type and optionally description, required, enum "
                f"(e.g. {key}: {{type: number}})",
                body if isinstance(body, str | int | float | bool) else type(body).__name__,
            )
        if "name" in body and body["name"] != key:
            raise SpecError(
                f"{key}.name", f"must be {key!r} (the key it is listed under)", body["name"]
            )
        entry = {"name": key, **{k: v for k, v in body.items() if k != "name"}}
        try:
            ExtractField.model_validate(entry)
        except pydantic.ValidationError as exc:
            problem = _translate(exc)
            raise SpecError(
                f"{key}.{problem.field}", problem.rule, problem.value, show_value=problem.show_value
            ) from None
        listed.append(entry)
    return listed


def parse_spec(data: Any) -> MissionSpec:
    """Validate a parsed spec (a mapping, or a ``MissionSpec``).

    Raises:
        SpecError: a field is missing, unknown or invalid; ``field`` is its path, e.g.
            ``targets[1].phone``.
    """
    if isinstance(data, MissionSpec):
        return data
    if not isinstance(data, Mapping):
        raise SpecError(
            "spec",
            "must be a mapping with name, objective, assistant, targets, extract",
            type(data).__name__,
        )
    if "targets_file" in data:
        raise SpecError(
            "targets_file",
            "is only read from a spec file (mission run SPEC_FILE, or --targets FILE); "
            "list the targets under targets here",
            show_value=False,
        )
    try:
        return MissionSpec.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise _translate(exc) from None


def spec_header(spec: MissionSpec) -> dict[str, Any]:
    """The spec without its targets, as JSON: what the planner keeps in its checkpointed
    state (its size does not depend on the number of targets; the targets live in the
    records)."""
    return spec.model_dump(mode="json", exclude={"targets"})


def parse_header(data: Mapping[str, Any]) -> MissionSpec:
    """Validate a spec header (``spec_header``): a ``MissionSpec`` whose ``targets`` is empty.

    Raises:
        SpecError: as ``parse_spec``.
    """
    try:
        return MissionSpec.model_validate({**data, "targets": []}, context={"header": True})
    except pydantic.ValidationError as exc:
        raise _translate(exc) from None


#: CSV columns that are a target's own fields; every other column is one of its variables.
_PHONE_COLUMNS = ("phone", "to")
_TARGET_COLUMNS = ("name", "timezone", "notes")


def read_targets_file(
    path: str | Path, field: str = "targets_file"
) -> tuple[list[dict[str, Any]], list[int]]:
    """Read targets from a CSV file with a header row: a ``phone`` (or ``to``) column, a
    ``name`` column, optionally ``timezone`` and ``notes``; every other column is a per-target
    variable (``{{column}}`` in the assistant's instructions). Blank cells are left out, blank
    lines skipped. Returns the targets and the row (line number in the file, the header being
    row 1) of each.

    Raises:
        SpecError: the file cannot be read, has no header or no phone/name column, has more
            than ``MAX_TARGETS`` rows, or a row is invalid; a bad row is named by its row and
            column.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        rule = f"must be a readable file ({exc.strerror or exc})"
        raise SpecError(field, rule, str(path)) from None
    rows: list[tuple[int, list[str]]] = []
    with handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append((reader.line_num, row))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SpecError(field, f"must be a CSV file in UTF-8 ({exc})", str(path)) from None
    if len(rows) > MAX_TARGETS:
        raise SpecError(field, f"must have at most {MAX_TARGETS} targets", len(rows))
    if not header or not any(h.strip() for h in header):
        raise SpecError(field, "must start with a header row (phone, name, …)", str(path))
    columns = [h.strip() for h in header]
    lowered = [c.lower() for c in columns]
    phone_column = next((c for c in _PHONE_COLUMNS if c in lowered), None)
    if phone_column is None or "name" not in lowered:
        raise SpecError(
            field,
            "must have a phone (or to) column and a name column in its header row",
            ", ".join(columns),
        )
    for index, column in enumerate(lowered):
        where = f"{field} row 1, column {columns[index] or index + 1}"
        if column in lowered[:index]:
            raise SpecError(where, "must be unique", columns[index])
        if column not in (*_PHONE_COLUMNS, *_TARGET_COLUMNS) and not _VARIABLE.match(column):
            raise SpecError(
                where,
                "must be a variable name (a letter or '_' then letters, digits or '_')",
                columns[index],
            )
    targets: list[dict[str, Any]] = []
    lines: list[int] = []
    for line, row in rows:
        if len(row) > len(columns):
            raise SpecError(
                f"{field} row {line}",
                f"must have at most {len(columns)} cells (the header's columns)",
                len(row),
            )
        target: dict[str, Any] = {}
        variables: dict[str, Any] = {}
        for column, name, cell in zip(columns, lowered, row, strict=False):
            cell = cell.strip()
            if not cell:
                continue
            if name in _PHONE_COLUMNS:
                target["phone"] = cell
            elif name in _TARGET_COLUMNS:
                target[name] = cell
            else:
                variables[column] = cell
        for required, column in (("phone", phone_column), ("name", "name")):
            if required not in target:
                where = f"{field} row {line}, column {column}"
                raise SpecError(where, "is required", show_value=False)
        if variables:
            target["variables"] = variables
        targets.append(target)
        lines.append(line)
    return targets, lines


def _row_error(exc: SpecError, lines: list[int]) -> SpecError:
    """``targets[5].phone …`` as ``targets_file row 7, column phone …``."""
    found = re.match(r"^targets\[(\d+)\](?:\.(\w+))?(?:\.(\w+))?", exc.field)
    if found is None or int(found.group(1)) >= len(lines):
        return exc
    row = lines[int(found.group(1))]
    column = found.group(2) or ""
    if column == "variables" and found.group(3):
        column = found.group(3)
    where = f"targets_file row {row}" + (f", column {column}" if column else "")
    return SpecError(where, exc.rule, exc.value, show_value=exc.show_value)


def load_spec(
    path: str | Path,
    targets_file: str | Path | None = None,
    *,
    check: Callable[[MissionSpec], MissionSpec] | None = None,
) -> MissionSpec:
    """Read and validate a spec file (YAML, or JSON, which is YAML too).

    ``targets_file:`` in the spec (relative to the spec file), or ``targets_file`` here (which
    replaces the spec's targets), is a CSV file of targets (``read_targets_file``). ``check``
    (the service's ``MissionOps.check_spec``) is applied to the result, so that a target it
    refuses is named by its row and column in the CSV file.

    Raises:
        SpecError: the file cannot be read, is not valid YAML/JSON, or a field is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        rule = f"must be a readable file ({exc.strerror or exc})"
        raise SpecError("spec", rule, str(path)) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "msg", None) or "syntax error"
        rule = f"must be valid YAML or JSON ({problem}{where})"
        raise SpecError("spec", rule, str(path)) from None
    data = data if data is not None else {}
    lines: list[int] | None = None
    if isinstance(data, dict) and (targets_file is not None or "targets_file" in data):
        data = dict(data)
        named = data.pop("targets_file", None)
        if targets_file is not None:
            source = Path(targets_file)
            data.pop("targets", None)
        else:
            if not isinstance(named, str) or not named.strip():
                raise SpecError("targets_file", "must be the path of a CSV file", named)
            if "targets" in data:
                raise SpecError(
                    "targets_file", "must not be given with targets (give one of them)", named
                )
            source = path.parent / named.strip()
        data["targets"], lines = read_targets_file(source)
    try:
        spec = parse_spec(data)
        return check(spec) if check is not None else spec
    except SpecError as exc:
        if lines is None:
            raise
        raise _row_error(exc, lines) from None


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec (what the LLM is asked to produce)."""
    schema = MissionSpec.model_json_schema()
    # A spec needs targets (only the planner's header, never written by anyone, has none).
    schema["required"] = [*schema.get("required", []), "targets"]
    schema["properties"]["targets"]["minItems"] = 1
    return schema


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _translate(exc: pydantic.ValidationError) -> SpecError:
    # The first problem only: the one the user fixes next.
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    cause = ctx.get("error")
    if isinstance(cause, SpecError):
        # Raised by a model validator: its field is relative to the model's location.
        prefix = _path(loc)
        return SpecError(
            f"{prefix}.{cause.field}" if prefix else cause.field,
            cause.rule,
            cause.value,
            show_value=cause.show_value,
        )
    field = _path(loc) or "spec"
    if kind == "missing":
        return SpecError(field, "is required", show_value=False)
    if kind == "extra_forbidden":
        return SpecError(field, "is not a known field (check the spelling)", value)
    if kind == "value_error" and cause is not None:
        return SpecError(field, str(cause), value)
    if kind == "literal_error":
        return SpecError(field, f"must be one of {ctx.get('expected')}", value)
    if kind == "too_long":
        count = ctx.get("max_length")
        actual = ctx.get("actual_length")
        noun = "targets" if field == "targets" else "items"
        if actual is None:
            return SpecError(field, f"must have at most {count} {noun}", show_value=False)
        return SpecError(field, f"must have at most {count} {noun}", actual)
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return SpecError(field, f"must have at least {count} item{'s' * (count != 1)}", value)
    message = str(error["msg"])
    for prefix, replacement in (("Input should be", "must be"), ("Value should be", "must be")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
    return SpecError(field, message[0].lower() + message[1:], value)
