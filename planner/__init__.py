"""The mission planner: a LangGraph graph that turns a mission spec into calls and a result.

It depends only on the ``MissionOps`` protocol it declares (``planner.ops``); the service
(``mission_server.services.ops``) implements it. It never imports the service or its storage.
"""

from planner.errors import LLMError, OperationFailed, PlannerError, SpecError
from planner.graph import MissionState, PlannerContext, build_graph, plan_steps
from planner.llm import LLM, OpenAICompatibleLLM, spec_from_request
from planner.ops import AttemptInfo, CallResult, MissionOps, PlanStepSpec
from planner.request import spec_from_request_text
from planner.spec import MissionSpec, load_spec, parse_spec

__all__ = [
    "LLM",
    "AttemptInfo",
    "CallResult",
    "LLMError",
    "MissionOps",
    "MissionSpec",
    "MissionState",
    "OpenAICompatibleLLM",
    "OperationFailed",
    "PlanStepSpec",
    "PlannerContext",
    "PlannerError",
    "SpecError",
    "build_graph",
    "load_spec",
    "parse_spec",
    "plan_steps",
    "spec_from_request",
    "spec_from_request_text",
]
