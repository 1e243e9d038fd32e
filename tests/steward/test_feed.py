"""The paged change feed: cursors, page limits, later versions, erased rows, and reading each version once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from config.lake import Lake
from steward.feed import BadCursor, ChangeFeed, Cursor

ERASED = "G2b7e5a91f0c4d368"


def all_rows(feed: ChangeFeed, start: Cursor, limit: int) -> tuple[list[dict], Cursor, int]:
    rows, at, pages = [], start, 0
    while True:
        page = feed.page(at, limit)
        rows += page.rows
        at, pages = page.next_cursor, pages + 1
        if not page.has_more:
            return rows, at, pages


def test_cursor_text_round_trips_and_rejects_anything_else() -> None:
    assert Cursor.parse(str(Cursor(12, 345))) == Cursor(12, 345)
    for text in ("", "1", "1.", "a.b", "1.2.3", "-1.0", " 1.0"):
        with pytest.raises(BadCursor):
            Cursor.parse(text)


@pytest.mark.parametrize("limit", [1, 3, 11, 15, 1000])
def test_pages_of_any_size_add_up_to_the_same_ordered_feed(lake_root: Path, limit: int) -> None:
    feed = ChangeFeed(Lake.at(lake_root))
    rows, end, pages = all_rows(feed, Cursor(0), limit)
    assert len(rows) == 15 and end == Cursor(2) and pages == -(-15 // limit)
    keys = [(r["_commit_version"], r["golden_id"], r["_change_type"]) for r in rows]
    assert keys == sorted(keys)
    assert all(r["full_name"] is None and r["email"] is None for r in rows if r["golden_id"] == ERASED)
    assert any(r["full_name"] for r in rows if r["golden_id"] != ERASED)


def test_a_saved_cursor_picks_up_what_is_published_later(lake_root: Path) -> None:
    feed = ChangeFeed(Lake.at(lake_root))
    _, end, _ = all_rows(feed, Cursor(0), 500)
    assert feed.page(end, 500).rows == []
    path = Lake.at(lake_root).gold("golden_customers")
    current = DeltaTable(path).to_pyarrow_dataset().to_table()
    one = current.filter(pa.compute.equal(current["golden_id"], "G71c0e2d94ab3f618"))
    write_deltalake(path, one, mode="append")
    page = feed.page(end, 500)
    assert [(r["golden_id"], r["_change_type"], r["_commit_version"]) for r in page.rows] == [
        ("G71c0e2d94ab3f618", "insert", 2)
    ]
    assert page.next_cursor == Cursor(3) and page.latest_version == 2 and not page.has_more


def test_paging_through_a_version_reads_it_once(lake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real = DeltaTable.load_cdf

    def counted(self: DeltaTable, starting_version: int = 0, **kwargs: object) -> object:
        reads.append(starting_version)
        return real(self, starting_version=starting_version, **kwargs)

    monkeypatch.setattr(DeltaTable, "load_cdf", counted)
    rows, _, pages = all_rows(ChangeFeed(Lake.at(lake_root)), Cursor(0), 2)
    assert pages == 8 and len(rows) == 15
    assert reads == [0, 1]


def test_a_start_past_the_latest_version_is_an_empty_page_that_stays_put(lake_root: Path) -> None:
    page = ChangeFeed(Lake.at(lake_root)).page(Cursor(7, 3), 10)
    assert page.rows == [] and page.next_cursor == Cursor(7, 3) and page.latest_version == 1 and not page.has_more
