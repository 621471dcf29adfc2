"""Conversation, insight, memory and webhook-delivery tools."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import Field

from mission_server.domain.targets import normalise_target
from mission_server.mcp.models import (
    ConversationDetail,
    ConversationInsights,
    PriorConversationList,
    WebhookDeliveryList,
)
from mission_server.mcp.paging import CursorArg, LimitArg
from mission_server.mcp.registrar import ToolRegistrar
from mission_server.mcp.views import (
    conversation_detail,
)
from mission_server.net.webhooks import WebhookSender
from mission_server.services import assistants as assistant_service
from mission_server.services import extraction
from mission_server.services import insights as insight_service
from mission_server.services import webhooks as webhook_delivery
from mission_server.services.context import Context
from mission_server.services.insight_schemas import (
    AssistantInsightSettingsOut,
    InsightGroupOut,
    InsightOut,
    WebhookDeliveryOut,
)

log = logging.getLogger(__name__)


def register(tools: ToolRegistrar, ctx: Context) -> None:
    def get_conversation(
        conversation_id: str,
    ) -> ConversationDetail:
        """Get a conversation (one answered call or SMS thread): who was called, when, the
        rendered greeting and instructions used, the transcript (messages) and its insight
        results."""
        return conversation_detail(ctx, conversation_id)

    def get_conversation_insights(
        conversation_id: str,
    ) -> ConversationInsights:
        """Get a conversation's insight results (e.g. the quoted price): one per insight of
        the assistant's group (or a free-text summary when it has none), each with status,
        result and, if failed, the reason."""
        return ConversationInsights(
            conversation_id=conversation_id,
            insights=extraction.get_conversation_insights(ctx.engine, conversation_id),
        )

    def create_insight(
        name: Annotated[str, Field(description="e.g. 'quote'.")],
        instructions: Annotated[str, Field(description="What to extract.")],
        parameters: Annotated[
            list[dict[str, Any]] | None,
            Field(
                description="Fields, e.g. [{'name': 'price_per_person', 'type': 'number', "
                "'required': true}]. Types: string, enum (with 'enum': "
                "[...]), number, integer, boolean, array, array(string), array(number), "
                "array(boolean), object. Omitted: free text."
            ),
        ] = None,
    ) -> InsightOut:
        """Define an insight: a question answered from every conversation of the assistants
        whose insight group contains it. Next: create_insight_group."""
        return insight_service.create_insight(
            ctx.engine,
            name=name,
            instructions=instructions,
            parameters=parameters,
            now=ctx.now(),
        )

    def create_insight_group(
        name: Annotated[str, Field(description="e.g. 'Catering quote insights'.")],
        insight_ids: list[str],
        webhook_url: Annotated[
            str | None,
            Field(description="HTTPS URL that receives the results of every conversation."),
        ] = None,
    ) -> InsightGroupOut:
        """Group insights so they can be attached to an assistant (assign_insight_group or
        create_assistant's insight_group_id)."""
        return insight_service.create_insight_group(
            ctx.engine,
            name=name,
            insight_ids=insight_ids,
            webhook_url=webhook_url,
            now=ctx.now(),
        )

    def assign_insight_group(
        assistant_id: str,
        insight_group_id: Annotated[str | None, Field(description="null removes the group.")],
        webhook_url: Annotated[
            str | None,
            Field(description="Overrides the group's webhook URL for this assistant."),
        ] = None,
    ) -> AssistantInsightSettingsOut:
        """Attach an insight group to an assistant (replacing any previous one): its insights
        are extracted from every later conversation of that assistant."""
        settings = insight_service.assign_insight_group(
            ctx.engine,
            assistant_id,
            insight_group_id,
            webhook_url=webhook_url,
            now=ctx.now(),
        )
        # The provider's assistant names the group too (on Telnyx, its copy of it).
        assistant_service.push_assistant(ctx, assistant_id)
        return settings

    def list_prior_conversations(
        target: Annotated[
            str,
            Field(
                description="The end user's number in any common form ('+13125550101', "
                "'312-555-0101'; no '+': US/Canada) or SIP URI."
            ),
        ],
        metadata: Annotated[
            dict[str, Any] | None,
            Field(
                description="Only conversations whose metadata (schedule_call's "
                "conversation_metadata) has all these key/values."
            ),
        ] = None,
        limit: Annotated[int | None, Field(strict=True, description="1..100, default 5.")] = None,
        cursor: CursorArg = None,
    ) -> PriorConversationList:
        """Memory: the earlier conversations with this end user, newest first, each with its
        insight results (e.g. the price quoted last time). Use before calling someone again:
        put what matters into the assistant's instructions or dynamic_variables.

        An empty list means no earlier conversation; pass next_cursor back as cursor for
        older ones.
        """
        matched = normalise_target(target, field="target")
        page = extraction.list_prior_conversations(
            ctx.engine, end_user_target=matched, metadata=metadata, limit=limit, cursor=cursor
        )
        return PriorConversationList(
            target=matched, conversations=page, next_cursor=page.next_cursor
        )

    def list_webhook_deliveries(
        conversation_id: Annotated[
            str | None, Field(description="Only this conversation's deliveries.")
        ] = None,
        status: Annotated[
            Literal["failed", "delivered"] | None,
            Field(
                description="'failed': no attempt got a 2xx (gave up after retries, refused, or "
                "MISSION_WEBHOOK_SECRET not set)."
            ),
        ] = None,
        limit: LimitArg = None,
        cursor: CursorArg = None,
    ) -> WebhookDeliveryList:
        """List insight-webhook deliveries (the signed POSTs of insight results to a
        webhook_url), newest first, each with every attempt. Use it to check that results
        arrived, or with status='failed' to find what to re-send with redeliver_webhook. URLs
        have credentials and query values masked.

        Pass next_cursor back as cursor (new deliveries: read page one again).
        """
        page = webhook_delivery.list_deliveries(
            ctx.engine, conversation_id, status=status, limit=limit, cursor=cursor
        )
        return WebhookDeliveryList(deliveries=page, next_cursor=page.next_cursor)

    def redeliver_webhook(
        delivery_id: Annotated[
            str,
            Field(
                description="A delivery_id from list_webhook_deliveries (a conversation_id "
                "also works)."
            ),
        ],
    ) -> WebhookDeliveryOut:
        """Send a conversation's insights webhook again: a new signed delivery of its current
        insight results to the webhook URL configured now (fix the endpoint or URL first),
        with the usual retries. delivered=false means it failed again (attempts[].error says
        why). Refused, with nothing sent, if the id is unknown, no webhook is configured, or
        MISSION_WEBHOOK_SECRET is not set.
        """
        return webhook_delivery.redeliver(
            ctx.engine,
            delivery_id,
            now=ctx.now(),
            sender=WebhookSender.from_settings(ctx.settings),
        )

    tools.add(get_conversation, title="Get conversation", read_only=True)
    tools.add(get_conversation_insights, title="Get conversation insights", read_only=True)
    tools.add(create_insight, title="Create insight")
    tools.add(create_insight_group, title="Create insight group")
    tools.add(assign_insight_group, title="Assign insight group", destructive=True, idempotent=True)
    tools.add(list_prior_conversations, title="List prior conversations", read_only=True)
    tools.add(list_webhook_deliveries, title="List webhook deliveries", read_only=True)
    # Open world: it POSTs to an outside endpoint. Not idempotent: each call is a new delivery.
    tools.add(redeliver_webhook, title="Redeliver webhook", open_world=True)
