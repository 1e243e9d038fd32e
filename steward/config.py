"""The review app's configuration: who may log in, which API tokens exist, where the lake is.

Users and tokens live in a YAML file (``conf/stewards.yaml``, path from
``CDI_STEWARDS``); see ``conf/stewards.example.yaml``. The file holds only
argon2 password hashes and SHA-256 token digests, never a password or a
token. ``create_user`` and ``create_api_token`` are what ``cdi create-user``
and ``cdi create-token`` call; both rewrite the file atomically with mode 0600.

An API token has a scope (``lookup``: golden records, xref and search;
``changes``: the change feed; ``read``: both), an expiry and a rate limit per
minute. A token written before expiries existed (``scope: read``, no
``expires``) keeps working with both scopes, no expiry and the default rate;
the app logs a warning for it at start so it gets re-issued.

The session secret is not in the file: it comes from ``CDI_SESSION_SECRET``.
The app's own state (sessions, the API read audit) sits next to the file, in
``<stewards>.state.sqlite`` (see ``steward/state.py``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
TokenScope = Literal["lookup", "changes"]
TOKEN_SCOPES: tuple[TokenScope, ...] = ("lookup", "changes")
BOTH_SCOPES = "read"  # both scopes; what every token had before scopes were split
DEFAULT_TOKEN_DAYS = 90
DEFAULT_TOKEN_RATE = 600  # requests per minute


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
    scopes: frozenset[TokenScope] = frozenset(TOKEN_SCOPES)
    expires_at: datetime | None = None  # None: a legacy token without expiry
    rate_per_minute: int = DEFAULT_TOKEN_RATE

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True)
class LoginLimits:
    """Log-in throttling (``steward/throttle.py``) and the password-check pool.

    After ``account_failures`` wrong passwords for one username, or
    ``client_failures`` from one client address, within ``window_minutes``,
    that username or address is refused for ``lockout_minutes``, right password
    or not. ``verify_workers`` threads check passwords (argon2 takes ~100 ms of
    a core and 64 MiB each); at most ``max_waiting`` more wait for one, beyond
    that a log-in is answered 429 at once.
    """

    account_failures: int = 5
    client_failures: int = 20
    window_minutes: float = 15
    lockout_minutes: float = 15
    verify_workers: int = 1
    max_waiting: int = 8


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
    # Secure cookie and HSTS. ``cdi serve`` sets it unless ``--insecure-http`` (loopback only);
    # off here so in-process test clients on http://127.0.0.1 keep their cookie.
    secure_cookies: bool = False
    session_hours: float = 8  # absolute lifetime of a session, however active
    idle_minutes: float = 30  # a session unused this long ends
    state: Path | None = None  # sessions and read audit; default: next to the stewards file
    login_limits: LoginLimits = field(default_factory=LoginLimits)

    def __post_init__(self) -> None:
        if len(self.session_secret) < MIN_SECRET_LENGTH:
            raise StewardConfigError(
                f"{SESSION_SECRET_ENV}: the session secret must be at least {MIN_SECRET_LENGTH} characters"
            )

    @property
    def state_path(self) -> Path:
        return self.state or state_path_of(self.stewards)


def state_path_of(stewards: Path) -> Path:
    """Where the app keeps sessions and the read audit for this stewards file."""
    return stewards.with_name(stewards.name + ".state.sqlite")


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


def _parse_expiry(where: str, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        expires = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise StewardConfigError(f"{where}.expires: expected an ISO 8601 timestamp, got {value!r}") from None
    return expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)


def _parse_token(path: Path, name: str, entry: Any) -> ApiToken:
    where = f"{path}: api_tokens.{name}"
    if not isinstance(entry, dict):
        raise StewardConfigError(f"{where}: expected a mapping with sha256 and scope")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise StewardConfigError(f"{where}.sha256: expected a 64-character SHA-256 hex digest")
    scope = entry.get("scope", BOTH_SCOPES)
    if scope != BOTH_SCOPES and scope not in TOKEN_SCOPES:
        raise StewardConfigError(f"{where}.scope: expected one of {', '.join(TOKEN_SCOPES)}, {BOTH_SCOPES}; got {scope!r}")
    rate = entry.get("rate_per_minute", DEFAULT_TOKEN_RATE)
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 1:
        raise StewardConfigError(f"{where}.rate_per_minute: expected a positive whole number, got {rate!r}")
    return ApiToken(
        name=str(name),
        sha256=digest.lower(),
        scopes=frozenset(TOKEN_SCOPES) if scope == BOTH_SCOPES else frozenset([scope]),
        expires_at=_parse_expiry(where, entry.get("expires")),
        rate_per_minute=rate,
    )


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


def create_api_token(
    config_path: Path | str,
    name: str,
    scope: str = BOTH_SCOPES,
    expires_days: float = DEFAULT_TOKEN_DAYS,
    rate_per_minute: int = DEFAULT_TOKEN_RATE,
) -> str:
    """Add (or replace) a read-only API token called ``name``; return the token, which is not stored.

    ``scope``: ``lookup``, ``changes`` or ``read`` (both); ``cdi create-token`` defaults to ``lookup``.
    """
    path = Path(config_path)
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise StewardConfigError(f"token name {name!r}: use letters, digits, '-' or '_'")
    if scope != BOTH_SCOPES and scope not in TOKEN_SCOPES:
        raise StewardConfigError(f"scope {scope!r}: expected one of {', '.join(TOKEN_SCOPES)}, {BOTH_SCOPES}")
    if not 0 < expires_days <= 366:
        raise StewardConfigError(f"expiry {expires_days} days: expected more than 0 and at most 366")
    if rate_per_minute < 1:
        raise StewardConfigError(f"rate {rate_per_minute} per minute: expected at least 1")
    load_directory(path)
    raw = _read_raw(path)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=expires_days)
    raw["api_tokens"][name] = {
        "sha256": token_digest(token), "scope": scope, "expires": expires.isoformat(), "rate_per_minute": rate_per_minute,
    }
    _write_raw(path, raw)
    return token
