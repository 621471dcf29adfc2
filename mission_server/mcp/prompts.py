"""The MCP prompts: step-by-step walkthroughs that turn a request into tool calls.

They are plain text so any client can show them; the tool names are this server's.
"""

from __future__ import annotations

import re

from mcp.server.mcpserver import MCPServer

_WORKFLOW = """\
Work through these steps with the agent-missions tools. Record as you go: the run's plan and
events are the audit trail a person will read later.

1. `server_status` — note `provider` (simulated = rehearsal, telnyx = REAL calls), the
   `server_time` (all `scheduled_at` values are in this time) and `dispatcher_running`.
2. `create_mission` (name, instructions = the request in full), then `start_run`
   (input = the request's parameters as data).
3. `create_plan` with one step per action, e.g. `create-assistant`, one `call-<business>`
   step per call, `compare-and-recommend`. If the user wants to approve before any call is
   placed, show them the plan now and stop until they say yes.
4. Insights: `create_insight` for each value you need from a call (structured parameters,
   e.g. `price_per_person` number, `includes_dessert` boolean), `create_insight_group` with
   their ids.
5. `create_assistant` with `run_id` and `insight_group_id`. Write the instructions with
   placeholders: `{{business_name}}` per call, and a leverage section that only appears once
   you know a price: `{{#best_quote}}Another caterer quoted {{best_quote}}; ask whether they
   can beat it.{{/best_quote}}`. Then `assign_phone_number` (no number given = a free one).
6. For each call: `update_plan_step` → in_progress, `schedule_call` (assistant_id, to,
   dynamic_variables={"business_name": …}, run_id, step_id, a retry budget such as
   max_retries_client_errors=2 with retry_interval_secs=300, and an idempotency_key
   `<run_id>:<step_id>:<attempt>`: the same key again returns the same call, so raise the
   attempt number to call a business again). Leave `scheduled_at` out unless the user
   named a time: the call is then placed as soon as the business's calling hours allow.
7. `wait_for_call` (repeat while `timed_out` is true). Read `call_status`, `transcript` and
   `insights`; if `calling_hours_note` is set, tell the user the call was moved and why.
   Mark the step completed (or failed, with the reason in metadata).
8. `log_event` (type custom) with what you learned, then `set_run_variables` with the
   interim values later calls need (e.g. `best_quote`). Every later call receives them.
9. When all steps are done: `update_run` with status `succeeded`, a markdown
   `result_summary` (a table of findings and a recommendation) and a `result_payload`
   (per-target figures, conversation_ids, the recommendation). If the mission cannot be
   completed, `update_run` with status `failed` and `error`.

Never call a number the user did not give you or that `schedule_call` refuses (do-not-call
list, calling hours); never invent a figure a transcript does not contain.
"""


def plan_mission_prompt(request: str) -> str:
    """The ``plan_mission`` prompt for a plain-words request."""
    request = request.strip() or "(no request given: ask the user what they need)"
    return f"Plan and run this phone mission:\n\n> {request}\n\n{_WORKFLOW}"


def _split_targets(targets: str) -> list[str]:
    return [t.strip() for t in re.split(r"[\n;]+|,(?![^()]*\))", targets) if t.strip()]


def negotiate_quotes_prompt(service: str, targets: str) -> str:
    """The ``negotiate_quotes`` prompt: a baseline call, then leverage calls."""
    service = service.strip() or "the service"
    names = _split_targets(targets)
    if names:
        listed = "\n".join(f"   {i}. {name}" for i, name in enumerate(names, 1))
        baseline, rest = names[0], names[1:]
    else:
        listed = "   (no targets given: ask the user for the businesses and their numbers)"
        baseline, rest = "the first business", []
    leverage = ", then ".join(rest) if rest else "each remaining business"
    return f"""\
Negotiate quotes for {service} with these businesses, in this order:
{listed}

Strategy (sequential leverage):
- Call {baseline} first for a baseline quote, with no leverage.
- After each call, compare what you have and `set_run_variables` with `best_quote` (e.g.
  "$65 per person from {baseline}") and `best_quote_business`.
- Then call {leverage}; each call's assistant sees the best quote so far and asks whether
  they can beat it. Calls are made one at a time, so every call knows the latest best quote.
- Finish with a comparison table and a recommendation in `result_summary`, and the figures in
  `result_payload` (per business: initial quote, final quote, negotiated yes/no,
  conversation_id; plus `recommendation`).

Insights to create before the first call (one insight group): the quoted price (number,
per person or total as the user needs), what is included, and whether they lowered their
price when told about the competing quote (boolean).

{_WORKFLOW}"""


def register_prompts(server: MCPServer) -> None:
    @server.prompt(
        name="plan_mission",
        title="Plan a mission",
        description="Walks you through planning and running a phone mission with these tools, "
        "from a request in plain words.",
    )
    def plan_mission(request: str) -> str:
        return plan_mission_prompt(request)

    @server.prompt(
        name="negotiate_quotes",
        title="Negotiate quotes",
        description="Baseline call first, then leverage calls armed with the best quote so "
        "far; ends with a recommendation.",
    )
    def negotiate_quotes(service: str, targets: str) -> str:
        return negotiate_quotes_prompt(service, targets)
