"""The ``golden_customers`` change feed in pages, with a cursor, read with delta-rs.

A cursor is ``<version>.<offset>``: the table version and how many of that
version's change rows came before. Within a version rows are in a fixed order
(golden id, change type), so a page resumes exactly where the last one ended;
a client keeps the ``next_cursor`` of its last page and asks again later for
what was published since. ``since_version=N`` is the cursor ``N.0``.

A page reads one table version's change rows at a time and stops once it has
``limit`` rows. A committed version never changes, so the sorted rows of the
last few versions read are kept (``VERSIONS_CACHED``) and paging through a big
version reads it once. The feed keeps earlier values of every row, so the
rows of a golden id that is erased now come out ``redacted``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from config.lake import Lake
from steward.store import as_dicts, redacted

VERSIONS_CACHED = 2  # a first load of a million golden rows is one version of a million change rows
_CURSOR = re.compile(r"^(\d{1,18})\.(\d{1,18})$")
_ORDER = ("golden_id", "_change_type")


class BadCursor(ValueError):
    """Not a cursor this feed hands out."""


@dataclass(frozen=True)
class Cursor:
    version: int
    offset: int = 0

    def __str__(self) -> str:
        return f"{self.version}.{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        match = _CURSOR.match(text)
        if match is None:
            raise BadCursor(f"cursor {text!r}: expected <version>.<offset>, as given by next_cursor")
        return cls(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class FeedPage:
    rows: list[dict[str, Any]]
    next_cursor: Cursor
    latest_version: int
    has_more: bool  # rows after next_cursor exist now; when false, ask again later with next_cursor


class ChangeFeed:
    def __init__(self, lake: Lake) -> None:
        self.path = lake.gold("golden_customers")
        self._versions: OrderedDict[int, pa.Table] = OrderedDict()
        self._erased: tuple[int, frozenset[str]] = (-1, frozenset())
        self._lock = threading.Lock()

    def page(self, start: Cursor, limit: int) -> FeedPage:
        try:
            table = DeltaTable(self.path)
        except TableNotFoundError:
            return FeedPage([], start, -1, False)
        latest = table.version()
        parts: list[pa.Table] = []
        taken = 0
        at = start
        while at.version <= latest and taken < limit:
            rows = self._version_rows(table, at.version)
            part = rows.slice(at.offset, limit - taken)
            parts.append(part)
            taken += part.num_rows
            end = at.offset + part.num_rows
            at = Cursor(at.version, end) if end < rows.num_rows else Cursor(at.version + 1)
        erased = self._erased_ids(table, latest)
        out = [redacted(r) if r["golden_id"] in erased else r for part in parts for r in as_dicts(part)]
        return FeedPage(out, at, latest, has_more=at.version <= latest and self._has_rows_from(table, at, latest))

    def _has_rows_from(self, table: DeltaTable, at: Cursor, latest: int) -> bool:
        """Whether any change row lies at or after ``at`` (reads at most the versions up to the next row)."""
        while at.version <= latest:
            if at.offset < self._version_rows(table, at.version).num_rows:
                return True
            at = Cursor(at.version + 1)
        return False

    def _version_rows(self, table: DeltaTable, version: int) -> pa.Table:
        with self._lock:
            if version in self._versions:
                self._versions.move_to_end(version)
                return self._versions[version]
        rows = _in_order(pa.table(table.load_cdf(starting_version=version, ending_version=version)))
        with self._lock:
            self._versions[version] = rows
            while len(self._versions) > VERSIONS_CACHED:
                self._versions.popitem(last=False)
        return rows

    def _erased_ids(self, table: DeltaTable, latest: int) -> frozenset[str]:
        with self._lock:
            version, ids = self._erased
        if version != latest:
            current = table.to_pyarrow_dataset().to_table(columns=["golden_id"], filter=pc.field("status") == "erased")
            ids = frozenset(current["golden_id"].to_pylist())
            with self._lock:
                self._erased = (latest, ids)
        return ids


def _in_order(rows: pa.Table) -> pa.Table:
    """Rows by golden id then change type."""
    rows = rows.cast(pa.schema([field.with_type(_plain(field.type)) for field in rows.schema]))
    return rows.sort_by([(name, "ascending") for name in _ORDER])


def _plain(kind: pa.DataType) -> pa.DataType:
    """``kind`` with string and binary views as plain strings and binaries: delta-rs hands out views,
    which Arrow can neither sort nor take from."""
    if pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_map(kind):
        return pa.map_(_plain(kind.key_type), _plain(kind.item_type))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_plain(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([kind.field(i).with_type(_plain(kind.field(i).type)) for i in range(kind.num_fields)])
    return kind
