from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from steward.auth import check_password, check_token
from steward.config import StewardConfigError, StewardSettings, create_api_token, create_user, load_directory, token_digest


def test_create_user_writes_only_an_argon2_hash(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    create_user(path, "alice", "steward", "correct horse battery")
    text = path.read_text()
    assert "correct horse battery" not in text
    entry = yaml.safe_load(text)["users"]["alice"]
    assert entry["role"] == "steward" and entry["password_hash"].startswith("$argon2id$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    directory = load_directory(path)
    assert check_password(directory, "alice", "correct horse battery").role == "steward"
    assert check_password(directory, "alice", "wrong password!!") is None
    assert check_password(directory, "mallory", "correct horse battery") is None


def test_create_user_again_changes_role_and_password(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    create_user(path, "alice", "steward", "first password 1")
    create_user(path, "bob", "viewer", "bobs password 1")
    create_user(path, "alice", "admin", "second password 2")
    directory = load_directory(path)
    assert sorted(directory.users) == ["alice", "bob"]
    assert check_password(directory, "alice", "second password 2").role == "admin"
    assert check_password(directory, "alice", "first password 1") is None


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("alice", "superuser", "long enough pw", "role 'superuser'"),
        ("alice", "steward", "short", "at least"),
        ("al ice", "steward", "long enough pw", "username"),
    ],
)
def test_create_user_rejects_bad_input(tmp_path: Path, username: str, role: str, password: str, message: str) -> None:
    with pytest.raises(StewardConfigError, match=message):
        create_user(tmp_path / "stewards.yaml", username, role, password)


def test_api_token_is_returned_once_and_stored_as_sha256(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    token = create_api_token(path, "crm-sync")
    assert token not in path.read_text()
    assert yaml.safe_load(path.read_text())["api_tokens"]["crm-sync"] == {"sha256": token_digest(token), "scope": "read"}
    principal = check_token(load_directory(path), token)
    assert principal is not None and principal.role == "viewer" and principal.name == "token:crm-sync"
    assert check_token(load_directory(path), token + "x") is None


def test_invalid_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    path.write_text("users:\n  alice: {role: boss, password_hash: '$argon2id$x'}\n")
    with pytest.raises(StewardConfigError, match=r"stewards.yaml: users.alice.role: expected one of viewer, steward, admin"):
        load_directory(path)


def test_short_session_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StewardConfigError, match="CDI_SESSION_SECRET"):
        StewardSettings(lake="lake", matching=tmp_path, stewards=tmp_path, session_secret="short")
