"""Vocabulary the planner shares with the service (which imports it from here: the planner
imports nothing of ours, so what both speak is defined on this side)."""

from __future__ import annotations

from typing import Literal, get_args

#: The insight parameter types of the reference (``20_structured-insights.md``), shared by the
#: stored insight definitions, the extractors and the mission spec's ``extract`` list.
InsightParameterType = Literal[
    "string",
    "enum",
    "number",
    "integer",
    "boolean",
    "array",
    "array(string)",
    "array(number)",
    "array(boolean)",
    "object",
]
INSIGHT_PARAMETER_TYPES: tuple[str, ...] = get_args(InsightParameterType)
