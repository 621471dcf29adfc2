"""The insight service on a temporary SQLite database: definitions, groups, assignment,
extraction with status progression, rendering, delivery and the memory hook."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mission_server.errors import NotFound, ValidationError
from mission_server.insights.base import ExtractionResult, InsightDefinition
from mission_server.insights.offline import OfflineExtractor
from mission_server.net.webhooks import WebhookSender
from mission_server.services import extraction
from mission_server.services import insights as service
from mission_server.telephony.base import TranscriptMessage
from state import models as m

NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
TURNS = [
    ("assistant", "Hi! What would you charge per person for 40 guests?"),
    ("user", "We'd be at sixty-two dollars per person."),
    ("assistant", "Does that include delivery?"),
    ("user", "No, delivery is $150 extra."),
]
QUOTE_PARAMETERS = [
    {
        "name": "price_per_person",
        "type": "number",
        "required": True,
        "description": "Price per person they quoted",
    },
    {"name": "delivery_included", "type": "boolean", "required": True},
]


def count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return len(session.exec(select(table)).all())


def quote_group(engine: Engine, webhook_url: str | None = None) -> tuple[Any, Any]:
    quote = service.create_insight(
        engine,
        name="Quote",
        instructions="Quote for {{event}}.",
        parameters=QUOTE_PARAMETERS,
        now=NOW,
    )
    group = service.create_insight_group(
        engine, "Catering", [quote.insight_id], webhook_url=webhook_url, now=NOW
    )
    return quote, group


# ----------------------------------------------------------------------------- definitions


def test_create_get_and_list_insights(engine: Engine) -> None:
    quote = service.create_insight(
        engine, name="Quote", instructions="Extract it.", parameters=QUOTE_PARAMETERS, now=NOW
    )
    free = service.create_insight(
        engine, name="Sentiment", instructions="How did it go?", now=NOW + timedelta(seconds=1)
    )
    assert quote.structured and not free.structured
    assert [p.name for p in quote.parameters] == ["price_per_person", "delivery_included"]
    assert service.get_insight(engine, quote.insight_id) == quote
    assert [i.name for i in service.list_insights(engine)] == ["Quote", "Sentiment"]
    assert quote.created_at == NOW


def test_a_bad_definition_names_the_field_and_writes_nothing(engine: Engine) -> None:
    with pytest.raises(ValidationError) as caught:
        service.create_insight(
            engine,
            name="Quote",
            now=NOW,
            parameters=[
                {"name": "style", "type": "enum"},
            ],
        )
    assert caught.value.field == "parameters[0].enum"
    assert count(engine, m.Insight) == 0
    with pytest.raises(NotFound):
        service.get_insight(engine, "missing")


def test_the_default_summary_insight_exists_once(engine: Engine) -> None:
    first = service.ensure_default_summary_insight(engine, now=NOW)
    second = service.ensure_default_summary_insight(engine, now=NOW + timedelta(hours=1))
    assert first == second
    assert first.name == "Summary" and not first.structured
    assert count(engine, m.Insight) == 1


# ----------------------------------------------------------------------------- groups


def test_groups_keep_insight_order_and_validate_members(engine: Engine) -> None:
    quote, _group = quote_group(engine)
    summary = service.ensure_default_summary_insight(engine, now=NOW)
    group = service.create_insight_group(
        engine,
        "Both",
        [summary.insight_id, quote.insight_id],
        webhook_url="https://hooks.example.com/insights",
        now=NOW,
    )
    assert group.insight_ids == [summary.insight_id, quote.insight_id]
    assert service.get_insight_group(engine, group.insight_group_id) == group
    assert len(service.list_insight_groups(engine)) == 2

    before = count(engine, m.InsightGroup)
    with pytest.raises(ValidationError) as caught:
        service.create_insight_group(engine, "Bad", [quote.insight_id, "ghost"], now=NOW)
    assert caught.value.field == "insight_ids" and caught.value.value == ["ghost"]
    with pytest.raises(ValidationError) as caught:
        service.create_insight_group(engine, "Bad", [quote.insight_id, quote.insight_id], now=NOW)
    assert caught.value.field == "insight_ids[1]"
    with pytest.raises(ValidationError) as caught:
        service.create_insight_group(engine, "Bad", [], webhook_url="ftp://x", now=NOW)
    assert caught.value.field == "webhook_url"
    assert count(engine, m.InsightGroup) == before


def test_an_assistant_has_one_group_and_may_override_its_webhook(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    _quote, group = quote_group(engine, webhook_url="https://hooks.example.com/group")
    seeded = seed(engine, TURNS)
    settings = service.assign_insight_group(
        engine, seeded.assistant_id, group.insight_group_id, now=NOW
    )
    assert settings.effective_webhook_url == "https://hooks.example.com/group"
    settings = service.assign_insight_group(
        engine,
        seeded.assistant_id,
        group.insight_group_id,
        webhook_url="https://staging.example.com/x",
        now=NOW,
    )
    assert settings.webhook_url == "https://staging.example.com/x"
    assert settings.effective_webhook_url == "https://staging.example.com/x"

    with pytest.raises(NotFound):
        service.assign_insight_group(engine, "ghost", group.insight_group_id, now=NOW)
    with pytest.raises(NotFound):
        service.assign_insight_group(engine, seeded.assistant_id, "ghost", now=NOW)
    with pytest.raises(ValidationError) as caught:
        service.assign_insight_group(
            engine, seeded.assistant_id, None, webhook_url="https://x.example.com", now=NOW
        )
    assert caught.value.field == "webhook_url"

    cleared = service.assign_insight_group(engine, seeded.assistant_id, None, now=NOW)
    assert cleared.insight_group_id is None and cleared.effective_webhook_url is None


# ----------------------------------------------------------------------------- extraction


class Spy:
    """Wraps an extractor; records each definition and the stored statuses mid-extraction."""

    name = "spy"

    def __init__(self, engine: Engine, inner: Any = None, fail_on: str | None = None) -> None:
        self.engine = engine
        self.inner = inner or OfflineExtractor()
        self.fail_on = fail_on
        self.definitions: list[InsightDefinition] = []
        self.seen_statuses: list[dict[str, str]] = []

    def extract(
        self,
        definition: InsightDefinition,
        transcript: Sequence[TranscriptMessage],
        *,
        conversation_id: str | None = None,
    ) -> ExtractionResult:
        self.definitions.append(definition)
        with Session(self.engine) as session:
            self.seen_statuses.append(
                {r.insight_id: r.status for r in session.exec(select(m.InsightResult)).all()}
            )
        if definition.name == self.fail_on:
            raise RuntimeError("model crashed")
        return self.inner.extract(definition, transcript, conversation_id=conversation_id)


def test_without_a_group_the_conversation_gets_the_summary(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    seed(engine, TURNS)
    [result] = extraction.extract_conversation_insights(
        engine, "conv-1", OfflineExtractor(), now=NOW
    )
    assert result.insight_name == "Summary"
    assert result.status == "completed"
    assert "$62 per person" in result.result
    assert result.extractor == "offline"
    assert extraction.get_conversation_insights(engine, "conv-1") == [
        result.model_copy(update={"missing": []})
    ]


def test_results_move_pending_in_progress_completed_with_rendered_instructions(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    quote, group = quote_group(engine)
    summary = service.ensure_default_summary_insight(engine, now=NOW)
    both = service.create_insight_group(
        engine, "Both", [quote.insight_id, summary.insight_id], now=NOW
    )
    seeded = seed(engine, TURNS, dynamic_variables={"event": "a team dinner"})
    service.assign_insight_group(engine, seeded.assistant_id, both.insight_group_id, now=NOW)
    spy = Spy(engine)
    results = extraction.extract_conversation_insights(engine, "conv-1", spy, now=NOW)

    assert [(r.insight_name, r.status) for r in results] == [
        ("Quote", "completed"),
        ("Summary", "completed"),
    ]
    assert results[0].result == {"price_per_person": 62, "delivery_included": False}
    assert spy.seen_statuses == [
        {quote.insight_id: "in_progress", summary.insight_id: "pending"},
        {quote.insight_id: "completed", summary.insight_id: "in_progress"},
    ]
    assert spy.definitions[0].instructions == "Quote for a team dinner."
    assert group.insight_ids == [quote.insight_id]


def test_explicit_variables_win_and_system_variables_are_available(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    quote = service.create_insight(
        engine,
        name="Quote",
        now=NOW,
        parameters=QUOTE_PARAMETERS,
        instructions="{{event}} with {{telnyx_end_user_target}} over "
        "{{telnyx_conversation_channel}}; {{unknown_thing}}",
    )
    group = service.create_insight_group(engine, "G", [quote.insight_id], now=NOW)
    seeded = seed(engine, TURNS, dynamic_variables={"event": "lunch"})
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    spy = Spy(engine)
    extraction.extract_conversation_insights(
        engine, "conv-1", spy, now=NOW, variables={"event": "gala"}
    )
    assert spy.definitions[0].instructions == (
        "gala with +13125550101 over phone_call; {{unknown_thing}}"
    )


def test_a_required_field_not_found_is_a_failed_row_with_the_reason(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    _quote, group = quote_group(engine)
    seeded = seed(
        engine, [("assistant", "What would you charge?"), ("user", "I'll have to call you back.")]
    )
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    [result] = extraction.extract_conversation_insights(
        engine, "conv-1", OfflineExtractor(), now=NOW
    )
    assert result.status == "failed"
    assert result.result is None
    assert "price_per_person" in result.error
    assert result.missing == ["price_per_person", "delivery_included"]


def test_an_extractor_that_raises_leaves_a_failed_row_not_one_in_progress(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    quote, _group = quote_group(engine)
    summary = service.ensure_default_summary_insight(engine, now=NOW)
    both = service.create_insight_group(
        engine, "Both", [quote.insight_id, summary.insight_id], now=NOW
    )
    seeded = seed(engine, TURNS)
    service.assign_insight_group(engine, seeded.assistant_id, both.insight_group_id, now=NOW)
    results = extraction.extract_conversation_insights(
        engine, "conv-1", Spy(engine, fail_on="Quote"), now=NOW
    )
    assert [r.status for r in results] == ["failed", "completed"]
    assert "RuntimeError: model crashed" in results[0].error
    stored = {
        r.insight_name: r.status for r in extraction.get_conversation_insights(engine, "conv-1")
    }
    assert stored == {"Quote": "failed", "Summary": "completed"}


def test_extracting_again_replaces_the_earlier_results(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    _quote, group = quote_group(engine)
    seeded = seed(engine, TURNS)
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    extraction.extract_conversation_insights(
        engine, "conv-1", Spy(engine, fail_on="Quote"), now=NOW
    )
    [again] = extraction.extract_conversation_insights(
        engine, "conv-1", OfflineExtractor(), now=NOW + timedelta(minutes=5)
    )
    assert again.status == "completed" and again.error is None
    assert again.created_at == NOW and again.updated_at == NOW + timedelta(minutes=5)
    assert count(engine, m.InsightResult) == 1


def test_extraction_delivers_the_group_webhook(
    engine: Engine, seed: Callable[..., Any], receiver: Any
) -> None:
    _quote, group = quote_group(engine, webhook_url=f"{receiver.base_url}/hook")
    seeded = seed(engine, TURNS)
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    extraction.extract_conversation_insights(
        engine,
        "conv-1",
        OfflineExtractor(),
        now=NOW,
        sender=WebhookSender(secret="s", sleep=lambda _s: None),
    )
    [request] = receiver.received
    assert b'"price_per_person":62' in request.body
    assert count(engine, m.WebhookDelivery) == 1


def test_extraction_checks_its_inputs_before_writing(engine: Engine) -> None:
    with pytest.raises(NotFound):
        extraction.extract_conversation_insights(engine, "ghost", OfflineExtractor(), now=NOW)
    with pytest.raises(ValidationError) as caught:
        extraction.extract_conversation_insights(
            engine, "ghost", OfflineExtractor(), now=datetime(2026, 3, 2, 16)
        )
    assert caught.value.field == "now"
    assert count(engine, m.InsightResult) == 0
    with pytest.raises(NotFound):
        extraction.get_conversation_insights(engine, "ghost")


def test_a_stored_insight_edited_by_hand_is_read_as_it_is_now(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    quote, group = quote_group(engine)
    seeded = seed(engine, TURNS)
    service.assign_insight_group(engine, seeded.assistant_id, group.insight_group_id, now=NOW)
    [first] = extraction.extract_conversation_insights(
        engine, "conv-1", OfflineExtractor(), now=NOW
    )
    insights = m.Insight.__table__
    edit = insights.update().where(insights.c.insight_id == quote.insight_id)
    with engine.begin() as conn:  # updated_at left as it was, as a hand edit would
        conn.execute(edit.values(parameters=[{"name": "style", "type": "enum"}]))
    with pytest.raises(ValidationError) as caught:
        extraction.extract_conversation_insights(
            engine, "conv-1", OfflineExtractor(), now=NOW + timedelta(minutes=1)
        )
    assert caught.value.field == f"insight {quote.insight_id} parameters[0].enum"
    [kept] = extraction.get_conversation_insights(engine, "conv-1")
    assert (kept.status, kept.result, kept.updated_at) == (first.status, first.result, NOW)

    with engine.begin() as conn:
        conn.execute(edit.values(parameters=[QUOTE_PARAMETERS[0]]))
    [again] = extraction.extract_conversation_insights(
        engine, "conv-1", OfflineExtractor(), now=NOW + timedelta(minutes=2)
    )
    assert again.status == "completed"
    assert again.result == {"price_per_person": 62}


# ----------------------------------------------------------------------------- memory


def test_prior_conversations_filter_by_target_and_metadata_newest_first(
    engine: Engine, seed: Callable[..., Any]
) -> None:
    quote, group = quote_group(engine)
    first = seed(
        engine,
        TURNS,
        conversation_id="c-old",
        metadata={"user_id": "123"},
        created_at=NOW - timedelta(days=2),
    )
    seed(
        engine,
        TURNS,
        conversation_id="c-new",
        assistant_id=first.assistant_id,
        metadata={"user_id": "123"},
        created_at=NOW - timedelta(days=1),
    )
    seed(
        engine,
        TURNS,
        conversation_id="c-other-user",
        assistant_id=first.assistant_id,
        metadata={"user_id": "999"},
        created_at=NOW,
    )
    seed(
        engine,
        TURNS,
        conversation_id="c-other-number",
        assistant_id=first.assistant_id,
        end_user_target="+13125550202",
        metadata={"user_id": "123"},
        created_at=NOW,
    )
    service.assign_insight_group(engine, first.assistant_id, group.insight_group_id, now=NOW)
    for conversation_id in ("c-old", "c-new"):
        extraction.extract_conversation_insights(
            engine, conversation_id, OfflineExtractor(), now=NOW
        )

    prior = extraction.list_prior_conversations(
        engine, end_user_target="+13125550101", metadata={"user_id": "123"}
    )
    assert [c.conversation_id for c in prior] == ["c-new", "c-old"]
    assert prior[0].metadata == {"user_id": "123"}
    assert [(i.insight_name, i.result["price_per_person"]) for i in prior[0].insights] == [
        ("Quote", 62)
    ]
    assert [
        c.conversation_id
        for c in extraction.list_prior_conversations(
            engine, end_user_target="+13125550101", limit=1
        )
    ] == ["c-other-user"]
    first_page = extraction.list_prior_conversations(
        engine, end_user_target="+13125550101", metadata={"user_id": "123"}, limit=1
    )
    second_page = extraction.list_prior_conversations(
        engine,
        end_user_target="+13125550101",
        metadata={"user_id": "123"},
        limit=1,
        cursor=first_page.next_cursor,
    )
    assert [c.conversation_id for c in first_page] == ["c-new"] and first_page.next_cursor
    assert [c.conversation_id for c in second_page] == ["c-old"]
    assert second_page.next_cursor is None
    only_summary = extraction.list_prior_conversations(
        engine, metadata={"user_id": "123"}, insight_ids=["not-this-one"]
    )
    assert all(c.insights == [] for c in only_summary)
    assert quote.insight_id in {i.insight_id for i in prior[1].insights}
    with pytest.raises(ValidationError) as caught:
        extraction.list_prior_conversations(engine, limit=0)
    assert caught.value.field == "limit"


@pytest.mark.parametrize(
    "written",
    ["+13125550101", "312-555-0101", "+1 312 555 0101", "(312) 555-0101", " 3125550101 "],
)
def test_prior_conversations_match_the_target_however_it_is_written(
    engine: Engine, seed: Callable[..., Any], written: str
) -> None:
    seed(engine, TURNS, conversation_id="c-chicago")
    seed(engine, TURNS, conversation_id="c-elsewhere", end_user_target="+13125550202")
    prior = extraction.list_prior_conversations(engine, end_user_target=written)
    assert [c.conversation_id for c in prior] == ["c-chicago"]
    assert prior[0].end_user_target == "+13125550101"


def test_prior_conversations_refuse_a_target_that_is_not_a_number(engine: Engine) -> None:
    with pytest.raises(ValidationError) as caught:
        extraction.list_prior_conversations(engine, end_user_target="call the caterer")
    assert caught.value.field == "end_user_target"
    assert caught.value.value == "call the caterer"
