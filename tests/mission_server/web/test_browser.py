"""The run pages in a real headless Chromium (Debian's chromium and chromium-driver, through
selenium), for a finished rehearsal of examples/catering.yaml served as ``mission serve
--http`` serves them (behind the token: the browser signs in through the form).

One browser and one server per module (xdist workers each get their own). Under ``CI=true`` a
missing browser fails these tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from mission_server.app import records_context
from mission_server.mcp.http import check_http_options
from mission_server.services import missions
from mission_server.services.context import Context
from mission_server.web.app import build_web_app
from state import models as m
from state.db import session_scope
from tests.support.browser import browser_or_skip, serving
from tests.support.rehearsal import rehearse_catering

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token"
WAIT_SECS = 15.0
#: Each would set window.__pwned (or raise an alert) if it ran.
HOSTILE = [
    "<script>window.__pwned = 'script'; alert('script')</script>",
    "\"><img src=x onerror=\"window.__pwned='img'; alert('img')\">",
    "'><svg onload=\"window.__pwned='svg'\"></svg>",
]


@dataclass
class Site:
    base: str
    ctx: Context
    catering: dict[str, Any]
    hostile_conversation: str
    hostile_run: str


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = browser_or_skip()
    try:
        yield driver
    finally:
        driver.quit()


def _hostile_records(ctx: Context) -> tuple[str, str]:
    """A mission, run and conversation whose every text is an attack."""
    mission = missions.create_mission(ctx, HOSTILE[1], description=HOSTILE[0])
    run = missions.start_run(ctx, mission.mission_id, input={"note": HOSTILE[0]})
    missions.update_run(
        ctx,
        run.run_id,
        result_summary=(
            f"**Hostile** {HOSTILE[1]}\n\n{HOSTILE[0]}\n\n"
            "[click me](javascript:window.__pwned='link')\n\n<div onclick=x>raw html</div>"
        ),
        result_payload={"text": HOSTILE[1]},
    )
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    with session_scope(ctx.engine) as session:
        session.add(
            m.Conversation(
                conversation_id="hostile-conversation",
                name=HOSTILE[1],
                run_id=run.run_id,
                channel="phone_call",
                end_user_target="+13125550199",
                instructions=HOSTILE[0],
                greeting=HOSTILE[2],
                call_status="completed",
                started_at=now,
                created_at=now,
            )
        )
        for seq, text in enumerate(HOSTILE):
            role = "assistant" if seq % 2 == 0 else "user"
            session.add(
                m.Message(
                    conversation_id="hostile-conversation",
                    seq=seq,
                    role=role,
                    text=text,
                    sent_at=now,
                )
            )
    return "hostile-conversation", run.run_id


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("web") / "catering.db"
    catering = rehearse_catering(db)
    ctx = records_context(str(db))
    conversation_id, hostile_run = _hostile_records(ctx)
    token = SecretStr(TOKEN)
    security = check_http_options("127.0.0.1", token, False, None)
    try:
        with serving(build_web_app(ctx, token=token, security=security)) as base:
            _sign_in(browser, base)
            yield Site(base, ctx, catering, conversation_id, hostile_run)
    finally:
        ctx.engine.dispose()


def _wait(browser: WebDriver) -> WebDriverWait:
    """A wait that looks again when the page swapped the element it was reading (a navigation
    or a live update between find_element and .text)."""
    return WebDriverWait(browser, WAIT_SECS, ignored_exceptions=(StaleElementReferenceException,))


def _sign_in(browser: WebDriver, base: str) -> None:
    browser.get(base + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(browser).until(lambda b: b.find_element(By.TAG_NAME, "h1").text == "Missions")


def console_errors(browser: WebDriver) -> list[str]:
    """The page's console errors since the last call (a CSP violation is one)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]


def texts(browser: WebDriver, selector: str) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, selector)]


def test_signing_in_sets_a_session_cookie_scripts_cannot_read(browser, site):
    cookies = {c["name"]: c for c in browser.get_cookies()}
    session = cookies["mission_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert "mission_session" not in browser.execute_script("return document.cookie")


def test_the_missions_page_lists_the_catering_rehearsal(browser, site):
    browser.get(site.base + "/")
    assert "Corporate catering quotes" in texts(browser, ".mission-name")
    mission = browser.find_element(
        By.CSS_SELECTOR, f"[data-mission-id='{site.catering['mission_id']}']"
    )
    assert "succeeded" in mission.find_element(By.CSS_SELECTOR, ".run-row").text
    assert "Mission complete" in mission.find_element(By.CSS_SELECTOR, ".summary-line").text
    # Filtered by status: the running hostile mission is not a succeeded one.
    browser.get(site.base + "/?status=running")
    assert "Corporate catering quotes" not in texts(browser, ".mission-name")
    assert HOSTILE[1] in texts(browser, ".mission-name")


def test_the_run_page_shows_the_plan_the_timeline_the_retry_and_the_recommendation(browser, site):
    console_errors(browser)  # only this test's pages count
    browser.get(site.base + "/")
    mission = browser.find_element(
        By.CSS_SELECTOR, f"[data-mission-id='{site.catering['mission_id']}']"
    )
    mission.find_element(By.CSS_SELECTOR, ".run-link").click()
    _wait(browser).until(lambda b: "/runs/" in b.current_url)

    steps = browser.find_elements(By.CSS_SELECTOR, "#plan li.step")
    assert len(steps) == 6
    assert all("completed" in s.find_element(By.CSS_SELECTOR, ".badge").text for s in steps)

    lanes = browser.find_elements(By.CSS_SELECTOR, "svg.timeline g.lane")
    names = [lane.get_attribute("data-target") for lane in lanes]
    assert names == ["Lakefront Catering", "Chicago Grill Co", "Prairie Table Events"]
    busy = lanes[2]
    attempts = busy.find_elements(By.CSS_SELECTOR, "g.attempt")
    assert [a.get_attribute("class") for a in attempts] == [
        "attempt status-busy",
        "attempt status-completed",
    ]
    retry = busy.find_elements(By.CSS_SELECTOR, "g.retry")
    assert len(retry) == 1
    assert "retry after 5 min" in retry[0].find_element(By.CSS_SELECTOR, "text").text
    for other in lanes[:2]:
        assert other.find_elements(By.CSS_SELECTOR, "g.retry") == []

    summary = browser.find_element(By.ID, "summary")
    assert "Chicago Grill Co offers the best value at $62/person" in summary.text
    assert len(summary.find_elements(By.CSS_SELECTOR, ".markdown table tr")) == 4
    assert "4 attempts, 4.6 min, $0.30" in browser.find_element(By.ID, "run-cost").text
    changes = texts(browser, "#variables .variable-change")
    assert len(changes) == 2
    assert "65" in changes[0] and "Lakefront Catering" in changes[0]
    assert "62" in changes[1] and "Chicago Grill Co" in changes[1]

    payload = browser.find_element(By.ID, "run-payload")
    assert not payload.find_element(By.TAG_NAME, "pre").is_displayed()
    payload.find_element(By.TAG_NAME, "summary").click()
    assert '"recommendation"' in payload.find_element(By.TAG_NAME, "pre").text
    assert console_errors(browser) == []  # nothing the CSP refused, nothing missing


def test_a_conversation_page_shows_the_transcript_with_the_injected_best_quote(browser, site):
    run_id = site.catering["run_id"]
    console_errors(browser)  # only this test's pages count
    browser.get(f"{site.base}/runs/{run_id}")
    browser.find_element(By.LINK_TEXT, "Chicago Grill Co — negotiation").click()
    _wait(browser).until(lambda b: "/conversations/" in b.current_url)

    turns = texts(browser, "#transcript .turn .said")
    assert len(turns) == 8
    assert "We have a quote of $65 per person from Lakefront Catering." in " ".join(turns)
    instructions = browser.find_element(By.ID, "instructions").text
    assert "We already have a quote of $65 per person from Lakefront Catering" in instructions
    assert "{{" not in instructions  # rendered, not the template
    rows = texts(browser, "#insights .insight-fields tbody tr")
    assert "final_price_per_person 62 62 ✓" in rows
    assert console_errors(browser) == []


def test_hostile_text_renders_as_text_and_runs_nothing(browser, site):
    for path in (
        f"/conversations/{site.hostile_conversation}",
        f"/runs/{site.hostile_run}",
        "/",
    ):
        browser.get(site.base + path)
        with pytest.raises(NoAlertPresentException):
            _ = browser.switch_to.alert.text
        assert browser.execute_script("return window.__pwned === undefined"), path
        # Escaped, not merely blocked by the CSP: no element came out of the text.
        main = browser.find_element(By.TAG_NAME, "main")
        for tag in ("img", "script", "svg[onload]", "[onclick]", "[onerror]"):
            assert main.find_elements(By.CSS_SELECTOR, tag) == [], (path, tag)
        assert main.find_elements(By.CSS_SELECTOR, "a[href^='javascript']") == []
    browser.get(f"{site.base}/conversations/{site.hostile_conversation}")
    turns = texts(browser, "#transcript .turn .said")
    assert turns == HOSTILE
    assert browser.find_element(By.ID, "instructions").text == HOSTILE[0]


def test_a_run_in_progress_updates_itself_without_a_reload(browser, site):
    mission = missions.create_mission(site.ctx, "Live mission")
    run = missions.start_run(site.ctx, mission.mission_id)
    browser.get(f"{site.base}/runs/{run.run_id}")
    assert browser.find_element(By.ID, "run-status").text == "running"
    browser.execute_script("window.__sameDocument = true")
    missions.update_run(site.ctx, run.run_id, status="succeeded", result_summary="All *done*.")
    _wait(browser).until(lambda b: b.find_element(By.ID, "run-status").text == "succeeded")
    assert browser.execute_script("return window.__sameDocument === true")
    assert "All done." in browser.find_element(By.ID, "summary").text
