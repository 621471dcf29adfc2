"""get_run reads the run detail with Core selects: it must return exactly what building it
from the ORM objects returns, for a run with every part filled in: calls and conversations in
time order and named by target, transcripts, insight results and the event log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from mission_server.engine.runner import drive_virtual
from mission_server.services import missions
from mission_server.services.extraction import get_conversation_insights
from mission_server.services.insight_schemas import InsightResultOut
from mission_server.services.schemas import (
    AssistantOut,
    ConversationOut,
    EventOut,
    PlanStepOut,
    RunOut,
    ScheduledEventOut,
)
from state import models as m
from state import repo
from state.db import session_scope
from state.errors import NotFound
from tests.support.missionkit import catering

WINDY = "+13125550104"


def orm_detail(
    session: Session, run_id: str, insights: dict[str, list[InsightResultOut]]
) -> missions.RunDetail:
    """The run detail as the ORM builds it (get_run's former implementation)."""
    run = repo.load_run(session, run_id)
    mission = repo.load_mission(session, run.mission_id)
    steps = session.exec(
        select(m.PlanStep)
        .where(m.PlanStep.run_id == run_id)
        .order_by(col(m.PlanStep.sequence), col(m.PlanStep.id))
    ).all()
    assistants = session.exec(
        select(m.Assistant)
        .join(m.RunAgent, col(m.RunAgent.assistant_id) == col(m.Assistant.assistant_id))
        .where(m.RunAgent.run_id == run_id)
        .order_by(col(m.RunAgent.created_at))
    ).all()
    numbers: dict[str, list[str]] = {}
    for number in session.exec(
        select(m.PhoneNumber).where(
            col(m.PhoneNumber.assistant_id).in_([a.assistant_id for a in assistants])
        )
    ):
        numbers.setdefault(number.assistant_id or "", []).append(number.phone_number)
    events = session.exec(select(m.ScheduledEvent).where(m.ScheduledEvent.run_id == run_id)).all()
    attempts = repo.attempts_by_event(session, [e.scheduled_event_id for e in events])

    def first_try(e: m.ScheduledEvent):
        tried = attempts.get(e.scheduled_event_id)
        at = tried[0].attempted_at if tried else e.scheduled_at_fixed_datetime
        return (at, e.created_at, e.scheduled_event_id)

    events = sorted(events, key=first_try)
    names = {e.scheduled_event_id: (e.conversation_metadata or {}).get("target") for e in events}
    conversations = sorted(
        session.exec(select(m.Conversation).where(m.Conversation.run_id == run_id)).all(),
        key=lambda c: (c.started_at or c.created_at, c.attempt_number or 0, c.conversation_id),
    )
    trail = session.exec(
        select(m.Event).where(m.Event.run_id == run_id).order_by(col(m.Event.seq))
    ).all()

    def conversation(c: m.Conversation) -> missions.RunConversationOut:
        messages = session.exec(
            select(m.Message)
            .where(m.Message.conversation_id == c.conversation_id)
            .order_by(col(m.Message.seq))
        ).all()
        return missions.RunConversationOut(
            **ConversationOut.of(c, list(messages)).model_dump(),
            target_name=names.get(c.scheduled_event_id or ""),
            attempt_number=c.attempt_number,
            insights=insights[c.conversation_id],
        )

    return missions.RunDetail(
        **RunOut.of(run).model_dump(),
        mission_name=mission.name,
        plan=[PlanStepOut.of(s) for s in steps],
        assistants=[AssistantOut.of(a, numbers.get(a.assistant_id)) for a in assistants],
        scheduled_calls=[
            missions.RunCallOut(
                **ScheduledEventOut.of(e, attempts.get(e.scheduled_event_id, [])).model_dump(),
                target_name=names[e.scheduled_event_id],
            )
            for e in events
        ],
        conversations=[conversation(c) for c in conversations],
        events=[EventOut.of(e) for e in trail],
    )


def assert_same(ctx, run_id: str) -> missions.RunDetail:
    detail = missions.get_run(ctx, run_id)
    with session_scope(ctx.engine) as session:
        talks = session.exec(select(m.Conversation).where(m.Conversation.run_id == run_id)).all()
        ids = [c.conversation_id for c in talks]
    insights = {i: get_conversation_insights(ctx.engine, i) for i in ids}
    with session_scope(ctx.engine) as session:
        expected = orm_detail(session, run_id, insights)
    assert detail == expected
    assert detail.model_fields_set == expected.model_fields_set
    assert detail.model_dump_json() == expected.model_dump_json()
    assert type(detail.plan[0] if detail.plan else None) is type(
        expected.plan[0] if expected.plan else None
    )
    return detail


def test_get_run_matches_the_orm_detail_for_a_run_with_every_part(sim):
    ctx, runner = sim
    spec = catering()
    spec["targets"].insert(1, {"name": "Windy City Bites", "phone": WINDY})
    run_id = runner.start(spec)
    drive_virtual(ctx, runner, [run_id])
    with session_scope(ctx.engine) as session:
        # A calling-hours deferral on one call and two numbers on the linked assistant, so
        # every part of the detail has something in it.
        event = session.exec(
            select(m.ScheduledEvent).where(m.ScheduledEvent.run_id == run_id)
        ).first()
        assert event is not None
        at = event.scheduled_at_fixed_datetime
        event.deferrals = [
            {
                "requested": (at - timedelta(hours=9)).isoformat(),
                "moved_to": at.isoformat(),
                "reason": "outside calling hours",
                "recorded_at": (at - timedelta(hours=10)).isoformat(),
            }
        ]
        session.add(event)
        link = session.exec(select(m.RunAgent).where(m.RunAgent.run_id == run_id)).first()
        assert link is not None
        for number in session.exec(select(m.PhoneNumber).limit(2)):
            number.assistant_id = link.assistant_id
            session.add(number)

    detail = assert_same(ctx, run_id)
    assert detail.status == "succeeded"
    assert detail.plan and detail.assistants and detail.conversations
    assert len(detail.assistants[0].phone_numbers) >= 2
    windy = next(c for c in detail.scheduled_calls if c.telnyx_end_user_target == WINDY)
    assert [a.attempt_number for a in windy.call_attempts] == [1, 2, 3]
    assert any(c.deferrals for c in detail.scheduled_calls)
    assert [c.target_name for c in detail.scheduled_calls] == [
        "Lakefront Catering",
        "Windy City Bites",
        "Chicago Grill Co",
        "Prairie Table Events",
    ]
    assert all(c.messages and c.insights for c in detail.conversations)
    assert detail.events[0].summary == "Run started"


def test_get_run_of_a_bare_run(sim):
    ctx, _ = sim
    mission = missions.create_mission(ctx, "Bare")
    run = missions.start_run(ctx, mission.mission_id, input={"guests": 5})
    detail = assert_same(ctx, run.run_id)
    assert detail.mission_name == "Bare"
    assert detail.plan == detail.assistants == detail.scheduled_calls == []
    assert detail.conversations == []
    assert [e.summary for e in detail.events] == ["Run started"]
    assert detail.recorded_at is not None and not detail.awaiting_approval


def test_get_run_of_an_unknown_run_raises_not_found(sim):
    ctx, _ = sim
    with pytest.raises(NotFound) as raised:
        missions.get_run(ctx, "no-such-run")
    with session_scope(ctx.engine) as session, pytest.raises(NotFound) as expected:
        repo.load_run(session, "no-such-run")
    assert str(raised.value) == str(expected.value)
