"""Extraction accuracy: what a reader finds in labelled conversations, against the truth.

Runs the offline reader (and, with ``--llm`` or when ``MISSION_LLM_BASE_URL`` and
``MISSION_LLM_MODEL`` are set, the LLM extractor built as ``mission_server.app`` builds it)
over the cases of each selected source and prints, per parameter type and overall, the
wrong-value rate, the missed rate, the share found and the accuracy
(``mission_server.insights.accuracy``), then every wrong value (case, field, truth, read).
Last line: one JSON object.

Sources of cases (``SOURCES``): ``hand`` — the hand-labelled transcripts in
``tests/data/transcripts/`` (``--heldout`` adds the held-out set in its ``heldout/``
folder); ``simulated`` — ``--simulated N`` (default 500) seeded simulated conversations with
their ground truth (``bench/simulated.py``). A new source is a function
``(args) -> list[Case]`` added to ``SOURCES`` with its command-line switch in ``_arguments``.

    python bench/extraction.py [--heldout | --only-heldout | --cases FILE...] [--llm]
        [--simulated N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mission_server.insights.accuracy import FieldVerdict, Tally, score_fields
from mission_server.insights.base import Extractor
from mission_server.insights.corpus import Case, load_corpus, load_file
from mission_server.insights.offline import OfflineExtractor

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "transcripts"
HELDOUT = CORPUS / "heldout"


@dataclass
class Report:
    """The verdicts of one extractor over some cases: overall, per type, and the wrong ones."""

    extractor: str
    cases: int = 0
    overall: Tally = field(default_factory=Tally)
    by_type: dict[str, Tally] = field(default_factory=dict)
    wrong: list[tuple[str, FieldVerdict]] = field(default_factory=list)
    #: Why each stated field was missed, when the extractor says (case, field, reason).
    missed: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "extractor": self.extractor,
            "cases": self.cases,
            "fields": self.overall.fields,
            **self.overall.rates(),
            "by_type": {
                kind: {"fields": tally.fields, **tally.rates()}
                for kind, tally in sorted(self.by_type.items())
            },
            "wrong": [
                {"case": case, "field": v.name, "truth": v.truth, "read": v.read}
                for case, v in self.wrong
            ],
        }


def measure(extractor: Extractor, cases: Iterable[Case]) -> Report:
    """Run ``extractor`` on every case and score each field (``score_fields``). A failed
    result still counts what it found (``partial``), so a required field missing does not hide
    the other fields' values."""
    report = Report(extractor.name)
    for case in cases:
        report.cases += 1
        result = extractor.extract(case.definition, case.transcript, conversation_id=case.name)
        read = result.result if isinstance(result.result, dict) else None
        if read is None:
            read = getattr(result, "partial", None) or {}
        fields = [(p.name, p.type) for p in case.definition.parameters]
        verdicts = score_fields(fields, case.truth, read)
        report.overall.add(verdicts)
        reasons = getattr(result, "reasons", {}) or {}
        for verdict in verdicts:
            report.by_type.setdefault(verdict.type, Tally()).add([verdict])
            if verdict.verdict == "wrong":
                report.wrong.append((case.name, verdict))
            elif verdict.verdict == "missed":
                report.missed.append(
                    (case.name, verdict.name, reasons.get(verdict.name, result.error or ""))
                )
    return report


# --------------------------------------------------------------------------- sources


def hand_cases(args: argparse.Namespace) -> list[Case]:
    """The hand-labelled corpus (and the held-out set with ``--heldout``), or the files
    given with ``--cases``."""
    if args.cases:
        found: list[Case] = []
        for path in args.cases:
            found.extend(load_corpus(path) if path.is_dir() else load_file(path))
        return found
    cases = [] if args.only_heldout else load_corpus(CORPUS)
    if args.heldout or args.only_heldout:
        for path in sorted(HELDOUT.glob("*.yaml")):
            cases.extend(load_file(path))
    return cases


def simulated(args: argparse.Namespace) -> list[Case]:
    """Seeded simulated conversations with their ground truth (``bench/simulated.py``)."""
    from bench.simulated import simulated_cases

    return simulated_cases(args.simulated, seed=args.seed) if args.simulated else []


#: Where cases come from: name -> loader. Each source is measured and reported on its own.
SOURCES: dict[str, Callable[[argparse.Namespace], list[Case]]] = {
    "hand": hand_cases,
    "simulated": simulated,
}


def extractors(args: argparse.Namespace) -> list[Extractor]:
    chosen: list[Extractor] = [OfflineExtractor()]
    configured = os.environ.get("MISSION_LLM_BASE_URL") and os.environ.get("MISSION_LLM_MODEL")
    if args.llm or configured:
        from mission_server.insights.llm import LLMExtractor
        from mission_server.settings import load_settings

        chosen.append(LLMExtractor.from_settings(load_settings()))
    return chosen


# --------------------------------------------------------------------------- output


def _row(label: str, tally: Tally) -> str:
    rates = tally.rates()
    return (
        f"{label:<16}{tally.fields:>7}{rates['wrong_rate']:>8.1%}{rates['missed_rate']:>8.1%}"
        f"{rates['found']:>8.1%}{rates['accuracy']:>9.1%}"
    )


def show(source: str, report: Report, *, verbose: bool) -> None:
    print(f"== {source}: {report.extractor}, {report.cases} cases")
    print(f"{'type':<16}{'fields':>7}{'wrong':>8}{'missed':>8}{'found':>8}{'accuracy':>9}")
    for kind, tally in sorted(report.by_type.items()):
        print(_row(kind, tally))
    print(_row("overall", report.overall))
    for case, verdict in report.wrong:
        print(f"  WRONG {case} {verdict.name}: truth {verdict.truth!r}, read {verdict.read!r}")
    if verbose:
        for case, name, reason in report.missed:
            print(f"  missed {case} {name}: {reason}")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", action="store_true", help="add the held-out transcripts")
    parser.add_argument(
        "--only-heldout", action="store_true", help="measure the held-out transcripts alone"
    )
    parser.add_argument(
        "--cases", type=Path, nargs="+", help="measure these corpus files or folders instead"
    )
    parser.add_argument("--llm", action="store_true", help="also measure the LLM extractor")
    parser.add_argument(
        "--simulated",
        type=int,
        default=500,
        metavar="N",
        help="seeded simulated conversations to measure (default 500; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated conversations")
    parser.add_argument("--verbose", action="store_true", help="list missed fields with reasons")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = _arguments(argv)
    result: dict[str, Any] = {}
    for source, load in SOURCES.items():
        cases = load(args)
        if not cases:
            continue
        for extractor in extractors(args):
            report = measure(extractor, cases)
            show(source, report, verbose=args.verbose)
            result.setdefault(source, {})[extractor.name] = report.as_dict()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
