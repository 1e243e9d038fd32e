"""The demo's fixed frame, shared by the customer and the activity generators.

The reference dates, the departments' source names, and the writers that put
keyed rows into SQLite tables, a CSV file or a JSON-lines file. Every writer
numbers its rows from 1 and turns the number into the row's key with
``key_of``, so a key the writer never issued can be made on purpose (an
activity of a deleted customer, see ``demo/activities.py``).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REFERENCE_TIME = datetime(2026, 1, 1)
HISTORY_START = datetime(2018, 1, 1)
SQLITE_BATCH_ROWS = 10_000

SALES_CRM = "sales_crm"
BILLING = "billing"
SUPPORT_DESK = "support_desk"
WEBSHOP = "webshop"
SOURCE_NAMES = (SALES_CRM, BILLING, SUPPORT_DESK, WEBSHOP)


class SqliteDatabase:
    """One SQLite file, written in a single transaction; its tables share the connection.

    SQLite allows one writer per file, so every table of a department's
    database (its customers and its activity) goes through this connection.
    """

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode = OFF")
        self._connection.execute("PRAGMA synchronous = OFF")
        self._connection.execute("BEGIN")
        self._tables: list[SqliteSink] = []

    def table(
        self, name: str, columns: tuple[tuple[str, str], ...], key_of: Callable[[int], int | str]
    ) -> SqliteSink:
        """Create table ``name``; its first column is the key."""
        sink = SqliteSink(self._connection, name, columns, key_of)
        self._tables.append(sink)
        return sink

    def close(self) -> None:
        for table in self._tables:
            table.flush()
        self._connection.execute("COMMIT")
        self._connection.close()


class SqliteSink:
    """Rows into one table of a ``SqliteDatabase``, in batched inserts."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        name: str,
        columns: tuple[tuple[str, str], ...],
        key_of: Callable[[int], int | str],
    ) -> None:
        ddl = ", ".join(f"{column} {kind}" for column, kind in columns)
        connection.execute(f"CREATE TABLE {name} ({ddl})")
        placeholders = ", ".join("?" for _ in columns)
        self._connection = connection
        self._insert = f"INSERT INTO {name} VALUES ({placeholders})"
        self._batch: list[tuple[Any, ...]] = []
        self.key_of = key_of
        self.rows = 0

    def add(self, values: tuple[Any, ...]) -> str:
        self.rows += 1
        key = self.key_of(self.rows)
        self._batch.append((key, *values))
        if len(self._batch) >= SQLITE_BATCH_ROWS:
            self.flush()
        return str(key)

    def flush(self) -> None:
        self._connection.executemany(self._insert, self._batch)
        self._batch = []


class CsvSink:
    """A CSV export with a header and RFC 4180 quoting; the key is the first column."""

    def __init__(self, path: Path, header: tuple[str, ...], key_of: Callable[[int], str]) -> None:
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(header)
        self.key_of = key_of
        self.rows = 0

    def add(self, values: tuple[Any, ...]) -> str:
        self.rows += 1
        key = self.key_of(self.rows)
        self._writer.writerow((key, *values))
        return key

    def close(self) -> None:
        self._file.close()


class JsonLinesSink:
    """One JSON object a line; the key is the object's first member, ``key_name``."""

    def __init__(self, path: Path, key_name: str, key_of: Callable[[int], str]) -> None:
        self._file = path.open("w", encoding="utf-8", newline="\n")
        self._key_name = key_name
        self.key_of = key_of
        self.rows = 0

    def add(self, values: dict[str, Any]) -> str:
        self.rows += 1
        key = self.key_of(self.rows)
        self._file.write(json.dumps({self._key_name: key, **values}, ensure_ascii=False) + "\n")
        return key

    def close(self) -> None:
        self._file.close()


Sink = SqliteSink | CsvSink | JsonLinesSink
