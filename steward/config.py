"""The review app's configuration: who may log in, which API tokens exist, where the lake is.

Users and tokens live in a YAML file (``conf/stewards.yaml``, path from
``CDI_STEWARDS``); see ``conf/stewards.example.yaml``. The file holds only
argon2 password hashes and SHA-256 token digests, never a password or a
token. ``create_user`` and ``create_api_token`` are what ``cdi create-user``
and ``cdi create-token`` call; both rewrite the file atomically with mode 0600.

The session secret is not in the file: it comes from ``CDI_SESSION_SECRET``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from argon2 import PasswordHasher

Role = Literal["viewer", "steward", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "steward", "admin")
SESSION_SECRET_ENV = "CDI_SESSION_SECRET"
STEWARDS_ENV = "CDI_STEWARDS"
MIN_SECRET_LENGTH = 32
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "cdi_"
PASSWORD_HASHER = PasswordHasher()


class StewardConfigError(ValueError):
    """Invalid stewards file or settings; the message names the file and the key."""


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    password_hash: str


@dataclass(frozen=True)
class ApiToken:
    name: str
    sha256: str
    scope: Literal["read"] = "read"


@dataclass(frozen=True)
class Directory:
    """Users and API tokens, as read from the stewards file."""

    users: dict[str, User]
    tokens: tuple[ApiToken, ...]


@dataclass(frozen=True)
class StewardSettings:
    """Everything ``create_app`` needs."""

    lake: str  # lake root, as in the pipeline config
    matching: Path  # matching settings YAML (comparisons, blocking rules)
    stewards: Path  # users and tokens YAML
    session_secret: str
    secure_cookies: bool = False  # set when served behind HTTPS
    session_hours: int = 8

    def __post_init__(self) -> None:
        if len(self.session_secret) < MIN_SECRET_LENGTH:
            raise StewardConfigError(
                f"{SESSION_SECRET_ENV}: the session secret must be at least {MIN_SECRET_LENGTH} characters"
            )


def session_secret_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    secret = environ.get(SESSION_SECRET_ENV, "")
    if not secret:
        raise StewardConfigError(
            f"{SESSION_SECRET_ENV} is not set; e.g. export {SESSION_SECRET_ENV}=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return secret


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read_raw(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"users": {}, "api_tokens": {}}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise StewardConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise StewardConfigError(f"{path}: expected a mapping with keys users and api_tokens")
    unknown = sorted(set(data) - {"users", "api_tokens"})
    if unknown:
        raise StewardConfigError(f"{path}: unknown key {unknown[0]!r}; expected users, api_tokens")
    return {"users": data.get("users") or {}, "api_tokens": data.get("api_tokens") or {}}


def _parse_user(path: Path, username: str, entry: Any) -> User:
    where = f"{path}: users.{username}"
    if not isinstance(entry, dict):
        raise StewardConfigError(f"{where}: expected a mapping with role and password_hash")
    role = entry.get("role")
    if role not in ROLES:
        raise StewardConfigError(f"{where}.role: expected one of {', '.join(ROLES)}, got {role!r}")
    password_hash = entry.get("password_hash")
    if not isinstance(password_hash, str) or not password_hash.startswith("$argon2"):
        raise StewardConfigError(f"{where}.password_hash: expected an argon2 hash (use `cdi create-user`)")
    return User(username=str(username), role=role, password_hash=password_hash)


def _parse_token(path: Path, name: str, entry: Any) -> ApiToken:
    where = f"{path}: api_tokens.{name}"
    if not isinstance(entry, dict):
        raise StewardConfigError(f"{where}: expected a mapping with sha256 and scope")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise StewardConfigError(f"{where}.sha256: expected a 64-character SHA-256 hex digest")
    if entry.get("scope", "read") != "read":
        raise StewardConfigError(f"{where}.scope: only 'read' is supported")
    return ApiToken(name=str(name), sha256=digest.lower())


def load_directory(path: Path) -> Directory:
    raw = _read_raw(path)
    users = {str(name): _parse_user(path, name, entry) for name, entry in raw["users"].items()}
    tokens = tuple(_parse_token(path, name, entry) for name, entry in raw["api_tokens"].items())
    return Directory(users=users, tokens=tokens)


def _write_raw(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``data``; readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Users and API tokens of the cdi review app. Written by `cdi create-user` / `cdi create-token`.\n"
    text = header + yaml.safe_dump(data, sort_keys=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def create_user(config_path: Path | str, username: str, role: str, password: str) -> None:
    """Add ``username`` or replace its role and password; only the argon2 hash is written."""
    path = Path(config_path)
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise StewardConfigError(f"username {username!r}: use letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise StewardConfigError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StewardConfigError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    load_directory(path)  # refuse to rewrite a file that is already invalid
    raw = _read_raw(path)
    raw["users"][username] = {"role": role, "password_hash": PASSWORD_HASHER.hash(password)}
    _write_raw(path, raw)


def create_api_token(config_path: Path | str, name: str) -> str:
    """Add (or replace) a read-only API token called ``name``; return the token, which is not stored."""
    path = Path(config_path)
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise StewardConfigError(f"token name {name!r}: use letters, digits, '-' or '_'")
    load_directory(path)
    raw = _read_raw(path)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    raw["api_tokens"][name] = {"sha256": token_digest(token), "scope": "read"}
    _write_raw(path, raw)
    return token
