"""Fixtures of the steward tests: a fake lake (delta-rs, no Spark), users, the app, a logged-in client."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from steward.app import create_app
from steward.config import StewardSettings, create_api_token, create_user
from tests.steward.fake_lake import MATCHING, build_lake, build_rich_lake
from tests.steward.live import app_page, chromium

PASSWORDS = {"alice": "alice-steward-pw-1", "victor": "victor-viewer-pw-1", "root": "root-admin-pw-12"}
ROLES = {"alice": "steward", "victor": "viewer", "root": "admin"}
SECRET = "test-session-secret-" + "x" * 32
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def built_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built") / "lake"
    build_lake(root)
    return root


@pytest.fixture
def lake_root(built_lake: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fake lake per test, so decisions written by one test stay there."""
    return Path(shutil.copytree(built_lake, tmp_path / "lake"))


@pytest.fixture(scope="session")
def stewards_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("conf") / "stewards.yaml"
    for user, password in PASSWORDS.items():
        create_user(path, user, ROLES[user], password)
    return path


@pytest.fixture(scope="session")
def api_token(stewards_file: Path) -> str:
    return create_api_token(stewards_file, "crm-sync")


@pytest.fixture
def settings(lake_root: Path, stewards_file: Path, api_token: str) -> StewardSettings:
    return StewardSettings(lake=str(lake_root), matching=MATCHING, stewards=stewards_file, session_secret=SECRET)


@pytest.fixture
def client(settings: StewardSettings) -> TestClient:
    return TestClient(create_app(settings), base_url="http://127.0.0.1")


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def log_in(client: TestClient, username: str) -> str:
    """Log ``username`` in; return the session's CSRF token."""
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORDS[username], "csrf_token": token, "next": "/review"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/review").text)


@pytest.fixture(scope="session")
def built_rich_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built_rich") / "lake"
    build_rich_lake(root)
    return root


@pytest.fixture
def rich_settings(built_rich_lake: Path, tmp_path: Path, settings: StewardSettings) -> StewardSettings:
    """``settings`` on a fresh copy of the richer lake (``fake_lake.build_rich_lake``: a father and his son)."""
    return dataclasses.replace(settings, lake=str(shutil.copytree(built_rich_lake, tmp_path / "rich_lake")))


@pytest.fixture
def rich_client(rich_settings: StewardSettings) -> TestClient:
    return TestClient(create_app(rich_settings), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the browser tests of one module (closed after it: Playwright's sync API
    allows one instance at a time, and test_end_to_end starts its own)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, settings: StewardSettings):
    """A browser page on the app of ``settings`` (served by uvicorn), logged out."""
    with app_page(browser, settings) as opened:
        yield opened
