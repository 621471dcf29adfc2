"""The LLM intake: the model's spec goes through the same validation as a written one."""

from __future__ import annotations

from typing import Any

import pytest

from planner.errors import LLMError
from planner.llm import spec_from_request

REQUEST = "Get prices from Acme Movers at +1 312 555 0101 for a 2-bedroom move, evenings only"


def answer(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Moving quotes",
        "objective": REQUEST,
        "strategy": "parallel",
        "assistant": {"name": "Caller", "instructions": "Ask for their price for the move."},
        "targets": [{"name": "Acme Movers", "phone": "+13125550101"}],
        "extract": [{"name": "total_price", "type": "number", "required": True}],
    }
    data.update(changes)
    return data


class ScriptedLLM:
    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def complete_json(self, *, system: str, user: str, schema: dict[str, Any], name: str) -> Any:
        self.prompts.append(user)
        return self.answers.pop(0)


def test_an_llm_window_outside_the_legal_hours_is_sent_back_with_the_error():
    llm = ScriptedLLM(
        answer(calling_window={"start": "21:30", "end": "23:00"}),
        answer(calling_window={"start": "18:00", "end": "21:00"}),
    )
    spec = spec_from_request(llm, REQUEST)
    assert spec.calling_window is not None and spec.calling_window.start == "18:00"
    assert "calling_window.start must be before 21:00" in llm.prompts[1]


def test_an_llm_that_keeps_answering_an_impossible_window_fails_naming_the_field():
    window = {"start": "05:00", "end": "07:00"}
    llm = ScriptedLLM(answer(calling_window=window), answer(calling_window=window))
    with pytest.raises(LLMError) as err:
        spec_from_request(llm, REQUEST)
    assert "calling_window.end must be after 08:00" in str(err.value)


def test_an_llm_answer_in_the_extract_mapping_form_is_accepted():
    llm = ScriptedLLM(answer(extract={"total_price": {"type": "number", "required": True}}))
    spec = spec_from_request(llm, REQUEST)
    assert [(f.name, f.type, f.required) for f in spec.extract] == [("total_price", "number", True)]
