"""2. The natural-language intake with the configured LLM: the planner graph's intake asks the
model (over real HTTP) for a mission spec and either plans it (a valid spec, run held for
approval) or fails the run cleanly, naming why. The wiring is asserted, not the quality."""

from __future__ import annotations

from mission_server.engine.runner import MissionRunner, llm_from_settings
from mission_server.net.openai import OpenAICompatibleLLM
from mission_server.services import missions
from mission_server.services.context import Context
from mission_server.settings import Settings

REQUEST = (
    "Call Lakefront Catering +13125550101 and Chicago Grill Co +13125550102 and ask each for "
    "their price per person for a lunch for 50 people."
)


def test_a_request_becomes_a_plan_or_a_clean_refusal(ctx: Context, llm_settings: Settings) -> None:
    ctx.settings = llm_settings
    llm = llm_from_settings(llm_settings)
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.base_url == llm_settings.llm_base_url
    runner = MissionRunner(ctx, mode="inline")
    try:
        assert runner.llm is not None
        run_id = runner.start(request=REQUEST, require_approval=True)
        runner.drain()
        run = missions.get_run(ctx, run_id)
        print(f"\n  run {run.status}: {run.error or ''}")
        if run.status == "failed":
            assert "could not turn the request into a mission spec" in (run.error or "")
        else:
            assert runner.waiting_for(run_id) == "approval"
            print(f"  planned: {[step.description for step in run.plan]}")
            assert run.plan, "a valid spec is planned"
    finally:
        runner.close()
