"""Shutdown in seconds: queued extractions are abandoned, and the next process does them."""

from __future__ import annotations

import threading
import time

from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.engine.listeners import (
    EXTRACTION_THREADS,
    install_listeners,
    shutdown_listeners,
)
from mission_server.insights.offline import OfflineExtractor
from mission_server.services import assistants, extraction, scheduling
from mission_server.services.context import Context


class SlowExtractor(OfflineExtractor):
    """Takes ``delay`` seconds per insight, like a Telnyx poll."""

    def __init__(self, delay: float, release: threading.Event) -> None:
        super().__init__()
        self.delay = delay
        self.release = release

    def extract(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.release.wait(self.delay)
        return super().extract(*args, **kwargs)


def test_shutdown_abandons_queued_extractions_and_the_next_process_does_them(
    engine, clock, provider, ctx
):
    hold = threading.Event()
    busy = Context(
        engine=engine,
        clock=clock,
        provider=provider,
        settings=ctx.settings,
        extractor=SlowExtractor(120.0, hold),
    )
    install_listeners(busy, background=True)
    a = assistants.create_assistant(busy, "Caller", "Ask for a quote.", greeting="Hello!")
    assistants.assign_phone_number(busy, a.assistant_id)
    for i in range(12):
        scheduling.create_scheduled_event(
            busy, assistant_id=a.assistant_id, channel="phone_call", to=f"+1312555010{i % 10}"
        )
    run_until_idle(Dispatcher(busy), clock)
    started = time.monotonic()
    shutdown_listeners(busy)
    assert time.monotonic() - started < 10
    left = extraction.unextracted_conversations(engine)
    assert len(left) == 12  # none lost, none extracted
    hold.set()  # the abandoned threads finish the extractions they had started
    deadline = time.monotonic() + 10
    while any(t.name.startswith("insights_") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the abandoned extraction threads did not end"
        time.sleep(0.01)
    left = extraction.unextracted_conversations(engine)
    assert 12 - EXTRACTION_THREADS <= len(left) <= 12  # only what was running got finished
    later = Context(
        engine=engine,
        clock=clock,
        provider=provider,
        settings=ctx.settings,
        extractor=OfflineExtractor(),
    )
    assert extraction.settle_unextracted(later) == len(left)  # a new process does the rest
    assert extraction.unextracted_conversations(engine) == []
