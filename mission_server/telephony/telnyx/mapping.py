"""Pure translation between Telnyx's JSON and our telephony types: no HTTP, no state.

* Requests: the assistant and scheduled-event bodies (``assistant_body``,
  ``scheduled_event_body``), the dynamic variables a call carries (``call_variables``), the
  ``Idempotency-Key`` header (``idempotency_header``), timestamps in the reference's format
  (``iso``, ``ceil_second``).
* Answers: a scheduled event's terminal outcome (``outcome_from_event``) and placement
  (``placement_from_event``), whether a listed event is the attempt we created
  (``event_matches``), a transcript (``transcript_from_messages``), the handle a
  ``Placement`` keeps (``event_handle`` / ``parse_event_handle``), bodies wrapped in ``data``
  or not (``unwrap``) and Telnyx's error bodies (``parse_error_body``, ``failure_summary``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import httpx

from mission_server.domain.templating import (
    RESERVED_PREFIX,
    SECTION_VARIABLE_PREFIX,
    flatten_sections,
    render,
)
from mission_server.errors import ProviderError, ValidationError
from mission_server.telephony.base import (
    CALL_STATUSES,
    AssistantSpec,
    CallOutcome,
    CallRequest,
    CallStatus,
    InsightTemplateSpec,
    Placement,
    RemoteInsightGroup,
    TranscriptMessage,
)

__all__ = [
    "GREETING_SECTIONS",
    "INSTRUCTIONS_SECTIONS",
    "METADATA_ATTEMPT_NUMBER",
    "METADATA_IDEMPOTENCY_KEY",
    "METADATA_SCHEDULED_EVENT_ID",
    "assistant_body",
    "call_variables",
    "ceil_second",
    "event_handle",
    "event_matches",
    "failure_summary",
    "idempotency_header",
    "insight_group_from",
    "insight_template_body",
    "iso",
    "message_role",
    "outcome_from_event",
    "parse_error_body",
    "parse_event_handle",
    "parse_time",
    "placement_from_event",
    "scheduled_event_body",
    "str_or_none",
    "transcript_from_messages",
    "unwrap",
]

logger = logging.getLogger(__name__)

#: ``conversation_metadata`` keys we add to every scheduled event.
METADATA_IDEMPOTENCY_KEY = "mission_idempotency_key"
METADATA_SCHEDULED_EVENT_ID = "mission_scheduled_event_id"
METADATA_ATTEMPT_NUMBER = "mission_attempt_number"
# Placeholder prefixes of flattened template sections (see the provider's docstring).
INSTRUCTIONS_SECTIONS = SECTION_VARIABLE_PREFIX
GREETING_SECTIONS = "mission_greeting_section_"

_HANDLE_PREFIX = "scheduled_event"
_IDEMPOTENCY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def assistant_body(
    spec: AssistantSpec,
    *,
    default_model: str,
    enabled_features: Sequence[str],
    messaging_profile_id: str | None = None,
) -> dict[str, Any]:
    """The body that creates or replaces an assistant (``POST /ai/assistants[/{id}]``)."""
    body: dict[str, Any] = {
        "name": spec.name,
        "instructions": flatten_sections(spec.instructions, INSTRUCTIONS_SECTIONS)[0],
        "model": spec.model or default_model,
        "enabled_features": list(enabled_features),
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
    if messaging_profile_id:
        body["messaging_settings"] = {"default_messaging_profile_id": messaging_profile_id}
    return body


def scheduled_event_body(request: CallRequest, scheduled_at: datetime) -> dict[str, Any]:
    """The body that creates the attempt's scheduled event, our idempotency key, event id and
    attempt number in its ``conversation_metadata``."""
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
        "scheduled_at_fixed_datetime": iso(scheduled_at),
        "conversation_metadata": metadata,
        "dynamic_variables": call_variables(request),
    }
    if request.channel == "sms_chat":
        body["text"] = request.text
    return body


def insight_template_body(spec: InsightTemplateSpec) -> dict[str, Any]:
    """The body that creates or replaces an insight template (``InsightCreateParams``): a
    structured insight carries its result's JSON schema, free text none."""
    body: dict[str, Any] = {"name": spec.name, "instructions": spec.instructions}
    if spec.json_schema is not None:
        body["json_schema"] = dict(spec.json_schema)
    if spec.webhook:
        body["webhook"] = spec.webhook
    return body


def insight_group_from(group: Mapping[str, Any]) -> RemoteInsightGroup | None:
    """An ``InsightTemplateGroup`` as we keep it (None without an id)."""
    ref = group.get("id")
    if not isinstance(ref, str) or not ref:
        return None
    insights = group.get("insights")
    items = insights if isinstance(insights, list) else []
    refs = tuple(
        str(item["id"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    )
    return RemoteInsightGroup(ref=ref, name=str(group.get("name") or ""), insight_refs=refs)


def call_variables(request: CallRequest) -> dict[str, str]:
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


def event_handle(assistant_id: str, event_id: str) -> str:
    return f"{_HANDLE_PREFIX}/{assistant_id}/{event_id}"


def parse_event_handle(handle: str) -> tuple[str, str]:
    parts = handle.split("/")
    if len(parts) != 3 or parts[0] != _HANDLE_PREFIX or not parts[1] or not parts[2]:
        raise ValidationError(
            "placement.call_control_id",
            f"must be a TelnyxProvider handle '{_HANDLE_PREFIX}/<assistant_id>/<event_id>'",
            handle,
        )
    return parts[1], parts[2]


def ceil_second(moment: datetime) -> datetime:
    """Round up to a whole second (still in the future, and in the reference's format)."""
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def event_matches(
    event: Mapping[str, Any], idempotency_key: str, sent: Sequence[Mapping[str, Any]]
) -> bool:
    metadata = event.get("conversation_metadata")
    if isinstance(metadata, dict) and METADATA_IDEMPOTENCY_KEY in metadata:
        return metadata.get(METADATA_IDEMPOTENCY_KEY) == idempotency_key
    when = parse_time(event.get("scheduled_at_fixed_datetime"))
    fields = ("telnyx_conversation_channel", "telnyx_end_user_target", "telnyx_agent_target")
    return when is not None and any(
        all(event.get(name) == body.get(name) for name in fields)
        and when == parse_time(body.get("scheduled_at_fixed_datetime"))
        for body in sent
    )


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def message_role(value: str) -> Literal["assistant", "user", "system"]:
    if value == "assistant":
        return "assistant"
    if value == "user":
        return "user"
    return "system"


def unwrap(body: Any) -> dict[str, Any]:
    """Telnyx AI endpoints answer with the bare object, most others wrap it in ``data``."""
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict) and "id" not in body and "scheduled_event_id" not in body:
            return data
        return body
    return {}


def failure_summary(status: int, error: ProviderError) -> str:
    parts = [f"HTTP {status}"]
    if error.code or error.detail:
        parts.append(" ".join(p for p in (error.code, error.detail) if p))
    return ": ".join(parts)


def parse_error_body(response: httpx.Response) -> tuple[str | None, str | None]:
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


def placement_from_event(
    event: Mapping[str, Any], assistant_id: str, now: datetime, conversation_id: str | None
) -> Placement | None:
    """The ``Placement`` of a listed scheduled event (None when it has no id), with its outcome
    when it is terminal; ``conversation_id`` is used when the event names none."""
    event_id = event.get("scheduled_event_id")
    if not isinstance(event_id, str) or not event_id:
        return None
    placed_at = (
        parse_time(event.get("created_at"))
        or parse_time(event.get("dispatched_at"))
        or parse_time(event.get("scheduled_at_fixed_datetime"))
        or now
    )
    outcome = outcome_from_event(event, now)
    found_conversation = str_or_none(event.get("conversation_id")) or conversation_id
    if outcome is not None and outcome.conversation_id is None and found_conversation:
        outcome = replace(outcome, conversation_id=found_conversation)
    return Placement(
        call_control_id=event_handle(assistant_id, event_id),
        placed_at=placed_at,
        conversation_id=found_conversation,
        outcome=outcome,
    )


def transcript_from_messages(items: Iterable[Mapping[str, Any]]) -> list[TranscriptMessage]:
    """A conversation's messages as a transcript in order (by ``sent_at``, else
    ``created_at``); tool messages and empty turns (tool calls only) are left out."""
    collected: list[tuple[datetime, int, TranscriptMessage]] = []
    last_time = datetime(1970, 1, 1, tzinfo=UTC)
    for index, item in enumerate(items):
        role = item.get("role")
        text = item.get("text")
        if role not in ("assistant", "user", "system") or not isinstance(text, str):
            continue
        if not text.strip():
            continue
        sent_at = parse_time(item.get("sent_at")) or parse_time(item.get("created_at"))
        # A message without any time keeps its place after the one before it.
        sent_at = sent_at or last_time
        last_time = sent_at
        message = TranscriptMessage(role=message_role(role), text=text, sent_at=sent_at)
        collected.append((sent_at, index, message))
    collected.sort(key=lambda entry: (entry[0], entry[1]))
    return [message for _, _, message in collected]


def outcome_from_event(event: Mapping[str, Any], now: datetime) -> CallOutcome | None:
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
    attempted_at = parse_time(last.get("attempted_at")) or parse_time(event.get("dispatched_at"))
    ended_at = now
    if attempted_at is not None and duration is not None:
        ended_at = min(now, attempted_at + timedelta(seconds=duration))
    raw_errors = event.get("errors")
    errors = tuple(
        str(e).strip()[:500]
        for e in (raw_errors if isinstance(raw_errors, list) else [])
        if str(e).strip()
    )
    return CallOutcome(
        call_status=cast(CallStatus, terminal),
        ended_at=ended_at,
        call_duration=duration,
        call_control_id=str_or_none(last.get("telnyx_call_control_id")),
        conversation_id=str_or_none(event.get("conversation_id")),
        errors=errors,
    )
