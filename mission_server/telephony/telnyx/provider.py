"""``TelnyxProvider``: the ``Provider`` protocol over the real Telnyx v2 API (sync httpx).

Endpoints and why
-----------------
* Assistants: ``POST /ai/assistants`` (create) and ``POST /ai/assistants/{id}`` (update) with
  ``instructions``, ``greeting``, ``model``, ``voice_settings.voice``, ``dynamic_variables``
  (defaults), ``insight_settings.insight_group_id`` and ``enabled_features: ["telephony"]``.
  Telnyx creates a TeXML application for every assistant
  (``telephony_settings.default_texml_app_id``); that is the assistant's voice connection.
* Numbers: ``GET /phone_numbers`` (``page[number]``/``page[size]``, ``meta.total_pages``);
  ``hd_voice`` is the number's ``hd_voice_enabled`` where the API reports it. Assigning a number
  is ``PATCH /phone_numbers/{id}`` with ``connection_id`` = the assistant's TeXML application
  (or the ``connection_id`` given to the constructor).
* Calls and SMS: ``POST /ai/assistants/{id}/scheduled_events`` (``telnyx_conversation_channel``
  ``phone_call`` or ``sms_chat``), chosen over ``/texml/ai_calls`` because it (a) carries
  ``conversation_metadata`` ("attached to the resulting conversation"), in which we store our
  idempotency key, so ``find_attempt`` can find an attempt after a crash, and (b) reports the
  terminal ``call_status`` and ``call_attempts`` (``call_duration``,
  ``telnyx_call_control_id``) on one row that can be polled. We also send an
  ``Idempotency-Key`` header, but ``09_scheduled-events.md`` does not document one, so the
  client does not rely on it: a create that may have reached Telnyx (read timeout, 5xx) is
  looked up among the assistant's scheduled events before it is ever sent again. Telnyx-side
  retries (``max_retries_client_errors``) are never set: every dispatch is one attempt, and
  the mission dispatcher owns the retry budget so that calling hours and guardrails apply to
  each retry. Telnyx renders the assistant's templated instructions and greeting itself from
  ``dynamic_variables``; ``CallRequest.instructions``/``greeting`` are therefore not sent.
  Telnyx substitutes plain ``{{name}}`` only (``03_dynamic-variables.md``), so each mustache
  section (``{{#best_quote}}…{{/best_quote}}``) is sent in the assistant as one placeholder
  (``{{mission_section_1_best_quote}}``) whose value every call carries, rendered here from
  the call's variables; and the reserved ``telnyx_*`` names, which Telnyx fills itself, are
  never sent as dynamic variables.
* Outcome: ``GET /ai/assistants/{id}/scheduled_events/{event_id}``; when the event names no
  ``conversation_id``, the conversation is found by the call's control id
  (``GET /ai/conversations?metadata->call_control_id=eq.<id>``, a filter the SDK defines).
  Because a ``Placement`` only has one string to remember the call by,
  ``Placement.call_control_id`` holds the handle
  ``scheduled_event/<assistant_id>/<scheduled_event_id>`` until the outcome reports the real
  ``telnyx_call_control_id``.
* Cancelling (``cancel_call``): ``DELETE /ai/assistants/{id}/scheduled_events/{event_id}``
  while the event is pending; one Telnyx already dispatched is left to its outcome.
* Reconciliation (``find_attempt``): the scheduled events of the assistants of the account
  (``from_date`` narrows them when the caller says since when the attempt can exist), matched
  on ``conversation_metadata.mission_idempotency_key`` (or, for a create this process sent, on
  the documented create fields).
* Transcripts and insights: ``GET /ai/conversations/{id}/messages`` and
  ``GET /ai/conversations/{id}/conversations-insights`` (no paging: the SDK defines none).
* Insight templates and groups (``InsightPlatform``): ``/ai/conversations/insights`` (list,
  create with an ``Idempotency-Key``, ``PUT`` to update, ``DELETE``) and
  ``/ai/conversations/insight-groups`` (list, get, create, ``PUT``, and
  ``/{group_id}/insights/{insight_id}/assign`` / ``unassign``). Our insights are created
  there so that Telnyx computes them; ``services.insight_sync`` keeps the two in step.

HTTP behaviour lives in ``telephony.telnyx.client`` (over the shared retrying transport,
``mission_server.net.retry``) and the translation of Telnyx's JSON in
``telephony.telnyx.mapping``. Creating an assistant carries an ``Idempotency-Key`` (our
assistant id; the SDK defines the header) but is still retried only when Telnyx certainly did
not act on it (429, connection failures). The API key is held as
a ``SecretStr`` and is scrubbed from every message we build, so it never reaches a log record,
an exception or a repr.

Size: about 540 lines with this docstring, which states each endpoint choice; the HTTP is
``telnyx.client``, the JSON mapping ``telnyx.mapping``, the look-up by key ``telnyx.lookup``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from mission_server.domain.calling_hours import MAX_LEAD
from mission_server.errors import ConfigurationError, ProviderError, ValidationError
from mission_server.net.retry import Attempt, RetryPolicy
from mission_server.telephony.base import (
    AssistantSpec,
    CallOutcome,
    CallRequest,
    InsightTemplateSpec,
    NumberInfo,
    Placement,
    RemoteInsightGroup,
    TranscriptMessage,
)
from mission_server.telephony.telnyx.client import DEFAULT_BASE_URL, SENT_MAYBE, TelnyxClient, seg
from mission_server.telephony.telnyx.lookup import AttemptFinder
from mission_server.telephony.telnyx.mapping import (
    assistant_body,
    ceil_second,
    event_handle,
    idempotency_header,
    insight_group_from,
    insight_template_body,
    iso,
    outcome_from_event,
    parse_event_handle,
    scheduled_event_body,
    str_or_none,
    transcript_from_messages,
    unwrap,
)

__all__ = ["DEFAULT_MODEL", "TelnyxProvider"]

logger = logging.getLogger(__name__)

#: Used when an ``AssistantSpec`` names no model (Telnyx requires one); a native model, so no
#: third-party LLM key is needed.
DEFAULT_MODEL = "moonshotai/Kimi-K2.5"

_PHONE_PAGE_SIZE = 250
_USABLE_NUMBER_STATUSES = frozenset({"active"})
# Idempotency keys whose create may have reached Telnyx, remembered per process (bounded).
_MAX_UNCERTAIN_KEYS = 10_000
#: How many placed keys a provider remembers, so placing one again returns its placement.
_MAX_REMEMBERED_KEYS = 10_000
#: ``scheduled_at_fixed_datetime`` is sent in whole seconds, rounded up.
_ROUNDING = timedelta(seconds=1)


class TelnyxProvider:
    """The real Telnyx API behind the ``Provider`` protocol. See the module docstring for the
    endpoints used and why.

    Every public method raises ``ProviderError`` when Telnyx refuses or fails a request (its
    ``code``/``detail`` carry Telnyx's error code and text; ``retryable`` says whether trying
    later may help) and ``ConfigurationError`` when the base URL is unusable.
    """

    name: str = "telnyx"

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        connection_id: str | None = None,
        default_model: str = DEFAULT_MODEL,
        enabled_features: Sequence[str] = ("telephony",),
        schedule_lead: timedelta = timedelta(seconds=15),
        messaging_profile_id: str | None = None,
    ) -> None:
        """Build a client. ``max_retries`` counts retries on top of the first attempt;
        ``max_retry_after`` is the longest ``Retry-After`` we wait for before giving up with a
        retryable error; ``connection_id`` overrides the connection numbers are routed to;
        ``schedule_lead`` is how far ahead of now a scheduled event is set (Telnyx requires a
        future time), at most ``calling_hours.MAX_LEAD`` less a second; the ``schedule_lead``
        attribute adds the second of rounding up (``Provider.schedule_lead``).

        Raises:
            ConfigurationError: the API key is empty.
            ValidationError: a numeric setting is out of range (names the field and value).
        """
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key or "")
        if not secret.get_secret_value().strip():
            raise ConfigurationError(
                "TELNYX_API_KEY is empty: set it to an API v2 key from the Telnyx portal"
            )
        if max_retries < 0:
            raise ValidationError("max_retries", "must be >= 0", max_retries)
        if backoff_base < 0:
            raise ValidationError("backoff_base", "must be >= 0", backoff_base)
        if backoff_max < backoff_base:
            raise ValidationError("backoff_max", "must be >= backoff_base", backoff_max)
        if max_retry_after < 0:
            raise ValidationError("max_retry_after", "must be >= 0", max_retry_after)
        if isinstance(timeout, int | float) and timeout <= 0:
            raise ValidationError("timeout", "must be > 0 seconds", timeout)
        if schedule_lead < timedelta(0):
            raise ValidationError("schedule_lead", "must not be negative", schedule_lead)
        if schedule_lead > MAX_LEAD - _ROUNDING:
            raise ValidationError(
                "schedule_lead", f"must be at most {MAX_LEAD - _ROUNDING}", schedule_lead
            )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._connection_id = connection_id
        self._default_model = default_model
        self._messaging_profile_id = (messaging_profile_id or "").strip() or None
        features = list(enabled_features)
        if self._messaging_profile_id and "messaging" not in features:
            # Any assistant may be asked to send an SMS once SMS can be sent at all.
            features.append("messaging")
        self._enabled_features = features
        # Numbers and assistants already set up for SMS by this process.
        self._sms_numbers: set[str] = set()
        self._sms_assistants: set[str] = set()
        self._schedule_lead = schedule_lead
        #: How long after a request's ``placed_at`` the call is dialled, at most: the lead,
        #: and the rounding up to a whole second (``Provider.schedule_lead``).
        self.schedule_lead = schedule_lead + _ROUNDING
        # assistant id -> its TeXML application id, filled as we see assistants.
        self._texml_apps: dict[str, str] = {}
        # idempotency key -> the bodies of its creates that may have reached Telnyx unanswered.
        self._uncertain_keys: dict[str, list[dict[str, Any]]] = {}
        self._placed: dict[str, Placement] = {}
        self._client = TelnyxClient(
            secret,
            base_url=base_url,
            timeout=timeout,
            policy=RetryPolicy(
                max_attempts=max_retries + 1,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                max_retry_after=max_retry_after,
                jitter=True,
            ),
            transport=transport,
            sleep=sleep,
            clock=self._clock,
            rng=rng,
        )
        self._finder = AttemptFinder(self._client, self._clock, self._list_assistants)

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> TelnyxProvider:
        """Build a provider from ``mission_server.settings.Settings`` (``telnyx_api_key``,
        ``telnyx_base_url``); ``kwargs`` go to the constructor.

        Raises:
            ConfigurationError: ``TELNYX_API_KEY`` is not set or empty.
        """
        key = getattr(settings, "telnyx_api_key", None)
        if (
            key is None
            or not (key.get_secret_value() if isinstance(key, SecretStr) else str(key)).strip()
        ):
            raise ConfigurationError(
                "TELNYX_API_KEY is not set: export an API v2 key from the Telnyx portal "
                "to use the telnyx provider"
            )
        kwargs.setdefault("base_url", getattr(settings, "telnyx_base_url", DEFAULT_BASE_URL))
        kwargs.setdefault(
            "messaging_profile_id", getattr(settings, "telnyx_messaging_profile_id", None)
        )
        return cls(key if isinstance(key, SecretStr) else SecretStr(str(key)), **kwargs)

    def __repr__(self) -> str:
        return f"TelnyxProvider(base_url={self._client.base_url!r})"

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._client.close()

    def __enter__(self) -> TelnyxProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ assistants

    def create_assistant(self, spec: AssistantSpec) -> str:
        """Create a Telnyx AI assistant with telephony enabled; return its id.

        Raises:
            ProviderError: Telnyx refused the request or could not be reached; a 5xx or read
                timeout is not retried (the assistant may exist) and is ``retryable=True``.
        """
        headers = (
            {"Idempotency-Key": idempotency_header(f"assistant:{spec.idempotency_key}")}
            if spec.idempotency_key
            else None
        )
        # Still not re-sent after a 5xx or timeout: whether Telnyx keeps the key across
        # those is not documented, and a second assistant would be a second TeXML app.
        body = self._client.request(
            "POST",
            "/ai/assistants",
            json=self._assistant_body(spec),
            headers=headers,
            idempotent=False,
        )
        assistant = unwrap(body)
        assistant_id = assistant.get("id")
        if not isinstance(assistant_id, str) or not assistant_id:
            raise ProviderError(
                "Telnyx created an assistant but its response has no 'id'", status_code=200
            )
        self._remember_texml_app(assistant)
        return assistant_id

    def update_assistant(self, assistant_ref: str, spec: AssistantSpec) -> None:
        """Replace the assistant's configuration (``POST /ai/assistants/{id}``).

        Raises:
            ProviderError: Telnyx refused the update (404 when the assistant does not exist).
        """
        body = self._client.request(
            "POST",
            f"/ai/assistants/{seg(assistant_ref)}",
            json=self._assistant_body(spec),
            idempotent=True,  # a full replacement: sending it twice has the effect of once
        )
        if isinstance(body, dict):
            self._remember_texml_app(unwrap(body))

    def _assistant_body(self, spec: AssistantSpec) -> dict[str, Any]:
        return assistant_body(
            spec,
            default_model=self._default_model,
            enabled_features=self._enabled_features,
            messaging_profile_id=self._messaging_profile_id,
        )

    def _remember_texml_app(self, assistant: Mapping[str, Any]) -> None:
        assistant_id = assistant.get("id")
        telephony = assistant.get("telephony_settings")
        if isinstance(assistant_id, str) and isinstance(telephony, dict):
            app_id = telephony.get("default_texml_app_id")
            if isinstance(app_id, str) and app_id:
                self._texml_apps[assistant_id] = app_id

    def _list_assistants(self) -> list[dict[str, Any]]:
        body = self._client.request("GET", "/ai/assistants")
        items = body.get("data") if isinstance(body, dict) else body
        assistants = [a for a in items or [] if isinstance(a, dict)]
        for assistant in assistants:
            self._remember_texml_app(assistant)
        return assistants

    def _texml_app_for(self, assistant_ref: str) -> str:
        if assistant_ref not in self._texml_apps:
            body = self._client.request("GET", f"/ai/assistants/{seg(assistant_ref)}")
            if isinstance(body, dict):
                self._remember_texml_app(unwrap(body))
        app_id = self._texml_apps.get(assistant_ref)
        if not app_id:
            raise ProviderError(
                f"Telnyx assistant {assistant_ref} has no telephony_settings.default_texml_app_id:"
                " enable telephony on the assistant or pass connection_id to TelnyxProvider"
            )
        return app_id

    # ------------------------------------------------------------------ numbers

    def list_phone_numbers(self) -> list[NumberInfo]:
        """Every active number of the account (numbers still being purchased or ported cannot
        place calls and are left out), with the assistant each one is routed to, if any.

        Raises:
            ProviderError: Telnyx refused a page or could not be reached.
        """
        numbers: list[NumberInfo] = []
        app_to_assistant: dict[str, str] | None = None
        for item in self._client.paginate("/phone_numbers", page_size=_PHONE_PAGE_SIZE):
            status = item.get("status")
            if status is not None and status not in _USABLE_NUMBER_STATUSES:
                continue
            phone_number, number_id = item.get("phone_number"), item.get("id")
            if not isinstance(phone_number, str) or number_id is None:
                continue
            connection = item.get("connection_id")
            assistant_ref: str | None = None
            if isinstance(connection, str) and connection:
                if app_to_assistant is None:
                    self._list_assistants()
                    app_to_assistant = {app: aid for aid, app in self._texml_apps.items()}
                assistant_ref = app_to_assistant.get(connection)
            numbers.append(
                NumberInfo(
                    phone_number=phone_number,
                    number_id=str(number_id),
                    hd_voice=item.get("hd_voice_enabled") is True,
                    assistant_ref=assistant_ref,
                )
            )
        return numbers

    def assign_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        """Route the number to the assistant's TeXML application (its voice connection).

        Raises:
            ProviderError: the assistant has no TeXML application, or Telnyx refused the update.
        """
        connection = self._connection_id or self._texml_app_for(assistant_ref)
        self._client.request(
            "PATCH",
            f"/phone_numbers/{seg(number.number_id)}",
            json={"connection_id": connection},
            idempotent=True,  # sets one field to one value
        )

    def release_phone_number(self, number: NumberInfo, assistant_ref: str) -> None:
        """Unassign the number from its connection: the same update as
        ``assign_phone_number`` (``PATCH /phone_numbers/{id}``), with an empty
        ``connection_id`` (the SDK types it ``str``; a number without a connection is not
        routed to any assistant, as ``list_phone_numbers`` reads it).

        Raises:
            ProviderError: Telnyx refused the update or could not be reached.
        """
        self._client.request(
            "PATCH",
            f"/phone_numbers/{seg(number.number_id)}",
            json={"connection_id": ""},
            idempotent=True,  # sets one field to one value
        )

    def prepare_sms(self, assistant_ref: str, number: NumberInfo) -> None:
        """Set the number's messaging profile (``PATCH /phone_numbers/{id}/messaging``,
        ``TELNYX_MESSAGING_PROFILE_ID``) and make sure the assistant has ``messaging`` among
        its ``enabled_features`` (an assistant created before the profile was configured is
        updated); each at most once per process.

        Raises:
            ConfigurationError: no messaging profile is configured (the message says what to
                set).
            ProviderError: Telnyx refused or failed.
        """
        profile = self._messaging_profile_id
        if not profile:
            raise ConfigurationError(
                "an SMS on Telnyx is sent with a messaging profile, and none is set: set "
                "TELNYX_MESSAGING_PROFILE_ID to the id of a messaging profile of the account "
                "(Telnyx Portal -> Messaging -> Programmable Messaging) and schedule the SMS again"
            )
        if number.number_id not in self._sms_numbers:
            self._client.request(
                "PATCH",
                f"/phone_numbers/{seg(number.number_id)}/messaging",
                json={"messaging_profile_id": profile},
                idempotent=True,  # sets one field to one value
            )
            self._sms_numbers.add(number.number_id)
        if assistant_ref not in self._sms_assistants:
            path = f"/ai/assistants/{seg(assistant_ref)}"
            assistant = unwrap(self._client.request("GET", path))
            features = assistant.get("enabled_features")
            current = (
                [f for f in features if isinstance(f, str)] if isinstance(features, list) else []
            )
            if "messaging" not in current:
                self._client.request(
                    "POST",
                    path,
                    json={
                        "enabled_features": [*current, "messaging"],
                        "messaging_settings": {"default_messaging_profile_id": profile},
                    },
                    idempotent=True,
                )
            self._sms_assistants.add(assistant_ref)

    # ------------------------------------------------------------------ calls

    def place_call(self, request: CallRequest) -> Placement:
        """Create a scheduled event for one attempt, a few seconds ahead (``schedule_lead``,
        rounded up to a whole second like the reference's ``2026-05-08T15:00:00Z``).

        Idempotent on ``request.idempotency_key``. The scheduled-events reference
        (``09_scheduled-events.md``) documents no idempotency mechanism, so the
        ``Idempotency-Key`` header we send may be ignored; we therefore never re-send a create
        that may have reached Telnyx (read timeout, 408, 5xx) without first looking the attempt
        up among the assistant's scheduled events (the transport's ``before_resend``), and a key
        whose create ended that way (or with 409) is looked up again before the next
        ``place_call`` with it. If Telnyx reports the key was already used for a different
        body, the existing attempt is looked up and returned. A key this instance placed
        returns its placement again (the last 10,000 keys); across processes, the dispatcher
        keeps the rule durably: a row whose create may have been sent (``maybe_sent``, or a
        lease that lapsed unreleased) is looked up with ``find_attempt`` before it is placed.

        Raises:
            ValidationError: an SMS request has no text.
            ProviderError: Telnyx refused the event or could not be reached.
        """
        if request.channel == "sms_chat" and not request.text:
            raise ValidationError("text", "is required when channel is sms_chat", request.text)
        key = request.idempotency_key
        placed = self._placed.get(key)
        if placed is not None:
            return placed
        try:
            placement = self._place(request)
        except ProviderError as exc:
            # Whatever failed, a create that may have reached Telnyx is flagged, so the caller
            # keeps that durably and looks the key up (find_attempt) before sending it again,
            # in this process or any other.
            if key in self._uncertain_keys:
                exc.maybe_sent = True
            raise
        self._placed[key] = placement
        _forget_oldest(self._placed, _MAX_REMEMBERED_KEYS)
        return placement

    def _place(self, request: CallRequest) -> Placement:
        # Dialled at the request's time plus the lead, never later: that is the moment whose
        # calling hours the dispatcher checked (``schedule_lead``). A request that has gone
        # stale meanwhile is refused, retryably, rather than dialled late.
        scheduled_at = ceil_second(request.placed_at + self._schedule_lead)
        body = scheduled_event_body(request, scheduled_at)
        path = f"/ai/assistants/{seg(request.assistant_ref)}/scheduled_events"
        key = request.idempotency_key
        if key in self._uncertain_keys:
            found = self._finder.in_assistant(
                request.assistant_ref, key, sent=self._uncertain_keys[key]
            )
            if found is not None:
                self._uncertain_keys.pop(key, None)
                return found
        now = self._clock()
        if scheduled_at <= now:
            raise ProviderError(
                f"the call was to be dialled at {iso(scheduled_at)}, which has passed (now "
                f"{iso(now)}); it is placed again once calling hours are checked anew",
                retryable=True,
            )
        found_before_resend: list[Placement] = []

        def remember(attempt: Attempt) -> None:
            if attempt.maybe_sent:
                self._remember_uncertain(key, body)

        def look_before_resend(_attempt: Attempt) -> bool:
            # The create may have reached Telnyx: look before sending it again.
            sent = self._uncertain_keys.get(key, [body])
            found = self._finder.in_assistant(request.assistant_ref, key, sent=sent)
            if found is not None:
                found_before_resend.append(found)
            return found is None

        # Not idempotent: the transport re-sends only what certainly did not reach Telnyx
        # (429, connection not established) and asks look_before_resend about the rest.
        exchange = self._client.send(
            "POST",
            path,
            json=body,
            headers={"Idempotency-Key": idempotency_header(key)},
            idempotent=False,
            before_resend=look_before_resend,
            on_attempt=remember,
        )
        if found_before_resend:
            self._uncertain_keys.pop(key, None)
            return found_before_resend[0]
        try:
            response = self._client.result(exchange, f"POST {path}")
        except ProviderError as exc:
            if exc.status_code == 422 and "idempoten" in str(exc).lower():
                found = self.find_attempt(key)
                if found is not None:
                    self._uncertain_keys.pop(key, None)
                    return found
            status = exchange.last.status_code
            # Unanswered, a server error or a conflict (or an answer we cannot read): the
            # event may exist, so it is looked up before this key is sent again.
            if not (
                exchange.last.maybe_sent
                or (status is not None and (status < 400 or status == 409 or status >= 500))
            ):
                raise
            self._remember_uncertain(key, body)
            tries = len(exchange.attempts)
            raise ProviderError(
                f"Telnyx POST {path} failed after {tries} attempt{'s' if tries != 1 else ''} "
                f"(last: {f'HTTP {status}' if status else 'no response'}); the event "
                f"{SENT_MAYBE}, so it is looked up before it is sent again",
                status_code=exc.status_code,
                code=exc.code,
                detail=exc.detail,
                retryable=True,
            ) from None
        self._uncertain_keys.pop(key, None)
        event = unwrap(response)
        event_id = event.get("scheduled_event_id")
        if not isinstance(event_id, str) or not event_id:
            raise ProviderError(
                "Telnyx accepted the scheduled event but its response has no 'scheduled_event_id'",
                status_code=201,
            )
        return Placement(
            call_control_id=event_handle(request.assistant_ref, event_id),
            placed_at=scheduled_at,  # when Telnyx dials: what the records hold
            conversation_id=str_or_none(event.get("conversation_id")),
        )

    def _remember_uncertain(self, key: str, body: dict[str, Any]) -> None:
        bodies = self._uncertain_keys.setdefault(key, [])
        if body not in bodies:
            bodies.append(body)
        _forget_oldest(self._uncertain_keys, _MAX_UNCERTAIN_KEYS)

    def get_outcome(self, placement: Placement, now: datetime) -> CallOutcome | None:
        """Poll the attempt's scheduled event; the terminal outcome, or None while pending,
        ringing or in progress.

        Raises:
            ValidationError: ``placement.call_control_id`` is not a handle this provider made.
            ProviderError: Telnyx refused the request or could not be reached.
        """
        assistant_id, event_id = parse_event_handle(placement.call_control_id)
        body = self._client.request(
            "GET", f"/ai/assistants/{seg(assistant_id)}/scheduled_events/{seg(event_id)}"
        )
        event = unwrap(body)
        outcome = outcome_from_event(event, now)
        if outcome is None or outcome.conversation_id or placement.conversation_id:
            return outcome
        # The event names no conversation yet: find it by the call's control id, which
        # Telnyx puts in the conversation's metadata.
        call_control_id = outcome.call_control_id
        if not call_control_id:
            return outcome
        try:
            conversation = self._finder.conversation_for_call(call_control_id)
        except ProviderError as exc:
            if exc.retryable:
                raise
            logger.warning(
                "Telnyx conversation lookup for scheduled event %s failed (%s); "
                "the outcome is recorded without a conversation",
                event_id,
                exc,
            )
            return outcome
        conversation_id = str_or_none(conversation.get("id")) if conversation else None
        return replace(outcome, conversation_id=conversation_id) if conversation_id else outcome

    def cancel_call(self, placement: Placement) -> bool:
        """Delete the attempt's scheduled event before Telnyx dispatches it
        (``DELETE /ai/assistants/{id}/scheduled_events/{event_id}``): True when deleted.
        Telnyx refuses to delete an event it has dispatched; the event is then read, and an
        event no longer ``pending`` answers False (its outcome is reconciled by polling, not
        assumed). A handle that is not a scheduled event (the call's control id, known once
        it was answered) was dispatched: False.

        Raises:
            ProviderError: Telnyx could not be reached, or refused to delete an event that
                is still pending (retryable: the caller asks again).
        """
        try:
            assistant_id, event_id = parse_event_handle(placement.call_control_id)
        except ValidationError:
            return False
        path = f"/ai/assistants/{seg(assistant_id)}/scheduled_events/{seg(event_id)}"
        try:
            self._client.request("DELETE", path, idempotent=True)
        except ProviderError as exc:
            status = exc.status_code
            if status is None or status >= 500 or status in (408, 425, 429):
                raise  # not answered: asked again
            if status == 404:
                return False  # gone: dispatched and done, or never there; polling tells
            event = unwrap(self._client.request("GET", path))
            if event.get("status") in (None, "pending"):
                raise ProviderError(
                    f"Telnyx refused to cancel scheduled event {event_id}, which is still "
                    f"pending: {exc}",
                    status_code=exc.status_code,
                    code=exc.code,
                    detail=exc.detail,
                    retryable=True,
                ) from None
            return False
        return True

    def find_attempt(self, idempotency_key: str, since: datetime | None = None) -> Placement | None:
        """Find the attempt placed with this idempotency key (crash reconciliation), or None
        when Telnyx has no record of it; ``since`` narrows the search (``from_date``). See the
        module docstring for the search order.

        Raises:
            ProviderError: Telnyx refused a request or could not be reached.
        """
        return self._finder.find(idempotency_key, since)

    # ------------------------------------------------------------------ conversations

    def get_messages(self, conversation_id: str) -> list[TranscriptMessage]:
        """The spoken/text transcript in order (by ``sent_at``, else ``created_at``). Tool
        messages and empty assistant turns that only carried tool calls are left out.

        Raises:
            ProviderError: Telnyx refused the request (404 for an unknown conversation).
        """
        path = f"/ai/conversations/{seg(conversation_id)}/messages"
        return transcript_from_messages(self._client.paginate(path))

    def get_conversation_insights(self, conversation_id: str) -> list[dict[str, Any]]:
        """Telnyx's insight results for a conversation, as returned: one dict per insight run
        with ``id``, ``status`` (pending, in_progress, completed, failed), ``created_at`` and
        ``conversation_insights`` (``[{"insight_id", "result"}]``; a structured insight's
        ``result`` is a JSON string).

        Raises:
            ProviderError: Telnyx refused the request or could not be reached.
        """
        # The SDK defines no paging here: one request, whose ``data`` is every record.
        path = f"/ai/conversations/{seg(conversation_id)}/conversations-insights"
        body = self._client.request("GET", path)
        items = body.get("data") if isinstance(body, dict) else body
        return [item for item in items or [] if isinstance(item, dict)]

    # ------------------------------------------------------------------ insight templates

    def find_insight_template(self, name: str) -> str | None:
        """The id of the insight template named exactly ``name``, if any.

        Raises:
            ProviderError: Telnyx refused a page or could not be reached.
        """
        for template in self._client.paginate("/ai/conversations/insights"):
            if template.get("name") == name and isinstance(template.get("id"), str):
                return str(template["id"])
        return None

    def create_insight_template(self, spec: InsightTemplateSpec) -> str:
        """Create an insight template (``POST /ai/conversations/insights``); its id.

        Raises:
            ProviderError: Telnyx refused it or could not be reached (a 5xx or timeout is
                not re-sent: the template may exist, and is looked up by name next time).
        """
        body = self._client.request(
            "POST",
            "/ai/conversations/insights",
            json=insight_template_body(spec),
            headers={"Idempotency-Key": idempotency_header(f"insight:{spec.name}")},
            idempotent=False,
        )
        return self._created_id(body, "insight template")

    def update_insight_template(self, ref: str, spec: InsightTemplateSpec) -> None:
        """Replace a template (``PUT /ai/conversations/insights/{id}``).

        Raises:
            ProviderError: Telnyx refused it (404 when it no longer exists).
        """
        self._client.request(
            "PUT",
            f"/ai/conversations/insights/{seg(ref)}",
            json=insight_template_body(spec),
            idempotent=True,
        )

    def delete_insight_template(self, ref: str) -> None:
        """Delete a template; one that is already gone (404) is not an error.

        Raises:
            ProviderError: Telnyx refused it or could not be reached.
        """
        try:
            self._client.request(
                "DELETE", f"/ai/conversations/insights/{seg(ref)}", idempotent=True
            )
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    def find_insight_group(self, name: str) -> RemoteInsightGroup | None:
        """The insight group named exactly ``name``, with its insights, if any.

        Raises:
            ProviderError: Telnyx refused a page or could not be reached.
        """
        for group in self._client.paginate("/ai/conversations/insight-groups"):
            if group.get("name") == name:
                found = insight_group_from(group)
                if found is not None:
                    return found
        return None

    def get_insight_group(self, ref: str) -> RemoteInsightGroup | None:
        """The insight group with this id, or None when Telnyx no longer has it.

        Raises:
            ProviderError: Telnyx refused it or could not be reached.
        """
        try:
            body = self._client.request("GET", f"/ai/conversations/insight-groups/{seg(ref)}")
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        return insight_group_from(unwrap(body))

    def create_insight_group(self, name: str, webhook: str | None) -> str:
        """Create an insight group (``POST /ai/conversations/insight-groups``); its id.

        Raises:
            ProviderError: as ``create_insight_template``.
        """
        body: dict[str, Any] = {"name": name}
        if webhook:
            body["webhook"] = webhook
        answer = self._client.request(
            "POST",
            "/ai/conversations/insight-groups",
            json=body,
            headers={"Idempotency-Key": idempotency_header(f"insight-group:{name}")},
            idempotent=False,
        )
        return self._created_id(answer, "insight group")

    def update_insight_group(self, ref: str, name: str, webhook: str | None) -> None:
        """Replace a group's name and webhook (``PUT``).

        Raises:
            ProviderError: Telnyx refused it or could not be reached.
        """
        body: dict[str, Any] = {"name": name}
        if webhook:
            body["webhook"] = webhook
        self._client.request(
            "PUT", f"/ai/conversations/insight-groups/{seg(ref)}", json=body, idempotent=True
        )

    def assign_insight(self, group_ref: str, insight_ref: str) -> None:
        """Add a template to a group (``POST .../insights/{id}/assign``; the same twice has
        the effect of once).

        Raises:
            ProviderError: Telnyx refused it or could not be reached.
        """
        path = (
            f"/ai/conversations/insight-groups/{seg(group_ref)}/insights/{seg(insight_ref)}/assign"
        )
        self._client.request("POST", path, idempotent=True)

    def unassign_insight(self, group_ref: str, insight_ref: str) -> None:
        """Remove a template from a group (``DELETE .../unassign``); 404 is not an error.

        Raises:
            ProviderError: Telnyx refused it or could not be reached.
        """
        path = (
            f"/ai/conversations/insight-groups/{seg(group_ref)}/insights/"
            f"{seg(insight_ref)}/unassign"
        )
        try:
            self._client.request("DELETE", path, idempotent=True)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    @staticmethod
    def _created_id(body: Any, what: str) -> str:
        created = unwrap(body)
        ref = created.get("id")
        if not isinstance(ref, str) or not ref:
            raise ProviderError(f"Telnyx created an {what} but its response has no 'id'")
        return ref


def _forget_oldest(remembered: dict[str, Any], most: int) -> None:
    """Drop the oldest entries of ``remembered`` (insertion order) beyond ``most``."""
    while len(remembered) > most:
        remembered.pop(next(iter(remembered)))
