"""Conversations: a call's transcript as the provider recorded it."""

from __future__ import annotations

from sqlmodel import col, select

from mission_server.services.context import Context
from mission_server.services.schemas import ConversationOut
from state import models as m
from state.db import session_scope
from state.repo import get_or_raise


def get_conversation(ctx: Context, conversation_id: str) -> ConversationOut:
    """A conversation with its transcript, in message order.

    Raises:
        NotFound: unknown conversation.
    """
    with session_scope(ctx.engine) as session:
        row = get_or_raise(session, m.Conversation, conversation_id, "conversation")
        messages = session.exec(
            select(m.Message)
            .where(m.Message.conversation_id == conversation_id)
            .order_by(col(m.Message.seq))
        ).all()
        return ConversationOut.of(row, list(messages))
