"""Finding an attempt on Telnyx by our idempotency key: crash reconciliation
(``TelnyxProvider.find_attempt``) and the look-up before a create that may have reached Telnyx
is sent again.

The scheduled events of the assistants of the account are listed
(``GET /ai/assistants/{id}/scheduled_events``, narrowed with ``from_date`` when the caller
knows when the attempt could first have been created) and matched on
``conversation_metadata.mission_idempotency_key`` (or, for a create this process sent, on the
documented create fields). A listed event names its ``conversation_id``; an event that does not
has its conversation found by the call's ``telnyx_call_control_id``
(``GET /ai/conversations?metadata->call_control_id=eq.<id>``, a filter the SDK defines; the
SDK defines none on our own metadata keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mission_server.telephony.base import Placement
from mission_server.telephony.telnyx.client import TelnyxClient, seg
from mission_server.telephony.telnyx.mapping import (
    event_matches,
    iso,
    placement_from_event,
)

__all__ = ["SINCE_MARGIN", "AttemptFinder"]

#: ``from_date`` is sent this much before the earliest moment the attempt could exist, so a
#: clock a little off from Telnyx's never hides it.
SINCE_MARGIN = timedelta(hours=1)


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

    def conversation_for_call(self, call_control_id: str) -> dict[str, Any] | None:
        """The conversation of a call, by its ``telnyx_call_control_id``
        (``metadata->call_control_id=eq.<id>``, PostgREST style as the SDK defines it)."""
        body = self._client.request(
            "GET",
            "/ai/conversations",
            params={"metadata->call_control_id": f"eq.{call_control_id}", "limit": 1},
        )
        conversations = body.get("data") if isinstance(body, dict) else body
        for conversation in conversations or []:
            if isinstance(conversation, dict):
                return conversation
        return None

    def find(self, idempotency_key: str, since: datetime | None = None) -> Placement | None:
        """Find the attempt placed with this idempotency key (crash reconciliation), or None
        when Telnyx has no record of it; ``since`` (the earliest moment it could have been
        created) narrows the listing with ``from_date``.

        Raises:
            ProviderError: Telnyx refused a request or could not be reached.
        """
        for assistant in self._list_assistants():
            assistant_id = assistant.get("id")
            if not isinstance(assistant_id, str) or not assistant_id:
                continue
            found = self.in_assistant(assistant_id, idempotency_key, since=since)
            if found is not None:
                return found
        return None

    def in_assistant(
        self,
        assistant_id: str,
        idempotency_key: str,
        *,
        sent: Sequence[Mapping[str, Any]] = (),
        since: datetime | None = None,
    ) -> Placement | None:
        """The assistant's scheduled event for this key: matched on our key in its
        ``conversation_metadata`` or, when we know the bodies we sent (``sent``), on the
        reference's create fields (channel, both targets and the exact scheduled time), since
        the reference does not say that events echo ``conversation_metadata``."""
        path = f"/ai/assistants/{seg(assistant_id)}/scheduled_events"
        params = {"from_date": iso(since - SINCE_MARGIN)} if since is not None else None
        for event in self._client.paginate(path, params=params):
            if not event_matches(event, idempotency_key, sent):
                continue
            found = placement_from_event(event, assistant_id, self._clock(), None)
            if found is not None:
                return found
        return None
