"""Cancelling reaches Telnyx: a scheduled call or a run cancelled while its attempt is a
pending Telnyx scheduled event deletes that event; one Telnyx already dispatched is
reconciled from its outcome, not assumed cancelled; a failed delete is recorded and retried.
Against a fake Telnyx account on ``httpx.MockTransport`` (every request SDK-checked)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from mission_server.clock import VirtualClock
from mission_server.engine.dispatcher import Dispatcher
from mission_server.services import assistants, missions, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.base import Placement
from mission_server.telephony.telnyx.provider import TelnyxProvider
from state import models as m
from state.db import create_schema, make_engine
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount, reply

CALLER, TARGET = "+13125550001", "+13125550101"
#: Thursday 10:00 in Chicago.
T0 = datetime(2026, 5, 7, 15, 0, tzinfo=UTC)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock(T0)
        self.account = TelnyxAccount([CALLER], clock=self.clock.now)
        self.api = FakeTelnyx(fallback=self.account)
        self.provider = TelnyxProvider(
            API_KEY,
            transport=httpx.MockTransport(self.api),
            clock=self.clock.now,
            sleep=lambda _: None,
            max_retries=0,
        )
        self.engine = make_engine(f"sqlite:///{tmp_path / 'cancel.db'}")
        create_schema(self.engine)
        self.ctx = Context(
            engine=self.engine,
            clock=self.clock,
            provider=self.provider,
            settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
        )
        self.dispatcher = Dispatcher(self.ctx)

    def placed_call(self, run_id: str | None = None) -> str:
        """A call placed at Telnyx: its scheduled event is pending there."""
        a = assistants.create_assistant(self.ctx, "Caller", "Ask for a quote.", run_id=run_id)
        assistants.assign_phone_number(self.ctx, a.assistant_id)
        call = scheduling.create_scheduled_event(
            self.ctx,
            assistant_id=a.assistant_id,
            channel="phone_call",
            to=TARGET,
            run_id=run_id,
            max_retries_client_errors=2,
            retry_interval_secs=300,
        )
        self.dispatcher.sweep()
        assert [e["status"] for e in self.account.events.values()] == ["pending"]
        return call.scheduled_event_id

    def sweep_later(self, seconds: float = 1) -> None:
        self.clock.advance(seconds)
        self.dispatcher.sweep()

    def deletes(self) -> list[httpx.Request]:
        return [r for r in self.api.requests if r.method == "DELETE"]

    def close(self) -> None:
        self.provider.close()
        self.engine.dispose()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = Setup(tmp_path)
    yield built
    built.close()


def run_events(setup: Setup, run_id: str) -> list[str]:
    with Session(setup.engine) as session:
        rows = session.exec(
            select(m.Event).where(m.Event.run_id == run_id).order_by(col(m.Event.seq))
        )
        return [e.summary for e in rows]


def new_run(setup: Setup) -> str:
    mission = missions.create_mission(setup.ctx, name="Quotes", instructions="Get quotes.")
    return missions.start_run(setup.ctx, mission.mission_id).run_id


def test_cancelling_a_call_in_flight_deletes_the_pending_telnyx_event(setup: Setup) -> None:
    event_id = setup.placed_call()

    scheduling.cancel_scheduled_event(setup.ctx, event_id)
    setup.sweep_later()

    assert setup.account.events == {}  # deleted at Telnyx: nobody is dialled
    (delete,) = setup.deletes()
    assert "/scheduled_events/" in delete.url.path
    done = scheduling.get_scheduled_event(setup.ctx, event_id)
    assert done.status == "cancelled"
    assert [a.call_status for a in done.call_attempts] == ["canceled"]
    # Later sweeps neither ask again nor place another attempt.
    setup.sweep_later(600)
    assert len(setup.deletes()) == 1 and setup.account.events == {}


def test_cancelling_a_run_deletes_its_pending_telnyx_event(setup: Setup) -> None:
    run_id = new_run(setup)
    event_id = setup.placed_call(run_id)

    missions.cancel_run(setup.ctx, run_id, reason="no longer needed")
    setup.sweep_later()

    assert setup.account.events == {}
    assert scheduling.get_scheduled_event(setup.ctx, event_id).status == "cancelled"
    summaries = run_events(setup, run_id)
    assert any("cancelled at the provider before it dialled" in s for s in summaries)


def test_an_event_telnyx_already_dispatched_is_reconciled_not_assumed_cancelled(
    setup: Setup,
) -> None:
    run_id = new_run(setup)
    event_id = setup.placed_call(run_id)
    (event,) = setup.account.events.values()
    handle = f"scheduled_event/{event['assistant_id']}/{event['scheduled_event_id']}"
    setup.account.ring(handle)  # Telnyx dispatched it: it can no longer be deleted

    missions.cancel_run(setup.ctx, run_id)
    setup.sweep_later()

    assert scheduling.get_scheduled_event(setup.ctx, event_id).status == "in_progress"
    assert any("had already dispatched it" in s for s in run_events(setup, run_id))
    ended = setup.account.finish(handle)
    setup.clock.advance_to(ended)
    setup.dispatcher.sweep()

    done = scheduling.get_scheduled_event(setup.ctx, event_id)
    # The call really happened: its real outcome is what the records hold.
    assert [a.call_status for a in done.call_attempts] == ["completed"]
    assert done.conversation_id is not None
    assert len(setup.deletes()) == 1  # asked once


def test_a_failed_delete_is_recorded_and_retried(setup: Setup) -> None:
    run_id = new_run(setup)
    event_id = setup.placed_call(run_id)
    (event,) = setup.account.events.values()
    path = f"/ai/assistants/{event['assistant_id']}/scheduled_events/{event['scheduled_event_id']}"
    setup.api.on("DELETE", path, reply(503))

    missions.cancel_run(setup.ctx, run_id)
    setup.sweep_later()

    assert len(setup.account.events) == 1
    assert any(
        "Cancelling the call to" in s and "failed" in s and "tried again" in s
        for s in run_events(setup, run_id)
    )
    assert scheduling.get_scheduled_event(setup.ctx, event_id).status == "in_progress"

    setup.api.off("DELETE", path)
    with Session(setup.engine) as session:
        row = session.get(m.ScheduledEvent, event_id)
        assert row is not None
        again = row.due_at
    # Asked again within seconds, before Telnyx dials (15 s after it was placed).
    assert again is not None and again <= setup.clock.now() + timedelta(seconds=3)
    setup.clock.advance_to(again)
    setup.dispatcher.sweep()

    assert setup.account.events == {}
    assert scheduling.get_scheduled_event(setup.ctx, event_id).status == "cancelled"
    assert len(setup.deletes()) == 2


def test_cancel_call_answers_for_each_state_of_the_event(setup: Setup) -> None:
    setup.placed_call()
    (event,) = setup.account.events.values()
    handle = f"scheduled_event/{event['assistant_id']}/{event['scheduled_event_id']}"
    placement = Placement(handle, T0)

    setup.account.ring(handle)
    assert setup.provider.cancel_call(placement) is False  # dispatched: 409, then read
    assert setup.provider.cancel_call(Placement("v3:call-control-id", T0)) is False
    assert setup.provider.cancel_call(Placement(handle.replace("event-1", "gone"), T0)) is False


def test_a_failed_events_errors_are_shown_in_the_records(setup: Setup) -> None:
    run_id = new_run(setup)
    event_id = setup.placed_call(run_id)
    (event,) = setup.account.events.values()
    event.update(
        status="failed",
        call_status="failed",
        errors=["Destination number is not reachable"],
        call_attempts=[
            {
                "attempt_number": 1,
                "attempted_at": event["scheduled_at_fixed_datetime"],
                "call_status": "failed",
                "call_duration": None,
            }
        ],
    )

    setup.sweep_later(30)

    done = scheduling.get_scheduled_event(setup.ctx, event_id)
    assert any(
        e["code"] == "provider_errors" and e["detail"] == "Destination number is not reachable"
        for e in done.errors
    )
    assert any(
        "the provider reports Destination number is not reachable" in s
        for s in run_events(setup, run_id)
    )
