"""TelnyxProvider against a fake Telnyx API (httpx.MockTransport): request shapes, response
mapping, retries and error messages. No real network."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from mission_server.errors import ConfigurationError, ProviderError, ValidationError
from mission_server.settings import Settings
from mission_server.telephony.base import (
    AssistantSpec,
    CallRequest,
    NumberInfo,
    Placement,
)
from mission_server.telephony.telnyx.mapping import METADATA_IDEMPOTENCY_KEY, idempotency_header
from mission_server.telephony.telnyx.provider import TelnyxProvider
from tests.support.telnyx import (
    API_KEY,
    FakeTelnyx,
    body_of,
    conversation_json,
    page,
    phone_number_json,
    raise_,
    reply,
)

ASSISTANT_ID = "assistant-6207ab25-b185-478f-b2ef-85159e226727"
TEXML_APP_ID = "2293445112736466706"
EVENT_ID = "8f3c2a10-5b7e-4d21-9c44-0e6f1b2a7d90"
NOW = datetime(2026, 5, 7, 14, 30, tzinfo=UTC)


@pytest.fixture
def fake() -> FakeTelnyx:
    return FakeTelnyx()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def provider(fake: FakeTelnyx, sleeps: list[float]) -> TelnyxProvider:
    return TelnyxProvider(
        API_KEY,
        transport=httpx.MockTransport(fake),
        sleep=sleeps.append,
        clock=lambda: NOW,
    )


def assistant_json(**overrides: Any) -> dict[str, Any]:
    data = {
        "id": ASSISTANT_ID,
        "name": "Catering Quote Negotiator",
        "created_at": "2026-05-07T14:00:00Z",
        "model": "moonshotai/Kimi-K2.5",
        "instructions": "You are calling {{business_name}} to get a quote.",
        "greeting": "Hi, I'm calling about catering for {{headcount}} people.",
        "dynamic_variables": {"headcount": "50"},
        "enabled_features": ["telephony"],
        "insight_settings": {"insight_group_id": "a2708926-c060-480a-8631-041cb7304117"},
        "telephony_settings": {"default_texml_app_id": TEXML_APP_ID},
        "voice_settings": {"voice": "Telnyx.KokoroTTS.af_heart"},
    }
    data.update(overrides)
    return data


def event_json(**overrides: Any) -> dict[str, Any]:
    data = {
        "assistant_id": ASSISTANT_ID,
        "scheduled_event_id": EVENT_ID,
        "telnyx_conversation_channel": "phone_call",
        "telnyx_end_user_target": "+13125550101",
        "telnyx_agent_target": "+13125550001",
        "scheduled_at_fixed_datetime": "2026-05-07T14:30:15Z",
        "created_at": "2026-05-07T14:30:00.412Z",
        "status": "pending",
        "retry_count": 0,
        "conversation_metadata": {METADATA_IDEMPOTENCY_KEY: "sev_1:1"},
        "dynamic_variables": {"business_name": "Lakefront Catering"},
        "errors": [],
    }
    data.update(overrides)
    return data


def call_request(**overrides: Any) -> CallRequest:
    values: dict[str, Any] = {
        "idempotency_key": "sev_1:1",
        "scheduled_event_id": "sev_1",
        "attempt_number": 1,
        "channel": "phone_call",
        "from_number": "+13125550001",
        "to": "+13125550101",
        "assistant_ref": ASSISTANT_ID,
        "placed_at": NOW,
        "instructions": "You are calling Lakefront Catering to get a quote.",
        "greeting": "Hi, I'm calling about catering for 50 people.",
        "text": None,
        "dynamic_variables": {"business_name": "Lakefront Catering", "headcount": "50"},
        "conversation_metadata": {"run_id": "run_9"},
    }
    values.update(overrides)
    return CallRequest(**values)


SPEC = AssistantSpec(
    name="Catering Quote Negotiator",
    instructions="You are calling {{business_name}} to get a quote.",
    greeting="Hi, I'm calling about catering for {{headcount}} people.",
    voice="Telnyx.KokoroTTS.af_heart",
    dynamic_variables={"headcount": "50"},
    insight_group_ref="a2708926-c060-480a-8631-041cb7304117",
)


# ---------------------------------------------------------------------- success paths


def test_create_assistant_sends_configuration_and_returns_id(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on("POST", "/ai/assistants", reply(200, assistant_json()))

    assert provider.create_assistant(SPEC) == ASSISTANT_ID

    (request,) = fake.sent("POST", "/ai/assistants")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Idempotency-Key" not in request.headers  # the spec names no key
    assert body_of(request) == {
        "name": "Catering Quote Negotiator",
        "instructions": "You are calling {{business_name}} to get a quote.",
        "greeting": "Hi, I'm calling about catering for {{headcount}} people.",
        "model": "moonshotai/Kimi-K2.5",
        "enabled_features": ["telephony"],
        "dynamic_variables": {"headcount": "50"},
        "voice_settings": {"voice": "Telnyx.KokoroTTS.af_heart"},
        "insight_settings": {"insight_group_id": "a2708926-c060-480a-8631-041cb7304117"},
    }


def test_create_assistant_sends_our_id_as_its_idempotency_key(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on("POST", "/ai/assistants", reply(200, assistant_json()))

    provider.create_assistant(replace(SPEC, idempotency_key="asst_1"))

    (request,) = fake.sent("POST", "/ai/assistants")
    assert request.headers["Idempotency-Key"] == idempotency_header("assistant:asst_1")


def test_assistant_dynamic_variables_are_sent_as_strings(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    # 03_dynamic-variables.md lists "Sending numbers instead of strings" as a formatting error.
    fake.on("POST", "/ai/assistants", reply(200, assistant_json()))
    variables: dict[str, Any] = {"headcount": 50}
    spec = AssistantSpec(name="N", instructions="I", dynamic_variables=variables)

    provider.create_assistant(spec)

    assert body_of(fake.sent("POST", "/ai/assistants")[0])["dynamic_variables"] == {
        "headcount": "50"
    }


def test_update_assistant_posts_to_the_assistant(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}", reply(200, assistant_json()))
    spec = AssistantSpec(name="Negotiator v2", instructions="New script", model="openai/gpt-4o")

    provider.update_assistant(ASSISTANT_ID, spec)

    (request,) = fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}")
    sent = body_of(request)
    assert sent["name"] == "Negotiator v2"
    assert sent["instructions"] == "New script"
    assert sent["model"] == "openai/gpt-4o"
    assert "greeting" not in sent and "insight_settings" not in sent


def test_list_phone_numbers_pages_through_and_maps_assistant_and_hd_voice(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    page_1 = page(
        [
            phone_number_json(
                "+13125550001",
                "1293384261075731499",
                connection_id=TEXML_APP_ID,
                hd_voice_enabled=True,
            ),
            phone_number_json("+13125550002", "1293384261075731500", status="purchase-pending"),
        ],
        number=1,
        total_pages=2,
    )
    page_2 = page(
        [phone_number_json("+13125550003", "1293384261075731501")], number=2, total_pages=2
    )
    fake.on("GET", "/phone_numbers", reply(200, page_1), reply(200, page_2))
    fake.on("GET", "/ai/assistants", reply(200, {"data": [assistant_json()]}))

    numbers = provider.list_phone_numbers()

    assert numbers == [
        NumberInfo(
            "+13125550001", "1293384261075731499", hd_voice=True, assistant_ref=ASSISTANT_ID
        ),
        NumberInfo("+13125550003", "1293384261075731501", hd_voice=False, assistant_ref=None),
    ]
    pages = [r.url.params["page[number]"] for r in fake.sent("GET", "/phone_numbers")]
    assert pages == ["1", "2"]


def test_assign_phone_number_routes_number_to_assistant_texml_app(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on("GET", f"/ai/assistants/{ASSISTANT_ID}", reply(200, assistant_json()))
    fake.on(
        "PATCH",
        "/phone_numbers/1293384261075731499",
        reply(
            200,
            {
                "data": phone_number_json(
                    "+13125550001", "1293384261075731499", connection_id=TEXML_APP_ID
                )
            },
        ),
    )

    provider.assign_phone_number(NumberInfo("+13125550001", "1293384261075731499"), ASSISTANT_ID)

    (request,) = fake.sent("PATCH", "/phone_numbers/1293384261075731499")
    assert body_of(request) == {"connection_id": TEXML_APP_ID}


def test_release_phone_number_unassigns_the_number_from_its_connection(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "PATCH",
        "/phone_numbers/1293384261075731499",
        reply(
            200,
            {"data": phone_number_json("+13125550001", "1293384261075731499", connection_id="")},
        ),
    )

    provider.release_phone_number(NumberInfo("+13125550001", "1293384261075731499"), ASSISTANT_ID)

    (request,) = fake.sent("PATCH", "/phone_numbers/1293384261075731499")
    assert body_of(request) == {"connection_id": ""}


def test_assign_phone_number_uses_configured_connection(fake: FakeTelnyx) -> None:
    provider = TelnyxProvider(
        API_KEY, transport=httpx.MockTransport(fake), connection_id="1684641123236054244"
    )
    fake.on(
        "PATCH", "/phone_numbers/42", reply(200, {"data": phone_number_json("+13125550001", "42")})
    )

    provider.assign_phone_number(NumberInfo("+13125550001", "42"), ASSISTANT_ID)

    assert body_of(fake.sent("PATCH", "/phone_numbers/42")[0]) == {
        "connection_id": "1684641123236054244"
    }
    assert fake.sent("GET", f"/ai/assistants/{ASSISTANT_ID}") == []


def test_assign_phone_number_without_telephony_connection_is_a_clear_error(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "GET", f"/ai/assistants/{ASSISTANT_ID}", reply(200, assistant_json(telephony_settings={}))
    )

    with pytest.raises(ProviderError, match="default_texml_app_id"):
        provider.assign_phone_number(NumberInfo("+13125550001", "42"), ASSISTANT_ID)


def test_place_call_creates_scheduled_event_with_idempotency_key(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", reply(201, event_json()))

    placement = provider.place_call(call_request())

    (request,) = fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")
    assert request.headers["Idempotency-Key"] == idempotency_header("sev_1:1")
    sent = body_of(request)
    assert sent == {
        "telnyx_conversation_channel": "phone_call",
        "telnyx_end_user_target": "+13125550101",
        "telnyx_agent_target": "+13125550001",
        "scheduled_at_fixed_datetime": "2026-05-07T14:30:15Z",
        "conversation_metadata": {
            "run_id": "run_9",
            "mission_idempotency_key": "sev_1:1",
            "mission_scheduled_event_id": "sev_1",
            "mission_attempt_number": 1,
        },
        "dynamic_variables": {"business_name": "Lakefront Catering", "headcount": "50"},
    }
    assert placement.call_control_id == f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}"
    # The record holds the moment Telnyx dials (the time sent), not the time of the request.
    assert placement.placed_at == NOW + timedelta(seconds=15)
    assert placement.outcome is None


NEGOTIATOR = (
    "Get a quote from {{business_name}}. {{#best_quote}}Another caterer quoted "
    "{{best_quote}}; ask whether they can beat it.{{/best_quote}}"
)


@pytest.mark.parametrize(
    ("run_variables", "section_value"),
    [
        ({}, ""),  # the baseline call: no leverage at all
        (
            {"best_quote": "$65 per person"},
            "Another caterer quoted $65 per person; ask whether they can beat it.",
        ),
    ],
)
def test_sections_reach_telnyx_as_plain_variables_rendered_per_call(
    provider: TelnyxProvider,
    fake: FakeTelnyx,
    run_variables: dict[str, str],
    section_value: str,
) -> None:
    # Telnyx substitutes {{name}} only (03_dynamic-variables.md): the assistant carries one
    # placeholder per section and each call its rendered text.
    fake.on("POST", "/ai/assistants", reply(200, assistant_json()))
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", reply(201, event_json()))
    provider.create_assistant(replace(SPEC, instructions=NEGOTIATOR))
    variables = {
        "business_name": "Chicago Grill Co",
        **run_variables,
        "telnyx_end_user_target": "+13125550102",
        "telnyx_agent_target": "+13125550001",
        "telnyx_conversation_channel": "phone_call",
    }
    provider.place_call(call_request(dynamic_variables=variables, instructions_template=NEGOTIATOR))

    (assistant,) = fake.sent("POST", "/ai/assistants")
    assert body_of(assistant)["instructions"] == (
        "Get a quote from {{business_name}}. {{mission_section_1_best_quote}}"
    )
    (event,) = fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")
    # Reserved telnyx_* names are Telnyx's to fill; never sent as dynamic variables.
    assert body_of(event)["dynamic_variables"] == {
        "business_name": "Chicago Grill Co",
        **run_variables,
        "mission_section_1_best_quote": section_value,
    }


def test_place_call_sends_the_scheduled_time_in_whole_seconds_in_the_future(
    fake: FakeTelnyx,
) -> None:
    # 09_scheduled-events.md: "scheduled_at_fixed_datetime | ISO-8601 timestamp; must be in
    # the future", e.g. "2026-05-08T15:00:00Z".
    now = NOW + timedelta(microseconds=250_001)
    provider = TelnyxProvider(API_KEY, transport=httpx.MockTransport(fake), clock=lambda: now)
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", reply(201, event_json()))

    provider.place_call(call_request(placed_at=now))

    sent = body_of(fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")[0])
    assert sent["scheduled_at_fixed_datetime"] == "2026-05-07T14:30:16Z"


def test_the_schedule_lead_bounds_the_dial_moment_and_a_stale_request_is_not_dialled(
    fake: FakeTelnyx,
) -> None:
    # Calling hours are checked over [placed_at, placed_at + schedule_lead]: Telnyx dials at
    # placed_at + lead rounded up, never later, and refuses (retryably) a request whose dial
    # moment has passed instead of dialling it later than was checked.
    clock = [NOW]
    provider = TelnyxProvider(
        API_KEY, transport=httpx.MockTransport(fake), clock=lambda: clock[0], max_retries=0
    )
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", reply(201, event_json()))
    assert provider.schedule_lead == timedelta(seconds=16)

    placed_at = NOW + timedelta(microseconds=1)
    placement = provider.place_call(call_request(placed_at=placed_at))
    assert placed_at < placement.placed_at <= placed_at + provider.schedule_lead

    clock[0] = NOW + timedelta(seconds=20)
    with pytest.raises(ProviderError, match="has passed") as info:
        provider.place_call(call_request(idempotency_key="sev_1:2", placed_at=NOW))
    assert info.value.retryable is True
    assert len(fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")) == 1


def test_idempotency_header_is_valid_for_telnyx_and_distinct_per_key() -> None:
    import re

    first, second = idempotency_header("sev_1:1"), idempotency_header("sev_1:2")
    for header in (first, second, idempotency_header("x" * 400 + ":9")):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", header)
    assert first != second
    assert idempotency_header("sev_1:1") == first
    assert idempotency_header("sev_1_1") != first  # same sanitised text, different key


def test_place_call_sms_sends_text_on_sms_chat(provider: TelnyxProvider, fake: FakeTelnyx) -> None:
    fake.on(
        "POST",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(201, event_json(telnyx_conversation_channel="sms_chat")),
    )

    provider.place_call(call_request(channel="sms_chat", text="Your quote: $62/person"))

    sent = body_of(fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")[0])
    assert sent["telnyx_conversation_channel"] == "sms_chat"
    assert sent["text"] == "Your quote: $62/person"
    assert "max_retries_client_errors" not in sent and "retry_interval_secs" not in sent


def test_place_call_sms_without_text_names_the_field(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    with pytest.raises(ValidationError) as info:
        provider.place_call(call_request(channel="sms_chat", text=None))
    assert info.value.field == "text"
    assert "sms_chat" in str(info.value)
    assert fake.requests == []


def test_get_outcome_reports_completed_call(provider: TelnyxProvider, fake: FakeTelnyx) -> None:
    event = event_json(
        status="completed",
        call_status="completed",
        call_duration=187,
        conversation_id="c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b",
        dispatched_at="2026-05-07T14:30:15Z",
        call_attempts=[
            {
                "attempt_number": 1,
                "attempted_at": "2026-05-07T14:30:15.812Z",
                "call_status": "completed",
                "call_duration": 187,
                "telnyx_call_control_id": "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO",
            }
        ],
    )
    fake.on("GET", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events/{EVENT_ID}", reply(200, event))
    placement = Placement(f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}", NOW)
    polled_at = NOW + timedelta(minutes=10)

    outcome = provider.get_outcome(placement, polled_at)

    assert outcome is not None
    assert outcome.call_status == "completed"
    assert outcome.call_duration == 187.0
    assert outcome.call_control_id == "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO"
    assert outcome.conversation_id == "c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
    assert outcome.ended_at == datetime(2026, 5, 7, 14, 33, 22, 812000, tzinfo=UTC)
    assert fake.sent("GET", "/ai/conversations") == []


ATTEMPT = {
    "attempt_number": 1,
    "attempted_at": "2026-05-07T14:30:15Z",
    "call_status": "completed",
    "call_duration": 60,
    "telnyx_call_control_id": "v3:abc",
}


def test_get_outcome_finds_the_conversation_by_call_control_id_when_the_event_has_no_id(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    # The SDK's conversation filters include metadata->call_control_id (not our own keys).
    conversation = "c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events/{EVENT_ID}",
        reply(
            200, event_json(status="completed", call_status="completed", call_attempts=[ATTEMPT])
        ),
    )
    fake.on(
        "GET",
        "/ai/conversations",
        reply(200, {"data": [conversation_json(conversation, {"call_control_id": "v3:abc"})]}),
    )

    outcome = provider.get_outcome(
        Placement(f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}", NOW), NOW + timedelta(minutes=5)
    )

    assert outcome is not None and outcome.conversation_id == conversation
    (query,) = fake.sent("GET", "/ai/conversations")
    assert query.url.params["metadata->call_control_id"] == "eq.v3:abc"
    assert query.url.params["limit"] == "1"


def test_get_outcome_conversation_lookup_errors(provider: TelnyxProvider, fake: FakeTelnyx) -> None:
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events/{EVENT_ID}",
        reply(
            200, event_json(status="completed", call_status="completed", call_attempts=[ATTEMPT])
        ),
    )
    placement = Placement(f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}", NOW)

    # A refusal does not hold the outcome back: it is reported without a conversation.
    fake.on("GET", "/ai/conversations", reply(400, {"errors": [{"code": "10015"}]}))
    outcome = provider.get_outcome(placement, NOW)
    assert outcome is not None and outcome.call_status == "completed"
    assert outcome.conversation_id is None

    # A transient failure is raised, so the outcome is polled again later.
    fake.on("GET", "/ai/conversations", reply(503))
    with pytest.raises(ProviderError) as info:
        provider.get_outcome(placement, NOW)
    assert info.value.retryable is True


@pytest.mark.parametrize("call_status", ["busy", "no-answer", "failed", "canceled"])
def test_get_outcome_reports_unanswered_calls_without_duration(
    provider: TelnyxProvider, fake: FakeTelnyx, call_status: str
) -> None:
    event = event_json(
        status="failed",
        call_status=call_status,
        call_duration=0,
        call_attempts=[
            {
                "attempt_number": 1,
                "attempted_at": "2026-05-07T14:30:16Z",
                "call_status": call_status,
                "call_duration": None,
                "telnyx_call_control_id": "v3:abc",
            }
        ],
    )
    fake.on("GET", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events/{EVENT_ID}", reply(200, event))
    fake.on("GET", "/ai/conversations", reply(200, {"data": []}))
    polled_at = NOW + timedelta(minutes=1)

    outcome = provider.get_outcome(
        Placement(f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}", NOW), polled_at
    )

    assert outcome is not None
    assert outcome.call_status == call_status
    assert outcome.call_duration is None
    assert outcome.ended_at == polled_at


def test_get_outcome_of_a_failed_sms_event_is_failed(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events/{EVENT_ID}",
        reply(
            200,
            event_json(
                telnyx_conversation_channel="sms_chat",
                status="failed",
                errors=["Destination is not SMS capable"],
            ),
        ),
    )

    outcome = provider.get_outcome(
        Placement(f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}", NOW), NOW
    )

    assert outcome is not None and outcome.call_status == "failed"
    assert outcome.errors == ("Destination is not SMS capable",)


def test_get_outcome_rejects_a_foreign_handle(provider: TelnyxProvider) -> None:
    with pytest.raises(ValidationError) as info:
        provider.get_outcome(Placement("v3:not-ours", NOW), NOW)
    assert info.value.field == "placement.call_control_id"
    assert "v3:not-ours" in str(info.value)


def test_find_attempt_lists_events_from_the_date_given(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    events = page(
        [
            event_json(
                scheduled_event_id="other",
                conversation_metadata={METADATA_IDEMPOTENCY_KEY: "sev_0:1"},
            ),
            event_json(
                status="in_progress", conversation_id="c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
            ),
        ]
    )
    fake.on("GET", "/ai/assistants", reply(200, {"data": [assistant_json()]}))
    fake.on("GET", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", reply(200, events))

    placement = provider.find_attempt("sev_1:1", since=NOW)

    assert placement is not None
    assert placement.call_control_id == f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}"
    assert placement.conversation_id == "c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
    assert placement.placed_at == datetime(2026, 5, 7, 14, 30, 0, 412000, tzinfo=UTC)
    assert placement.outcome is None
    (listing,) = fake.sent("GET", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")
    # Narrowed to the events since the attempt could exist (an hour's margin for clocks).
    assert listing.url.params["from_date"] == "2026-05-07T13:30:00Z"
    assert fake.sent("GET", "/ai/conversations") == []


def test_find_attempt_scans_assistants_when_not_yet_dispatched(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    other = "assistant-11111111-2222-3333-4444-555555555555"
    fake.on(
        "GET", "/ai/assistants", reply(200, {"data": [assistant_json(id=other), assistant_json()]})
    )
    fake.on(
        "GET",
        f"/ai/assistants/{other}/scheduled_events",
        reply(200, page([])),
    )
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(
            200,
            page([event_json(status="completed", call_status="completed", call_duration=60)]),
        ),
    )

    placement = provider.find_attempt("sev_1:1")

    assert placement is not None
    assert placement.call_control_id == f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}"
    assert placement.outcome is not None and placement.outcome.call_status == "completed"


def test_place_call_replayed_with_a_different_body_returns_the_existing_attempt(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "POST",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(
            422,
            {
                "errors": [
                    {
                        "code": "10015",
                        "title": "Invalid value",
                        "detail": "Idempotency-Key was already used with a different request",
                    }
                ]
            },
        ),
    )
    fake.on("GET", "/ai/conversations", reply(200, {"data": []}))
    fake.on("GET", "/ai/assistants", reply(200, {"data": [assistant_json()]}))
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(200, page([event_json()])),
    )

    placement = provider.place_call(call_request())

    assert placement.call_control_id == f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}"
    assert len(fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")) == 1


def test_get_messages_returns_transcript_in_order_without_tool_turns(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    conversation = "c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
    page_1 = {
        "data": [
            {
                "role": "user",
                "text": "We can do $62 per person, all-inclusive.",
                "created_at": "2026-05-07T14:31:40Z",
                "sent_at": "2026-05-07T14:31:40Z",
            },
            {
                "role": "assistant",
                "text": "Hi, I'm calling about catering for 50 people.",
                "created_at": "2026-05-07T14:30:20Z",
                "sent_at": "2026-05-07T14:30:20Z",
            },
        ],
        "meta": {"total_pages": 2, "page_number": 1, "page_size": 2, "total_results": 4},
    }
    page_2 = {
        "data": [
            {
                "role": "assistant",
                "text": "",
                "sent_at": "2026-05-07T14:31:50Z",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "hangup", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "text": "ok", "sent_at": "2026-05-07T14:31:51Z"},
        ],
        "meta": {"total_pages": 2, "page_number": 2, "page_size": 2, "total_results": 4},
    }
    fake.on(
        "GET", f"/ai/conversations/{conversation}/messages", reply(200, page_1), reply(200, page_2)
    )

    messages = provider.get_messages(conversation)

    assert [(m.role, m.text) for m in messages] == [
        ("assistant", "Hi, I'm calling about catering for 50 people."),
        ("user", "We can do $62 per person, all-inclusive."),
    ]
    assert messages[0].sent_at == datetime(2026, 5, 7, 14, 30, 20, tzinfo=UTC)


def test_get_conversation_insights_returns_telnyx_results(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    conversation = "c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
    run = {
        "id": "ci_123",
        "status": "completed",
        "created_at": "2026-05-07T14:34:00Z",
        "conversation_insights": [
            {"insight_id": "insight_xyz789", "result": '{"price_per_person": 62}'},
        ],
    }
    fake.on(
        "GET",
        f"/ai/conversations/{conversation}/conversations-insights",
        reply(
            200,
            {
                "data": [run],
                "meta": {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": 1},
            },
        ),
    )

    assert provider.get_conversation_insights(conversation) == [run]
    # The SDK defines no paging on this endpoint: none is sent.
    (request,) = fake.sent("GET", f"/ai/conversations/{conversation}/conversations-insights")
    assert not request.url.params


# ---------------------------------------------------------------------- errors and retries


def test_unauthorized_says_the_api_key_was_rejected(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    fake.on(
        "GET",
        "/phone_numbers",
        reply(
            401,
            {
                "errors": [
                    {
                        "code": "10009",
                        "title": "Authentication failed",
                        "detail": "The API key provided is invalid.",
                    }
                ]
            },
        ),
    )

    with pytest.raises(ProviderError) as info:
        provider.list_phone_numbers()

    assert "TELNYX_API_KEY was rejected" in str(info.value)
    assert info.value.status_code == 401
    assert info.value.retryable is False
    assert len(fake.requests) == 1 and sleeps == []


def test_validation_error_names_telnyx_code_and_detail(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "POST",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(
            422,
            {
                "errors": [
                    {
                        "code": "10015",
                        "title": "Invalid value",
                        "detail": "The 'to' number is not a valid E.164 number.",
                        "source": {"pointer": "/telnyx_end_user_target"},
                    }
                ]
            },
        ),
    )

    with pytest.raises(ProviderError) as info:
        provider.place_call(call_request(to="+1555"))

    message = str(info.value)
    assert "10015" in message
    assert "The 'to' number is not a valid E.164 number." in message
    assert "/telnyx_end_user_target" in message
    assert "HTTP 422" in message
    assert info.value.code == "10015"
    assert info.value.retryable is False
    assert len(fake.requests) == 1


def test_fastapi_style_validation_error_is_readable(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "POST",
        "/ai/assistants",
        reply(
            422,
            {
                "detail": [
                    {"loc": ["body", "instructions"], "msg": "Field required", "type": "missing"}
                ]
            },
        ),
    )

    with pytest.raises(ProviderError, match="instructions: Field required"):
        provider.create_assistant(SPEC)


def test_rate_limit_honours_retry_after_seconds_then_succeeds(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    fake.on(
        "GET",
        "/phone_numbers",
        reply(
            429,
            {"errors": [{"code": "10011", "title": "Too many requests"}]},
            headers={"Retry-After": "2"},
        ),
        reply(200, page([])),
    )

    assert provider.list_phone_numbers() == []
    assert sleeps == [2.0]
    assert len(fake.requests) == 2


def test_rate_limit_honours_retry_after_http_date(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    fake.on(
        "POST",
        "/ai/assistants",
        reply(429, headers={"Retry-After": "Thu, 07 May 2026 14:30:07 GMT"}),
        reply(200, assistant_json()),
    )

    assert provider.create_assistant(SPEC) == ASSISTANT_ID
    assert sleeps == [7.0]


def test_retry_after_longer_than_the_limit_fails_fast_as_retryable(
    fake: FakeTelnyx, sleeps: list[float]
) -> None:
    provider = TelnyxProvider(
        API_KEY, transport=httpx.MockTransport(fake), sleep=sleeps.append, max_retry_after=30
    )
    fake.on("GET", "/phone_numbers", reply(429, headers={"Retry-After": "3600"}))

    with pytest.raises(ProviderError) as info:
        provider.list_phone_numbers()

    assert info.value.retryable is True
    assert "3600s" in str(info.value)
    assert sleeps == []


def test_server_errors_exhaust_the_retry_budget(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    fake.on(
        "GET",
        "/phone_numbers",
        reply(
            503,
            {
                "errors": [
                    {"code": "10007", "title": "Unexpected error", "detail": "Service unavailable"}
                ]
            },
        ),
    )

    with pytest.raises(ProviderError) as info:
        provider.list_phone_numbers()

    assert "after 4 attempts" in str(info.value)
    assert "HTTP 503" in str(info.value)
    assert info.value.retryable is True
    assert info.value.status_code == 503
    assert len(fake.requests) == 4
    assert len(sleeps) == 3
    assert sleeps[0] <= sleeps[1] * 2 and sleeps[1] <= sleeps[2] * 2  # backs off, jittered
    assert all(0 < s <= 30 for s in sleeps)


def test_timeouts_are_retried_then_reported(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    conversation = "c5a1a7e2-4f0e-4a8b-9d0c-2b1f3e4d5a6b"
    fake.on("GET", f"/ai/conversations/{conversation}/messages", raise_(httpx.ReadTimeout))

    with pytest.raises(ProviderError) as info:
        provider.get_messages(conversation)

    assert "after 4 attempts" in str(info.value)
    assert "ReadTimeout" in str(info.value)
    assert info.value.retryable is True
    assert len(fake.requests) == 4 and len(sleeps) == 3


def test_a_timeout_then_success_places_the_call_once(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on(
        "POST",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        raise_(httpx.ReadTimeout),
        reply(201, event_json()),
    )
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(200, page([])),
    )

    placement = provider.place_call(call_request())

    sent = fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")
    assert len(sent) == 2
    # 09_scheduled-events.md documents no Idempotency-Key, so before re-sending a create that
    # may have reached Telnyx the client looks the attempt up (it was not there).
    assert [(r.method, r.url.path.rsplit("/", 1)[-1]) for r in fake.requests] == [
        ("POST", "scheduled_events"),
        ("GET", "scheduled_events"),
        ("POST", "scheduled_events"),
    ]
    # The retry still carries the same key and body, in case Telnyx does dedupe on it.
    assert sent[0].headers["Idempotency-Key"] == sent[1].headers["Idempotency-Key"]
    assert sent[0].content == sent[1].content
    assert placement.call_control_id.endswith(EVENT_ID)


def test_a_timeout_whose_create_reached_telnyx_is_not_sent_again(
    provider: TelnyxProvider, fake: FakeTelnyx
) -> None:
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", raise_(httpx.ReadTimeout))
    # The listed event does not echo conversation_metadata (the reference's example event in
    # 09_scheduled-events.md has none); it is matched on the documented create fields.
    listed = {k: v for k, v in event_json().items() if k != "conversation_metadata"}
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(
            200,
            {
                "data": [
                    {
                        **listed,
                        "scheduled_event_id": "other",
                        "telnyx_end_user_target": "+13125550199",
                    },
                    listed,
                ],
                "meta": {"total_pages": 1, "page_number": 1},
            },
        ),
    )

    placement = provider.place_call(call_request())

    assert placement.call_control_id == f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}"
    assert len(fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")) == 1


def test_an_unanswered_create_is_looked_up_before_the_next_place_call(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    fake.on("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events", reply(503))
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(200, page([])),
    )

    with pytest.raises(ProviderError) as info:
        provider.place_call(call_request())

    assert info.value.retryable is True
    assert "after 4 attempts" in str(info.value) and "looked up" in str(info.value)
    assert len(fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")) == 4
    assert len(fake.sent("GET", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events")) == 3
    assert len(sleeps) == 3

    # Later (the dispatcher retries with the same key): Telnyx had created it after all.
    fake.requests.clear()
    fake.on(
        "GET",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(200, page([event_json()])),
    )

    placement = provider.place_call(call_request(placed_at=NOW + timedelta(minutes=1)))

    assert placement.call_control_id == f"scheduled_event/{ASSISTANT_ID}/{EVENT_ID}"
    assert fake.sent("POST", f"/ai/assistants/{ASSISTANT_ID}/scheduled_events") == []


def test_a_refused_create_is_not_looked_up(provider: TelnyxProvider, fake: FakeTelnyx) -> None:
    fake.on(
        "POST",
        f"/ai/assistants/{ASSISTANT_ID}/scheduled_events",
        reply(
            400,
            {
                "errors": [
                    {"code": "10015", "detail": "scheduled_at_fixed_datetime must be in the future"}
                ]
            },
        ),
    )

    with pytest.raises(ProviderError) as info:
        provider.place_call(call_request())

    assert info.value.retryable is False
    assert len(fake.requests) == 1


def test_create_assistant_is_not_retried_when_it_may_have_succeeded(
    provider: TelnyxProvider, fake: FakeTelnyx, sleeps: list[float]
) -> None:
    fake.on("POST", "/ai/assistants", reply(503))

    with pytest.raises(ProviderError) as info:
        provider.create_assistant(SPEC)

    assert info.value.retryable is True
    assert "not idempotent" in str(info.value)
    assert len(fake.requests) == 1 and sleeps == []


def test_zero_retries_means_one_attempt(fake: FakeTelnyx, sleeps: list[float]) -> None:
    provider = TelnyxProvider(
        API_KEY, transport=httpx.MockTransport(fake), sleep=sleeps.append, max_retries=0
    )
    fake.on("GET", "/phone_numbers", reply(500))

    with pytest.raises(ProviderError, match="after 1 attempt;"):
        provider.list_phone_numbers()
    assert len(fake.requests) == 1 and sleeps == []


# ---------------------------------------------------------------------- secrets and config


def test_api_key_never_reaches_logs_errors_or_reprs(
    fake: FakeTelnyx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "mission_server"):
        caplog.set_level(logging.DEBUG, logger=name)
    provider = TelnyxProvider(API_KEY, transport=httpx.MockTransport(fake), sleep=lambda _: None)

    def echo_key(request: httpx.Request) -> httpx.Response:
        # A hostile or buggy server echoing the credential back in its error text.
        auth = request.headers["Authorization"]
        return httpx.Response(400, json={"errors": [{"code": "10015", "detail": auth}]})

    fake.on("GET", "/phone_numbers", reply(401, {"errors": [{"code": "10009"}]}))
    fake.on("POST", "/ai/assistants", echo_key)
    fake.on("GET", "/ai/conversations/c1/messages", raise_(httpx.ReadTimeout))
    fake.on("GET", "/ai/conversations/c2/messages", reply(503))

    errors: list[ProviderError] = []
    for action in (
        provider.list_phone_numbers,
        lambda: provider.create_assistant(SPEC),
        lambda: provider.get_messages("c1"),
        lambda: provider.get_messages("c2"),
    ):
        with pytest.raises(ProviderError) as info:
            action()
        errors.append(info.value)

    assert len(fake.requests) == 1 + 1 + 4 + 4
    assert caplog.records, "expected retry warnings and debug lines to be logged"
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.args)
    for error in errors:
        for text in (
            str(error),
            repr(error),
            repr(error.detail),
            repr(error.__cause__),
            repr(error.__context__),
        ):
            assert API_KEY not in text
    assert API_KEY not in repr(provider)
    assert API_KEY not in repr(vars(provider))


def test_from_settings_requires_the_api_key() -> None:
    with pytest.raises(ConfigurationError, match="TELNYX_API_KEY"):
        TelnyxProvider.from_settings(Settings(telnyx_api_key=None))


def test_from_settings_uses_key_and_base_url(fake: FakeTelnyx) -> None:
    settings = Settings(
        telnyx_api_key=SecretStr(API_KEY), telnyx_base_url="https://api.telnyx.test/v2"
    )
    fake.on("GET", "/phone_numbers", reply(200, page([])))

    provider = TelnyxProvider.from_settings(settings, transport=httpx.MockTransport(fake))
    provider.list_phone_numbers()

    (request,) = fake.requests
    assert request.url.host == "api.telnyx.test"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"schedule_lead": timedelta(seconds=-1)}, "schedule_lead"),
        ({"schedule_lead": timedelta(hours=1)}, "schedule_lead"),
    ],
)
def test_bad_settings_are_rejected_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TelnyxProvider(API_KEY, **kwargs)
    assert info.value.field == field


def test_empty_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="TELNYX_API_KEY"):
        TelnyxProvider("  ")
