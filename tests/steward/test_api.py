from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from steward.app import create_app
from steward.config import StewardSettings, create_api_token, token_digest
from tests.steward.conftest import log_in


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_golden_answers_a_retired_id_with_its_survivor(client: TestClient, api_token: str) -> None:
    body = client.get("/api/v1/golden/G04e1d8b2c7f9a316", headers=bearer(api_token)).json()
    assert body["requested_id"] == "G04e1d8b2c7f9a316" and body["golden_id"] == "G3f2a9c4e1b7d0a53"
    assert body["redirected"] is True and body["survivor_chain"] == ["G04e1d8b2c7f9a316", "G3f2a9c4e1b7d0a53"]
    assert body["golden"]["birth_date"] == "1978-02-03"
    assert body["golden"]["lineage"]["email"] == "webshop:W-7f3e9a10"
    assert [r["record_id"] for r in body["records"]] == [
        "billing:100233", "sales_crm:412", "support_desk:SUP-000311", "webshop:W-7f3e9a10"
    ]
    direct = client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers=bearer(api_token)).json()
    assert direct["redirected"] is False
    assert client.get("/api/v1/golden/G-nope", headers=bearer(api_token)).status_code == 404


def test_xref_search_and_changes(client: TestClient, api_token: str) -> None:
    xref = client.get("/api/v1/xref/webshop/W-c41d0e77", headers=bearer(api_token)).json()
    assert xref["golden_id"] == "G8d4417fa0c2b9e35" and xref["xref"]["linked_by"] == "singleton"
    assert client.get("/api/v1/xref/webshop/nope", headers=bearer(api_token)).status_code == 404
    found = client.get("/api/v1/search", params={"q": "priya.n@GMAIL"}, headers=bearer(api_token)).json()
    assert [r["golden_id"] for r in found["results"]] == ["G71c0e2d94ab3f618"]
    assert client.get("/api/v1/search", params={"q": "x"}, headers=bearer(api_token)).status_code == 422
    changes = client.get("/api/v1/changes", params={"since_version": 0}, headers=bearer(api_token)).json()
    # version 0: eleven golden rows inserted; version 1: two replaced (one deleted at the source, one erased)
    assert changes["latest_version"] == 1 and len(changes["changes"]) == 15
    assert {(c["_change_type"], c["_commit_version"]) for c in changes["changes"]} == {
        ("insert", 0), ("delete", 1), ("insert", 1)
    }
    assert changes["next_cursor"] == "2.0" and changes["has_more"] is False


def test_openapi_documents_the_read_api(client: TestClient, api_token: str) -> None:
    paths = client.get("/api/v1/openapi.json", headers=bearer(api_token)).json()["paths"]
    assert sorted(paths) == [
        "/api/v1/changes", "/api/v1/customers/{golden_id}", "/api/v1/customers/{golden_id}/activity",
        "/api/v1/golden/{golden_id}", "/api/v1/golden/{golden_id}/activity", "/api/v1/search",
        "/api/v1/xref/{source_system}/{source_key}",
    ]


def test_api_needs_a_token_or_a_session(client: TestClient, api_token: str) -> None:
    for path in ("/api/v1/golden/G3f2a9c4e1b7d0a53", "/api/v1/changes?since_version=0", "/api/v1/openapi.json"):
        response = client.get(path)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers=bearer(api_token + "x")).status_code == 401
    assert client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers={"Authorization": f"Basic {api_token}"}).status_code == 401
    log_in(client, "victor")
    assert client.get("/api/v1/golden/G3f2a9c4e1b7d0a53").status_code == 200


def test_a_read_only_token_cannot_decide_or_see_pages(client: TestClient, api_token: str) -> None:
    response = client.post("/decide", headers=bearer(api_token), data={"action": "match"}, follow_redirects=False)
    assert response.status_code in (303, 403)
    assert client.get("/review", headers=bearer(api_token), follow_redirects=False).status_code == 303
    assert client.app.state.store.decisions() == []


@pytest.fixture
def tokens(settings: StewardSettings, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    """A client of an app whose stewards file holds a token per case: lookup, changes, a slow one, an expired one."""
    stewards = tmp_path / "own" / "stewards.yaml"
    made = {
        "lookup": create_api_token(stewards, "lookup-sync", scope="lookup"),
        "changes": create_api_token(stewards, "feed-sync", scope="changes"),
        "slow": create_api_token(stewards, "slow-sync", scope="lookup", rate_per_minute=3),
        "expired": create_api_token(stewards, "old-sync", scope="lookup"),
    }
    raw = yaml.safe_load(stewards.read_text())
    raw["api_tokens"]["old-sync"]["expires"] = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    stewards.write_text(yaml.safe_dump(raw))
    app = create_app(dataclasses.replace(settings, stewards=stewards))
    return TestClient(app, base_url="http://127.0.0.1"), made


def test_a_token_may_call_only_its_scope(tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, made = tokens
    golden, feed = "/api/v1/golden/G3f2a9c4e1b7d0a53", "/api/v1/changes?since_version=0"
    assert client.get(golden, headers=bearer(made["lookup"])).status_code == 200
    assert client.get("/api/v1/search?q=priya", headers=bearer(made["lookup"])).status_code == 200
    refused = client.get(feed, headers=bearer(made["lookup"]))
    assert refused.status_code == 403 and "changes" in refused.json()["detail"]
    assert client.get(feed, headers=bearer(made["changes"])).status_code == 200
    assert client.get(golden, headers=bearer(made["changes"])).status_code == 403
    assert client.get(golden + "/activity", headers=bearer(made["changes"])).status_code == 403
    assert client.get(golden + "/activity", headers=bearer(made["lookup"])).status_code == 200
    assert client.get("/api/v1/xref/webshop/W-c41d0e77", headers=bearer(made["changes"])).status_code == 403


def test_an_expired_token_is_refused(tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, made = tokens
    response = client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers=bearer(made["expired"]))
    assert response.status_code == 401


def test_a_token_over_its_rate_gets_429_with_retry_after(tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, made = tokens
    answers = [client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers=bearer(made["slow"])) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) == 20
    assert client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers=bearer(made["lookup"])).status_code == 200


def test_changes_come_in_pages_that_add_up_to_the_whole_feed(client: TestClient, api_token: str) -> None:
    whole = client.get("/api/v1/changes", params={"since_version": 0}, headers=bearer(api_token)).json()["changes"]
    pages, params = [], {"since_version": 0, "limit": 4}
    while True:
        page = client.get("/api/v1/changes", params=params, headers=bearer(api_token)).json()
        assert len(page["changes"]) <= 4
        pages.append(page)
        if not page["has_more"]:
            break
        params = {"cursor": page["next_cursor"], "limit": 4}
    assert [len(p["changes"]) for p in pages] == [4, 4, 4, 3]
    assert [row for p in pages for row in p["changes"]] == whole
    assert [p["cursor"] for p in pages] == ["0.0", "0.4", "0.8", "1.1"]  # version 0 holds eleven rows
    assert pages[-1]["next_cursor"] == "2.0"
    later = client.get("/api/v1/changes", params={"cursor": "2.0"}, headers=bearer(api_token)).json()
    assert later["changes"] == [] and later["next_cursor"] == "2.0" and later["has_more"] is False


@pytest.mark.parametrize("params", [{}, {"since_version": 0, "cursor": "0.0"}, {"cursor": "abc"},
                                    {"cursor": "1.-1"}, {"since_version": 0, "limit": 1001}])
def test_changes_refuse_a_bad_start_or_page_size(client: TestClient, api_token: str, params: dict) -> None:
    assert client.get("/api/v1/changes", params=params, headers=bearer(api_token)).status_code == 422


def test_reads_of_personal_data_leave_audit_rows(client: TestClient, api_token: str) -> None:
    audit = client.app.state.read_audit
    since = audit.rows()[-1]["at"] if audit.rows() else ""
    already = len(audit.rows(since))
    client.get("/api/v1/golden/G04e1d8b2c7f9a316", headers=bearer(api_token))
    client.get("/api/v1/xref/webshop/W-c41d0e77", headers=bearer(api_token))
    client.get("/api/v1/search", params={"q": "priya.n@GMAIL"}, headers=bearer(api_token))
    client.get("/api/v1/changes", params={"cursor": "1.0", "limit": 2}, headers=bearer(api_token))
    client.get("/api/v1/golden/G-nope", headers=bearer(api_token))  # nothing read: no row
    log_in(client, "victor")
    client.get("/api/v1/golden/G71c0e2d94ab3f618")
    rows = audit.rows(since)[already:]
    assert [(r["principal"], r["via"], r["route"], r["golden_ids"]) for r in rows] == [
        ("token:crm-sync", "token", "/api/v1/golden/{golden_id}", ["G3f2a9c4e1b7d0a53"]),
        ("token:crm-sync", "token", "/api/v1/xref/{source_system}/{source_key}", ["G8d4417fa0c2b9e35"]),
        ("token:crm-sync", "token", "/api/v1/search", ["G71c0e2d94ab3f618"]),
        ("token:crm-sync", "token", "/api/v1/changes", ["G2b7e5a91f0c4d368"]),  # its delete and insert rows
        ("victor", "session", "/api/v1/golden/{golden_id}", ["G71c0e2d94ab3f618"]),
    ]
    assert all(r["client"] == "testclient" for r in rows)
    assert all(r["at"].endswith("+00:00") for r in rows)


def test_a_token_from_before_expiries_works_and_is_warned_about(
    settings: StewardSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stewards = tmp_path / "own" / "stewards.yaml"
    stewards.parent.mkdir()
    token = "cdi_written-by-an-older-cdi"
    stewards.write_text(f"api_tokens:\n  old-sync:\n    sha256: {token_digest(token)}\n    scope: read\n")
    with caplog.at_level(logging.WARNING, logger="cdi.steward"):
        client = TestClient(create_app(dataclasses.replace(settings, stewards=stewards)), base_url="http://127.0.0.1")
    assert any("old-sync has no expiry" in r.getMessage() for r in caplog.records)
    assert client.get("/api/v1/golden/G3f2a9c4e1b7d0a53", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/changes", params={"since_version": 0}, headers=bearer(token)).status_code == 200
