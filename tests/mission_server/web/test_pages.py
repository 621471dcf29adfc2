"""What the pages draw from the records, without a browser: the calling-hours deferral on the
timeline with its reason, a call waiting for its time, and paging of the missions list."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from starlette.testclient import TestClient

from mission_server.mcp.http import transport_security
from mission_server.services import assistants, missions, plans, scheduling
from mission_server.web import app as web_app
from mission_server.web import views
from mission_server.web.app import build_web_app


def local(ctx) -> TestClient:
    app = build_web_app(ctx, token=None, security=transport_security("127.0.0.1", None))
    return TestClient(app, base_url="http://127.0.0.1:8766")


def test_a_call_deferred_by_calling_hours_shows_the_move_and_its_reason(ctx, clock):
    mission = missions.create_mission(ctx, "After hours")
    run = missions.start_run(ctx, mission.mission_id)
    caller = assistants.create_assistant(ctx, "Caller", "Ask for a quote.", greeting="Hello!")
    assistants.assign_phone_number(ctx, caller.assistant_id)
    # Friday 2026-03-13 22:30 UTC = 17:30 in Chicago: after hours; next opening Monday 09:00.
    clock.advance_to(datetime(2026, 3, 13, 22, 30, tzinfo=UTC))
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=caller.assistant_id,
        channel="phone_call",
        to="+13125550101",
        run_id=run.run_id,
    )
    reason = call.deferrals[0].reason
    assert "outside calling hours" in reason

    page = local(ctx).get(f"/runs/{run.run_id}")
    assert page.status_code == 200
    deferral = re.search(r'<g class="deferral"><title>([^<]*)</title>', page.text)
    assert deferral is not None
    assert "Deferred from 2026-03-13 22:30:00 UTC to 2026-03-16 14:00:00 UTC" in deferral[1]
    assert reason in html.unescape(deferral[1])
    assert '<g class="scheduled"><title>Scheduled for 2026-03-16 14:00:00 UTC' in page.text
    assert "not placed yet; due 2026-03-16 14:00:00 UTC" in page.text
    # The run has not finished: the page polls for updates (its own script, no inline code).
    assert 'data-live="' in page.text
    assert '<script src="/static/live.js" defer></script>' in page.text


def test_the_missions_list_pages_and_filters_by_run_status(ctx, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    names = [f"Mission {i}" for i in range(5)]
    for i, name in enumerate(names):
        mission = missions.create_mission(ctx, name)
        if i == 1:
            missions.start_run(ctx, mission.mission_id)
    client = local(ctx)
    seen: list[str] = []
    url = "/"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        seen += re.findall(r'<h2 class="mission-name">([^<]*)</h2>', page.text)
        found = re.search(r'id="next-page" href="([^"]*)"', page.text)
        url = found[1].replace("&amp;", "&") if found else ""
    assert sorted(seen) == names and len(seen) == len(set(seen))
    running = client.get("/?status=running").text
    assert re.findall(r'<h2 class="mission-name">([^<]*)</h2>', running) == ["Mission 1"]
    assert "No missions with a failed run." in client.get("/?status=failed").text


def test_a_long_event_log_is_cut_and_counted(ctx, monkeypatch):
    monkeypatch.setattr(web_app, "EVENTS_SHOWN", 3)
    mission = missions.create_mission(ctx, "Chatty")
    run = missions.start_run(ctx, mission.mission_id)
    for i in range(5):
        plans.log_event(ctx, run.run_id, "custom", f"note {i}")
    total = len(missions.get_run(ctx, run.run_id).events)
    page = local(ctx).get(f"/runs/{run.run_id}").text
    events = re.search(r'<ol class="events">(.*?)</ol>', page, re.S)
    assert events is not None and events[1].count("<li>") == 3
    assert f"… ({total} events; the first 3 are shown" in page
