"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven through
selenium) and a web server in a thread, for the browser tests and ``tools/screenshots.py``.

Under ``CI=true`` a missing browser fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMEDRIVER_NAMES = ("chromedriver",)
CHROMIUM_NAMES = ("chromium", "chromium-browser")
START_DEADLINE_SECS = 20.0


class BrowserMissing(RuntimeError):
    pass


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver. Raises: BrowserMissing (naming what is missing)."""
    chromium = next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)
    driver = next((p for n in CHROMEDRIVER_NAMES if (p := shutil.which(n))), None)
    missing = [
        name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path
    ]
    if missing:
        raise BrowserMissing(
            f"{' and '.join(missing)} not found: install the Debian packages chromium and "
            "chromium-driver (make test does when it can)"
        )
    assert chromium and driver
    return chromium, driver


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def browser_or_skip() -> webdriver.Chrome:
    """A started Chromium; without one the test skips, or fails under ``CI=true``."""
    import pytest

    try:
        return start_chromium()
    except BrowserMissing as exc:
        if in_ci():
            pytest.fail(f"the browser tests need Chromium in CI: {exc}")
        pytest.skip(str(exc))


def start_chromium(width: int = 1280, height: int = 800) -> webdriver.Chrome:
    """A headless Chromium with its own profile. Raises: BrowserMissing."""
    chromium, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    # The driver path is given, so selenium never tries to download one.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def set_viewport(browser: webdriver.Chrome, width: int, height: int, mobile: bool) -> None:
    """Emulate a viewport (a phone's, with ``mobile``: the viewport meta tag applies)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name=f"web-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE_SECS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_DEADLINE_SECS)
