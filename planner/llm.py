"""The optional language model: turns a natural-language request into a mission spec.

``LLM`` is the seam (injected through the graph's runtime context). The planner holds no
client of its own: the service hands it one (``mission_server.net.openai.OpenAICompatibleLLM``,
built by ``mission_server.engine.runner.llm_from_settings``). The model's answer is validated
against the spec schema and the service's rules; an invalid answer is sent back once with the
error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from planner.errors import LLMError, SpecError
from planner.spec import MissionSpec, parse_spec, spec_json_schema

__all__ = ["LLM", "spec_from_request"]

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """\
You plan phone-call missions for an agent mission orchestrator. Turn the user's request into a
mission spec: JSON matching the given schema exactly, with no other text.

- targets: every business or person to call, with its phone number exactly as given (never
  invent a number; if the request names no numbers, return an empty targets list).
- strategy: "sequential_leverage" when quotes should be negotiated one after another using the
  best quote so far; "parallel" to survey every target at once.
- assistant.instructions: what the voice assistant says and asks, in the second person
  ("You are calling {{target_name}} ..."), using imperative sentences ("Ask for ...").
  For sequential_leverage add a section that only renders once a best quote exists:
  "{{#best_quote}}We already have a quote of ${{best_quote}} per person from {{best_company}};
  ask whether they can beat it.{{/best_quote}}".
- extract: the structured fields to read from every conversation (snake_case names; types
  string, enum, number, integer, boolean, array, array(string), array(number), array(boolean),
  object). For quotes use a number field for the first price (name starting with initial_) and
  one for the final agreed price (name starting with final_).
- leverage (required for sequential_leverage): field = the final price field, initial_field =
  the first price field, better = "lower" for prices, variable "best_quote", name_variable
  "best_company", quantity = the number of guests/units when stated.
- retry: {"max_retries_client_errors": 2, "retry_interval_secs": 300} unless the request says
  otherwise.
- calling_window: only when the request asks for one; calls are only ever placed between
  08:00 and 21:00 in the recipient's local time, so a window entirely outside those hours is
  invalid.
"""


@runtime_checkable
class LLM(Protocol):
    """A chat model that answers with JSON matching a schema."""

    def complete_json(self, *, system: str, user: str, schema: dict[str, Any], name: str) -> Any:
        """The model's answer, parsed from JSON.

        Raises:
            LLMError: the model could not be reached or did not answer with JSON.
        """
        ...


def spec_from_request(
    llm: LLM,
    request: str,
    check: Callable[[MissionSpec], MissionSpec] | None = None,
    *,
    attempts: int = 2,
) -> MissionSpec:
    """Ask the model for a spec, validate it (structure, then ``check`` — the service's
    rules); an invalid answer goes back to the model once with the error.

    Raises:
        LLMError: the model failed, or its answers stayed invalid (the last error is named).
    """
    schema = spec_json_schema()
    prompt = request.strip()
    problem: SpecError | None = None
    for _ in range(max(1, attempts)):
        data = llm.complete_json(system=SYSTEM_PROMPT, user=prompt, schema=schema, name="spec")
        try:
            spec = parse_spec(data)
            return check(spec) if check is not None else spec
        except SpecError as exc:
            problem = exc
            log.info("LLM spec rejected: %s", exc)
            prompt = (
                f"{request.strip()}\n\nYour previous answer was invalid: {exc}. "
                "Answer again with a corrected spec."
            )
    raise LLMError(f"the LLM's spec was invalid: {problem}")
