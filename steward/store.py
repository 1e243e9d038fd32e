"""Every read and write of the review app, with delta-rs (no Spark).

Every call reads the latest version of a table, so a page always shows the
latest published state, but a version is read from disk once: it is held in
memory (``steward/table_cache.py``) with the indexes built from it (golden
id, record id and source key to rows; the review queue, ``steward/queue_index.py``;
the search text, ``steward/search_index.py``) until a writer commits the next
one. The activity of every customer (``gold/customer_activity``, ten million
rows at a million customers) is held as one Arrow table of its linked rows,
sorted by golden id and then newest first: a customer's timeline is the slice
a binary search on the golden id column finds, with no per-row index built.
A table that does not exist yet reads as empty with its schema, and a
column an older cdi did not write (``customer_xref.valid_to``) reads as nulls.
``append_decisions`` is the app's only write: rows appended to
``gold/steward_decisions`` (created on first use) in one commit, retried when
another writer committed first, so concurrent stewards are all recorded.
"""

from __future__ import annotations

import bisect
import functools
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from pyspark.sql import types as T

from config.lake import Lake
from jobs.customer_360 import (
    ACTIVITY_TABLE,
    CUSTOMER_ACTIVITY_SCHEMA,
    HOUSEHOLDS_SCHEMA,
    HOUSEHOLDS_TABLE,
    VIEW_TABLE,
)
from jobs.suppressions import key_hash, salt_path
from matching.customer_360 import CUSTOMER_360_SCHEMA
from matching.model_io import SavedModel, saved_model_from_json
from schemas.arrow import arrow_schema
from schemas.canonical import CANONICAL_ATTRIBUTES, CANONICAL_SCHEMA
from schemas.golden import (
    CUSTOMER_XREF_SCHEMA,
    GOLDEN_CUSTOMERS_SCHEMA,
    GOLDEN_ID_HISTORY_SCHEMA,
    MATCH_CANDIDATES_SCHEMA,
    PUBLICATIONS_SCHEMA,
    STEWARD_DECISIONS_SCHEMA,
)
from steward.decisions import Decision
from steward.queue_index import Flags, QueueIndex, flags, flags_after
from steward.review import PairStates, more_pair_states, pair_states
from steward.search_index import TextIndex
from steward.table_cache import Snapshot, TableCache

log = logging.getLogger("cdi.steward.store")

GOLD_SCHEMAS: dict[str, T.StructType] = {
    "golden_customers": GOLDEN_CUSTOMERS_SCHEMA,
    "customer_xref": CUSTOMER_XREF_SCHEMA,
    "match_candidates": MATCH_CANDIDATES_SCHEMA,
    "golden_id_history": GOLDEN_ID_HISTORY_SCHEMA,
    "steward_decisions": STEWARD_DECISIONS_SCHEMA,
    "_publications": PUBLICATIONS_SCHEMA,
    VIEW_TABLE: CUSTOMER_360_SCHEMA,
    ACTIVITY_TABLE: CUSTOMER_ACTIVITY_SCHEMA,
    HOUSEHOLDS_TABLE: HOUSEHOLDS_SCHEMA,
}
SEARCH_LIMIT = 50
MAX_SURVIVOR_HOPS = 100
COMMIT_ATTEMPTS = 20
SEARCH_SCAN = 20 * SEARCH_LIMIT  # rows of each table a search looks at: enough for SEARCH_LIMIT golden records
_NAME_COLUMNS = ("full_name", "given_name", "middle_name", "family_name")
_GOLDEN_SEARCH_COLUMNS = ("golden_id", "email", "phone")  # besides the names
_RECORD_SEARCH_COLUMNS = ("record_id", "source_key", "email", "phone")
_QUEUE_DECISION_COLUMNS = ("decision_id", "decided_at", "steward", "action", "record_id_l", "record_id_r", "supersedes")
DEFAULT_REGION = "GB"  # reads a phone typed without its country code, as config/pipeline.py's default_region
APPEND_ONLY = frozenset({"steward_decisions"})  # read incrementally: only the files added since the cached version
# customer_xref.linked_by of a record that left its golden record; its row stays, closed (valid_to set).
CLOSED_LINKS = ("deleted", "erased")
ERASED_KEY_PREFIX = "erased:"  # an erased record's source_key and record_id: this prefix and a salted hash of the key
# What a change feed row of an erased golden id must not carry: every personal value, the record ids the
# values came from, and the hash of those values.
ERASED_COLUMNS = (*CANONICAL_ATTRIBUTES, "lineage", "content_hash")
# What a timeline row shows of an activity, and its order: by customer, newest first (undated last), then the
# activity's key, so that pages never overlap or skip a row.
TIMELINE_COLUMNS = ("golden_id", "event_time", "source_system", "activity", "activity_key", "record_id", "event_type",
                    "amount", "currency", "channel", "status", "value_issues")
TIMELINE_ORDER = [("golden_id", "ascending", "at_end"), ("event_time", "descending", "at_end"),
                  ("source_system", "ascending", "at_end"), ("activity", "ascending", "at_end"),
                  ("activity_key", "ascending", "at_end")]


DECISIONS_ARROW_SCHEMA = arrow_schema(STEWARD_DECISIONS_SCHEMA)


def _among(column: str, values: Iterable[str]) -> ds.Expression:
    """``column IN values`` for string values (typed, so an empty list works too)."""
    return pc.field(column).isin(pa.array(list(values), pa.string()))


def _is_commit_conflict(error: Exception) -> bool:
    """Another writer won the race for this version (or created the table first)."""
    if isinstance(error, CommitFailedError):
        return True
    text = str(error).lower()
    return "already exists" in text or "conflict" in text


def _with_missing_columns(table: pa.Table, expected: pa.Schema, columns: list[str] | None) -> pa.Table:
    """``table`` plus, as nulls, the (asked for) columns of ``expected`` that the stored table lacks."""
    for field in expected:
        if field.name not in table.column_names and (columns is None or field.name in columns):
            table = table.append_column(field.name, pa.nulls(len(table), field.type))
    return table


def is_closed(xref_row: dict[str, Any]) -> bool:
    """Whether a ``customer_xref`` row is of a record deleted at its source or erased."""
    return xref_row["linked_by"] in CLOSED_LINKS or xref_row.get("valid_to") is not None


def redacted(row: dict[str, Any]) -> dict[str, Any]:
    """A ``golden_customers`` row with nothing personal left in it (for the rows of an erased golden id)."""
    return {**row, **{column: None for column in ERASED_COLUMNS if column in row}}


def as_dicts(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts; map columns (``lineage``, ``evidence``, ``levels``) as dicts too."""
    maps = [f.name for f in table.schema if pa.types.is_map(f.type)]
    rows = table.to_pylist()
    for row in rows:
        for column in maps:
            row[column] = dict(row[column] or [])
    return rows


def _row_index(keys: list[Any]) -> dict[Any, int]:
    """Key -> row (the first row with that key)."""
    index: dict[Any, int] = {}
    for row, key in enumerate(keys):
        index.setdefault(key, row)
    return index


def _rows_index(keys: list[Any]) -> dict[Any, list[int]]:
    """Key -> every row with that key."""
    index: dict[Any, list[int]] = {}
    for row, key in enumerate(keys):
        index.setdefault(key, []).append(row)
    return index


def _take(table: pa.Table, rows: Iterable[int]) -> list[dict[str, Any]]:
    return as_dicts(table.take(pa.array(list(rows), pa.int64())))


def timeline_order(activity: pa.Table) -> pa.Table:
    """The linked rows of ``gold/customer_activity`` (``TIMELINE_COLUMNS``) in ``TIMELINE_ORDER``: how the
    store holds the table, so that a customer's activity is one slice, already in timeline order."""
    linked = activity.filter(pc.is_valid(activity["golden_id"])).select(list(TIMELINE_COLUMNS))
    return linked.take(pc.sort_indices(linked, sort_keys=TIMELINE_ORDER)).combine_chunks()


def key_range(column: pa.ChunkedArray, key: str) -> tuple[int, int]:
    """The rows ``[start, end)`` holding ``key`` in a sorted string column: two binary searches of about 24 steps
    at ten million rows, each reading one value, instead of an index of every row."""

    def value(row: int) -> str:
        return column[row].as_py()

    rows = range(len(column))
    return bisect.bisect_left(rows, key, key=value), bisect.bisect_right(rows, key, key=value)


class Store:
    def __init__(self, lake: Lake, region: str = DEFAULT_REGION) -> None:
        self.lake = lake
        self.region = region
        self._cache = TableCache()

    # -- generic reads -------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return self.lake.customers_std if name == "customers_std" else self.lake.gold(name)

    @staticmethod
    @functools.cache
    def _schema(name: str) -> pa.Schema:
        return arrow_schema(CANONICAL_SCHEMA if name == "customers_std" else GOLD_SCHEMAS[name])

    def snapshot(self, name: str) -> Snapshot:
        """The latest version of table ``name``, in memory (read from disk once per version)."""
        if name == ACTIVITY_TABLE:
            return self._cache.snapshot(self._path(name), self._schema(name), prepare=timeline_order)
        return self._cache.snapshot(self._path(name), self._schema(name), append_only=name in APPEND_ONLY)

    def read(self, name: str, where: ds.Expression | None = None, columns: list[str] | None = None) -> pa.Table:
        table = self.snapshot(name).table
        if where is not None:
            table = table.filter(where)
        if columns is None:
            return table
        return _with_missing_columns(table.select([c for c in columns if c in table.column_names]),
                                     self._schema(name), columns)

    def rows(self, name: str, where: ds.Expression | None = None) -> list[dict[str, Any]]:
        return as_dicts(self.read(name, where))

    # -- review queue ----------------------------------------------------------------------------

    def candidate(self, pair_id: str) -> dict[str, Any] | None:
        index, _ = self.queue()
        row = index.row_of.get(pair_id)
        return index.rows([row])[0] if row is not None else None

    def queue(self) -> tuple[QueueIndex, Flags]:
        """The candidates in queue order with their filter columns as arrays (once per table version),
        and what the decisions say about each (once per version of the candidates, the decisions and
        ``_publications``, whose time says which decisions were made since the candidates)."""
        candidates = self.snapshot("match_candidates")
        index = candidates.derive("queue", QueueIndex.build)
        published = self.snapshot("_publications")
        since = max((r["published_at"] for r in as_dicts(published.table) if r["run_id"] in index.run_ids), default=None)
        decisions = self.snapshot("steward_decisions")
        key = f"flags:{candidates.serial}:{published.serial}"

        def build(table: pa.Table) -> tuple[PairStates, Flags]:
            earlier = decisions.earlier.get(key)
            if earlier is not None and decisions.added is not None:  # the previous version plus new files
                later = decisions.added.select(list(_QUEUE_DECISION_COLUMNS)).to_pylist()
                states = more_pair_states(earlier[0], later, since)
                if states is not None:
                    return states, flags_after(index, earlier[1], states, later)
            states = pair_states(table.select(list(_QUEUE_DECISION_COLUMNS)).to_pylist(), since)
            return states, flags(index, states)

        return index, decisions.derive(key, build)[1]

    def decisions(self, where: ds.Expression | None = None) -> list[dict[str, Any]]:
        return self.rows("steward_decisions", where)

    def pair_decisions(self, record_a: str, record_b: str) -> list[dict[str, Any]]:
        table, index = self._indexed("steward_decisions", "record_id_l", "record_id_r", many=True)
        rows = index.get(tuple(sorted((record_a, record_b))))
        return _take(table, rows) if rows else []

    # -- golden records ----------------------------------------------------------------------------

    def _indexed(self, name: str, *columns: str, many: bool = False) -> tuple[pa.Table, dict[Any, Any]]:
        """Table ``name`` and its row index by ``columns`` (a tuple key for several), of one version:
        the index is built once per version, and its rows are rows of that table."""

        def build(table: pa.Table) -> dict[Any, Any]:
            values = [table[c].to_pylist() for c in columns]
            keys = values[0] if len(values) == 1 else list(zip(*values))
            return _rows_index(keys) if many else _row_index(keys)

        snapshot = self.snapshot(name)
        return snapshot.table, snapshot.derive(f"index:{','.join(columns)}:{many}", build)

    def _lookup(self, name: str, key: Any, *columns: str) -> dict[str, Any] | None:
        table, index = self._indexed(name, *columns)
        row = index.get(key)
        return _take(table, [row])[0] if row is not None else None

    def golden(self, golden_id: str) -> dict[str, Any] | None:
        return self._lookup("golden_customers", golden_id, "golden_id")

    def goldens(self, golden_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The golden rows of ``golden_ids`` that exist, in the order given."""
        table, index = self._indexed("golden_customers", "golden_id")
        rows = [index[g] for g in golden_ids if g in index]
        return _take(table, rows) if rows else []

    def resolve(self, golden_id: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The golden record ``golden_id`` leads to, following retired ids to their survivor.

        Returns the record (None when unknown) and the ids visited, ``golden_id`` first.
        """
        chain = [golden_id]
        row = self.golden(golden_id)
        while row is not None and row["status"] == "retired" and row["survivor_id"]:
            if row["survivor_id"] in chain or len(chain) > MAX_SURVIVOR_HOPS:
                break
            chain.append(row["survivor_id"])
            row = self.golden(row["survivor_id"])
        return row, chain

    def members(self, golden_id: str) -> list[dict[str, Any]]:
        """The source records of a golden record: xref rows joined with their ``customers_std`` values
        (never for an erased record), current ones first."""
        xref = self.xref_of_golden(golden_id)
        records = self.records(row["record_id"] for row in xref if row["linked_by"] != "erased")
        return [{**records.get(row["record_id"], {}), **row} for row in xref]

    def xref_of_golden(self, golden_id: str) -> list[dict[str, Any]]:
        """``customer_xref`` rows of a golden record: current ones by record id, then closed ones."""
        table, index = self._indexed("customer_xref", "golden_id", many=True)
        found = index.get(golden_id, [])
        rows = _take(table, found) if found else []
        return sorted(rows, key=lambda r: (is_closed(r), r["record_id"]))

    def records(self, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        table, index = self._indexed("customers_std", "record_id")
        found = sorted({index[r] for r in set(record_ids) if r in index})
        if not found:
            return {}
        return {row["record_id"]: row for row in _take(table, found)}

    def xref(self, source_system: str, source_key: str) -> dict[str, Any] | None:
        return self._lookup("customer_xref", (source_system, source_key), "source_system", "source_key")

    def erased_xref(self, source_system: str, source_key: str) -> dict[str, Any] | None:
        """The xref row an erased source key left behind, found by the salted hash ``cdi erase`` wrote
        in place of the key (``jobs/suppressions.py``); None when there is none, or the lake has no salt."""
        salt = self._lake_salt()
        if salt is None:
            return None
        row = self.xref(source_system, ERASED_KEY_PREFIX + key_hash(salt, source_system, source_key))
        return row if row is not None and row["linked_by"] == "erased" else None

    def _lake_salt(self) -> str | None:
        try:
            salts = DeltaTable(salt_path(self.lake)).to_pyarrow_table(columns=["salt"]).column("salt").to_pylist()
        except TableNotFoundError:
            return None
        return min(salts, default=None)

    def event_time(self, golden_id: str, event: str) -> datetime | None:
        """When ``golden_id_history`` last recorded ``event`` (``delete``, ``erase``) for ``golden_id``, or None."""
        rows = self.rows("golden_id_history", (pc.field("golden_id") == golden_id) & (pc.field("event") == event))
        return max((r["at"] for r in rows), default=None)

    def xref_of_record(self, record_id: str) -> dict[str, Any] | None:
        return self._lookup("customer_xref", record_id, "record_id")

    def history(self, golden_id: str) -> list[dict[str, Any]]:
        """``golden_id_history`` rows about ``golden_id`` and the ids it was merged with or split from."""

        def about(ids: set[str]) -> list[dict[str, Any]]:
            return self.rows("golden_id_history", _among("golden_id", ids) | _among("related_id", ids))

        first = about({golden_id})
        related = {golden_id} | {r["golden_id"] for r in first} | {r["related_id"] for r in first if r["related_id"]}
        rows = about(related) if related != {golden_id} else first
        return sorted(rows, key=lambda r: (r["at"], r["run_id"], r["event"], r["golden_id"]))

    def decisions_about(self, golden_id: str, record_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(record_ids)
        where = (
            (pc.field("golden_id") == golden_id)
            | (pc.field("golden_id_other") == golden_id)
            | _among("record_id_l", ids)
            | _among("record_id_r", ids)
        )
        return sorted(self.decisions(where), key=lambda r: r["decided_at"], reverse=True)

    # -- the customer 360 view (gold tables of the customer_360 stage; empty on a lake from before it) --------

    def customer_360(self, golden_id: str) -> dict[str, Any] | None:
        """The ``customer_360`` row of an active golden customer, its amounts (``per_department[].amount``,
        ``monetary``, ``monetary_365d``) as currency -> Decimal dicts; None when it has none."""
        row = self._lookup(VIEW_TABLE, golden_id, "golden_id")
        if row is None:
            return None
        departments = [{**d, "amount": dict(d["amount"] or [])} for d in row["per_department"] or []]
        return {**row, "per_department": departments}

    def household(self, golden_id: str) -> dict[str, Any] | None:
        """The ``households`` row that has ``golden_id`` among its members, or None."""

        def build(table: pa.Table) -> dict[str, int]:
            members = table["golden_ids"]
            return dict(zip(pc.list_flatten(members).to_pylist(), pc.list_parent_indices(members).to_pylist()))

        snapshot = self.snapshot(HOUSEHOLDS_TABLE)
        row = snapshot.derive("index:member", build).get(golden_id)
        return _take(snapshot.table, [row])[0] if row is not None else None

    def activity(self, golden_id: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Rows ``offset`` to ``offset + limit`` of the customer's linked activity, newest first
        (``TIMELINE_ORDER``), and how many rows it has in all."""
        table = self.snapshot(ACTIVITY_TABLE).table
        start, end = key_range(table["golden_id"], golden_id)
        first = min(start + offset, end)
        return as_dicts(table.slice(first, min(limit, end - first))), end - start

    # -- search ------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """Golden records the query finds in their own, or one of their source records', names, email,
        phone, golden id, record id or source key: accents and case folded, every word anywhere in any
        order ("FAMILY, Given", partial names), a phone in national or international format
        (``steward/search_index.py``).

        Each result is the golden row plus ``matched_on``: the source record ids that matched
        (empty when the golden record itself matched).
        """
        golden_ids = self._text_index("golden_customers", "golden_id", _GOLDEN_SEARCH_COLUMNS).matching(
            query, self.region, SEARCH_SCAN)
        record_ids = self._text_index("customers_std", "record_id", _RECORD_SEARCH_COLUMNS).matching(
            query, self.region, SEARCH_SCAN)
        matched_on: dict[str, list[str]] = {g: [] for g in golden_ids}
        xref, index = self._indexed("customer_xref", "record_id")
        xref_rows = [row for row in map(index.get, record_ids) if row is not None]
        for link in xref.select(["record_id", "golden_id"]).take(pa.array(xref_rows, pa.int64())).to_pylist():
            matched_on.setdefault(link["golden_id"], []).append(link["record_id"])
        found = self.goldens(sorted(matched_on)[:limit])
        results = [{**row, "matched_on": sorted(matched_on[row["golden_id"]])} for row in found]
        return sorted(results, key=lambda r: (r["status"] != "active", r["full_name"] or "", r["golden_id"]))

    def warm(self) -> None:
        """Read every table and build every index a page or an API lookup uses, so the first
        request after start-up does not pay for them (``create_app`` runs this in a thread)."""
        self.queue()
        self.golden("")
        self.xref_of_golden("")
        self.xref_of_record("")
        self.xref("", "")
        self.records([""])
        self.pair_decisions("", "")
        self.customer_360("")
        self.household("")
        self.activity("", 0, 0)
        self._text_index("golden_customers", "golden_id", _GOLDEN_SEARCH_COLUMNS)
        self._text_index("customers_std", "record_id", _RECORD_SEARCH_COLUMNS)

    def _text_index(self, name: str, id_column: str, columns: tuple[str, ...]) -> TextIndex:
        return self.snapshot(name).derive(
            "search", lambda table: TextIndex.build(table, id_column, _NAME_COLUMNS, columns))

    # -- model -------------------------------------------------------------------------------------

    def latest_run_id(self) -> str | None:
        runs = self.rows("_publications")
        if not runs:
            return None
        return max(runs, key=lambda r: (r["published_at"], r["run_id"]))["run_id"]

    def latest_model(self) -> SavedModel | None:
        """The model (with its term frequencies) of the last published run, or None before the first run."""
        run_id = self.latest_run_id()
        if run_id is None or not self.lake.is_local:
            return None
        path = self.lake.path("_runs", run_id, "model.json")
        try:
            with open(path, encoding="utf-8") as handle:
                return saved_model_from_json(handle.read())
        except FileNotFoundError:
            return None

    # -- the one write -------------------------------------------------------------------------------

    def append_decision(self, decision: Decision) -> None:
        """Append ``decision``; on a commit conflict read the new version and try again."""
        self.append_decisions([decision])

    def append_decisions(self, decisions: list[Decision]) -> None:
        """Append ``decisions`` in one commit (a bulk decision, a claim of a batch); on a commit
        conflict read the new version and try again."""
        if not decisions:
            return
        table = pa.Table.from_pylist([d.row() for d in decisions], schema=DECISIONS_ARROW_SCHEMA)
        path = self.lake.gold("steward_decisions")
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                # Created without per-column min/max statistics, so no value (a comment, a record id)
                # is copied into the transaction log, where `cdi erase` could not remove it.
                # schema_mode="merge": a table written before the later columns (record_ids, supersedes, ...)
                # gains them, its older rows reading as nulls.
                write_deltalake(path, table, mode="append", schema_mode="merge",
                                configuration={"delta.dataSkippingNumIndexedCols": "0"})
                break
            except (CommitFailedError, DeltaError) as error:
                if attempt == COMMIT_ATTEMPTS or not _is_commit_conflict(error):
                    raise
                time.sleep(0.01 * attempt)
        self._cache.invalidate(path)
        first = decisions[0]
        log.info("%d decision(s) recorded, the first %s: %s by %s", len(decisions), first.decision_id, first.action,
                 first.steward)

    # -- undo and audit (steward/routes/audit.py, the golden record page) ------------------------------

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        found = self.decisions(pc.field("decision_id") == decision_id)
        return found[0] if found else None

    def last_published_at(self) -> datetime | None:
        """When the last pipeline run published; decisions after it wait for the next run."""
        return max((r["published_at"] for r in self.rows("_publications")), default=None)

    def golden_change_feed(self, golden_id: str) -> list[dict[str, Any]]:
        """Every change data feed row of one golden id (inserts, update pre- and post-images), oldest first."""
        try:
            table = DeltaTable(self.lake.gold("golden_customers"))
        except TableNotFoundError:
            return []
        literal = "'" + golden_id.replace("'", "''") + "'"
        rows = as_dicts(pa.table(table.load_cdf(starting_version=0, predicate=f"golden_id = {literal}")))
        return sorted(rows, key=lambda r: r["_commit_version"])

    # -- scored links (the cluster view, steward/routes/cluster.py) ------------------------------------

    def scored_links(self, record_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The scored pairs of the last match stage (``silver/pairs``, every candidate pair, not only the
        review band) between two of ``record_ids``: ids, probability and weight; [] before any match."""
        ids = sorted(set(record_ids))
        try:
            dataset = DeltaTable(self.lake.path("silver", "pairs")).to_pyarrow_dataset()
        except TableNotFoundError:
            return []
        where = _among("record_id_l", ids) & _among("record_id_r", ids)
        columns = ["record_id_l", "record_id_r", "match_probability", "match_weight"]
        return dataset.to_table(filter=where, columns=columns).to_pylist()


def to_json_value(value: Any) -> Any:
    """JSON-friendly form of a row value (dates and timestamps as ISO text, decimals as text, NaN as null)."""
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exactly as stored: a float would lose cents of a large amount
    if isinstance(value, float) and value != value:
        return None
    return value


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: to_json_value(v) for k, v in row.items()}
