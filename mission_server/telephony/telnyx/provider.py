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
  ``conversation_id`` (the reference does not list one), the conversation is found by our key
  in its metadata (``GET /ai/conversations?metadata->mission_idempotency_key=eq.<key>``).
  Because a ``Placement`` only has one string to remember the call by,
  ``Placement.call_control_id`` holds the handle
  ``scheduled_event/<assistant_id>/<scheduled_event_id>`` until the outcome reports the real
  ``telnyx_call_control_id``.
* Reconciliation (``find_attempt``): first ``GET /ai/conversations`` filtered by
  ``metadata->mission_idempotency_key=eq.<key>`` (the call was dispatched; its
  ``metadata.assistant_id`` narrows the search), then the scheduled events of the assistants of
  the account, matched on ``conversation_metadata.mission_idempotency_key`` (or, for a create
  this process sent, on the documented create fields).
* Transcripts and insights: ``GET /ai/conversations/{id}/messages`` and
  ``GET /ai/conversations/{id}/conversations-insights``.

HTTP behaviour: bearer ``TELNYX_API_KEY``; timeouts on every request; bounded retries with
jittered exponential backoff on 429, 5xx and transport errors, honouring ``Retry-After``
(seconds or HTTP date). Creating an assistant has no idempotency key, so it is retried only when
Telnyx certainly did not act on it (429, connection failures). The API key is held as a
``SecretStr`` and is scrubbed from every message we build, so it never reaches a log record,
an exception or a repr.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, cast
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from mission_server.domain.templating import (
    RESERVED_PREFIX,
    SECTION_VARIABLE_PREFIX,
    flatten_sections,
    render,
)
from mission_server.errors import ConfigurationError, ProviderError, ValidationError
from mission_server.telephony.base import (
    CALL_STATUSES,
    AssistantSpec,
    CallOutcome,
    CallRequest,
    CallStatus,
    NumberInfo,
    Placement,
    TranscriptMessage,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "METADATA_IDEMPOTENCY_KEY",
    "TelnyxProvider",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telnyx.com/v2"
#: Used when an ``AssistantSpec`` names no model (Telnyx requires one); a native model, so no
#: third-party LLM key is needed.
DEFAULT_MODEL = "moonshotai/Kimi-K2.5"
#: ``conversation_metadata`` keys we add to every scheduled event.
METADATA_IDEMPOTENCY_KEY = "mission_idempotency_key"
METADATA_SCHEDULED_EVENT_ID = "mission_scheduled_event_id"
METADATA_ATTEMPT_NUMBER = "mission_attempt_number"
# Placeholder prefixes of flattened template sections (see the module docstring).
INSTRUCTIONS_SECTIONS = SECTION_VARIABLE_PREFIX
GREETING_SECTIONS = "mission_greeting_section_"

_HANDLE_PREFIX = "scheduled_event"
_PAGE_SIZE = 100
_PHONE_PAGE_SIZE = 250
# A guard against a server that keeps reporting more pages; far above any real account.
_MAX_PAGES = 1000
_IDEMPOTENCY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_USABLE_NUMBER_STATUSES = frozenset({"active"})
# Idempotency keys whose create may have reached Telnyx, remembered per process (bounded).
_MAX_UNCERTAIN_KEYS = 10_000

_SENT_MAYBE = "may have reached Telnyx"


class _BearerAuth(httpx.Auth):
    """Adds the bearer header per request, so the key lives in one ``SecretStr`` and not in the
    client's default headers."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(api_key=SecretStr('**********'))"


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
    ) -> None:
        """Build a client. ``max_retries`` counts retries on top of the first attempt;
        ``max_retry_after`` is the longest ``Retry-After`` we wait for before giving up with a
        retryable error; ``connection_id`` overrides the connection numbers are routed to;
        ``schedule_lead`` is how far ahead of now a scheduled event is set (Telnyx requires a
        future time).

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
        self._api_key = secret
        self._base_url = base_url.rstrip("/")
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._connection_id = connection_id
        self._default_model = default_model
        self._enabled_features = list(enabled_features)
        self._schedule_lead = schedule_lead
        # assistant id -> its TeXML application id, filled as we see assistants.
        self._texml_apps: dict[str, str] = {}
        # idempotency key -> the bodies of its creates that may have reached Telnyx unanswered.
        self._uncertain_keys: dict[str, list[dict[str, Any]]] = {}
        self._client = httpx.Client(
            base_url=self._base_url,
            auth=_BearerAuth(secret),
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json"},
        )

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
        return cls(key if isinstance(key, SecretStr) else SecretStr(str(key)), **kwargs)

    def __repr__(self) -> str:
        return f"TelnyxProvider(base_url={self._base_url!r})"

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
        body = self._request(
            "POST", "/ai/assistants", json=self._assistant_body(spec), idempotent=False
        )
        assistant = _unwrap(body)
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
        body = self._request(
            "POST", f"/ai/assistants/{_seg(assistant_ref)}", json=self._assistant_body(spec)
        )
        if isinstance(body, dict):
            self._remember_texml_app(_unwrap(body))

    def _assistant_body(self, spec: AssistantSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": spec.name,
            "instructions": flatten_sections(spec.instructions, INSTRUCTIONS_SECTIONS)[0],
            "model": spec.model or self._default_model,
            "enabled_features": list(self._enabled_features),
            # Strings, as everywhere in the reference (03_dynamic-variables.md lists "Sending
            # numbers instead of strings" among the formatting mistakes).
            "dynamic_variables": {k: str(v) for k, v in spec.dynamic_variables.items()},
        }
        if spec.greeting is not None:
            body["greeting"] = flatten_sections(spec.greeting, GREETING_SECTIONS)[0]
        if spec.voice:
            body["voice_settings"] = {"voice": spec.voice}
        if spec.insight_group_ref:
            body["insight_settings"] = {"insight_group_id": spec.insight_group_ref}
        return body

    def _remember_texml_app(self, assistant: Mapping[str, Any]) -> None:
        assistant_id = assistant.get("id")
        telephony = assistant.get("telephony_settings")
        if isinstance(assistant_id, str) and isinstance(telephony, dict):
            app_id = telephony.get("default_texml_app_id")
            if isinstance(app_id, str) and app_id:
                self._texml_apps[assistant_id] = app_id

    def _list_assistants(self) -> list[dict[str, Any]]:
        body = self._request("GET", "/ai/assistants")
        items = body.get("data") if isinstance(body, dict) else body
        assistants = [a for a in items or [] if isinstance(a, dict)]
        for assistant in assistants:
            self._remember_texml_app(assistant)
        return assistants

    def _texml_app_for(self, assistant_ref: str) -> str:
        if assistant_ref not in self._texml_apps:
            body = self._request("GET", f"/ai/assistants/{_seg(assistant_ref)}")
            if isinstance(body, dict):
                self._remember_texml_app(_unwrap(body))
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
        for item in self._paginate("/phone_numbers", page_size=_PHONE_PAGE_SIZE):
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
        self._request(
            "PATCH",
            f"/phone_numbers/{_seg(number.number_id)}",
            json={"connection_id": connection},
        )

    # ------------------------------------------------------------------ calls

    def place_call(self, request: CallRequest) -> Placement:
        """Create a scheduled event for one attempt, a few seconds ahead (``schedule_lead``,
        rounded up to a whole second like the reference's ``2026-05-08T15:00:00Z``).

        Idempotent on ``request.idempotency_key``. The scheduled-events reference
        (``09_scheduled-events.md``) documents no idempotency mechanism, so the
        ``Idempotency-Key`` header we send may be ignored; we therefore never re-send a create
        that may have reached Telnyx (read timeout, 5xx, 408/409) without first looking the
        attempt up among the assistant's scheduled events, and a key whose create ended that way
        is looked up again before the next ``place_call`` with it. If Telnyx reports the key
        was already used for a different body, the existing attempt is looked up and returned.

        Raises:
            ValidationError: an SMS request has no text.
            ProviderError: Telnyx refused the event or could not be reached.
        """
        if request.channel == "sms_chat" and not request.text:
            raise ValidationError("text", "is required when channel is sms_chat", request.text)
        scheduled_at = _ceil_second(max(request.placed_at, self._clock()) + self._schedule_lead)
        metadata: dict[str, str | int | bool] = {
            k: v if isinstance(v, str | int | bool) else str(v)
            for k, v in request.conversation_metadata.items()
        }
        metadata[METADATA_IDEMPOTENCY_KEY] = request.idempotency_key
        metadata[METADATA_SCHEDULED_EVENT_ID] = request.scheduled_event_id
        metadata[METADATA_ATTEMPT_NUMBER] = request.attempt_number
        body: dict[str, Any] = {
            "telnyx_conversation_channel": request.channel,
            "telnyx_end_user_target": request.to,
            "telnyx_agent_target": request.from_number,
            "scheduled_at_fixed_datetime": _iso(scheduled_at),
            "conversation_metadata": metadata,
            "dynamic_variables": _call_variables(request),
        }
        if request.channel == "sms_chat":
            body["text"] = request.text
        path = f"/ai/assistants/{_seg(request.assistant_ref)}/scheduled_events"
        key = request.idempotency_key
        attempts = self._max_retries + 1
        for attempt in range(1, attempts + 1):
            if key in self._uncertain_keys:
                found = self._find_in_assistant(
                    request.assistant_ref, key, sent=self._uncertain_keys[key]
                )
                if found is not None:
                    self._uncertain_keys.pop(key, None)
                    return found
            try:
                # Not idempotent for _request: it retries only what certainly did not reach
                # Telnyx (429, connection not established); the rest is handled here.
                response = self._request(
                    "POST",
                    path,
                    json=body,
                    headers={"Idempotency-Key": idempotency_header(key)},
                    idempotent=False,
                )
            except ProviderError as exc:
                if exc.status_code == 422 and "idempoten" in str(exc).lower():
                    found = self.find_attempt(key)
                    if found is not None:
                        self._uncertain_keys.pop(key, None)
                        return found
                if not exc.retryable or exc.status_code == 429:
                    raise
                # The create may have reached Telnyx: look before sending it again.
                self._remember_uncertain(key, body)
                answer = f"HTTP {exc.status_code}" if exc.status_code else "no response"
                if attempt >= attempts:
                    raise ProviderError(
                        f"Telnyx POST {path} failed after {attempts} "
                        f"attempt{'s' if attempts != 1 else ''} (last: {answer}); the event "
                        f"{_SENT_MAYBE}, so it is looked up before it is sent again",
                        status_code=exc.status_code,
                        code=exc.code,
                        detail=exc.detail,
                        retryable=True,
                    ) from None
                delay = self._backoff(attempt)
                logger.warning(
                    "Telnyx POST %s: the create %s (%s); looking it up before retry %d of %d "
                    "in %.2fs",
                    path,
                    _SENT_MAYBE,
                    answer,
                    attempt,
                    attempts - 1,
                    delay,
                )
                self._sleep(delay)
                continue
            self._uncertain_keys.pop(key, None)
            break
        event = _unwrap(response)
        event_id = event.get("scheduled_event_id")
        if not isinstance(event_id, str) or not event_id:
            raise ProviderError(
                "Telnyx accepted the scheduled event but its response has no 'scheduled_event_id'",
                status_code=201,
            )
        return Placement(
            call_control_id=_handle(request.assistant_ref, event_id),
            placed_at=request.placed_at,
            conversation_id=_str_or_none(event.get("conversation_id")),
        )

    def _remember_uncertain(self, key: str, body: dict[str, Any]) -> None:
        bodies = self._uncertain_keys.setdefault(key, [])
        if body not in bodies:
            bodies.append(body)
        while len(self._uncertain_keys) > _MAX_UNCERTAIN_KEYS:
            self._uncertain_keys.pop(next(iter(self._uncertain_keys)))

    def get_outcome(self, placement: Placement, now: datetime) -> CallOutcome | None:
        """Poll the attempt's scheduled event; the terminal outcome, or None while pending,
        ringing or in progress.

        Raises:
            ValidationError: ``placement.call_control_id`` is not a handle this provider made.
            ProviderError: Telnyx refused the request or could not be reached.
        """
        assistant_id, event_id = _parse_handle(placement.call_control_id)
        body = self._request(
            "GET", f"/ai/assistants/{_seg(assistant_id)}/scheduled_events/{_seg(event_id)}"
        )
        event = _unwrap(body)
        outcome = _outcome_from_event(event, now)
        if outcome is None or outcome.conversation_id or placement.conversation_id:
            return outcome
        # The reference documents no conversation id on a scheduled event, only that
        # ``conversation_metadata`` is "attached to the resulting conversation"
        # (09_scheduled-events.md), so find the conversation by our key in its metadata.
        metadata = event.get("conversation_metadata")
        key = metadata.get(METADATA_IDEMPOTENCY_KEY) if isinstance(metadata, dict) else None
        if not isinstance(key, str) or not key:
            return outcome
        try:
            conversation = self._conversation_for_key(key)
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
        conversation_id = _str_or_none(conversation.get("id")) if conversation else None
        return replace(outcome, conversation_id=conversation_id) if conversation_id else outcome

    def _conversation_for_key(self, idempotency_key: str) -> dict[str, Any] | None:
        """The conversation whose metadata carries our idempotency key (PostgREST filter
        ``metadata->key=eq.value``, as in the reference's memory ``conversation_query``)."""
        body = self._request(
            "GET",
            "/ai/conversations",
            params={f"metadata->{METADATA_IDEMPOTENCY_KEY}": f"eq.{idempotency_key}", "limit": 1},
        )
        conversations = body.get("data") if isinstance(body, dict) else body
        for conversation in conversations or []:
            if isinstance(conversation, dict):
                return conversation
        return None

    def find_attempt(self, idempotency_key: str) -> Placement | None:
        """Find the attempt placed with this idempotency key (crash reconciliation), or None
        when Telnyx has no record of it. See the module docstring for the search order.

        Raises:
            ProviderError: Telnyx refused a request or could not be reached.
        """
        searched: set[str] = set()
        conversation = self._conversation_for_key(idempotency_key)
        if conversation is not None:
            metadata = conversation.get("metadata")
            assistant_id = metadata.get("assistant_id") if isinstance(metadata, dict) else None
            if isinstance(assistant_id, str) and assistant_id:
                found = self._find_in_assistant(
                    assistant_id,
                    idempotency_key,
                    conversation_id=_str_or_none(conversation.get("id")),
                )
                if found is not None:
                    return found
                searched.add(assistant_id)
        for assistant in self._list_assistants():
            assistant_id = assistant.get("id")
            if not isinstance(assistant_id, str) or assistant_id in searched:
                continue
            found = self._find_in_assistant(assistant_id, idempotency_key)
            if found is not None:
                return found
        return None

    def _find_in_assistant(
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
        path = f"/ai/assistants/{_seg(assistant_id)}/scheduled_events"
        for event in self._paginate(path):
            if not _event_matches(event, idempotency_key, sent):
                continue
            event_id = event.get("scheduled_event_id")
            if not isinstance(event_id, str) or not event_id:
                continue
            placed_at = (
                _parse_time(event.get("created_at"))
                or _parse_time(event.get("dispatched_at"))
                or _parse_time(event.get("scheduled_at_fixed_datetime"))
                or self._clock()
            )
            outcome = _outcome_from_event(event, self._clock())
            found_conversation = _str_or_none(event.get("conversation_id")) or conversation_id
            if outcome is not None and outcome.conversation_id is None and found_conversation:
                outcome = replace(outcome, conversation_id=found_conversation)
            return Placement(
                call_control_id=_handle(assistant_id, event_id),
                placed_at=placed_at,
                conversation_id=found_conversation,
                outcome=outcome,
            )
        return None

    # ------------------------------------------------------------------ conversations

    def get_messages(self, conversation_id: str) -> list[TranscriptMessage]:
        """The spoken/text transcript in order (by ``sent_at``, else ``created_at``). Tool
        messages and empty assistant turns that only carried tool calls are left out.

        Raises:
            ProviderError: Telnyx refused the request (404 for an unknown conversation).
        """
        path = f"/ai/conversations/{_seg(conversation_id)}/messages"
        collected: list[tuple[datetime, int, TranscriptMessage]] = []
        last_time = datetime(1970, 1, 1, tzinfo=UTC)
        for index, item in enumerate(self._paginate(path)):
            role = item.get("role")
            text = item.get("text")
            if role not in ("assistant", "user", "system") or not isinstance(text, str):
                continue
            if not text.strip():
                continue
            sent_at = _parse_time(item.get("sent_at")) or _parse_time(item.get("created_at"))
            # A message without any time keeps its place after the one before it.
            sent_at = sent_at or last_time
            last_time = sent_at
            message = TranscriptMessage(role=_role(role), text=text, sent_at=sent_at)
            collected.append((sent_at, index, message))
        collected.sort(key=lambda entry: (entry[0], entry[1]))
        return [message for _, _, message in collected]

    def get_conversation_insights(self, conversation_id: str) -> list[dict[str, Any]]:
        """Telnyx's insight results for a conversation, as returned: one dict per insight run
        with ``id``, ``status`` (pending, in_progress, completed, failed), ``created_at`` and
        ``conversation_insights`` (``[{"insight_id", "result"}]``; a structured insight's
        ``result`` is a JSON string).

        Raises:
            ProviderError: Telnyx refused the request or could not be reached.
        """
        path = f"/ai/conversations/{_seg(conversation_id)}/conversations-insights"
        return list(self._paginate(path))

    # ------------------------------------------------------------------ HTTP core

    def _paginate(
        self, path: str, *, params: Mapping[str, Any] | None = None, page_size: int = _PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        for page in range(1, _MAX_PAGES + 1):
            query = {**(params or {}), "page[number]": page, "page[size]": page_size}
            body = self._request("GET", path, params=query)
            items = body.get("data") if isinstance(body, dict) else body
            items = [item for item in items or [] if isinstance(item, dict)]
            yield from items
            meta = body.get("meta") if isinstance(body, dict) else None
            total_pages = meta.get("total_pages") if isinstance(meta, dict) else None
            if isinstance(total_pages, int):
                if page >= total_pages:
                    return
            elif len(items) < page_size:
                return
            if not items:
                return

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One API call with bounded retries. ``idempotent=False`` retries only failures where
        the request certainly had no effect (429, connection not established).

        Raises:
            ProviderError: a 4xx, an exhausted retry budget, or an unsafe-to-retry failure.
            ConfigurationError: the base URL has an unsupported scheme.
        """
        attempts = self._max_retries + 1
        has_idempotency_key = bool(headers and "Idempotency-Key" in headers)
        where = f"{method} {path}"
        last_failure = ""
        last_status: int | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = self._client.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.UnsupportedProtocol:
                raise ConfigurationError(
                    f"TELNYX_BASE_URL {self._base_url!r} has an unsupported scheme; use https://"
                ) from None
            except httpx.TransportError as exc:
                # Raised `from None` below: httpx exceptions hold the Request, whose headers
                # carry the bearer key, and exception chains end up in error reporters.
                not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                last_failure = self._scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
                last_status = None
                if not idempotent and not not_sent:
                    raise ProviderError(
                        f"Telnyx {where} failed ({last_failure}) and was not retried: the "
                        f"request {_SENT_MAYBE} and is not idempotent; check before retrying",
                        retryable=True,
                    ) from None
                if attempt < attempts:
                    delay = self._backoff(attempt)
                    self._log_retry(where, last_failure, attempt, attempts, delay)
                    self._sleep(delay)
                    continue
                break
            status = response.status_code
            logger.debug("Telnyx %s -> HTTP %d (attempt %d)", where, status, attempt)
            if status < 400:
                return self._decode(response, where)
            retry_ok = status == 429 or (
                idempotent
                and (status >= 500 or status == 408 or (status == 409 and has_idempotency_key))
            )
            if not retry_ok:
                if status >= 500:
                    error = self._error_for(response, where)
                    raise ProviderError(
                        f"{error} Not retried: the request {_SENT_MAYBE} and is not "
                        "idempotent; check before retrying",
                        status_code=status,
                        code=error.code,
                        detail=error.detail,
                        retryable=True,
                    )
                raise self._error_for(response, where)
            error = self._error_for(response, where)
            last_failure = _failure_summary(status, error)
            last_status = status
            if attempt >= attempts:
                break
            retry_after = self._retry_after(response)
            if retry_after is not None and retry_after > self._max_retry_after:
                raise ProviderError(
                    f"Telnyx {where} answered HTTP {status} and asked to retry after "
                    f"{retry_after:.0f}s, longer than the {self._max_retry_after:.0f}s this "
                    "client waits; try again later",
                    status_code=status,
                    code=error.code,
                    detail=error.detail,
                    retryable=True,
                )
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            self._log_retry(where, last_failure, attempt, attempts, delay)
            self._sleep(delay)
        raise ProviderError(
            f"Telnyx {where} failed after {attempts} attempt{'s' if attempts != 1 else ''}; "
            f"last error: {last_failure}",
            status_code=last_status,
            retryable=True,
        )

    def _decode(self, response: httpx.Response, where: str) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                f"Telnyx {where} answered HTTP {response.status_code} with a body that is not "
                f"JSON: {self._scrub(response.text[:200])!r}",
                status_code=response.status_code,
                retryable=True,
            ) from None

    def _error_for(self, response: httpx.Response, where: str) -> ProviderError:
        status = response.status_code
        code, detail = _parse_error_body(response)
        code = self._scrub(code) if code else None
        detail = self._scrub(detail) if detail else None
        telnyx_says = " ".join(part for part in (code, detail) if part)
        suffix = f": {telnyx_says}" if telnyx_says else ""
        if status == 401:
            message = (
                f"TELNYX_API_KEY was rejected by Telnyx (HTTP 401 on {where}){suffix}; "
                "check that the key is a current API v2 key"
            )
        elif status == 403:
            message = (
                f"TELNYX_API_KEY is not allowed to {where} (HTTP 403){suffix}; check the key's "
                "permissions and the account's enabled products"
            )
        elif status == 404:
            message = f"Telnyx {where}: not found (HTTP 404){suffix}"
        else:
            message = f"Telnyx rejected {where} (HTTP {status}){suffix}"
        return ProviderError(
            message,
            status_code=status,
            code=code,
            detail=detail,
            retryable=status in (408, 409, 429) or status >= 500,
        )

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - self._clock()).total_seconds())

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * (2 ** (attempt - 1)))
        # Equal jitter: at least half the ceiling, so retries still back off, while clients
        # that failed together spread out.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _log_retry(
        self, where: str, failure: str, attempt: int, attempts: int, delay: float
    ) -> None:
        logger.warning(
            "Telnyx %s failed (%s); retry %d of %d in %.2fs",
            where,
            failure,
            attempt,
            attempts - 1,
            delay,
        )

    def _scrub(self, text: str) -> str:
        key = self._api_key.get_secret_value()
        return text.replace(key, "**********") if key else text


# ---------------------------------------------------------------------- helpers


def _call_variables(request: CallRequest) -> dict[str, str]:
    """The call's ``dynamic_variables`` as Telnyx takes them: strings, no reserved
    ``telnyx_*`` names, plus the rendered value of each flattened template section."""
    variables = {
        k: str(v) for k, v in request.dynamic_variables.items() if not k.startswith(RESERVED_PREFIX)
    }
    for template, prefix in (
        (request.instructions_template, INSTRUCTIONS_SECTIONS),
        (request.greeting_template, GREETING_SECTIONS),
    ):
        if template:
            for name, source in flatten_sections(template, prefix)[1].items():
                variables[name] = render(source, request.dynamic_variables, request.placed_at)
    return variables


def idempotency_header(idempotency_key: str) -> str:
    """Our idempotency key as a valid Telnyx ``Idempotency-Key`` (1–255 letters, digits,
    ``-``, ``_``): unsafe characters replaced, plus a digest so distinct keys never collide."""
    safe = _IDEMPOTENCY_UNSAFE.sub("_", idempotency_key)[:180]
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"{safe}-{digest}"


def _handle(assistant_id: str, event_id: str) -> str:
    return f"{_HANDLE_PREFIX}/{assistant_id}/{event_id}"


def _parse_handle(handle: str) -> tuple[str, str]:
    parts = handle.split("/")
    if len(parts) != 3 or parts[0] != _HANDLE_PREFIX or not parts[1] or not parts[2]:
        raise ValidationError(
            "placement.call_control_id",
            f"must be a TelnyxProvider handle '{_HANDLE_PREFIX}/<assistant_id>/<event_id>'",
            handle,
        )
    return parts[1], parts[2]


def _seg(value: str) -> str:
    """One URL path segment; ids come from outside, so they must not add path levels."""
    if not value:
        raise ValidationError("id", "must not be empty", value)
    return quote(value, safe="")


def _ceil_second(moment: datetime) -> datetime:
    """Round up to a whole second (still in the future, and in the reference's format)."""
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def _event_matches(
    event: Mapping[str, Any], idempotency_key: str, sent: Sequence[Mapping[str, Any]]
) -> bool:
    metadata = event.get("conversation_metadata")
    if isinstance(metadata, dict) and METADATA_IDEMPOTENCY_KEY in metadata:
        return metadata.get(METADATA_IDEMPOTENCY_KEY) == idempotency_key
    when = _parse_time(event.get("scheduled_at_fixed_datetime"))
    fields = ("telnyx_conversation_channel", "telnyx_end_user_target", "telnyx_agent_target")
    return when is not None and any(
        all(event.get(name) == body.get(name) for name in fields)
        and when == _parse_time(body.get("scheduled_at_fixed_datetime"))
        for body in sent
    )


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _role(value: str) -> Literal["assistant", "user", "system"]:
    if value == "assistant":
        return "assistant"
    if value == "user":
        return "user"
    return "system"


def _unwrap(body: Any) -> dict[str, Any]:
    """Telnyx AI endpoints answer with the bare object, most others wrap it in ``data``."""
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict) and "id" not in body and "scheduled_event_id" not in body:
            return data
        return body
    return {}


def _failure_summary(status: int, error: ProviderError) -> str:
    parts = [f"HTTP {status}"]
    if error.code or error.detail:
        parts.append(" ".join(p for p in (error.code, error.detail) if p))
    return ": ".join(parts)


def _parse_error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """Telnyx's ``{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}``, or the
    FastAPI-style ``{"detail": ...}`` some AI endpoints return."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, (text[:200] or response.reason_phrase or None)
    if not isinstance(body, dict):
        return None, None
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        codes: list[str] = []
        details: list[str] = []
        for err in errors:
            if not isinstance(err, dict):
                continue
            if err.get("code") is not None:
                codes.append(str(err["code"]))
            text = err.get("detail") or err.get("title") or ""
            if err.get("title") and err.get("detail") and err["title"] != err["detail"]:
                text = f"{err['title']}: {err['detail']}"
            pointer = (
                (err.get("source") or {}).get("pointer")
                if isinstance(err.get("source"), dict)
                else None
            )
            if pointer:
                text = f"{text} (at {pointer})"
            if text:
                details.append(str(text))
        return (", ".join(codes) or None), ("; ".join(details) or None)
    detail = body.get("detail")
    if isinstance(detail, str):
        return None, detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                msg = str(item.get("msg", ""))
                parts.append(f"{loc}: {msg}" if loc else msg)
        return None, ("; ".join(p for p in parts if p) or None)
    message = body.get("message") or body.get("error")
    return None, (str(message) if message else None)


def _outcome_from_event(event: Mapping[str, Any], now: datetime) -> CallOutcome | None:
    """Map a scheduled event to the attempt's terminal outcome (None while in progress)."""
    status = event.get("status")
    attempts = event.get("call_attempts")
    last: Mapping[str, Any] = (
        attempts[-1]
        if isinstance(attempts, list) and attempts and isinstance(attempts[-1], dict)
        else {}
    )
    call_status = event.get("call_status") or last.get("call_status")
    if call_status in CALL_STATUSES:
        terminal = str(call_status)
    elif status == "completed":
        terminal = "completed"
    elif status == "failed":
        terminal = "failed"
    elif status in ("cancelled", "canceled"):
        terminal = "canceled"
    else:
        if status not in (None, "pending", "in_progress"):
            logger.warning("Telnyx scheduled event has unknown status %r; still waiting", status)
        return None
    raw_duration = event.get("call_duration")
    if raw_duration is None:
        raw_duration = last.get("call_duration")
    duration = float(raw_duration) if isinstance(raw_duration, int | float) else None
    if terminal != "completed" and not duration:
        duration = None  # nobody answered: the reference leaves call_duration null
    attempted_at = _parse_time(last.get("attempted_at")) or _parse_time(event.get("dispatched_at"))
    ended_at = now
    if attempted_at is not None and duration is not None:
        ended_at = min(now, attempted_at + timedelta(seconds=duration))
    return CallOutcome(
        call_status=cast(CallStatus, terminal),
        ended_at=ended_at,
        call_duration=duration,
        call_control_id=_str_or_none(last.get("telnyx_call_control_id")),
        conversation_id=_str_or_none(event.get("conversation_id")),
    )
