"""Insight extraction off the dispatcher's thread: a slow extractor never holds up dispatch,
and whoever waits for a call (the planner) hears of it only once its insights are recorded."""

from __future__ import annotations

import threading
import time
from typing import Any

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.engine.listeners import install_listeners, shutdown_listeners
from mission_server.insights.offline import OfflineExtractor
from mission_server.services import assistants, extraction, scheduling
from mission_server.services.context import CallFinished
from tests.support.missionkit import make_ctx


class GatedExtractor(OfflineExtractor):
    """The offline extractor, held until the test opens the gate (an LLM taking its time)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def extract(self, *args: Any, **kwargs: Any) -> Any:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().extract(*args, **kwargs)


def wait_until(condition, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_calls_go_out_while_insights_are_extracted_and_settle_afterwards(tmp_path) -> None:
    ctx = make_ctx(str(tmp_path / "m.db"), tmp_path)
    extractor = GatedExtractor()
    ctx.extractor = extractor
    install_listeners(ctx, background=True)
    settled: list[tuple[str, list[str]]] = []

    def on_settled(event: CallFinished) -> None:
        assert event.conversation_id is not None
        statuses = [
            r.status
            for r in extraction.get_conversation_insights(ctx.engine, event.conversation_id)
        ]
        settled.append((event.scheduled_event_id, statuses))

    ctx.settled_listeners.append(on_settled)
    assistant = assistants.create_assistant(ctx, "Quotes", "Ask {{business_name}} for a quote.")
    assistants.assign_phone_number(ctx, assistant.assistant_id)
    calls = [
        scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant.assistant_id,
            channel="phone_call",
            to=phone,
            dynamic_variables={"business_name": name},
        )
        for name, phone in (
            ("Lakefront Catering", "+13125550101"),
            ("Chicago Grill Co", "+13125550102"),
        )
    ]
    try:
        run_until_idle(Dispatcher(ctx), ctx.clock)
        # Both calls finished although not one extraction could proceed.
        finished = [scheduling.get_scheduled_event(ctx, c.scheduled_event_id) for c in calls]
        assert [c.status for c in finished] == ["completed", "completed"]
        assert settled == []

        extractor.gate.set()
        assert wait_until(lambda: len(settled) == 2)
    finally:
        extractor.gate.set()
        shutdown_listeners(ctx)
        ctx.engine.dispose()
    assert {event_id for event_id, _ in settled} == {c.scheduled_event_id for c in calls}
    for _, statuses in settled:
        assert statuses and all(s in {"completed", "failed"} for s in statuses)


def test_without_a_pool_extraction_is_done_before_the_dispatcher_returns(tmp_path) -> None:
    ctx = make_ctx(str(tmp_path / "m.db"), tmp_path)
    install_listeners(ctx)
    heard: list[str] = []
    ctx.settled_listeners.append(lambda event: heard.append(event.scheduled_event_id))
    assistant = assistants.create_assistant(ctx, "Quotes", "Ask for a quote.")
    assistants.assign_phone_number(ctx, assistant.assistant_id)
    call = scheduling.create_scheduled_event(
        ctx, assistant_id=assistant.assistant_id, channel="phone_call", to="+13125550101"
    )
    run_until_idle(Dispatcher(ctx), ctx.clock)
    assert heard == [call.scheduled_event_id]
    ctx.engine.dispose()
