"""The review app's own small state: server-side sessions and the API read audit, in one SQLite file.

Why SQLite next to the stewards file (``<stewards>.state.sqlite``, mode 0600):
both must outlive a restart of the app (a logged-out cookie must stay dead,
an audit row must not be lost) and must be changeable from outside the app
(``cdi end-sessions`` ends sessions while it runs). SQLite gives that with
commits of tens of microseconds in WAL mode, so a lookup pays little for its
audit row and every request can check its session. The lake is the wrong
place for either: a Delta commit per request would be slow and leave
thousands of tiny files, and the lake may be on object storage.

One connection per process, behind a lock: requests run on several threads,
and every statement here is a short keyed read or a one-row write.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,  -- SHA-256 of the session id; the id itself is only in the signed cookie
    username   TEXT NOT NULL,
    stamp      TEXT NOT NULL,     -- the user's role and password hash, hashed, at log-in
    client     TEXT NOT NULL,
    created_at REAL NOT NULL,     -- epoch seconds
    last_seen  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username);
CREATE TABLE IF NOT EXISTS api_reads (
    at         TEXT NOT NULL,     -- ISO 8601, UTC
    principal  TEXT NOT NULL,     -- user name, or token:<name>
    via        TEXT NOT NULL,     -- session | token
    client     TEXT NOT NULL,
    route      TEXT NOT NULL,     -- route template, e.g. /api/v1/golden/{golden_id}
    golden_ids TEXT NOT NULL      -- JSON list of the golden ids whose values were returned
);
CREATE INDEX IF NOT EXISTS api_reads_by_time ON api_reads (at);
"""


class StateDb:
    """The SQLite file; ``with db.transaction() as sql:`` runs statements under the process-wide lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def close(self) -> None:
        with self._lock:
            self._connection.close()
