"""Scoring what a reader found against the truth: one verdict per field.

Used by the extraction bench (hand-labelled corpus, simulated conversations) and by a run's
``extraction_accuracy`` (a rehearsal's truth beside what its extractor read). The rules:

* the truth states a value and the reader found the same value: ``right``;
* the truth states a value and the reader found another one: ``wrong``;
* the truth states a value and the reader found nothing: ``missed``;
* the truth states nothing (the fact was never said) and the reader found nothing:
  ``absent`` (correct, counted with the right ones);
* the truth states nothing and the reader found a value: ``wrong`` (an invented value).

Values are compared by type: numbers by value (``62 == 62.0``), enum values ignoring case,
surrounding space and a final full stop, arrays as sets of such items. A ``string`` field is
free text: it is right when, ignoring case and punctuation, what was read is what was said or
a part of it ("Friday at 6pm" of "We can do Friday at 6pm"), or contains it whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

__all__ = ["FieldVerdict", "Tally", "Verdict", "same_value", "score_fields"]

Verdict = Literal["right", "wrong", "missed", "absent"]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _text(value: Any) -> str:
    return " ".join(str(value).split()).strip().rstrip(".").casefold()


def _words(value: Any) -> str:
    return " ".join(re.findall(r"[\w$.'’-]+", str(value).casefold())).strip(".")


def same_value(truth: Any, read: Any, kind: str | None = None) -> bool:
    """Whether ``read`` states the same value as ``truth`` (see the module's rules); ``kind``
    is the field's type (``string`` compares free text)."""
    if kind == "string" and isinstance(truth, str) and isinstance(read, str):
        said, got = f" {_words(truth)} ", f" {_words(read)} "
        return bool(got.strip()) and (got in said or said in got)
    if isinstance(truth, bool) or isinstance(read, bool):
        return isinstance(truth, bool) and isinstance(read, bool) and truth == read
    if isinstance(truth, (int, float, Decimal)) and not isinstance(truth, bool):
        wanted, got = _number(truth), _number(read)
        return wanted is not None and got is not None and wanted == got
    if isinstance(truth, (list, tuple)):
        if not isinstance(read, (list, tuple)):
            return False
        return sorted(_text(item) for item in truth) == sorted(_text(item) for item in read)
    if isinstance(truth, Mapping):
        if not isinstance(read, Mapping) or set(truth) != set(read):
            return False
        return all(same_value(truth[key], read[key]) for key in truth)
    return isinstance(read, str) and _text(truth) == _text(read)


@dataclass(frozen=True)
class FieldVerdict:
    name: str
    type: str
    verdict: Verdict
    truth: Any = None
    read: Any = None


def score_fields(
    fields: Iterable[tuple[str, str]], truth: Mapping[str, Any], read: Mapping[str, Any] | None
) -> list[FieldVerdict]:
    """One verdict per ``(name, type)`` field: ``truth`` holds the values that were said
    (a field not in it was never said), ``read`` what the reader found (None: nothing)."""
    found = read or {}
    verdicts: list[FieldVerdict] = []
    for name, kind in fields:
        has_truth = name in truth and truth[name] is not None
        has_read = name in found and found[name] is not None
        value, got = truth.get(name), found.get(name)
        if not has_truth:
            verdict: Verdict = "wrong" if has_read else "absent"
        elif not has_read:
            verdict = "missed"
        else:
            verdict = "right" if same_value(value, got, kind) else "wrong"
        verdicts.append(FieldVerdict(name, kind, verdict, value, got))
    return verdicts


@dataclass
class Tally:
    """Counts of verdicts. ``found`` is the share of stated values read right; ``wrong_rate``
    the share of all fields given a value no one said."""

    right: int = 0
    wrong: int = 0
    missed: int = 0
    absent: int = 0
    mismatches: list[FieldVerdict] = field(default_factory=list)

    def add(self, verdicts: Iterable[FieldVerdict]) -> None:
        for item in verdicts:
            setattr(self, item.verdict, getattr(self, item.verdict) + 1)
            if item.verdict == "wrong":
                self.mismatches.append(item)

    @property
    def fields(self) -> int:
        return self.right + self.wrong + self.missed + self.absent

    @property
    def stated(self) -> int:
        return self.fields - self.absent - sum(1 for m in self.mismatches if m.truth is None)

    def rates(self) -> dict[str, float]:
        total = self.fields or 1
        stated = self.stated or 1
        return {
            "wrong_rate": round(self.wrong / total, 4),
            "missed_rate": round(self.missed / stated, 4),
            "found": round(self.right / stated, 4),
            "accuracy": round((self.right + self.absent) / total, 4),
        }
