from __future__ import annotations

from fastapi.testclient import TestClient

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


def test_openapi_documents_the_read_api(client: TestClient, api_token: str) -> None:
    paths = client.get("/api/v1/openapi.json", headers=bearer(api_token)).json()["paths"]
    assert sorted(paths) == [
        "/api/v1/changes", "/api/v1/golden/{golden_id}", "/api/v1/search", "/api/v1/xref/{source_system}/{source_key}"
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
