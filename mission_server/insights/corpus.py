"""Labelled transcripts for measuring extractors: loading and checking them.

A corpus file (YAML) holds one or more cases, each an insight schema (the ``extract:`` list of
a mission spec), the turns of a conversation and the true values::

    domain: movers                # optional, reported with each case
    transcripts:
      - name: flat-price
        extract:
          - {name: total_price, type: number, description: The price for the whole move}
        turns:
          - assistant: What would the whole move cost?
          - user: We'd do it for $1,480 for the whole job.
        truth:
          total_price: 1480

A field whose fact is never stated is left out of ``truth`` (the right answer is "missing").
Every label is checked against its schema when the file is loaded: a truth key that is not a
parameter, a value of the wrong type or an enum value not allowed raises ``CorpusError``
naming the file, the case and the field. A file may also be a single case (the keys above at
the top level, without ``transcripts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from mission_server.errors import ValidationError
from mission_server.insights.base import InsightDefinition, InsightParameter
from mission_server.insights.schema import parse_parameters
from mission_server.telephony.base import TranscriptMessage

__all__ = ["Case", "CorpusError", "check_truth", "load_corpus", "load_file"]

_T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
_ROLES = ("assistant", "user")


class CorpusError(ValueError):
    """A corpus file that cannot be used; the message names the file, case and field."""


@dataclass(frozen=True)
class Case:
    """One labelled conversation: ``truth`` holds only the facts that were said."""

    name: str  # "<file stem>/<case name>"
    definition: InsightDefinition
    transcript: tuple[TranscriptMessage, ...]
    truth: Mapping[str, Any]
    domain: str = ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_problem(parameter: InsightParameter, value: Any) -> str | None:
    kind = parameter.type
    if value is None:
        return "is null (leave a field that was never said out of truth)"
    if kind == "string" and not isinstance(value, str):
        return f"{value!r} is not a string"
    if kind == "enum":
        if not isinstance(value, str):
            return f"{value!r} is not a string"
        if value not in parameter.enum:
            return f"{value!r} is not one of the enum values {list(parameter.enum)}"
    if kind == "number" and not _is_number(value):
        return f"{value!r} is not a number"
    if kind == "integer" and not (_is_number(value) and value == int(value)):
        return f"{value!r} is not a whole number"
    if kind == "boolean" and not isinstance(value, bool):
        return f"{value!r} is not true or false"
    if kind.startswith("array"):
        if not isinstance(value, list):
            return f"{value!r} is not a list"
        check = {
            "array": lambda v: isinstance(v, str),
            "array(string)": lambda v: isinstance(v, str),
            "array(number)": _is_number,
            "array(boolean)": lambda v: isinstance(v, bool),
        }[kind]
        for index, item in enumerate(value):
            if not check(item):
                return f"item {index} ({item!r}) does not fit {kind}"
    if kind == "object" and not isinstance(value, Mapping):
        return f"{value!r} is not an object"
    return None


def check_truth(parameters: Iterable[InsightParameter], truth: Mapping[str, Any]) -> list[str]:
    """Every way ``truth`` breaks the parameters: ``field: problem`` sentences (empty: fine)."""
    by_name = {p.name: p for p in parameters}
    problems = []
    for key, value in truth.items():
        parameter = by_name.get(key)
        if parameter is None:
            problems.append(f"{key}: is not a parameter (parameters: {', '.join(by_name)})")
            continue
        problem = _type_problem(parameter, value)
        if problem:
            problems.append(f"{key}: {problem}")
    return problems


def _turns(raw: Any, where: str) -> tuple[TranscriptMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise CorpusError(f"{where}: turns: must be a non-empty list")
    out = []
    for index, item in enumerate(raw):
        if isinstance(item, Mapping) and set(item) == {"role", "text"}:
            role, text = item["role"], item["text"]
        elif isinstance(item, Mapping) and len(item) == 1:
            ((role, text),) = item.items()
        else:
            raise CorpusError(
                f"{where}: turns[{index}]: must be {{role: ..., text: ...}} or {{user: text}}"
            )
        if role not in _ROLES:
            raise CorpusError(f"{where}: turns[{index}]: role {role!r} is not one of {_ROLES}")
        if not isinstance(text, str) or not text.strip():
            raise CorpusError(f"{where}: turns[{index}]: text must be non-empty text")
        out.append(TranscriptMessage(role=role, text=text, sent_at=_T0 + timedelta(seconds=index)))
    return tuple(out)


def _case(raw: Any, path: Path, index: int, domain: str) -> Case:
    if not isinstance(raw, Mapping):
        raise CorpusError(f"{path}: transcripts[{index}]: must be a mapping")
    label = raw.get("name") or f"#{index}"
    where = f"{path}: {label}"
    unknown = sorted(set(raw) - {"name", "extract", "turns", "truth", "domain", "note"})
    if unknown:
        raise CorpusError(f"{where}: {unknown[0]}: is not a case setting")
    try:
        parameters = parse_parameters(raw.get("extract"), "extract")
    except ValidationError as exc:
        raise CorpusError(f"{where}: {exc}") from None
    if not parameters:
        raise CorpusError(f"{where}: extract: must list at least one parameter")
    truth = raw.get("truth") or {}
    if not isinstance(truth, Mapping):
        raise CorpusError(f"{where}: truth: must be a mapping of field -> value")
    problems = check_truth(parameters, truth)
    if problems:
        raise CorpusError(f"{where}: truth.{problems[0]}")
    definition = InsightDefinition(
        insight_id=f"{path.stem}/{label}", name=str(label), instructions="", parameters=parameters
    )
    return Case(
        name=f"{path.stem}/{label}",
        definition=definition,
        transcript=_turns(raw.get("turns"), where),
        truth=dict(truth),
        domain=str(raw.get("domain") or domain),
    )


def load_file(path: Path) -> list[Case]:
    """The cases of one corpus file, every label checked.

    Raises:
        CorpusError: unreadable YAML, a malformed case, or a label that does not fit its schema.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(data, Mapping):
        raise CorpusError(f"{path}: must be a mapping (domain, transcripts)")
    domain = str(data.get("domain") or "")
    raw_cases = data.get("transcripts", [data])
    if not isinstance(raw_cases, list):
        raise CorpusError(f"{path}: transcripts: must be a list")
    cases = [_case(raw, path, i, domain) for i, raw in enumerate(raw_cases)]
    names = [c.name for c in cases]
    for name in names:
        if names.count(name) > 1:
            raise CorpusError(f"{path}: {name}: two cases have this name")
    return cases


def load_corpus(folder: Path, *, recursive: bool = False) -> list[Case]:
    """Every case of every ``*.yaml`` file in ``folder`` (sorted by file name); sub-folders
    (such as a held-out set) only when ``recursive``."""
    pattern = "**/*.yaml" if recursive else "*.yaml"
    cases: list[Case] = []
    for path in sorted(folder.glob(pattern)):
        cases.extend(load_file(path))
    return cases
