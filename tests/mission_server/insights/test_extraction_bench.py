"""The offline reader on the hand-labelled corpus, scored by ``bench/extraction.py``'s
``measure``: the guarantee is no wrong value at all, and most stated values found."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from mission_server.insights.corpus import load_corpus
from mission_server.insights.offline import OfflineExtractor

ROOT = Path(__file__).resolve().parents[3]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_extraction", ROOT / "bench/extraction.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_offline_reader_never_gives_a_wrong_value_on_the_hand_corpus() -> None:
    bench = _bench()
    report = bench.measure(OfflineExtractor(), load_corpus(ROOT / "tests/data/transcripts"))
    wrong = [f"{case} {v.name}: truth {v.truth!r}, read {v.read!r}" for case, v in report.wrong]
    assert wrong == []
    assert report.overall.rates()["found"] >= 0.9


def test_the_report_counts_per_type_and_lists_wrong_values(tmp_path: Path) -> None:
    bench = _bench()
    (tmp_path / "c.yaml").write_text(
        "transcripts:\n"
        "  - name: x\n"
        "    extract:\n"
        "      - {name: fee, type: number, description: Call-out fee}\n"
        "      - {name: open_saturday, type: boolean}\n"
        "    turns:\n"
        "      - assistant: Are you open Saturday?\n"
        "      - user: No, sorry.\n"
        "    truth: {fee: 85, open_saturday: true}\n",
        encoding="utf-8",
    )
    report = bench.measure(OfflineExtractor(), load_corpus(tmp_path))
    assert report.cases == 1
    assert (report.overall.right, report.overall.wrong, report.overall.missed) == (0, 1, 1)
    assert set(report.by_type) == {"number", "boolean"}
    ((case, verdict),) = report.wrong
    assert (case, verdict.name) == ("c/x", "open_saturday")
    assert (verdict.truth, verdict.read) == (True, False)
    out = report.as_dict()
    assert out["by_type"]["boolean"]["wrong_rate"] == 1.0
    assert out["wrong"] == [{"case": "c/x", "field": "open_saturday", "truth": True, "read": False}]


def test_the_offline_reader_never_gives_a_wrong_value_on_simulated_conversations() -> None:
    # 200 seeded conversations of the simulator's spec-driven dialogue (bench/simulated.py),
    # scored against what the simulated businesses stated.
    bench = _bench()
    from bench.simulated import simulated_cases

    report = bench.measure(OfflineExtractor(), simulated_cases(200, seed=1))
    wrong = [f"{case} {v.name}: truth {v.truth!r}, read {v.read!r}" for case, v in report.wrong]
    assert wrong == []
    assert report.overall.rates()["found"] >= 0.95
