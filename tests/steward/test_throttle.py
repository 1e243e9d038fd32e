"""Log-in throttling and lockout, the password-check pool off the event loop, and per-token rate limits."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

import steward.routes.login as login_route
from steward import auth
from steward.app import create_app
from steward.config import PASSWORD_HASHER, LoginLimits, StewardSettings, load_directory
from steward.throttle import FailureThrottle, LoginGuard, TokenBuckets
from tests.steward.conftest import PASSWORDS, csrf_from
from tests.steward.live import serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_lock_a_key_for_the_lockout_then_let_it_go() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window=60, lockout=300, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") == 300 and throttle.retry_after("b") == 0
    clock.now += 299
    assert throttle.retry_after("a") == 1
    clock.now += 1
    assert throttle.retry_after("a") == 0


def test_failures_outside_the_window_do_not_count_and_success_clears() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window=60, lockout=300, clock=clock)
    for _ in range(2):
        throttle.failed("a")
        clock.now += 61
    throttle.failed("a")
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 0


def test_token_bucket_allows_the_rate_then_refills() -> None:
    clock = Clock()
    buckets = TokenBuckets(clock)
    assert [buckets.take("t", 3) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("t", 3) == pytest.approx(20.0)  # 3 a minute: one every 20 s
    assert buckets.take("other", 3) == 0
    clock.now += 20
    assert buckets.take("t", 3) == 0 and buckets.take("t", 3) > 0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: StewardSettings, clock: Clock) -> TestClient:
    app = create_app(settings)
    app.state.login_guard = LoginGuard(LoginLimits(account_failures=5, client_failures=20, lockout_minutes=15), clock)
    return TestClient(app, base_url="http://127.0.0.1")


def attempt(client: TestClient, username: str, password: str) -> httpx.Response:
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)


def test_wrong_passwords_lock_the_account_and_the_right_one_is_refused_during_the_lockout(
    client: TestClient, clock: Clock
) -> None:
    answers = [attempt(client, "alice", f"guess-{n}").status_code for n in range(5)]
    assert answers == [401, 401, 401, 401, 429]
    locked = attempt(client, "alice", PASSWORDS["alice"])
    assert locked.status_code == 429 and locked.headers["retry-after"] == "900"
    assert "Too many failed log-ins" in locked.text and "15 minutes" in locked.text
    assert client.get("/review", follow_redirects=False).status_code == 303
    assert attempt(client, "ALICE", PASSWORDS["alice"]).status_code == 429  # case does not reset the count
    assert attempt(client, "victor", PASSWORDS["victor"]).status_code == 303  # other accounts unaffected
    clock.now += 15 * 60
    assert attempt(client, "alice", PASSWORDS["alice"]).status_code == 303


def test_sixty_wrong_passwords_then_the_right_one_does_not_log_in(client: TestClient) -> None:
    for n in range(60):
        attempt(client, "alice", f"guess-{n}")
    assert attempt(client, "alice", PASSWORDS["alice"]).status_code == 429


def test_one_address_guessing_many_accounts_is_locked_out(client: TestClient) -> None:
    for n in range(20):
        assert attempt(client, f"user{n}", "guess").status_code in (401, 429)
    refused = attempt(client, "victor", PASSWORDS["victor"])
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0


def test_a_right_password_resets_the_accounts_count(client: TestClient) -> None:
    for n in range(4):
        attempt(client, "alice", f"guess-{n}")
    assert attempt(client, "alice", PASSWORDS["alice"]).status_code == 303
    assert [attempt(client, "alice", f"again-{n}").status_code for n in range(4)] == [401] * 4


def test_an_unknown_user_costs_one_argon2_check_like_a_known_one(monkeypatch: pytest.MonkeyPatch, stewards_file) -> None:
    checked: list[str] = []

    class Spy:
        def verify(self, hash: str, password: str) -> bool:
            checked.append(hash)
            return PASSWORD_HASHER.verify(hash, password)

    monkeypatch.setattr(auth, "PASSWORD_HASHER", Spy())
    directory = load_directory(stewards_file)
    assert auth.check_password(directory, "mallory", "whatever-pw-123") is None
    assert auth.check_password(directory, "alice", "whatever-pw-123") is None
    assert checked == [auth._DUMMY_HASH, directory.users["alice"].password_hash]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Password checks wait until the event is set: a stand-in for a slow argon2."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow_check(*args: object) -> None:
        started.release()
        release.wait(timeout=60)
        return None

    monkeypatch.setattr(login_route, "check_password", slow_check)
    release.started = started  # type: ignore[attr-defined]
    yield release
    release.set()


def test_password_checks_do_not_block_the_api(settings: StewardSettings, api_token: str,
                                              gate: threading.Event) -> None:
    """Four log-ins stuck in their password check; the API still answers, then the log-ins finish."""
    limits = LoginLimits(verify_workers=2, max_waiting=2)
    app = create_app(dataclasses.replace(settings, login_limits=limits))
    with serving(app) as url, ThreadPoolExecutor(max_workers=5) as pool:
        def post_login() -> int:
            with httpx.Client(base_url=url) as browser:
                token = csrf_from(browser.get("/login").text)
                return browser.post("/login", data={"username": "alice", "password": "wrong-guess-1",
                                                    "csrf_token": token}).status_code
        logins = [pool.submit(post_login) for _ in range(4)]
        for _ in range(2):  # both workers are inside a check; two more log-ins wait for one
            assert gate.started.acquire(timeout=30)  # type: ignore[attr-defined]
        answer = httpx.get(f"{url}/api/v1/golden/G3f2a9c4e1b7d0a53",
                           headers={"Authorization": f"Bearer {api_token}"}, timeout=30)
        assert answer.status_code == 200
        assert not any(f.done() for f in logins), "the log-ins should still be waiting for their check"
        with httpx.Client(base_url=url) as extra:  # the pool and its queue are full: refused at once
            token = csrf_from(extra.get("/login").text)
            busy = extra.post("/login", data={"username": "bob", "password": "x", "csrf_token": token}, timeout=30)
        assert busy.status_code == 429 and "checking many log-ins" in busy.text
        gate.set()
        assert sorted(f.result(timeout=30) for f in logins) == [401, 401, 401, 401]
