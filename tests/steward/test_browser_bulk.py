"""The bulk action in Chromium: filter the queue, decide the whole filtered set with a reason, confirm."""

from __future__ import annotations

import re

from playwright.sync_api import Dialog, Page, expect

from steward.app import create_app
from steward.config import StewardSettings
from tests.steward.conftest import PASSWORDS


def test_bulk_no_match_of_a_filtered_set(page: Page, settings: StewardSettings) -> None:
    page.goto("/review")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Pair 1 of 5")
    page.select_option("select[name=source]", "billing")
    page.click(".filters button[type=submit]")
    expect(page.locator(".queue .count")).to_have_text("2")
    page.click("details.bulk summary")
    expect(page.locator("details.bulk summary")).to_have_text("Decide all 2 filtered pairs")
    page.fill("#bulk-form textarea[name=bulk_reason]", "billing duplicates of other people")
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if len(asked) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    page.click("#bulk-form button[value=no_match]")  # dismissed: nothing happens
    page.click("#bulk-form button[value=no_match]")
    expect(page.locator("#bulk-notice")).to_have_text("2 pairs marked no_match")
    expect(page).to_have_url(re.compile(r"source=billing"))
    expect(page.locator(".queue .count")).to_have_text("0")
    assert asked == ["Mark all 2 filtered pairs not a match?"] * 2
    rows = create_app(settings).state.store.decisions()
    assert sorted((r["action"], r["record_id_l"], r["comment"]) for r in rows) == [
        ("no_match", "billing:100233", "billing duplicates of other people"),
        ("no_match", "billing:100412", "billing duplicates of other people"),
    ]
