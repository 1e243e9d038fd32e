"""A steward's decisions in the browser, applied by the next pipeline run (real Spark, Delta, Chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deltalake import DeltaTable
from playwright.sync_api import Page, expect, sync_playwright

from config.lake import Lake
from config.pipeline import load_pipeline_config
from jobs.pipeline import run_pipeline
from jobs.runs import RunContext
from steward.app import create_app
from steward.config import StewardSettings, create_user
from tests.demo_run import DemoRun
from tests.steward.live import CHROMIUM, CHROMIUM_ARGS, serving

CONF = Path(__file__).resolve().parents[2] / "conf" / "cdi.yaml"
PASSWORD = "end-to-end-steward-pw"


# The shared demo run is small (150 customers): it may leave no pair between the default review and match
# thresholds, so its copy here is matched again with a review threshold low enough to leave some.
REVIEW = 0.05


@pytest.fixture(scope="module")
def matching(tmp_path_factory) -> Path:
    """``conf/matching.yaml`` with the review threshold at ``REVIEW``."""
    settings = yaml.safe_load(Path(load_pipeline_config(CONF).matching).read_text())
    settings["thresholds"]["review"] = REVIEW
    path = tmp_path_factory.mktemp("e2e-matching") / "matching.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def context(run: DemoRun, matching: Path, run_id: str) -> RunContext:
    """``run``'s context for ``run_id``, with ``matching``'s settings."""
    base = run.context(run_id)
    return RunContext.create(
        base.config.model_copy(update={"matching": str(matching)}), run_id, started_at=base.started_at
    )


@pytest.fixture(scope="module")
def published(spark, demo_run, matching, tmp_path_factory) -> DemoRun:
    """A copy of the shared demo run, matched and published again with ``matching``: the steward's decisions and
    the next run write to its lake."""
    run = demo_run.copy(tmp_path_factory.mktemp("e2e"))
    run_pipeline(spark, context(run, matching, "run-2"), ("match", "publish"))
    return run


@pytest.fixture(scope="module")
def published_lake(published: DemoRun) -> Path:
    return published.lake


@pytest.fixture
def page(published_lake: Path, matching: Path, tmp_path: Path) -> Iterator[Page]:
    stewards = tmp_path / "stewards.yaml"
    create_user(stewards, "sam", "steward", PASSWORD)
    settings = StewardSettings(lake=str(published_lake), matching=matching, stewards=stewards, session_secret="s" * 40)
    with serving(create_app(settings)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        opened = browser.new_context(base_url=url).new_page()
        opened.set_default_timeout(15_000)
        yield opened
        browser.close()


def golden_of(lake: Path) -> dict[str, str]:
    xref = DeltaTable(Lake.at(lake).gold("customer_xref")).to_pandas(columns=["record_id", "golden_id"])
    return dict(zip(xref["record_id"], xref["golden_id"]))


def test_review_and_split_in_the_browser_then_the_next_run_applies_them(spark, published, published_lake, matching, page):
    lake = Lake.at(published_lake)
    queue = DeltaTable(lake.gold("match_candidates")).to_pandas(columns=["record_id_l", "record_id_r", "match_weight"])
    assert len(queue) > 0, "the demo run should leave pairs for review"
    first = queue.assign(w=queue["match_weight"].abs()).sort_values(["w", "record_id_l"]).iloc[0]
    before = golden_of(published_lake)
    golden = DeltaTable(lake.gold("golden_customers")).to_pandas(columns=["golden_id", "num_records", "status"])
    big = golden[(golden["status"] == "active") & (golden["num_records"] >= 3)].sort_values("golden_id").iloc[0]
    members = sorted(r for r, g in before.items() if g == big["golden_id"])
    leaving = members[-1]

    page.goto("/review")
    page.fill("input[name=username]", "sam")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".pairs li.current .ids")).to_contain_text(first["record_id_l"])
    page.locator("body").click()
    page.keyboard.press("m")
    expect(page.locator(".pairs")).not_to_contain_text(f"{first['record_id_l']}\n{first['record_id_r']}")
    page.goto(f"/golden/{big['golden_id']}")
    row = page.locator("table.members tr", has_text=leaving.split(":", 1)[1])
    row.locator("input[name=reason]").fill("different birth date: another person")
    row.locator("button", has_text="Split").click()
    expect(page.locator("body")).to_contain_text(re.compile("split", re.IGNORECASE))

    decisions = DeltaTable(lake.gold("steward_decisions")).to_pandas()
    assert sorted(decisions["action"]) == ["match", "split"]

    run_pipeline(spark, context(published, matching, "run-3"), ("match", "publish"))

    after = golden_of(published_lake)
    assert after[first["record_id_l"]] == after[first["record_id_r"]]
    assert after[leaving] not in {after[m] for m in members if m != leaving}
    linked_by = DeltaTable(lake.gold("customer_xref")).to_pandas(columns=["record_id", "linked_by"])
    assert linked_by.set_index("record_id").loc[first["record_id_l"], "linked_by"] == "steward"
