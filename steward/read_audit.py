"""Audit rows for reads of personal data through the API: who, from where, which golden ids, when, which route.

One row per answered request, in the ``api_reads`` table of the state database
(``steward/state.py``), written before the answer leaves. A WAL-mode SQLite
commit costs tens of microseconds, so a lookup barely notices it, and the row
survives a crash of the app the moment the request is answered (with
``synchronous=NORMAL`` only a power loss can drop the last few). Read it with
``sqlite3 <stewards>.state.sqlite 'select * from api_reads'`` or ``ReadAudit.rows``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from steward.state import StateDb


class ReadAudit:
    def __init__(self, db: StateDb) -> None:
        self.db = db

    def record(self, principal: str, via: str, client: str, route: str, golden_ids: Iterable[str]) -> None:
        ids = sorted({g for g in golden_ids if g})
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self.db.transaction() as sql:
            sql.execute("INSERT INTO api_reads VALUES (?, ?, ?, ?, ?, ?)",
                        (at, principal, via, client, route, json.dumps(ids)))

    def rows(self, since: str = "") -> list[dict[str, Any]]:
        """Audit rows at or after ``since`` (ISO 8601 text), oldest first."""
        found = self.db.query(
            "SELECT at, principal, via, client, route, golden_ids FROM api_reads WHERE at >= ? ORDER BY at, rowid",
            (since,),
        )
        return [
            {"at": at, "principal": principal, "via": via, "client": client, "route": route,
             "golden_ids": json.loads(ids)}
            for at, principal, via, client, route, ids in found
        ]
