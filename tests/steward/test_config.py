from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from jobs.cli import main
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
    entry = yaml.safe_load(path.read_text())["api_tokens"]["crm-sync"]
    assert entry["sha256"] == token_digest(token) and entry["scope"] == "read" and entry["rate_per_minute"] == 600
    expires = datetime.fromisoformat(entry["expires"])
    assert timedelta(days=89) < expires - datetime.now(timezone.utc) <= timedelta(days=90)
    principal = check_token(load_directory(path), token)
    assert principal is not None and principal.role == "viewer" and principal.name == "token:crm-sync"
    assert principal.scopes == {"lookup", "changes"}
    assert check_token(load_directory(path), token + "x") is None
    assert check_token(load_directory(path), token, now=expires) is None  # expired


def test_token_scope_expiry_and_rate_are_written_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    token = create_api_token(path, "feed", scope="changes", expires_days=1, rate_per_minute=30)
    (entry,) = load_directory(path).tokens
    assert entry.scopes == {"changes"} and entry.rate_per_minute == 30
    assert check_token(load_directory(path), token).scopes == {"changes"}
    with pytest.raises(StewardConfigError, match="scope 'admin'"):
        create_api_token(path, "x", scope="admin")
    with pytest.raises(StewardConfigError, match="expiry"):
        create_api_token(path, "x", expires_days=0)


def test_a_token_from_before_scopes_and_expiries_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    token = "cdi_legacy-token-value"
    path.write_text(f"api_tokens:\n  old-sync:\n    sha256: {token_digest(token)}\n    scope: read\n")
    (entry,) = load_directory(path).tokens
    assert entry.expires_at is None and entry.scopes == {"lookup", "changes"} and entry.rate_per_minute == 600
    assert check_token(load_directory(path), token, now=datetime(2100, 1, 1, tzinfo=timezone.utc)) is not None
    path.write_text(f"api_tokens:\n  old-sync:\n    sha256: {token_digest(token)}\n    scope: write\n")
    with pytest.raises(StewardConfigError, match=r"api_tokens.old-sync.scope"):
        load_directory(path)


def test_invalid_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "stewards.yaml"
    path.write_text("users:\n  alice: {role: boss, password_hash: '$argon2id$x'}\n")
    with pytest.raises(StewardConfigError, match=r"stewards.yaml: users.alice.role: expected one of viewer, steward, admin"):
        load_directory(path)


def test_short_session_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StewardConfigError, match="CDI_SESSION_SECRET"):
        StewardSettings(lake="lake", matching=tmp_path, stewards=tmp_path, session_secret="short")


def test_cdi_create_token_writes_scope_expiry_and_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stewards.yaml"
    assert main(["create-token", "dwh-feed", "--scope", "changes", "--expires", "30", "--rate", "120",
                 "--stewards", str(path)]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    (entry,) = load_directory(path).tokens
    assert entry.scopes == {"changes"} and entry.rate_per_minute == 120
    assert timedelta(days=29) < entry.expires_at - datetime.now(timezone.utc) <= timedelta(days=30)
    assert check_token(load_directory(path), token).name == "token:dwh-feed"
    assert main(["create-token", "default", "--stewards", str(path)]) == 0
    assert load_directory(path).tokens[0].scopes == {"lookup"}  # the command's default: lookup only
