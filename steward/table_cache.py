"""In-memory copies of Delta tables, one per table version, with what is derived from them.

A reader asks for the table's current version (``DeltaTable.update_incremental``
reads only the log entries written since the last look) and gets the copy of
that version: loaded once, then shared by every request until a writer
commits a new version. A table read with ``prepare`` is held as ``prepare``
returns it (the activity table: only its linked rows, sorted by customer),
not as stored. A page reads a dozen tables and indexes, so a version
once checked is trusted for ``FRESH_SECONDS``: another writer's commit (the
pipeline's) shows at most that late, the app's own at once (``invalidate``).
A table read as ``append_only`` (the decision log, one small file per click)
is brought up to date by reading just the files added since the cached
version; when a file went away (compaction, ``cdi erase``) it is read whole.
A large table (``LARGE_ROWS``: a million golden records take seconds to read
and index) is reloaded in a background thread when a new version appears,
with the indexes the old copy had; requests keep the old copy meanwhile, so
a publication does not stall the app. Indexes built from a copy (``derive``) live and
die with it. The lake's Spark defaults keep no per-file statistics
(``delta.dataSkippingNumIndexedCols=0``), so filters could not skip files
anyway: one full read per version, then dictionary lookups, is what makes a
page or an API lookup fast.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

T = TypeVar("T")
log = logging.getLogger("cdi.steward.cache")
FRESH_SECONDS = 0.5
LARGE_ROWS = 50_000
_SERIALS = itertools.count()
Prepare = Callable[[pa.Table], pa.Table]


def _as_read(table: pa.Table) -> pa.Table:
    return table


@dataclass
class Snapshot:
    """One version of a table, held in memory; ``version`` is None while the table does not exist."""

    version: int | None
    table: pa.Table
    checked: float  # time.monotonic() of the last version check that found this version
    files: frozenset[str] = frozenset()  # the data files of this version
    # read as the previous copy plus the rows of new files (append_only): those rows, and what had
    # been derived from the previous copy, for a derived value that can be brought up to date
    added: pa.Table | None = None
    earlier: dict[str, Any] = field(default_factory=dict)
    serial: int = field(default_factory=lambda: next(_SERIALS))  # unique among all snapshots ever loaded
    _derived: dict[str, Any] = field(default_factory=dict)
    _builders: dict[str, Callable[[pa.Table], Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def derive(self, key: str, build: Callable[[pa.Table], T]) -> T:
        """``build(table)``, computed once per snapshot (an index, a sorted copy)."""
        with self._lock:
            if key not in self._derived:
                self._derived[key] = build(self.table)
                self._builders[key] = build
            return self._derived[key]

    def derived(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._derived)

    def builders(self) -> dict[str, Callable[[pa.Table], Any]]:
        with self._lock:
            return dict(self._builders)


def usable(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """``table`` in one chunk per column, its columns of the types of ``expected`` (delta-rs may read
    ``string_view``, which pyarrow cannot compare with a string), and the columns of ``expected`` it
    lacks (a table written by an older cdi) as nulls. Columns ``expected`` does not know stay as read."""
    types = {f.name: f.type for f in expected}
    fields = [pa.field(c.name, types.get(c.name, pa.string() if pa.types.is_string_view(c.type) else c.type))
              for c in table.schema]
    if pa.schema(fields) != table.schema:
        table = table.cast(pa.schema(fields))
    for column in expected:
        if column.name not in table.column_names:
            table = table.append_column(column, pa.nulls(len(table), column.type))
    return table.combine_chunks()


class TableCache:
    """Snapshots of tables by path; safe to share between the server's threads."""

    def __init__(self) -> None:
        self._tables: dict[str, DeltaTable] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._refreshing: set[str] = set()

    def _lock(self, path: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())

    def _version(self, path: str) -> int | None:
        """The table's latest version (None when it does not exist); call holding the path's lock."""
        table = self._tables.get(path)
        try:
            if table is None:
                table = self._tables[path] = DeltaTable(path)
            else:
                table.update_incremental()
        except TableNotFoundError:
            return None
        return table.version()

    def _load(self, path: str, expected: pa.Schema, cached: Snapshot | None, append_only: bool, now: float,
              prepare: Prepare) -> Snapshot:
        table = self._tables[path]
        files = frozenset(table.file_uris())
        if append_only and cached is not None and cached.version is not None and cached.files <= files:
            added = sorted(files - cached.files)
            if not added:
                return Snapshot(table.version(), cached.table, now, files)
            fresh = usable(ds.dataset(added, format="parquet").to_table(), expected)
            rows = pa.concat_tables([cached.table, fresh], promote_options="permissive").combine_chunks()
            return Snapshot(table.version(), rows, now, files, added=fresh, earlier=cached.derived())
        return Snapshot(table.version(), prepare(usable(table.to_pyarrow_dataset().to_table(), expected)), now, files)

    def snapshot(self, path: str, expected: pa.Schema, append_only: bool = False,
                 prepare: Prepare = _as_read) -> Snapshot:
        """The in-memory copy of the table's latest version (an empty table of ``expected`` when there is none),
        as ``prepare`` makes it (``append_only`` tables are held as read)."""
        with self._lock(path):
            now = time.monotonic()
            cached = self._snapshots.get(path)
            if cached is not None and now - cached.checked < FRESH_SECONDS:
                return cached
            version = self._version(path)
            if cached is not None and cached.version == version:
                cached.checked = now
                return cached
            if version is not None and cached is not None and not append_only and len(cached.table) >= LARGE_ROWS:
                if path not in self._refreshing:
                    self._refreshing.add(path)
                    threading.Thread(target=self._refresh, args=(path, expected, version, cached, prepare),
                                     daemon=True).start()
                cached.checked = now
                return cached
            if version is None:
                loaded = Snapshot(None, prepare(expected.empty_table()), now)
            else:
                loaded = self._load(path, expected, cached, append_only, now, prepare)
            self._snapshots[path] = loaded
            return loaded

    def _refresh(self, path: str, expected: pa.Schema, version: int, old: Snapshot, prepare: Prepare) -> None:
        """Load ``version`` and rebuild the old copy's indexes on it, then swap it in."""
        try:
            table = DeltaTable(path, version=version)
            loaded = Snapshot(version, prepare(usable(table.to_pyarrow_dataset().to_table(), expected)),
                              time.monotonic(), frozenset(table.file_uris()))
            for key, build in old.builders().items():
                loaded.derive(key, build)
            with self._lock(path):
                self._snapshots[path] = loaded
        except Exception:  # noqa: BLE001 - logged; requests keep the old copy and the next check tries again
            log.exception("reloading %s at version %d failed", path, version)
        finally:
            with self._lock(path):
                self._refreshing.discard(path)

    def invalidate(self, path: str) -> None:
        """Check the version on the next read (after this app wrote to the table)."""
        with self._lock(path):
            cached = self._snapshots.get(path)
            if cached is not None:
                cached.checked = float("-inf")
