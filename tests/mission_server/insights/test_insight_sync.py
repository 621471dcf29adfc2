"""Our insights kept at Telnyx as insight templates in an insight group
(``services.insight_sync``) against a fake Telnyx account: created once, updated when changed,
deleted when gone, and a create whose answer was lost is found, not made twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from mission_server.clock import VirtualClock
from mission_server.errors import ProviderError
from mission_server.services import assistants, insight_sync, insights
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.telnyx.provider import TelnyxProvider
from state import models as m
from state.db import create_schema, make_engine, session_scope
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount

NOW = datetime(2026, 5, 7, 15, 0, tzinfo=UTC)
PARAMETERS = [
    {"name": "final_price_per_person", "type": "number", "required": True},
    {"name": "includes_delivery", "type": "boolean"},
]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Context, TelnyxAccount, FakeTelnyx]]:
    account = TelnyxAccount(["+13125550001"], clock=lambda: NOW)
    api = FakeTelnyx(fallback=account)
    provider = TelnyxProvider(
        API_KEY, transport=httpx.MockTransport(api), clock=lambda: NOW, sleep=lambda _: None
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    create_schema(engine)
    ctx = Context(
        engine=engine,
        clock=VirtualClock(NOW),
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
    )
    yield ctx, account, api
    provider.close()
    engine.dispose()


def group_with_two_insights(ctx: Context) -> tuple[str, str, str]:
    quote = insights.create_insight(
        ctx.engine, name="Quote", instructions="The quote.", parameters=PARAMETERS, now=NOW
    )
    summary = insights.create_insight(ctx.engine, name="Notes", instructions="Notes.", now=NOW)
    group = insights.create_insight_group(
        ctx.engine, "Catering", [quote.insight_id, summary.insight_id], now=NOW
    )
    return group.insight_group_id, quote.insight_id, summary.insight_id


def test_a_group_becomes_a_telnyx_group_of_templates_once(setup) -> None:
    ctx, account, api = setup
    group_id, quote_id, notes_id = group_with_two_insights(ctx)

    remote = insight_sync.remote_group_id(ctx, group_id)

    assert remote is not None and account.groups[remote]["name"] == f"Catering [{group_id}]"
    quote_ref = insight_sync.remote_insight_id(ctx.engine, quote_id)
    notes_ref = insight_sync.remote_insight_id(ctx.engine, notes_id)
    assert account.groups[remote]["insight_ids"] == [quote_ref, notes_ref]
    quote = account.templates[quote_ref]
    assert quote["json_schema"] == {
        "title": "Quote",
        "type": "object",
        "properties": {
            "final_price_per_person": {"type": "number"},
            "includes_delivery": {"type": "boolean"},
        },
        "required": ["final_price_per_person"],
        "additionalProperties": False,
    }
    assert "json_schema" not in account.templates[notes_ref]  # free text
    creates = [r for r in api.requests if r.method == "POST" and r.url.path.endswith("insights")]
    assert all(r.headers.get("Idempotency-Key") for r in creates)

    # Nothing changed: in step already, so nothing is created, updated or assigned again.
    api.requests.clear()
    assert insight_sync.remote_group_id(ctx, group_id) == remote
    assert {r.method for r in api.requests} == {"GET"}
    assert len(account.templates) == 2 and len(account.groups) == 1


def test_a_create_whose_answer_was_lost_is_found_by_name_not_made_twice(setup) -> None:
    ctx, account, api = setup
    group_id, quote_id, _ = group_with_two_insights(ctx)

    def created_then_lost(request: httpx.Request) -> httpx.Response:
        account(request)  # Telnyx made the template...
        raise httpx.ReadTimeout("timed out", request=request)  # ...and the answer was lost

    api.on("POST", "/ai/conversations/insights", created_then_lost)
    with pytest.raises(ProviderError) as info:
        insight_sync.remote_group_id(ctx, group_id)
    assert info.value.retryable is True
    assert len(account.templates) == 1
    assert insight_sync.remote_insight_id(ctx.engine, quote_id) is None

    api.off("POST", "/ai/conversations/insights")
    remote = insight_sync.remote_group_id(ctx, group_id)

    assert len(account.templates) == 2  # the lost one was found, the other one created
    (found,) = [t for t in account.templates.values() if t["name"].startswith("Quote [")]
    assert insight_sync.remote_insight_id(ctx.engine, quote_id) == found["id"]
    assert remote is not None and len(account.groups[remote]["insight_ids"]) == 2


def test_a_changed_insight_is_updated_and_a_deleted_one_deleted_at_telnyx(setup) -> None:
    ctx, account, _api = setup
    group_id, quote_id, notes_id = group_with_two_insights(ctx)
    remote = insight_sync.remote_group_id(ctx, group_id)
    assert remote is not None
    quote_ref = insight_sync.remote_insight_id(ctx.engine, quote_id)
    notes_ref = insight_sync.remote_insight_id(ctx.engine, notes_id)

    with session_scope(ctx.engine) as session:
        row = session.get(m.Insight, quote_id)
        assert row is not None
        row.instructions = "The final quote, per person."
        session.add(row)
        member = session.get(m.InsightGroupMember, (group_id, notes_id))
        session.delete(member)
        session.flush()
        session.delete(session.get(m.Insight, notes_id))

    insight_sync.remote_group_id(ctx, group_id)

    assert quote_ref is not None and notes_ref is not None
    assert account.templates[quote_ref]["instructions"] == "The final quote, per person."
    assert notes_ref not in account.templates
    assert account.groups[remote]["insight_ids"] == [quote_ref]
    with Session(ctx.engine) as session:
        assert session.get(m.TelnyxId, ("insight", notes_id)) is None


def test_an_assistant_given_a_group_later_names_the_telnyx_group(setup) -> None:
    ctx, account, _api = setup
    group_id, _, _ = group_with_two_insights(ctx)
    assistant = assistants.create_assistant(ctx, "Caller", "Ask for a quote.")
    remote = account.assistants[assistant.provider_ref]
    assert "insight_settings" not in remote

    # assign_insight_group (the MCP tool records it, then pushes the assistant)...
    insights.assign_insight_group(ctx.engine, assistant.assistant_id, group_id, now=NOW)
    assistants.push_assistant(ctx, assistant.assistant_id)
    telnyx_group = insight_sync.remote_group_id(ctx, group_id)
    assert remote["insight_settings"] == {"insight_group_id": telnyx_group}

    # ...and update_assistant with a group.
    other = insights.create_insight_group(ctx.engine, "Other", [], now=NOW)
    assistants.update_assistant(
        ctx, assistant.assistant_id, insight_group_id=other.insight_group_id
    )
    assert remote["insight_settings"]["insight_group_id"] != group_id
    assert remote["insight_settings"]["insight_group_id"] in account.groups
    assert len(account.groups) == 2
