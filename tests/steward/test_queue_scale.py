"""The queue at work: paging, filters, decided records moving down, bulk decisions, claims, and the
per-version cache under it (steward/table_cache.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from fastapi.testclient import TestClient

from config.lake import Lake
from steward import table_cache
from steward.decisions import pair_decision
from steward.routes import queue as queue_routes
from steward.store import Store
from tests.steward.conftest import log_in

# The fake lake's queue, most uncertain first.
QUEUE = [
    ("billing:100412", "webshop:W-99aa0b1c"),
    ("billing:100233", "webshop:W-7f3e9a10"),
    ("sales_crm:501", "webshop:W-c41d0e77"),
    ("sales_crm:412", "support_desk:SUP-000311"),
    ("support_desk:SUP-000311", "webshop:W-7f3e9a10"),
]


def queue_ids(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<span class="ids">([^<]+)<br>([^<]+)</span>', html)


def decisions_version(lake_root: Path) -> int:
    return DeltaTable(Lake.at(lake_root).gold("steward_decisions")).version()


def test_the_queue_is_paged_on_the_server(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_routes, "PAGE_SIZE", 2)
    log_in(client, "victor")
    first = client.get("/review").text
    assert queue_ids(first) == QUEUE[:2] and "page 1 of 3" in first and "more</p>" not in first
    last = client.get("/review", params={"page": "2"}).text
    assert queue_ids(last) == QUEUE[4:] and "Pair 5 of 5" in last  # a page alone shows its first pair
    assert queue_ids(client.get("/review", params={"page": "99"}).text) == QUEUE[4:]
    # a pair asked for by id opens its page
    assert queue_ids(client.get("/review", params={"pair": "|".join(QUEUE[3])}).text) == QUEUE[2:4]


def test_filters_by_reason_and_blocking_rule(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get("/review").text
    assert '<option value="cluster members disagree"' in page and '<option value="family_prefix_birth_year"' in page
    disagree = queue_ids(client.get("/review", params={"reason": "cluster members disagree"}).text)
    between = queue_ids(client.get("/review", params={"reason": "between thresholds"}).text)
    assert disagree and between and sorted(disagree + between) == sorted(QUEUE)
    assert queue_ids(client.get("/review", params={"rule": "no-such-rule"}).text) == []


def test_pairs_of_a_record_just_decided_move_down_marked(client: TestClient) -> None:
    token = log_in(client, "alice")
    first = client.get("/review", params={"pair": "|".join(QUEUE[1])}).text
    # the pair offered next after this decision shares no record with it
    assert re.search(r'name="next_pair" value="([^"]*)"', first).group(1) == "|".join(QUEUE[2])
    client.post("/decide", data={"csrf_token": token, "record_a": QUEUE[1][0], "record_b": QUEUE[1][1],
                                 "action": "no_match", "origin": "review"})
    page = client.get("/review").text
    assert queue_ids(page) == [QUEUE[0], QUEUE[2], QUEUE[3], QUEUE[4]]  # QUEUE[4] shares webshop:W-7f3e9a10
    assert page.count("decided record</span>") == 1
    moved = client.get("/review", params={"pair": "|".join(QUEUE[4])}).text
    assert "already decided since the last run" in moved


def test_bulk_decision_of_a_filtered_set_in_one_commit(client: TestClient, lake_root: Path) -> None:
    token = log_in(client, "alice")
    billing = queue_ids(client.get("/review", params={"source": "billing"}).text)
    assert len(billing) == 2
    form = {"csrf_token": token, "source": "billing", "action": "no_match", "bulk_reason": "different people, checked"}
    assert client.post("/review/bulk", data={**form, "expected": "2", "bulk_reason": ""}).status_code == 400
    stale = client.post("/review/bulk", data={**form, "expected": "3"})
    assert stale.status_code == 409 and "now holds 2 pairs" in stale.text
    assert client.app.state.store.decisions() == []
    done = client.post("/review/bulk", data={**form, "expected": "2"}, follow_redirects=False)
    assert done.status_code == 303 and "source=billing" in done.headers["location"]
    assert "2 pairs marked no_match" in client.get(done.headers["location"]).text
    rows = client.app.state.store.decisions()
    assert sorted((r["record_id_l"], r["record_id_r"]) for r in rows) == sorted(billing)
    assert {(r["action"], r["comment"], r["steward"]) for r in rows} == {("no_match", "different people, checked", "alice")}
    assert decisions_version(lake_root) == 0  # both rows in the table's first commit
    assert queue_ids(client.get("/review", params={"source": "billing"}).text) == []


def test_a_viewer_cannot_bulk_decide_or_claim(client: TestClient) -> None:
    token = log_in(client, "victor")
    bulk = {"csrf_token": token, "action": "match", "bulk_reason": "x", "expected": "5"}
    assert client.post("/review/bulk", data=bulk).status_code == 403
    assert client.post("/review/claim", data={"csrf_token": token, "count": "2"}).status_code == 403
    assert 'id="bulk-form"' not in client.get("/review").text


def test_claimed_pairs_leave_other_stewards_queues(client: TestClient) -> None:
    token = log_in(client, "alice")
    claimed = client.post("/review/claim", data={"csrf_token": token, "count": "2"}, follow_redirects=False)
    assert claimed.status_code == 303 and "mine=1" in claimed.headers["location"]
    mine = client.get(claimed.headers["location"]).text
    assert queue_ids(mine) == QUEUE[:2] and "2 pairs claimed for you" in mine
    rows = client.app.state.store.decisions()
    assert sorted((r["action"], r["record_id_l"], r["record_id_r"]) for r in rows) == sorted(("claim", *p) for p in QUEUE[:2])
    assert queue_ids(client.get("/review").text) == QUEUE  # alice still sees her own claims, marked
    other = TestClient(client.app, base_url="http://127.0.0.1")
    log_in(other, "root")
    assert queue_ids(other.get("/review").text) == QUEUE[2:]
    assert client.post("/review/claim", data={"csrf_token": token, "count": "0"}).status_code == 400


def test_a_version_is_read_once_and_later_versions_are_seen(lake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_cache, "FRESH_SECONDS", 0.0)
    store, other = Store(Lake.at(lake_root)), Store(Lake.at(lake_root))
    first = store.snapshot("golden_customers")
    assert store.snapshot("golden_customers") is first  # same version: the copy in memory
    assert store.queue()[0] is store.queue()[0]  # and what is derived from it
    other.append_decision(pair_decision("alice", "match", *QUEUE[0], None))
    other.append_decisions([pair_decision("alice", "no_match", *pair, None) for pair in QUEUE[1:3]])
    assert len(store.decisions()) == 3  # the two new files read, added to the copy
    assert len(store.queue()[1].decided.nonzero()[0]) == 3
    # a rewrite that drops files (compaction, cdi erase) is read whole
    path = Lake.at(lake_root).gold("steward_decisions")
    kept = DeltaTable(path).to_pyarrow_table().filter(pc.field("action") == "no_match")
    write_deltalake(path, kept, mode="overwrite")
    assert sorted(r["action"] for r in store.decisions()) == ["no_match", "no_match"]


def test_a_large_table_is_reloaded_in_the_background(lake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a new version of a large table loads, requests keep the old copy; then the new one, indexed."""
    monkeypatch.setattr(table_cache, "FRESH_SECONDS", 0.0)
    monkeypatch.setattr(table_cache, "LARGE_ROWS", 1)
    store = Store(Lake.at(lake_root))
    old = store.snapshot("golden_customers")
    assert store.golden("G-new") is None
    path = Lake.at(lake_root).gold("golden_customers")
    added = old.table.slice(0, 1).set_column(0, "golden_id", pa.array(["G-new"]))
    write_deltalake(path, added, mode="append")
    deadline = time.monotonic() + 30
    while store.snapshot("golden_customers") is old and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh = store.snapshot("golden_customers")
    assert fresh.version == old.version + 1 and len(fresh.table) == len(old.table) + 1
    assert "index:golden_id:False" in fresh.builders()  # rebuilt before the swap
    assert store.golden("G-new")["golden_id"] == "G-new"
