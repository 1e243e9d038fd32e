"""The app in Chromium: uvicorn on 127.0.0.1 in a thread, Debian's chromium driven by Playwright."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from steward.app import create_app
from steward.config import StewardSettings
from tests.steward.conftest import PASSWORDS

ONEILL = "G3f2a9c4e1b7d0a53"
COOPER = "Gc53f949e01944f00"  # one of its records was deleted at its source


def log_in(page: Page, username: str) -> None:
    page.goto("/review")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Pair 1 of 5")
    page.wait_for_load_state()  # review.js, at the end of the page, binds the keys; a busy machine runs it late


def test_review_with_keyboard_shortcuts(page: Page, settings: StewardSettings) -> None:
    log_in(page, "alice")
    current = page.locator(".pairs li.current .ids")
    expect(current).to_contain_text("billing:100412")
    page.keyboard.press("j")
    expect(page.locator("h1")).to_have_text("Pair 2 of 5")
    page.wait_for_load_state()  # the heading can show before review.js at the end of the page has run
    page.keyboard.press("ArrowLeft")
    expect(page.locator("h1")).to_have_text("Pair 1 of 5")
    page.fill("textarea[name=comment]", "same street, same name")
    page.locator("body").click()  # leave the text box: shortcuts are off while typing
    page.keyboard.press("m")
    expect(page.locator("h1")).to_have_text("Pair 1 of 4")
    expect(page.locator(".pairs")).not_to_contain_text("webshop:W-99aa0b1c")
    expect(current).to_contain_text("billing:100233")  # the next pair, loaded at once
    [row] = create_app(settings).state.store.decisions()
    assert (row["action"], row["record_id_l"], row["record_id_r"], row["steward"], row["comment"]) == (
        "match", "billing:100412", "webshop:W-99aa0b1c", "alice", "same street, same name"
    )


def test_split_a_record_out_of_a_golden_record(page: Page, settings: StewardSettings) -> None:
    log_in(page, "alice")
    page.goto(f"/golden/{ONEILL}")
    expect(page.locator("table.lineage")).to_contain_text("webshop:W-7f3e9a10")  # where the email came from
    expect(page.locator("td.chosen").first).to_be_visible()
    row = page.locator("table.members tr", has_text="SUP-000311")
    row.locator("input[name=reason]").fill("born 1991: another person")
    row.locator("button", has_text="Split").click()
    expect(page.locator(".notice")).to_contain_text("Split recorded")
    expect(page.locator(".comment-cell")).to_contain_text("born 1991: another person")
    [decision] = create_app(settings).state.store.decisions()
    assert (decision["action"], decision["record_id_l"], decision["golden_id"]) == (
        "split", "support_desk:SUP-000311", ONEILL
    )


def test_viewer_sees_no_decision_buttons(page: Page) -> None:
    page.goto("/login")
    page.fill("input[name=username]", "victor")
    page.fill("input[name=password]", PASSWORDS["victor"])
    page.click("button[type=submit]")
    expect(page.locator(".current-pair")).to_contain_text("deciding needs the steward role")
    page.keyboard.press("m")
    expect(page.locator("h1")).to_have_text("Pair 1 of 5")


def test_a_deleted_record_is_struck_through_with_its_deletion_time(page: Page) -> None:
    log_in(page, "victor")
    page.goto(f"/golden/{COOPER}")
    rows = page.locator("table.members tbody tr")
    expect(rows).to_have_count(3)
    deleted = rows.last  # after the two current records
    expect(deleted).to_have_class("closed")
    expect(deleted).to_contain_text("deleted at the source on 2026-11-28 16:20 UTC")
    struck = deleted.locator("del", has_text="100871")
    expect(struck).to_be_visible()
    assert struck.evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
    assert rows.first.locator("del").count() == 0
