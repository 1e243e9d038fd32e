"""Undo and splits of several records in Chromium (the app on uvicorn, Debian's chromium driven by Playwright)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from steward.app import create_app
from steward.config import StewardSettings
from tests.steward.conftest import PASSWORDS

ONEILL = "G3f2a9c4e1b7d0a53"
FIRST_PAIR = "billing:100412"  # of the most uncertain pair, first in the queue


def log_in(page: Page, username: str) -> None:
    page.goto("/review")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/review"))


def test_undo_a_match_from_the_pending_page_puts_the_pair_back(page: Page, settings: StewardSettings) -> None:
    log_in(page, "alice")
    expect(page.locator(".pairs li.current .ids")).to_contain_text(FIRST_PAIR)
    page.locator("body").click()
    page.keyboard.press("m")
    expect(page.locator(".pairs li.current .ids")).not_to_contain_text(FIRST_PAIR)

    page.click("nav >> text=Pending")
    row = page.locator("table.decisions tr", has_text="match")
    expect(row).to_contain_text("webshop:W-99aa0b1c")
    row.locator("input[name=reason]").fill("pressed m by mistake")
    row.locator("button", has_text="Retract").click()

    expect(page.locator(".notice")).to_contain_text("Retraction recorded")
    expect(page).to_have_url(re.compile(r"/pending"))
    expect(page.locator("table.decisions tr", has_text="pressed m by mistake")).to_contain_text("retract")
    expect(page.locator("table.decisions .badge", has_text="retracted")).to_have_count(1)
    page.goto("/review")
    expect(page.locator(".pairs li.current .ids")).to_contain_text(FIRST_PAIR)
    actions = sorted(d["action"] for d in create_app(settings).state.store.decisions())
    assert actions == ["match", "retract"]


def test_split_several_records_out_together(page: Page, settings: StewardSettings) -> None:
    log_in(page, "alice")
    page.goto(f"/golden/{ONEILL}")
    for key in ("SUP-000311", "W-7f3e9a10"):
        page.locator("table.members tr", has_text=key).locator("input[type=checkbox]").check()
    together = page.locator("form#split-together")
    together.locator("input[name=reason]").fill("mother and daughter, not the same person")
    together.locator("button").click()

    expect(page.locator(".notice")).to_contain_text("Split recorded")
    expect(page.locator("table.decisions")).to_contain_text(
        "support_desk:SUP-000311, webshop:W-7f3e9a10 out of")
    [split] = create_app(settings).state.store.decisions()
    assert (split["record_ids"], split["other_ids"]) == (
        ["support_desk:SUP-000311", "webshop:W-7f3e9a10"], ["billing:100233", "sales_crm:412"])
