"""Records deleted at their source and people erased (``cdi erase``), in the API and on the pages.

The fake lake holds cooper (an active golden record with one record deleted at
its source), whitfield (every record deleted: status ``deleted``) and falk
(erased). Falk's values are still in the change feed's history; no answer may
carry any of them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config.lake import Lake
from jobs.suppressions import salt_path
from tests.steward.conftest import log_in
from tests.steward.fake_lake import FALK_NATIONAL_ID

COOPER = "Gc53f949e01944f00"
WHITFIELD = "G6a2d0f58c3e1b794"
FALK = "G2b7e5a91f0c4d368"
FALK_KEYS = ("sales_crm/618", "support_desk/SUP-000902")
# Every value falk's records held (and the masked national id): none may reach a page or an API answer.
FALK_VALUES = ("ingrid", "falk", "1987-10-09", "fastmail", "7700900618", "quarry", "sheffield", "S102TN",
               FALK_NATIONAL_ID, FALK_NATIONAL_ID[-4:])
GONE = {"golden_id": FALK, "status": "erased", "erased_at": "2026-12-01T08:30:00+00:00"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_nothing_of_falk(text: str) -> None:
    leaked = [value for value in FALK_VALUES if value.lower() in text.lower()]
    assert leaked == [], f"erased values in the answer: {leaked}"


# -- API -------------------------------------------------------------------------------------------


def test_an_erased_golden_id_answers_410_with_its_id_and_when(client: TestClient, api_token: str) -> None:
    response = client.get(f"/api/v1/golden/{FALK}", headers=bearer(api_token))
    assert response.status_code == 410
    assert response.json() == GONE


def test_a_deleted_golden_id_answers_200_saying_deleted(client: TestClient, api_token: str) -> None:
    response = client.get(f"/api/v1/golden/{WHITFIELD}", headers=bearer(api_token))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["deleted_at"], body["golden"]["status"]) == (
        "deleted", "2026-11-30T14:05:00+00:00", "deleted"
    )
    assert body["golden"]["family_name"] == "whitfield"  # its last values stay
    assert [(r["record_id"], r["linked_by"], r["valid_to"]) for r in body["records"]] == [
        ("support_desk:SUP-000188", "deleted", "2026-11-30T14:05:00+00:00"),
        ("webshop:W-3c8d7e21", "deleted", "2026-11-30T14:05:00+00:00"),
    ]


def test_an_active_golden_id_lists_its_deleted_record_last_and_closed(client: TestClient, api_token: str) -> None:
    body = client.get(f"/api/v1/golden/{COOPER}", headers=bearer(api_token)).json()
    assert (body["status"], body["deleted_at"]) == ("active", None)
    assert [(r["record_id"], r["linked_by"], r["valid_to"]) for r in body["records"]] == [
        ("support_desk:SUP-000074", "model", None),
        ("webshop:W-1a2b3c4d", "model", None),
        ("billing:100871", "deleted", "2026-11-28T16:20:00+00:00"),
    ]


def test_xref_shows_a_deleted_record_closed(client: TestClient, api_token: str) -> None:
    deleted = client.get("/api/v1/xref/billing/100871", headers=bearer(api_token)).json()
    assert (deleted["golden_id"], deleted["current"]) == (COOPER, False)
    assert (deleted["xref"]["linked_by"], deleted["xref"]["valid_to"]) == ("deleted", "2026-11-28T16:20:00+00:00")
    current = client.get("/api/v1/xref/webshop/W-1a2b3c4d", headers=bearer(api_token)).json()
    assert (current["current"], current["xref"]["valid_to"]) == (True, None)


def test_xref_of_an_erased_key_answers_410_found_by_its_hash(client: TestClient, api_token: str) -> None:
    for key in FALK_KEYS:
        response = client.get(f"/api/v1/xref/{key}", headers=bearer(api_token))
        assert (response.status_code, response.json()) == (410, GONE)
    hashed = client.app.state.store.erased_xref("sales_crm", "618")["source_key"]
    assert re.fullmatch(r"erased:[0-9a-f]{64}", hashed)
    assert client.get(f"/api/v1/xref/sales_crm/{hashed}", headers=bearer(api_token)).status_code == 410
    assert client.get("/api/v1/xref/sales_crm/619", headers=bearer(api_token)).status_code == 404


def test_without_the_lakes_salt_an_erased_key_is_simply_unknown(client: TestClient, api_token: str,
                                                               lake_root: Path) -> None:
    shutil.rmtree(salt_path(Lake.at(lake_root)))
    assert client.get(f"/api/v1/xref/{FALK_KEYS[0]}", headers=bearer(api_token)).status_code == 404


def test_changes_carry_deleted_and_erased_as_their_status(client: TestClient, api_token: str) -> None:
    changes = client.get("/api/v1/changes", params={"since_version": 1}, headers=bearer(api_token)).json()["changes"]
    assert [(c["golden_id"], c["_change_type"], c["status"]) for c in changes] == [
        (FALK, "delete", "active"), (FALK, "insert", "erased"),
        (WHITFIELD, "delete", "active"), (WHITFIELD, "insert", "deleted"),
    ]
    assert changes[3]["family_name"] == "whitfield"
    assert all(c[a] is None for c in changes[:2] for a in ("given_name", "email", "lineage", "content_hash"))


def test_no_api_answer_carries_a_value_of_the_erased(client: TestClient, api_token: str) -> None:
    answers = [
        client.get("/api/v1/changes", params={"since_version": 0}, headers=bearer(api_token)),
        client.get(f"/api/v1/golden/{FALK}", headers=bearer(api_token)),
        client.get("/api/v1/search", params={"q": FALK[:6]}, headers=bearer(api_token)),
        *[client.get(f"/api/v1/xref/{key}", headers=bearer(api_token)) for key in FALK_KEYS],
    ]
    for answer in answers:
        assert_nothing_of_falk(answer.text)
    assert answers[0].json()["changes"], "the change feed should hold falk's rows, redacted"
    for query in ("falk", "ingrid.falk@fastmail.example", "+447700900618"):
        assert client.get("/api/v1/search", params={"q": query}, headers=bearer(api_token)).json()["results"] == []


# -- pages -----------------------------------------------------------------------------------------


def closed_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="closed">(.*?)</tr>', html, re.S)


def test_a_deleted_record_is_struck_through_with_its_time_after_the_current_ones(client: TestClient) -> None:
    log_in(client, "alice")
    page = client.get(f"/golden/{COOPER}").text
    [row] = closed_rows(page)
    assert re.search(r'<del><span class="source">billing</span> <code>100871</code></del>', row)
    assert ('deleted at the source on <time datetime="2026-11-28T16:20:00+00:00">2026-11-28 16:20 UTC</time>'
            in row)
    assert page.index("<code>W-1a2b3c4d</code>") < page.index("<code>100871</code>")
    assert '<span class="count">2</span> <span class="count">1 deleted</span>' in page
    assert 'value="billing:100871"' not in page  # no split form for a record that is gone


def test_a_deleted_golden_record_says_so_at_the_top(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get(f"/golden/{WHITFIELD}").text
    banner = "This customer was deleted at the source on <time datetime=\"2026-11-30T14:05:00+00:00\">2026-11-30 14:05 UTC</time>"
    assert banner in page and page.index(banner) < page.index("Golden values")
    assert "d.whitfield@talk21.com" in page  # the last values stay
    assert len(closed_rows(page)) == 2 and "<del>" in closed_rows(page)[0]


def test_an_erased_golden_record_page_answers_410_and_shows_nothing_of_it(client: TestClient) -> None:
    log_in(client, "victor")
    response = client.get(f"/golden/{FALK}")
    assert response.status_code == 410
    assert f"Golden record {FALK} was erased on 2026-12-01 08:30 UTC" in response.text
    assert_nothing_of_falk(response.text)


def test_search_marks_deleted_and_erased_golden_records(client: TestClient) -> None:
    log_in(client, "victor")
    deleted = client.get("/search", params={"q": "whitfield"}).text
    assert '<tr class="deleted">' in deleted and '<span class="badge missing">deleted</span>' in deleted
    erased = client.get("/search", params={"q": FALK[:6]}).text
    assert '<tr class="erased">' in erased and '<span class="badge missing">erased</span>' in erased
    assert_nothing_of_falk(erased)
    assert "0 golden records" in client.get("/search", params={"q": "sheffield"}).text


def test_no_page_shows_a_value_of_the_erased(client: TestClient) -> None:
    log_in(client, "victor")
    golden_ids = [r["golden_id"] for r in client.app.state.store.rows("golden_customers")]
    pages = [client.get(f"/golden/{g}") for g in golden_ids]
    pages += [client.get("/review"), client.get("/search", params={"q": FALK[:6]}),
              client.get("/why", params={"a": "sales_crm:618", "b": "support_desk:SUP-000902"})]
    for page in pages:
        assert_nothing_of_falk(page.text.replace("sales_crm:618", "").replace("SUP-000902", ""))
    assert sum(page.status_code == 410 for page in pages) == 1


@pytest.mark.parametrize("other, status", [(WHITFIELD, "deleted"), (FALK, "erased")])
def test_gone_golden_records_cannot_be_merged(client: TestClient, other: str, status: str) -> None:
    token = log_in(client, "alice")
    response = client.post(f"/golden/{COOPER}/merge", data={"csrf_token": token, "other_id": other, "reason": "same"})
    assert response.status_code == 409 and f"golden record {other} is {status}" in response.text
    assert client.app.state.store.decisions() == []


def test_a_deleted_record_cannot_be_split_out(client: TestClient) -> None:
    token = log_in(client, "alice")
    split = {"csrf_token": token, "record_id": "billing:100871", "reason": "gone anyway"}
    assert client.post(f"/golden/{COOPER}/split", data=split).status_code == 400
    assert client.app.state.store.decisions() == []
