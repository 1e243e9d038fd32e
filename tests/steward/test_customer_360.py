"""The customer 360 view in the read API (``?include=``, ``/golden/{id}/activity``) and on the golden record page,
on the fake lake with the customer_360 stage's tables (``fake_360``) and on one from before that stage."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from fastapi.testclient import TestClient

from config.lake import Lake
from jobs.customer_360 import CUSTOMER_ACTIVITY_SCHEMA
from steward.app import create_app
from steward.config import StewardSettings
from schemas.arrow import arrow_schema
from steward.store import Store, key_range
from tests.steward.conftest import log_in
from tests.steward.fake_360 import (
    HOUSEHOLD,
    HTML_STATUS,
    MCKENZIE,
    NATARAJAN,
    ONEILL,
    ONEILL_ACTIVITY,
    ONEILL_RETIRED,
    activity_rows,
    write_customer_360,
)
from tests.steward.fake_lake import ERASED_GOLDEN
from tests.steward.test_api import bearer

GOLDEN = "/api/v1/golden/"


@pytest.fixture(scope="module")
def lake_360(tmp_path_factory: pytest.TempPathFactory, built_lake: Path) -> Path:
    root = Path(shutil.copytree(built_lake, tmp_path_factory.mktemp("c360") / "lake"))
    write_customer_360(Lake.at(root))
    return root


@pytest.fixture
def client_360(settings: StewardSettings, lake_360: Path) -> TestClient:
    return TestClient(create_app(dataclasses.replace(settings, lake=str(lake_360))), base_url="http://127.0.0.1")


def expected_order() -> list[str]:
    """Oneill's activity keys as the timeline must list them: newest first, a tie by department, undated last."""
    rows = [r for r in activity_rows() if r["golden_id"] == ONEILL]
    dated = sorted((r for r in rows if r["event_time"]), key=lambda r: (-r["event_time"].timestamp(),
                                                                          r["source_system"], r["activity_key"]))
    undated = sorted((r for r in rows if not r["event_time"]), key=lambda r: r["activity_key"])
    return [r["activity_key"] for r in dated + undated]


def test_the_timeline_order_is_newest_first_with_ties_and_undated_rows_last() -> None:
    order = expected_order()
    assert order[:3] == ["k001", "k000", "k002"]  # k000 (webshop) and k001 (billing) share a moment
    assert order[-2:] == ["T-1", "T-2"] and len(order) == ONEILL_ACTIVITY


def test_key_range_finds_every_slice_of_a_sorted_column() -> None:
    column = pa.chunked_array([["a", "b", "b", "b", "d"]])
    assert [key_range(column, k) for k in ("a", "b", "c", "d", "e", "")] == [
        (0, 1), (1, 4), (4, 4), (4, 5), (5, 5), (0, 0)
    ]
    assert key_range(pa.chunked_array([], pa.string()), "a") == (0, 0)


def test_include_adds_the_360_row_the_household_and_the_first_timeline_page(client_360: TestClient,
                                                                             api_token: str) -> None:
    body = client_360.get(GOLDEN + ONEILL, params={"include": "360, household,timeline"},
                          headers=bearer(api_token)).json()
    view = body["customer_360"]
    assert view["segment"] == "active" and view["recency_days"] == 10 and view["open_tickets"] == 1
    assert view["monetary"] == {"EUR": "1102.5000", "GBP": "1131.5000"}  # decimals as text, exactly
    assert view["last_contact"] == "2026-11-20T12:00:00+00:00"
    assert [d["source_system"] for d in view["per_department"]] == ["billing", "support_desk", "webshop"]
    assert view["per_department"][0]["amount"] == {"GBP": "1131.5000"}
    household = body["household"]
    assert household["household_id"] == HOUSEHOLD and household["evidence"] == ["family_name", "phone"]
    # falk was erased since the household was found: not even its golden id is shown
    assert [(m["golden_id"], m["full_name"]) for m in household["members"]] == [
        (ONEILL, "margaret oneill"), (NATARAJAN, "priya natarajan")
    ]
    timeline = body["timeline"]
    assert timeline["page"] == 1 and timeline["size"] == 50 and timeline["total"] == ONEILL_ACTIVITY
    assert timeline["next_page"] == 2
    assert [r["activity_key"] for r in timeline["activity"]] == expected_order()[:50]
    first = timeline["activity"][0]
    assert first["amount"] == "11.5000" and first["currency"] == "GBP"
    assert first["event_time"] == "2026-11-20T12:00:00+00:00"


def test_the_customers_routes_answer_as_the_golden_ones(client_360: TestClient, api_token: str) -> None:
    params = {"include": "360,household,timeline"}
    for golden, customers in ((GOLDEN + ONEILL, f"/api/v1/customers/{ONEILL}"),
                              (f"{GOLDEN}{ONEILL}/activity", f"/api/v1/customers/{ONEILL}/activity")):
        by_golden = client_360.get(golden, params=params, headers=bearer(api_token))
        by_customer = client_360.get(customers, params=params, headers=bearer(api_token))
        assert by_customer.status_code == by_golden.status_code == 200
        assert by_customer.json() == by_golden.json()


def test_without_include_the_answer_is_as_before(client_360: TestClient, api_token: str) -> None:
    body = client_360.get(GOLDEN + ONEILL, headers=bearer(api_token)).json()
    assert not {"customer_360", "household", "timeline"} & set(body)
    alone = client_360.get(GOLDEN + MCKENZIE, params={"include": "household"}, headers=bearer(api_token)).json()
    assert alone["household"] is None and "customer_360" not in alone


def test_an_unknown_include_is_a_400_that_names_the_known_ones(client_360: TestClient, api_token: str) -> None:
    response = client_360.get(GOLDEN + ONEILL, params={"include": "360,orders"}, headers=bearer(api_token))
    assert response.status_code == 400
    assert response.json()["detail"] == "unknown include value(s): orders; use a comma list of 360, household, timeline"


def test_the_activity_pages_add_up_to_the_whole_timeline(client_360: TestClient, api_token: str) -> None:
    keys, page = [], 1
    while page is not None:
        body = client_360.get(f"{GOLDEN}{ONEILL}/activity", params={"page": page, "size": 7},
                              headers=bearer(api_token)).json()
        assert body["total"] == ONEILL_ACTIVITY and body["size"] == 7 and len(body["activity"]) <= 7
        keys += [r["activity_key"] for r in body["activity"]]
        page = body["next_page"]
    assert keys == expected_order()
    assert body["page"] == 9 and len(body["activity"]) == ONEILL_ACTIVITY - 8 * 7
    undated = body["activity"][-1]
    assert undated["event_time"] is None and undated["status"] == HTML_STATUS
    past = client_360.get(f"{GOLDEN}{ONEILL}/activity", params={"page": 99}, headers=bearer(api_token)).json()
    assert past["activity"] == [] and past["next_page"] is None and past["total"] == ONEILL_ACTIVITY


@pytest.mark.parametrize("params", [{"size": 201}, {"size": 0}, {"page": 0}, {"page": "x"}])
def test_the_activity_refuses_a_bad_page_or_size(client_360: TestClient, api_token: str, params: dict) -> None:
    assert client_360.get(f"{GOLDEN}{ONEILL}/activity", params=params, headers=bearer(api_token)).status_code == 422


def test_a_retired_id_answers_with_its_survivors_view_and_activity(client_360: TestClient, api_token: str) -> None:
    body = client_360.get(GOLDEN + ONEILL_RETIRED, params={"include": "360,timeline"},
                          headers=bearer(api_token)).json()
    assert body["redirected"] is True and body["golden_id"] == ONEILL
    assert body["customer_360"]["golden_id"] == ONEILL and body["timeline"]["total"] == ONEILL_ACTIVITY
    activity = client_360.get(f"{GOLDEN}{ONEILL_RETIRED}/activity", headers=bearer(api_token)).json()
    assert activity["requested_id"] == ONEILL_RETIRED and activity["golden_id"] == ONEILL
    assert activity["redirected"] is True and len(activity["activity"]) == 50


def test_unknown_and_erased_ids_answer_as_the_golden_route_does(client_360: TestClient, api_token: str) -> None:
    assert client_360.get(f"{GOLDEN}G-nope/activity", headers=bearer(api_token)).status_code == 404
    gone = client_360.get(f"{GOLDEN}{ERASED_GOLDEN}/activity", headers=bearer(api_token))
    assert gone.status_code == 410 and gone.json()["status"] == "erased" and "activity" not in gone.json()
    assert client_360.get(GOLDEN + ERASED_GOLDEN, params={"include": "timeline"},
                          headers=bearer(api_token)).status_code == 410


def test_the_activity_needs_the_lookup_scope_and_leaves_audit_rows(client_360: TestClient, api_token: str) -> None:
    assert client_360.get(f"{GOLDEN}{ONEILL}/activity").status_code == 401
    client_360.get(GOLDEN + ONEILL, params={"include": "household"}, headers=bearer(api_token))
    client_360.get(f"{GOLDEN}{ONEILL_RETIRED}/activity", headers=bearer(api_token))
    rows = client_360.app.state.read_audit.rows()
    assert [(r["route"], r["golden_ids"]) for r in rows[-2:]] == [
        ("/api/v1/golden/{golden_id}", sorted([ONEILL, NATARAJAN])),
        ("/api/v1/golden/{golden_id}/activity", [ONEILL]),
    ]


def test_a_lake_from_before_the_stage_answers_without_a_360_view(client: TestClient, api_token: str) -> None:
    body = client.get(GOLDEN + ONEILL, params={"include": "360,household,timeline"}, headers=bearer(api_token))
    assert body.status_code == 200
    assert body.json()["customer_360"] is None and body.json()["household"] is None
    assert body.json()["timeline"] == {"page": 1, "size": 50, "total": 0, "next_page": None, "activity": []}
    activity = client.get(f"{GOLDEN}{ONEILL}/activity", headers=bearer(api_token)).json()
    assert activity["total"] == 0 and activity["activity"] == []
    log_in(client, "victor")
    page = client.get(f"/golden/{ONEILL}")
    assert page.status_code == 200 and "No 360 view of this customer" in page.text
    assert "No activity linked to this customer" in page.text and "Lives alone" in page.text


def test_the_store_reads_a_new_version_of_the_activity(lake_360: Path, tmp_path: Path) -> None:
    """The sorted copy is of one table version: rows written later show once the version is read again."""
    root = Path(shutil.copytree(lake_360, tmp_path / "lake"))
    store = Store(Lake.at(root))
    assert store.activity(MCKENZIE, 0, 10)[1] == 2
    extra = dict(activity_rows()[-4], activity_key="m3")
    write_deltalake(Lake.at(root).gold("customer_activity"),
                    pa.Table.from_pylist([extra], schema=arrow_schema(CUSTOMER_ACTIVITY_SCHEMA)), mode="append")
    store._cache.invalidate(Lake.at(root).gold("customer_activity"))
    rows, total = store.activity(MCKENZIE, 0, 10)
    assert total == 3 and [r["activity_key"] for r in rows] == ["m1", "m3", "m2"]


# -- the golden record page ---------------------------------------------------------------------------------------


def test_the_golden_page_shows_departments_segment_timeline_and_household(client_360: TestClient) -> None:
    log_in(client_360, "victor")
    html = client_360.get(f"/golden/{ONEILL}").text
    assert 'id="segment">active</span>' in html
    assert "spent EUR 1,102.50 · GBP 1,131.50" in html and "1 open ticket " in html and "prefers web" in html
    for department in ("billing", "support_desk", "webshop"):
        assert f'<th scope="row"><span class="source">{department}</span></th>' in html
    timeline = html.split('<table class="list timeline">')[1].split("</table>")[0]
    assert timeline.count("<tr>") == 1 + 25  # the head and a page of 25
    assert timeline.index("<code>k001</code>") < timeline.index("<code>k000</code>") < timeline.index("<code>k002</code>")
    assert "page 1 of 3" in html and f'href="/golden/{ONEILL}?activity_page=2#timeline"' in html
    assert f'<a href="/golden/{NATARAJAN}">priya natarajan</a>' in html
    assert ERASED_GOLDEN not in html.split('id="household"')[1]


def test_the_last_timeline_page_escapes_what_the_sources_wrote(client_360: TestClient) -> None:
    log_in(client_360, "victor")
    html = client_360.get(f"/golden/{ONEILL}", params={"activity_page": 3}).text
    timeline = html.split('<table class="list timeline">')[1].split("</table>")[0]
    assert timeline.count("<tr>") == 1 + ONEILL_ACTIVITY - 50
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;status&#39;)&lt;/script&gt;" in timeline
    assert "<em>undated</em>" in timeline and "event_time: unreadable date" in timeline
    assert "← newer" in html and "older →" not in html


def test_a_customer_without_a_household_or_open_tickets(client_360: TestClient) -> None:
    log_in(client_360, "victor")
    html = client_360.get(f"/golden/{MCKENZIE}").text
    assert 'id="segment">lost</span>' in html and "Lives alone" in html and "prefers —" in html
    timeline = html.split('<table class="list timeline">')[1].split("</table>")[0]
    assert timeline.count("<tr>") == 3 and "GBP 99.99" in timeline
