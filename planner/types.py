"""Vocabulary the planner shares with the service (which imports it from here: the planner
imports nothing of ours, so what both speak is defined on this side)."""

from __future__ import annotations

from datetime import time
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

#: The legal calling hours, in the recipient's local time (``end`` exclusive): every calling
#: window is intersected with them. The service enforces them
#: (``mission_server.domain.calling_hours`` imports these two); the spec refuses a window that
#: cannot meet them.
CALLING_HOURS_START = time(8, 0)
CALLING_HOURS_END = time(21, 0)
