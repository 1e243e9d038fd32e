"""Screenshots of the review app on the fake lake: ``python -m tests.steward.screenshots [OUT_DIR]``.

Writes ``review-queue.png`` (the father-and-son pair, with both customers and the warning),
``golden-record.png`` and ``cluster.png`` (default ``docs/screenshots``).
"""

from __future__ import annotations

import sys
import tempfile
from urllib.parse import quote
from pathlib import Path

from playwright.sync_api import sync_playwright

from steward.app import create_app
from steward.config import StewardSettings, create_user
from tests.steward.fake_lake import FAMILY_PAIR, FATHER_GOLDEN, MATCHING, build_rich_lake
from tests.steward.live import CHROMIUM, CHROMIUM_ARGS, serving

USER, PASSWORD = "alice", "alice-steward-pw-1"


def take(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        build_rich_lake(root / "lake")
        create_user(root / "stewards.yaml", USER, "steward", PASSWORD)
        settings = StewardSettings(lake=str(root / "lake"), matching=MATCHING, stewards=root / "stewards.yaml",
                                   session_secret="screenshot-secret-" + "s" * 32)
        shots = [out_dir / "review-queue.png", out_dir / "golden-record.png", out_dir / "cluster.png"]
        with serving(create_app(settings)) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{base}/login")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/review")
            page.goto(f"{base}/review?pair={quote('|'.join(sorted(FAMILY_PAIR)), safe='')}")
            page.screenshot(path=str(shots[0]), full_page=True)
            page.goto(f"{base}/golden/{FATHER_GOLDEN}")
            page.screenshot(path=str(shots[1]), full_page=True)
            page.goto(f"{base}/cluster/{FATHER_GOLDEN}")
            page.screenshot(path=str(shots[2]), full_page=True)
            browser.close()
    return shots


if __name__ == "__main__":
    for shot in take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(shot)
