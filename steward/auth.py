"""Who is asking, and may they: log-in, API tokens, roles and CSRF, checked on every request.

Sessions are Starlette's signed cookie (``SessionMiddleware``): it holds the
username and the session's CSRF token, nothing else. The role is looked up in
the stewards file on every request, so a changed role or a removed user takes
effect at once. Pages answer an anonymous request with a redirect to
``/login``; the JSON API answers 401.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from starlette.datastructures import FormData

from steward.config import PASSWORD_HASHER, Directory, Role, load_directory, token_digest

ROLE_RANK: dict[Role, int] = {"viewer": 0, "steward": 1, "admin": 2}
CSRF_FIELD = "csrf_token"
# Verified against when the username is unknown, so both cases take as long.
_DUMMY_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """A logged-in user or an API token (``role`` viewer: read only)."""

    name: str
    role: Role
    via: str  # session | token

    def may(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class LoginRequired(Exception):
    """An anonymous request for a page: answered with a redirect to the log-in page."""


class DirectoryFile:
    """The stewards file, re-read whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._directory = Directory(users={}, tokens=())

    def current(self) -> Directory:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._directory = load_directory(self.path)
            self._stamp = stamp
        return self._directory


def check_password(directory: Directory, username: str, password: str) -> Principal | None:
    user = directory.users.get(username)
    try:
        PASSWORD_HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return Principal(name=user.username, role=user.role, via="session") if user else None


def check_token(directory: Directory, token: str) -> Principal | None:
    digest = token_digest(token)
    for entry in directory.tokens:
        if hmac.compare_digest(entry.sha256, digest):
            return Principal(name=f"token:{entry.name}", role="viewer", via="token")
    return None


def start_session(request: Request, principal: Principal) -> None:
    """A fresh session for ``principal``: old contents (and CSRF token) are dropped."""
    request.session.clear()
    request.session["user"] = principal.name
    request.session[CSRF_FIELD] = secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use (also for the log-in form)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return str(token)


def session_principal(request: Request) -> Principal | None:
    directory: DirectoryFile = request.app.state.directory
    username = request.session.get("user")
    user = directory.current().users.get(username) if isinstance(username, str) else None
    return Principal(name=user.username, role=user.role, via="session") if user else None


def page_user(request: Request) -> Principal:
    """Dependency of every page: the logged-in user, else a redirect to ``/login``."""
    principal = session_principal(request)
    if principal is None:
        raise LoginRequired()
    return principal


def api_user(request: Request) -> Principal:
    """Dependency of the JSON API: a Bearer token or a session, else 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        principal = check_token(request.app.state.directory.current(), token.strip())
    else:
        principal = session_principal(request)
    if principal is None:
        raise HTTPException(status_code=401, detail="not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return principal


async def checked_form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the session's (403 when wrong or missing)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(sent, str) or not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
    return form


def require_role(principal: Principal, role: Role) -> None:
    if not principal.may(role):
        raise HTTPException(status_code=403, detail=f"needs the {role} role")
