"""Finding an attempt on Telnyx by our idempotency key: crash reconciliation
(``TelnyxProvider.find_attempt``) and the look-up before a create that may have reached Telnyx
is sent again.

Search order: first ``GET /ai/conversations`` filtered by
``metadata->mission_idempotency_key=eq.<key>`` (the call was dispatched; its
``metadata.assistant_id`` narrows the search), then the scheduled events of the assistants of
the account, matched on ``conversation_metadata.mission_idempotency_key`` (or, for a create
this process sent, on the documented create fields).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from mission_server.telephony.base import Placement
from mission_server.telephony.telnyx.client import TelnyxClient, seg
from mission_server.telephony.telnyx.mapping import (
    METADATA_IDEMPOTENCY_KEY,
    event_matches,
    placement_from_event,
    str_or_none,
)

__all__ = ["AttemptFinder"]


class AttemptFinder:
    """Looks attempts up through ``client``; ``list_assistants`` lists the account's
    assistants (the provider's, which also remembers their TeXML applications)."""

    def __init__(
        self,
        client: TelnyxClient,
        clock: Callable[[], datetime],
        list_assistants: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._client = client
        self._clock = clock
        self._list_assistants = list_assistants

    def conversation_for_key(self, idempotency_key: str) -> dict[str, Any] | None:
        """The conversation whose metadata carries our idempotency key (PostgREST filter
        ``metadata->key=eq.value``, as in the reference's memory ``conversation_query``)."""
        body = self._client.request(
            "GET",
            "/ai/conversations",
            params={f"metadata->{METADATA_IDEMPOTENCY_KEY}": f"eq.{idempotency_key}", "limit": 1},
        )
        conversations = body.get("data") if isinstance(body, dict) else body
        for conversation in conversations or []:
            if isinstance(conversation, dict):
                return conversation
        return None

    def find(self, idempotency_key: str) -> Placement | None:
        """Find the attempt placed with this idempotency key (crash reconciliation), or None
        when Telnyx has no record of it. See the module docstring for the search order.

        Raises:
            ProviderError: Telnyx refused a request or could not be reached.
        """
        searched: set[str] = set()
        conversation = self.conversation_for_key(idempotency_key)
        if conversation is not None:
            metadata = conversation.get("metadata")
            assistant_id = metadata.get("assistant_id") if isinstance(metadata, dict) else None
            if isinstance(assistant_id, str) and assistant_id:
                found = self.in_assistant(
                    assistant_id,
                    idempotency_key,
                    conversation_id=str_or_none(conversation.get("id")),
                )
                if found is not None:
                    return found
                searched.add(assistant_id)
        for assistant in self._list_assistants():
            assistant_id = assistant.get("id")
            if not isinstance(assistant_id, str) or assistant_id in searched:
                continue
            found = self.in_assistant(assistant_id, idempotency_key)
            if found is not None:
                return found
        return None

    def in_assistant(
        self,
        assistant_id: str,
        idempotency_key: str,
        *,
        sent: Sequence[Mapping[str, Any]] = (),
        conversation_id: str | None = None,
    ) -> Placement | None:
        """The assistant's scheduled event for this key: matched on our key in its
        ``conversation_metadata`` or, when we know the bodies we sent (``sent``), on the
        reference's create fields (channel, both targets and the exact scheduled time), since
        the reference does not say that events echo ``conversation_metadata``."""
        path = f"/ai/assistants/{seg(assistant_id)}/scheduled_events"
        for event in self._client.paginate(path):
            if not event_matches(event, idempotency_key, sent):
                continue
            found = placement_from_event(event, assistant_id, self._clock(), conversation_id)
            if found is not None:
                return found
        return None
