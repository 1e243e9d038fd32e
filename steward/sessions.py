"""Server-side sessions: a row per log-in in the state database, checked on every request.

The cookie (Starlette's signed ``SessionMiddleware`` cookie) carries only a
random session id and the CSRF token; the row says who it is. A request counts
as logged in only while its row exists, is younger than the absolute lifetime,
was used within the idle timeout, and its ``stamp`` (a hash of the user's role
and password hash at log-in) still matches the stewards file. So:

- log-out deletes the row: a saved cookie replayed later is anonymous;
- a password or role change (``cdi create-user`` again) changes the stamp:
  every older session of that user ends on its next request;
- ``end_all`` / ``end_user`` (the admin page, ``cdi end-sessions``) delete rows,
  from this process or another one;
- rows are in SQLite, so all of this holds across a restart of the app.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from steward.state import StateDb

# How often a session's last_seen is written: a page view is a read, not a write, most of the time.
TOUCH_EVERY_SECONDS = 60.0


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    username: str
    stamp: str
    client: str
    created_at: float
    last_seen: float


class SessionStore:
    def __init__(self, db: StateDb, lifetime_seconds: float, idle_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.lifetime = lifetime_seconds
        self.idle = idle_seconds
        self.clock = clock

    def create(self, username: str, stamp: str, client: str) -> str:
        """A new session for ``username``; returns its id (for the cookie, not stored as such)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.transaction() as sql:
            sql.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                        (_id_hash(session_id), username, stamp, client, now, now))
        return session_id

    def current(self, session_id: str, stamp_of: Callable[[str], str | None]) -> Session | None:
        """The live session of ``session_id``, else None (and the row is gone when it has ended).

        ``stamp_of(username)`` is the user's stamp now, None when the user no longer exists.
        """
        key = _id_hash(session_id)
        found = self.db.query("SELECT username, stamp, client, created_at, last_seen FROM sessions WHERE id_hash = ?",
                              (key,))
        if not found:
            return None
        session = Session(*found[0])
        now = self.clock()
        ended = (
            now - session.created_at >= self.lifetime
            or now - session.last_seen >= self.idle
            or stamp_of(session.username) != session.stamp
        )
        if ended:
            self.end(session_id)
            return None
        if now - session.last_seen >= TOUCH_EVERY_SECONDS:
            with self.db.transaction() as sql:
                sql.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, key))
        return session

    def end(self, session_id: str) -> None:
        with self.db.transaction() as sql:
            sql.execute("DELETE FROM sessions WHERE id_hash = ?", (_id_hash(session_id),))

    def end_user(self, username: str) -> int:
        with self.db.transaction() as sql:
            return sql.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount

    def end_all(self) -> int:
        with self.db.transaction() as sql:
            return sql.execute("DELETE FROM sessions").rowcount

    def active(self) -> list[Session]:
        """Sessions not yet past their lifetime or idle timeout, oldest first."""
        now = self.clock()
        rows = self.db.query(
            "SELECT username, stamp, client, created_at, last_seen FROM sessions "
            "WHERE created_at > ? AND last_seen > ? ORDER BY created_at",
            (now - self.lifetime, now - self.idle),
        )
        return [Session(*row) for row in rows]


def end_sessions(state_path: Path, username: str | None = None) -> int:
    """End every session (or ``username``'s) in the state database at ``state_path``; for ``cdi end-sessions``."""
    db = StateDb(state_path)
    try:
        store = SessionStore(db, lifetime_seconds=0, idle_seconds=0)
        return store.end_user(username) if username else store.end_all()
    finally:
        db.close()
