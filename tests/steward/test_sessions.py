"""Server-side sessions: log-out, password and role changes, "end all sessions", lifetimes, restarts, transport."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobs.cli import main
from steward.app import check_transport, create_app
from steward.config import StewardConfigError, StewardSettings, create_user, state_path_of
from steward.sessions import end_sessions
from tests.steward.conftest import PASSWORDS, ROLES, csrf_from, log_in

PAIR = {"record_a": "sales_crm:501", "record_b": "webshop:W-c41d0e77", "action": "match", "origin": "review"}


@pytest.fixture
def own_settings(settings: StewardSettings, tmp_path: Path) -> StewardSettings:
    """The test settings with a stewards file (and so a session store) of this test's own."""
    stewards = tmp_path / "own" / "stewards.yaml"
    for user, password in PASSWORDS.items():
        create_user(stewards, user, ROLES[user], password)
    return dataclasses.replace(settings, stewards=stewards)


def client_of(settings: StewardSettings) -> TestClient:
    return TestClient(create_app(settings), base_url="http://127.0.0.1")


def logged_out(client: TestClient) -> bool:
    response = client.get("/review", follow_redirects=False)
    return response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_cookie_saved_before_logout_is_dead_after_it(own_settings: StewardSettings) -> None:
    client = client_of(own_settings)
    token = log_in(client, "alice")
    saved = dict(client.cookies)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    replay = client_of(own_settings)
    replay.cookies.update(saved)
    assert logged_out(replay)
    decided = replay.post("/decide", data={**PAIR, "csrf_token": token}, follow_redirects=False)
    assert decided.status_code in (303, 403) and replay.app.state.store.decisions() == []
    assert replay.get("/api/v1/golden/G3f2a9c4e1b7d0a53").status_code == 401


@pytest.mark.parametrize(("role", "password"), [("steward", "a-new-password-1"), ("viewer", PASSWORDS["alice"])])
def test_a_password_or_role_change_ends_the_users_sessions(own_settings: StewardSettings, role: str, password: str) -> None:
    alice, victor = client_of(own_settings), client_of(own_settings)
    log_in(alice, "alice")
    log_in(victor, "victor")
    create_user(own_settings.stewards, "alice", role, password)  # what `cdi create-user alice` writes
    assert logged_out(alice)
    assert not logged_out(victor)


def test_sessions_survive_a_restart_and_a_logout_survives_it_too(own_settings: StewardSettings) -> None:
    before = client_of(own_settings)
    token = log_in(before, "alice")
    cookies = dict(before.cookies)
    after = client_of(own_settings)  # a new process: same secret, same state file
    after.cookies.update(cookies)
    assert not logged_out(after)
    after.post("/logout", data={"csrf_token": token})
    again = client_of(own_settings)
    again.cookies.update(cookies)
    assert logged_out(again)


def test_an_admin_ends_all_sessions_from_the_sessions_page(own_settings: StewardSettings) -> None:
    root, alice, victor = client_of(own_settings), client_of(own_settings), client_of(own_settings)
    token = log_in(root, "root")
    log_in(alice, "alice")
    log_in(victor, "victor")
    assert alice.get("/sessions").status_code == 403
    page = root.get("/sessions")
    assert page.status_code == 200 and page.text.count("<td>testclient</td>") == 3
    assert all(name in page.text for name in ("root", "alice", "victor"))
    ended = root.post("/sessions/end-all", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/login"
    assert logged_out(root) and logged_out(alice) and logged_out(victor)
    assert root.post("/sessions/end-all", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert root.app.state.sessions.active() == []


def test_end_sessions_from_the_command_line_while_the_app_runs(own_settings: StewardSettings,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    alice, victor = client_of(own_settings), client_of(own_settings)
    log_in(alice, "alice")
    log_in(victor, "victor")
    assert end_sessions(state_path_of(own_settings.stewards), "alice") == 1
    assert logged_out(alice) and not logged_out(victor)
    assert main(["end-sessions", "--stewards", str(own_settings.stewards)]) == 0
    assert "1 session(s) ended" in capsys.readouterr().out
    assert logged_out(victor)


def test_a_session_ends_after_its_absolute_lifetime_however_busy(own_settings: StewardSettings) -> None:
    client = client_of(dataclasses.replace(own_settings, session_hours=1, idle_minutes=30))
    sessions = client.app.state.sessions
    started = time.time()
    log_in(client, "alice")
    for minutes in (20, 40, 59):
        sessions.clock = lambda m=minutes: started + 60 * m
        assert not logged_out(client), f"still logged in after {minutes} minutes"
    sessions.clock = lambda: started + 61 * 60
    assert logged_out(client)


def test_an_idle_session_ends(own_settings: StewardSettings) -> None:
    client = client_of(dataclasses.replace(own_settings, idle_minutes=30))
    started = time.time()
    log_in(client, "alice")
    client.app.state.sessions.clock = lambda: started + 31 * 60
    assert logged_out(client)


def test_the_state_file_is_private_and_holds_no_session_id(own_settings: StewardSettings) -> None:
    client = client_of(own_settings)
    log_in(client, "alice")
    path = state_path_of(own_settings.stewards)
    assert path.stat().st_mode & 0o077 == 0
    (row,) = client.app.state.sessions.db.query("SELECT id_hash, username FROM sessions")
    assert row[1] == "alice" and len(row[0]) == 64


def test_secure_cookie_and_hsts_unless_insecure_http(own_settings: StewardSettings) -> None:
    secure = TestClient(create_app(dataclasses.replace(own_settings, secure_cookies=True)), base_url="https://127.0.0.1")
    token = csrf_from(secure.get("/login").text)
    response = secure.post("/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303 and "secure" in response.headers["set-cookie"].lower()
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert secure.get("/review").status_code == 200
    plain = client_of(own_settings).get("/login")
    assert "strict-transport-security" not in plain.headers and "secure" not in plain.headers["set-cookie"].lower()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_insecure_http_is_allowed_on_loopback(own_settings: StewardSettings, host: str) -> None:
    check_transport(own_settings, host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "steward.bank.example"])
def test_insecure_http_is_refused_off_loopback(own_settings: StewardSettings, host: str) -> None:
    with pytest.raises(StewardConfigError, match="only on a loopback address"):
        check_transport(own_settings, host)
    check_transport(dataclasses.replace(own_settings, secure_cookies=True), host)


def test_cdi_serve_refuses_insecure_http_off_loopback(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDI_SESSION_SECRET", "s" * 40)
    assert main(["serve", "--insecure-http", "--host", "0.0.0.0"]) == 2
    assert "only on a loopback address" in capsys.readouterr().err
