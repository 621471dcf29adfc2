"""The labelled transcript corpus: every label fits its schema, and broken labels fail loudly
naming the file, the case, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from mission_server.insights.corpus import CorpusError, load_corpus, load_file

CORPUS = Path(__file__).resolve().parents[2] / "data" / "transcripts"


def test_the_corpus_loads_and_covers_every_type_and_several_domains() -> None:
    cases = load_corpus(CORPUS)
    assert len(cases) >= 70
    types = {p.type for case in cases for p in case.definition.parameters}
    assert {"string", "enum", "number", "integer", "boolean", "array(string)"} <= types
    assert len({case.domain for case in cases} - {"catering"}) >= 6
    assert len({case.name for case in cases}) == len(cases)


def test_the_heldout_set_loads() -> None:
    assert len(load_corpus(CORPUS / "heldout")) >= 25


def _write(tmp_path: Path, truth: str, extra: str = "") -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "transcripts:\n"
        "  - name: one\n"
        "    extract:\n"
        "      - {name: price, type: number}\n"
        "      - {name: style, type: enum, enum: [buffet, plated]}\n"
        "      - {name: items, type: array(string)}\n"
        f"{extra}"
        "    turns:\n"
        "      - assistant: What's the price?\n"
        "      - user: $62 per person.\n"
        f"    truth: {truth}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("truth", "problem"),
    [
        ("{price: sixty}", "price: 'sixty' is not a number"),
        ("{style: family}", "style: 'family' is not one of the enum values"),
        ("{cost: 62}", "cost: is not a parameter"),
        ("{items: [1, 2]}", "items: item 0 (1) does not fit array(string)"),
        ("{price: true}", "price: True is not a number"),
        ("{price: null}", "price: is null"),
    ],
)
def test_a_label_that_does_not_fit_fails_naming_file_case_and_field(
    tmp_path: Path, truth: str, problem: str
) -> None:
    path = _write(tmp_path, truth)
    with pytest.raises(CorpusError) as caught:
        load_file(path)
    message = str(caught.value)
    assert str(path) in message and "one" in message
    assert problem in message


def test_a_bad_schema_or_turn_fails_too(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "transcripts:\n  - name: x\n    extract: [{name: p, type: money}]\n"
        "    turns: [{user: hi}]\n",
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match=r"bad\.yaml: x: extract\[0\]\.type"):
        load_file(path)
    path.write_text(
        "transcripts:\n  - name: x\n    extract: [{name: p, type: number}]\n"
        "    turns: [{caller: hi}]\n",
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match=r"turns\[0\]: role 'caller'"):
        load_file(path)


def test_a_good_label_loads_with_its_transcript(tmp_path: Path) -> None:
    (case,) = load_file(_write(tmp_path, "{price: 62, style: plated, items: [a]}"))
    assert case.name == "bad/one"
    assert case.truth == {"price": 62, "style": "plated", "items": ["a"]}
    assert [m.role for m in case.transcript] == ["assistant", "user"]
