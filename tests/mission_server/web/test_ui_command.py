"""``mission ui`` as a user runs it, and what happens to the browser tests without a browser."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import browser as browser_support
from tests.support.browser import free_port

MISSION = Path(sys.executable).with_name("mission")
START_DEADLINE_SECS = 60.0


@pytest.mark.slow
def test_mission_ui_serves_the_pages_on_loopback(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [str(MISSION), "ui", "--db", str(tmp_path / "m.db"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_DEADLINE_SECS
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mission ui did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert "<h1>Missions</h1>" in response.text
        assert "No missions." in response.text
        foreign = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "evil.example"})
        assert foreign.status_code == 421
    finally:
        process.terminate()
        process.communicate(timeout=START_DEADLINE_SECS)


def test_without_chromium_the_browser_tests_fail_in_ci_and_skip_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium and chromedriver not found"):
        browser_support.browser_or_skip()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="chromium-driver"):
        browser_support.browser_or_skip()
