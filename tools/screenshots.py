"""Regenerate docs/screenshots/: the Missions, Run and Conversation pages of a fresh catering
rehearsal, at 1280×800 (desktop) and 390×844 (phone), in headless Chromium, and the whole
Run page at desktop width.

    .venv/bin/python tools/screenshots.py [--out docs/screenshots]

Needs the Debian packages chromium and chromium-driver (``make test`` installs them), and
fonts-noto-color-emoji for the summary's ✅ to show as it does in a desktop browser.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mission_server.app import records_context  # noqa: E402
from mission_server.mcp.http import transport_security  # noqa: E402
from mission_server.web.app import build_web_app  # noqa: E402
from tests.support.browser import serving, set_viewport, start_chromium  # noqa: E402
from tests.support.rehearsal import rehearse_catering  # noqa: E402

SIZES = {"desktop": (1280, 800, False), "phone": (390, 844, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "catering.db"
        detail = rehearse_catering(db)
        # The negotiation with Chicago Grill Co: the call that was given the best quote.
        talk = next(c for c in detail["conversations"] if c["target_name"] == "Chicago Grill Co")
        pages = {
            "missions": "/",
            "run": f"/runs/{detail['run_id']}",
            "conversation": f"/conversations/{talk['conversation_id']}",
        }
        ctx = records_context(str(db))
        app = build_web_app(ctx, token=None, security=transport_security("127.0.0.1", None))
        browser = start_chromium()
        try:
            with serving(app) as base:
                for size, (width, height, mobile) in SIZES.items():
                    set_viewport(browser, width, height, mobile)
                    for name, path in pages.items():
                        browser.get(base + path)
                        target = out / f"{name}-{size}.png"
                        browser.save_screenshot(str(target))
                        print(f"{target.relative_to(ROOT)}  {width}×{height}")
                # The whole Run page at desktop width, timeline included.
                width, height, mobile = SIZES["desktop"]
                set_viewport(browser, width, height, mobile)
                browser.get(base + pages["run"])
                full = browser.execute_script("return document.documentElement.scrollHeight")
                set_viewport(browser, width, int(full), mobile)
                target = out / "run-desktop-full.png"
                browser.save_screenshot(str(target))
                print(f"{target.relative_to(ROOT)}  {width}×{full}")
        finally:
            browser.quit()
            ctx.engine.dispose()


if __name__ == "__main__":
    main()
