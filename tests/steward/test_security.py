from __future__ import annotations

import hashlib
import logging

import pytest
from fastapi.testclient import TestClient

from steward.app import log_hash
from tests.steward.conftest import PASSWORDS, SECRET, csrf_from, log_in

PAIR = {"record_a": "sales_crm:501", "record_b": "webshop:W-c41d0e77", "action": "match", "origin": "review"}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SQLI = "' OR 1=1; DROP TABLE golden_customers; --"


@pytest.mark.parametrize("path", ["/", "/review", "/search?q=priya", "/golden/G3f2a9c4e1b7d0a53", "/why?a=x&b=y"])
def test_pages_redirect_to_login_without_a_session(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_posts_without_a_session_change_nothing(client: TestClient) -> None:
    token = csrf_from(client.get("/login").text)  # an anonymous session has a CSRF token, but no user
    for path in ("/decide", "/golden/G3f2a9c4e1b7d0a53/split", "/golden/G3f2a9c4e1b7d0a53/merge"):
        response = client.post(path, data={**PAIR, "csrf_token": token, "reason": "r"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.app.state.store.decisions() == []


def test_viewer_cannot_decide_split_or_merge(client: TestClient) -> None:
    token = log_in(client, "victor")
    assert client.post("/decide", data={**PAIR, "csrf_token": token}).status_code == 403
    split = {"csrf_token": token, "record_id": "support_desk:SUP-000311", "reason": "wrong person"}
    assert client.post("/golden/G3f2a9c4e1b7d0a53/split", data=split).status_code == 403
    merge = {"csrf_token": token, "other_id": "G8d4417fa0c2b9e35", "reason": "same"}
    assert client.post("/golden/G71c0e2d94ab3f618/merge", data=merge).status_code == 403
    assert client.app.state.store.decisions() == []
    assert client.get("/review").status_code == 200  # but can read


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_posts_need_the_sessions_csrf_token(client: TestClient, token: str | None) -> None:
    log_in(client, "alice")
    data = dict(PAIR) if token is None else {**PAIR, "csrf_token": token}
    assert client.post("/decide", data=data).status_code == 403
    assert client.post("/logout", data={} if token is None else {"csrf_token": token}).status_code == 403
    assert client.app.state.store.decisions() == []


def test_login_needs_csrf_and_the_right_password(client: TestClient) -> None:
    form = {"username": "alice", "password": PASSWORDS["alice"]}
    assert client.post("/login", data=form).status_code == 403
    token = csrf_from(client.get("/login").text)
    wrong = client.post("/login", data={**form, "password": "not-her-password", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert client.get("/review", follow_redirects=False).status_code == 303


def test_session_cookie_is_httponly_lax_and_login_never_redirects_off_site(client: TestClient) -> None:
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/review"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/review")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"


def test_payloads_are_stored_verbatim_and_rendered_escaped(client: TestClient) -> None:
    token = log_in(client, "alice")
    for query in (XSS, SQLI):
        page = client.get("/search", params={"q": query})
        assert page.status_code == 200 and "<script>alert" not in page.text
        assert client.get("/api/v1/search", params={"q": query}).json()["results"] == []
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in client.get("/search", params={"q": XSS}).text
    decided = client.post("/decide", data={**PAIR, "csrf_token": token, "comment": XSS + SQLI})
    assert decided.status_code == 200
    split = {"csrf_token": token, "record_id": "support_desk:SUP-000311", "reason": SQLI + XSS}
    assert client.post("/golden/G3f2a9c4e1b7d0a53/split", data=split).status_code == 200
    assert sorted(d["comment"] for d in client.app.state.store.decisions()) == sorted([XSS + SQLI, SQLI + XSS])
    page = client.get("/golden/G3f2a9c4e1b7d0a53").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert client.get("/golden/G3f2a9c4e1b7d0a53'--").status_code == 404
    assert client.get("/api/v1/golden/G3f2a9c4e1b7d0a53").json()["golden"]["golden_id"] == "G3f2a9c4e1b7d0a53"


def test_pii_never_reaches_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    planted_email, planted_comment = "planted.person@example.org", "called Planted Person on +447700900999"
    caplog.set_level(logging.DEBUG)
    token = log_in(client, "alice")
    client.get("/search", params={"q": planted_email})
    client.get("/api/v1/search", params={"q": planted_email})
    client.get("/review")
    client.get("/golden/G71c0e2d94ab3f618")
    client.post("/decide", data={**PAIR, "csrf_token": token, "comment": planted_comment})
    # Everything the server side logged (httpx is the test's own client, which logs its URLs).
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("httpx"))
    assert "GET /search 200" in logged and "POST /decide 303" in logged  # the log works
    assert "decision" in logged and "alice" in logged
    for secret in (planted_email, "planted", "+447700900999", "priya", "natarajan", PASSWORDS["alice"]):
        assert secret.lower() not in logged.lower()


def test_access_log_names_user_and_client_and_hashes_ids_in_paths(
    client: TestClient, api_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdi.steward.access")
    key = hashlib.sha256(b"cdi access log\0" + SECRET.encode()).digest()
    client.get("/api/v1/xref/webshop/W-c41d0e77", headers={"Authorization": f"Bearer {api_token}"})
    client.get("/api/v1/golden/G-unknown-id", headers={"Authorization": f"Bearer {api_token}"})
    client.get("/no/such/page/sales_crm:501")
    log_in(client, "alice")
    client.get("/golden/G71c0e2d94ab3f618", params={"q": "planted@example.org"})
    lines = [r.getMessage() for r in caplog.records if r.name == "cdi.steward.access"]
    logged = "\n".join(lines)
    for value in ("W-c41d0e77", "webshop", "G-unknown-id", "G71c0e2d94ab3f618", "sales_crm:501", "planted"):
        assert value not in logged
    xref = f"GET /api/v1/xref/{log_hash(key, 'webshop')}/{log_hash(key, 'W-c41d0e77')} 200"
    assert any(line.startswith(xref) and "user=token:crm-sync client=testclient" in line for line in lines)
    assert f"GET /api/v1/golden/{log_hash(key, 'G-unknown-id')} 404" in logged
    assert f"GET {log_hash(key, '/no/such/page/sales_crm:501')} 404" in logged
    page = f"GET /golden/{log_hash(key, 'G71c0e2d94ab3f618')} 200"
    assert any(line.startswith(page) and line.endswith("user=alice client=testclient") for line in lines)
    assert any(line.startswith("GET /login 200") and "user=- " in line for line in lines)
