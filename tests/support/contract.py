"""The MCP contract clients see: every tool, resource template, resource and prompt, in one
list that the in-process server tests and the ``mission serve`` contract test both check."""

from __future__ import annotations

TOOLS = {
    # status
    "server_status",
    # missions and runs
    "create_mission",
    "list_missions",
    "get_mission",
    "start_run",
    "get_run",
    "list_runs",
    "update_run",
    "cancel_run",
    "pause_run",
    "resume_run",
    "set_run_variables",
    "get_run_variables",
    # plans and events
    "create_plan",
    "add_plan_step",
    "update_plan_step",
    "log_event",
    "list_events",
    # assistants and numbers
    "create_assistant",
    "update_assistant",
    "list_assistants",
    "list_phone_numbers",
    "assign_phone_number",
    "release_phone_number",
    # calls
    "schedule_call",
    "schedule_sms",
    "get_scheduled_call",
    "list_scheduled_calls",
    "cancel_scheduled_call",
    "wait_for_call",
    "wait_for_run",
    # conversations, insights, memory, webhooks
    "get_conversation",
    "get_conversation_insights",
    "create_insight",
    "create_insight_group",
    "assign_insight_group",
    "list_prior_conversations",
    "list_webhook_deliveries",
    "redeliver_webhook",
    # do-not-call list
    "add_do_not_call",
    "remove_do_not_call",
    "list_do_not_call",
    # the planner
    "run_mission",
    "approve_run",
}

RESOURCE_TEMPLATES = {
    "mission://missions{?cursor,limit}",
    "mission://missions/{mission_id}",
    "mission://runs/{run_id}",
    "mission://runs/{run_id}/plan",
    "mission://runs/{run_id}/events{?cursor,limit}",
    "mission://runs/{run_id}/calls{?cursor,limit}",
    "mission://runs/{run_id}/result",
    "mission://conversations/{conversation_id}",
}
RESOURCES = {"mission://missions"}
PROMPTS = {"plan_mission": {"request"}, "negotiate_quotes": {"service", "targets"}}
