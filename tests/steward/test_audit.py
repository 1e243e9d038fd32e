"""Undo and audit in the app: retracting a decision, the pending view, the audit page, golden history, overrides."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from fastapi.testclient import TestClient

from steward.decisions import Decision, effective_decisions, override_value, pair_decision
from schemas.arrow import arrow_schema
from schemas.golden import GOLDEN_CUSTOMERS_SCHEMA
from tests.steward.conftest import log_in
from tests.steward.fake_lake import AT, ONEILL_NATIONAL_ID
from tests.steward.test_pages import ONEILL, queue_ids

PAIR = ("billing:100412", "webshop:W-99aa0b1c")
SHAH = "Gd2c7a9f4e1b06883"


def decide(client: TestClient, token: str, action: str = "match") -> dict:
    client.post("/decide", data={"csrf_token": token, "record_a": PAIR[0], "record_b": PAIR[1], "action": action,
                                 "origin": "review"})
    (row,) = [d for d in client.app.state.store.decisions() if d["action"] == action]
    return row


def retract(client: TestClient, token: str, decision_id: str, reason: str = "clicked the wrong button", **extra):
    return client.post(f"/decisions/{decision_id}/retract", data={"csrf_token": token, "reason": reason, **extra})


def rows_shown(html: str) -> list[str]:
    return re.findall(r'<tr id="decision-([^"]+)"', html)


def test_a_retracted_match_puts_the_pair_back_in_the_queue_and_stays_in_the_log(client: TestClient) -> None:
    token = log_in(client, "alice")
    match = decide(client, token)
    assert PAIR not in queue_ids(client.get("/review").text)

    done = retract(client, token, match["decision_id"], next="/pending")

    assert done.url.path == "/pending" and "Retraction recorded" in done.text
    assert PAIR in queue_ids(client.get("/review").text)
    log = client.app.state.store.decisions()
    assert sorted(d["action"] for d in log) == ["match", "retract"]
    (retraction,) = [d for d in log if d["action"] == "retract"]
    assert retraction["supersedes"] == match["decision_id"] and retraction["steward"] == "alice"
    assert (retraction["record_id_l"], retraction["record_id_r"]) == PAIR
    assert effective_decisions(log) == []
    audit = client.get("/audit").text
    assert rows_shown(audit) == [retraction["decision_id"], match["decision_id"]]
    assert "retracted</span> <small>by alice" in audit


def test_a_decision_is_retracted_once_a_retraction_never_and_only_by_a_steward_with_a_reason(client: TestClient) -> None:
    token = log_in(client, "alice")
    match = decide(client, token)
    assert retract(client, token, match["decision_id"], reason=" ").status_code == 400
    assert retract(client, token, "no-such-decision").status_code == 404
    assert retract(client, token, match["decision_id"]).status_code == 200
    assert retract(client, token, match["decision_id"]).status_code == 409
    (retraction,) = [d for d in client.app.state.store.decisions() if d["action"] == "retract"]
    assert retract(client, token, retraction["decision_id"]).status_code == 400
    assert client.post(f"/decisions/{match['decision_id']}/retract", data={"reason": "x"}).status_code == 403
    viewer = log_in(client, "victor")
    assert retract(client, viewer, match["decision_id"]).status_code == 403
    assert len(client.app.state.store.decisions()) == 2


def test_an_unsafe_next_page_after_a_retraction_is_not_followed(client: TestClient) -> None:
    token = log_in(client, "alice")
    match = decide(client, token)
    response = client.post(f"/decisions/{match['decision_id']}/retract", follow_redirects=False,
                           data={"csrf_token": token, "reason": "x", "next": "//evil.example/steal"})
    assert response.status_code == 303 and response.headers["location"].startswith("/review")


def test_pending_lists_what_the_next_run_applies_and_what_was_retracted(client: TestClient) -> None:
    token = log_in(client, "alice")
    store = client.app.state.store
    before_run = Decision("old-one", AT - dt.timedelta(days=1), "alice", "no_match", "sales_crm:501", "webshop:W-c41d0e77")
    store.append_decision(before_run)
    unsure = decide(client, token, "unsure")
    match = decide(client, token, "match")
    retract(client, token, match["decision_id"])
    page = client.get("/pending").text
    shown = rows_shown(page)
    assert match["decision_id"] in shown and "old-one" not in shown and unsure["decision_id"] not in shown
    assert len(shown) == 2 and "retracted</span>" in page
    assert "since the last published run (2026-11-24 09:59 UTC)" in page


def test_the_audit_page_filters_by_steward_action_and_date(client: TestClient) -> None:
    store = client.app.state.store
    march = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc)
    store.append_decision(Decision("d-bob", march, "bob", "no_match", "sales_crm:501", "webshop:W-c41d0e77"))
    store.append_decision(Decision("d-bob-later", march + dt.timedelta(days=2), "bob", "match", *PAIR))
    store.append_decision(pair_decision("alice", "match", "sales_crm:412", "support_desk:SUP-000311", "same"))
    log_in(client, "victor")

    def shown(**params) -> list[str]:
        return rows_shown(client.get("/audit", params=params).text)

    assert len(shown()) == 3
    assert shown(steward="bob") == ["d-bob-later", "d-bob"]
    assert shown(steward="bob", action="no_match") == ["d-bob"]
    assert shown(since="2026-03-11", until="2026-03-12") == ["d-bob-later"]
    assert shown(since="2026-03-10", until="2026-03-10") == ["d-bob"]
    assert len(shown(since="not a date")) == 3
    assert shown(action="split") == []
    assert "Retract</button>" not in client.get("/audit").text  # a viewer may read, not undo


def test_golden_page_shows_attribute_changes_from_the_change_feed_with_national_id_masked(
        client: TestClient, settings) -> None:
    path = f"{settings.lake}/gold/golden_customers"
    row = next(r for r in DeltaTable(path).to_pyarrow_table().to_pylist() if r["golden_id"] == ONEILL)
    changed = {**row, "email": "margaret.oneill@new.example", "national_id": "ZX987654A", "run_id": "r2",
               "lineage": [*[(k, v) for k, v in row["lineage"] if k != "email"], ("email", "billing:100233")]}
    write_deltalake(path, pa.Table.from_pylist([changed], schema=arrow_schema(GOLDEN_CUSTOMERS_SCHEMA)),
                    mode="overwrite", predicate=f"golden_id = '{ONEILL}'")
    log_in(client, "victor")
    page = client.get(f"/golden/{ONEILL}").text
    history = re.sub(r"\s+", " ", page[page.index("Attribute changes"):])
    assert re.search(r"<td>r2</td><th scope=\"row\">email</th> <td>maggie.oneill@outlook.com <small>from "
                     r"webshop:W-7f3e9a10</small></td> <td>margaret.oneill@new.example <small>from billing:100233",
                     history)
    assert "<em>created</em>" in history
    assert ONEILL_NATIONAL_ID not in page and "ZX987654A" not in page and "•••••654A" in history


def test_an_override_records_the_members_as_they_are_and_keeps_national_id_masked(client: TestClient) -> None:
    token = log_in(client, "alice")
    form = {"csrf_token": token, "attribute": "national_id", "value": "ZX987654A", "reason": "passport seen"}
    assert client.post(f"/golden/{SHAH}/override", data={**form, "reason": ""}).status_code == 400
    assert client.post(f"/golden/{SHAH}/override", data={**form, "attribute": "colour"}).status_code == 400
    assert client.post(f"/golden/{SHAH}/override", data={**form, "attribute": "birth_date",
                                                       "value": "7 Jan 1993"}).status_code == 400
    assert client.post("/golden/G04e1d8b2c7f9a316/override", data=form).status_code == 409  # retired

    page = client.post(f"/golden/{SHAH}/override", data=form).text

    assert "Override recorded" in page and "national_id = •••••654A" in page and "ZX987654A" not in page
    (override,) = client.app.state.store.decisions()
    assert (override["golden_id"], override["attribute"], override["value"]) == (SHAH, "national_id", "ZX987654A")
    assert (override["record_ids"], override["record_hashes"]) == (["sales_crm:530"], ["h-sales_crm:530"])
    assert "ZX987654A" not in client.get("/audit").text and "ZX987654A" not in client.get("/pending").text
    viewer = log_in(client, "victor")
    assert client.post(f"/golden/{SHAH}/override", data={**form, "csrf_token": viewer}).status_code == 403


def test_a_published_override_is_labelled_in_the_lineage(client: TestClient, settings) -> None:
    path = f"{settings.lake}/gold/golden_customers"
    row = next(r for r in DeltaTable(path).to_pyarrow_table().to_pylist() if r["golden_id"] == SHAH)
    changed = {**row, "email": "amir@right.example",
               "lineage": [*[(k, v) for k, v in row["lineage"] if k != "email"], ("email", "steward:d-42")]}
    write_deltalake(path, pa.Table.from_pylist([changed], schema=arrow_schema(GOLDEN_CUSTOMERS_SCHEMA)),
                    mode="overwrite", predicate=f"golden_id = '{SHAH}'")
    log_in(client, "victor")
    lineage = re.sub(r"\s+", " ", client.get(f"/golden/{SHAH}").text)
    assert re.search(r'<th scope="row">email</th> <td>amir@right.example</td> <td><span class="badge similar">'
                     r'steward override</span> <small>d-42</small>', lineage)


def test_effective_decisions_drop_retracted_ones_and_a_retraction_of_a_retraction_withdraws_nothing() -> None:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    rows = [
        dict(decision_id="m", decided_at=at, action="match", supersedes=None),
        dict(decision_id="n", decided_at=at, action="no_match", supersedes=None),
        dict(decision_id="r1", decided_at=at, action="retract", supersedes="m"),
        dict(decision_id="r2", decided_at=at, action="retract", supersedes="r1"),
        dict(decision_id="old", decided_at=at, action="unsure"),  # a row of a table without ``supersedes``
    ]
    assert [d["decision_id"] for d in effective_decisions(rows)] == ["n", "old"]


def test_override_values_are_checked_and_a_birth_date_normalized() -> None:
    assert override_value("birth_date", " 1993-01-07 ") == "1993-01-07"
    assert override_value("email", "  a@b.example ") == "a@b.example"
    for attribute, value in (("birth_date", "07/01/1993"), ("email", "   "), ("colour", "red"), ("email", "x" * 501)):
        with pytest.raises(ValueError):
            override_value(attribute, value)


def test_the_audit_page_pages_through_every_decision(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("steward.routes.audit.AUDIT_SHOWN", 2)
    start = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc)
    client.app.state.store.append_decisions([
        Decision(f"d-{n}", start + dt.timedelta(hours=n), "bob", "no_match", "sales_crm:501", "webshop:W-c41d0e77")
        for n in range(5)
    ])
    log_in(client, "victor")
    pages = [client.get("/audit", params={"steward": "bob", "page": n}).text for n in range(4)]
    assert [rows_shown(page) for page in pages] == [["d-4", "d-3"], ["d-2", "d-1"], ["d-0"], ["d-0"]]
    assert 'id="older"' in pages[0] and 'id="newer"' not in pages[0]
    assert 'id="newer"' in pages[2] and 'id="older"' not in pages[2]
    assert "page 3 of 3" in pages[2]
