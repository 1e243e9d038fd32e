"""The context panel and the merge warning in Chromium, on the richer lake (a father and his son)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from steward.app import create_app
from steward.config import StewardSettings
from tests.steward.conftest import PASSWORDS
from tests.steward.fake_lake import FAMILY_PAIR, FATHER_GOLDEN, SONS_ACCOUNT
from tests.steward.live import app_page

PAIR_URL = "/review?pair=" + "|".join(sorted(FAMILY_PAIR))


@pytest.fixture
def page(browser: Browser, rich_settings: StewardSettings) -> Iterator[Page]:
    with app_page(browser, rich_settings) as opened:
        yield opened


def log_in(page: Page, username: str, target: str) -> None:
    page.goto(target)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")
    expect(page.locator(".context")).to_be_visible()


def test_context_panel_shows_both_customers_and_highlights_what_differs(page: Page) -> None:
    log_in(page, "victor", PAIR_URL)
    sides = page.locator(".context .side")
    expect(sides).to_have_count(2)
    expect(sides.nth(0).locator("h3")).to_contain_text("2 records")
    expect(sides.nth(1).locator("h3")).to_contain_text("3 records")
    father_row = sides.nth(1).locator("tr", has_text="sales_crm:760")
    born = father_row.locator("td.differs", has_text="1952-03-09")
    expect(born).to_be_visible()
    assert born.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    expect(sides.nth(1).locator("tr", has_text=SONS_ACCOUNT).locator("td.differs")).to_have_count(0)
    expect(page.locator(".summary")).to_contain_text("same email")
    expect(page.locator("details.numbers table")).to_be_hidden()  # the numbers are one click away
    page.locator("details.numbers > summary").click()
    expect(page.locator("details.numbers table")).to_be_visible()
    page.locator(f'.context a[href="/cluster/{FATHER_GOLDEN}"]').click()
    expect(page.locator("h1")).to_contain_text(FATHER_GOLDEN)
    expect(page.locator(".cluster-graph circle")).to_have_count(3)
    expect(page.locator(".cluster-graph g.link.marked")).to_have_count(2)
    weak = page.locator(".cluster-graph g.link.weak line")
    assert weak.evaluate("e => getComputedStyle(e).strokeDasharray") not in ("", "none")


def test_a_match_joining_father_and_son_needs_an_explicit_confirmation(page: Page, rich_settings: StewardSettings) -> None:
    log_in(page, "alice", PAIR_URL)
    warning = page.locator(".merge-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("birth date: 1972-07-30 on the left, 1952-03-09 on the right")
    expect(warning).to_contain_text("name suffix: jr on the left, sr on the right")
    page.locator("#decide-form button.match").click()
    expect(page.locator("h1")).to_have_text("409")
    expect(page.locator("main")).to_contain_text("tick the confirmation")
    assert create_app(rich_settings).state.store.decisions() == []
    page.goto(PAIR_URL)
    page.keyboard.press("m")  # the shortcut only points at the box while it is not ticked
    expect(page.locator("input[name=confirm_join]")).to_be_focused()
    assert create_app(rich_settings).state.store.decisions() == []
    page.locator("input[name=confirm_join]").check()
    page.locator("#decide-form button.match").click()
    expect(page.locator(".context")).to_be_visible()  # back on the queue
    [decision] = create_app(rich_settings).state.store.decisions()
    assert (decision["action"], decision["record_id_l"], decision["record_id_r"], decision["steward"]) == (
        "match", *sorted(FAMILY_PAIR), "alice"
    )
