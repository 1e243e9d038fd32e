"""Who is asking, and may they: log-in, API tokens, roles and CSRF, checked on every request.

The session cookie is Starlette's signed cookie (``SessionMiddleware``): it
holds a session id and the session's CSRF token, nothing else. Who the session
belongs to is server-side (``steward/sessions.py``), checked on every request
together with the user's current role and password in the stewards file, so
log-out, a password or role change and "end all sessions" take effect at once.
Pages answer an anonymous request with a redirect to ``/login``; the JSON API
answers 401.

API tokens carry scopes (``lookup``, ``changes``), an expiry and a rate limit;
a route names the scope it needs with ``api_scope``; too many requests for
one token answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from starlette.datastructures import FormData

from steward.config import (
    PASSWORD_HASHER,
    TOKEN_SCOPES,
    ApiToken,
    Directory,
    Role,
    TokenScope,
    User,
    load_directory,
    token_digest,
)
from steward.sessions import SessionStore
from steward.throttle import TokenBuckets, retry_after_header

log = logging.getLogger("cdi.steward")

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
    scopes: frozenset[TokenScope] = frozenset(TOKEN_SCOPES)  # a session may use the whole API

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


def find_token(directory: Directory, token: str) -> ApiToken | None:
    digest = token_digest(token)
    for entry in directory.tokens:
        if hmac.compare_digest(entry.sha256, digest):
            return entry
    return None


def check_token(directory: Directory, token: str, now: datetime | None = None) -> Principal | None:
    """The principal of a known token that has not expired, else None."""
    entry = find_token(directory, token)
    if entry is None or entry.expired(now or datetime.now(timezone.utc)):
        return None
    return Principal(name=f"token:{entry.name}", role="viewer", via="token", scopes=entry.scopes)


def user_stamp(user: User) -> str:
    """Changes when the user's role or password does: a session started before that ends."""
    return hashlib.sha256(f"{user.role}\0{user.password_hash}".encode("utf-8")).hexdigest()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def start_session(request: Request, user: User) -> None:
    """A fresh server-side session for ``user`` (as read when its password was checked, so a password
    changed meanwhile ends it); the old cookie contents (and CSRF token) are dropped."""
    sessions: SessionStore = request.app.state.sessions
    end_session(request)
    request.session["sid"] = sessions.create(user.username, user_stamp(user), client_address(request))
    request.session[CSRF_FIELD] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        request.app.state.sessions.end(session_id)
    request.session.clear()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use (also for the log-in form)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return str(token)


def session_principal(request: Request) -> Principal | None:
    """The user of this request's session while that session is live (see ``steward/sessions.py``)."""
    session_id = request.session.get("sid")
    if not isinstance(session_id, str):
        return None
    users = request.app.state.directory.current().users

    def stamp_of(username: str) -> str | None:
        return user_stamp(users[username]) if username in users else None

    session = request.app.state.sessions.current(session_id, stamp_of)
    if session is None:
        request.session.clear()
        return None
    user = users[session.username]
    return _seen(request, Principal(name=user.username, role=user.role, via="session"))


def _seen(request: Request, principal: Principal) -> Principal:
    """Remember who asked, for the access log."""
    request.state.principal = principal.name
    return principal


def page_user(request: Request) -> Principal:
    """Dependency of every page: the logged-in user, else a redirect to ``/login``."""
    principal = session_principal(request)
    if principal is None:
        raise LoginRequired()
    return principal


def api_user(request: Request) -> Principal:
    """Dependency of the JSON API: a Bearer token (within its rate) or a session, else 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        principal = _token_principal(request, token.strip())
    else:
        principal = session_principal(request)
    if principal is None:
        raise HTTPException(status_code=401, detail="not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return principal


def _token_principal(request: Request, token: str) -> Principal | None:
    entry = find_token(request.app.state.directory.current(), token)
    if entry is None:
        return None
    if entry.expired(datetime.now(timezone.utc)):
        log.info("API token %s refused: expired", entry.name)
        return None
    buckets: TokenBuckets = request.app.state.token_buckets
    wait = buckets.take(entry.name, entry.rate_per_minute)
    if wait > 0:
        raise HTTPException(status_code=429, detail=f"rate limit of {entry.rate_per_minute} requests per minute "
                            "for this token", headers=retry_after_header(wait))
    return _seen(request, Principal(name=f"token:{entry.name}", role="viewer", via="token", scopes=entry.scopes))


def api_scope(scope: TokenScope) -> Callable[[Request], Principal]:
    """Dependency of an API route: ``api_user``, whose token (if any) has ``scope``, else 403."""

    def scoped(request: Request) -> Principal:
        principal = api_user(request)
        if scope not in principal.scopes:
            raise HTTPException(status_code=403, detail=f"this token's scope does not include {scope}")
        return principal

    return scoped


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
