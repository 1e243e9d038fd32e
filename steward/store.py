"""Every read and write of the review app, with delta-rs (no Spark).

Tables are opened afresh on each call, so a page always shows the latest
published state. A table that does not exist yet reads as empty with its
schema, and a column an older cdi did not write (``customer_xref.valid_to``)
reads as nulls. ``append_decision`` is the app's only write: one row appended to
``gold/steward_decisions`` (created on first use), retried when another
writer committed first, so concurrent stewards are all recorded.
"""

from __future__ import annotations

import functools
import logging
import operator
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from pyspark.sql import types as T

from config.lake import Lake
from jobs.suppressions import key_hash, salt_path
from matching.model_io import SavedModel, saved_model_from_json
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

log = logging.getLogger("cdi.steward.store")

GOLD_SCHEMAS: dict[str, T.StructType] = {
    "golden_customers": GOLDEN_CUSTOMERS_SCHEMA,
    "customer_xref": CUSTOMER_XREF_SCHEMA,
    "match_candidates": MATCH_CANDIDATES_SCHEMA,
    "golden_id_history": GOLDEN_ID_HISTORY_SCHEMA,
    "steward_decisions": STEWARD_DECISIONS_SCHEMA,
    "_publications": PUBLICATIONS_SCHEMA,
}
SEARCH_LIMIT = 50
MAX_SURVIVOR_HOPS = 100
COMMIT_ATTEMPTS = 20
_GOLDEN_SEARCH_COLUMNS = ("golden_id", "full_name", "given_name", "family_name", "email", "phone")
_RECORD_SEARCH_COLUMNS = ("record_id", "source_key", "full_name", "given_name", "family_name", "email", "phone")
_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")
# customer_xref.linked_by of a record that left its golden record; its row stays, closed (valid_to set).
CLOSED_LINKS = ("deleted", "erased")
ERASED_KEY_PREFIX = "erased:"  # an erased record's source_key and record_id: this prefix and a salted hash of the key
# What a change feed row of an erased golden id must not carry: every personal value, the record ids the
# values came from, and the hash of those values.
ERASED_COLUMNS = (*CANONICAL_ATTRIBUTES, "lineage", "content_hash")


def arrow_type(spark_type: T.DataType) -> pa.DataType:
    """The Arrow type delta-rs reads and writes for a Spark SQL type."""
    simple: dict[type, pa.DataType] = {
        T.StringType: pa.string(),
        T.DateType: pa.date32(),
        T.DoubleType: pa.float64(),
        T.IntegerType: pa.int32(),
        T.LongType: pa.int64(),
        T.BooleanType: pa.bool_(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
    }
    if type(spark_type) in simple:
        return simple[type(spark_type)]
    if isinstance(spark_type, T.MapType):
        return pa.map_(arrow_type(spark_type.keyType), arrow_type(spark_type.valueType))
    if isinstance(spark_type, T.StructType):
        return pa.struct([pa.field(f.name, arrow_type(f.dataType), f.nullable) for f in spark_type.fields])
    raise TypeError(f"no Arrow type for {spark_type!r}")


def arrow_schema(schema: T.StructType) -> pa.Schema:
    return pa.schema([pa.field(f.name, arrow_type(f.dataType), f.nullable) for f in schema.fields])


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


class Store:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    # -- generic reads -------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return self.lake.customers_std if name == "customers_std" else self.lake.gold(name)

    @staticmethod
    def _schema(name: str) -> pa.Schema:
        return arrow_schema(CANONICAL_SCHEMA if name == "customers_std" else GOLD_SCHEMAS[name])

    def _dataset(self, name: str) -> ds.Dataset:
        try:
            return DeltaTable(self._path(name)).to_pyarrow_dataset()
        except TableNotFoundError:
            return ds.dataset(self._schema(name).empty_table())

    def read(self, name: str, where: ds.Expression | None = None, columns: list[str] | None = None) -> pa.Table:
        dataset = self._dataset(name)
        stored = [c for c in columns if c in dataset.schema.names] if columns is not None else None
        return _with_missing_columns(dataset.to_table(filter=where, columns=stored), self._schema(name), columns)

    def rows(self, name: str, where: ds.Expression | None = None) -> list[dict[str, Any]]:
        return as_dicts(self.read(name, where))

    # -- review queue ----------------------------------------------------------------------------

    def candidates(self) -> list[dict[str, Any]]:
        return self.rows("match_candidates")

    def candidate(self, pair_id: str) -> dict[str, Any] | None:
        found = self.rows("match_candidates", pc.field("pair_id") == pair_id)
        return found[0] if found else None

    def decisions(self, where: ds.Expression | None = None) -> list[dict[str, Any]]:
        return self.rows("steward_decisions", where)

    def pair_decisions(self, record_a: str, record_b: str) -> list[dict[str, Any]]:
        left, right = sorted((record_a, record_b))
        return self.decisions((pc.field("record_id_l") == left) & (pc.field("record_id_r") == right))

    # -- golden records ----------------------------------------------------------------------------

    def golden(self, golden_id: str) -> dict[str, Any] | None:
        found = self.rows("golden_customers", pc.field("golden_id") == golden_id)
        return found[0] if found else None

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
        rows = self.rows("customer_xref", pc.field("golden_id") == golden_id)
        return sorted(rows, key=lambda r: (is_closed(r), r["record_id"]))

    def records(self, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(set(record_ids))
        if not ids:
            return {}
        return {row["record_id"]: row for row in self.rows("customers_std", _among("record_id", ids))}

    def xref(self, source_system: str, source_key: str) -> dict[str, Any] | None:
        where = (pc.field("source_system") == source_system) & (pc.field("source_key") == source_key)
        found = self.rows("customer_xref", where)
        return found[0] if found else None

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
        found = self.rows("customer_xref", pc.field("record_id") == record_id)
        return found[0] if found else None

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

    # -- search ------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """Golden records whose name, email, phone, golden id, or one of whose source records'
        names, email, phone, record id or source key contain ``query`` (case-insensitive).

        Each result is the golden row plus ``matched_on``: the source record ids that matched
        (empty when the golden record itself matched).
        """
        text = query.strip()
        phone = _PHONE_PUNCTUATION.sub("", text) or text

        def contains(columns: Iterable[str]) -> ds.Expression:
            tests = [
                pc.match_substring(pc.field(c), phone if c == "phone" else text, ignore_case=True) for c in columns
            ]
            return functools.reduce(operator.or_, tests)

        golden_hits = self.read("golden_customers", contains(_GOLDEN_SEARCH_COLUMNS), ["golden_id"])
        record_hits = self.read("customers_std", contains(_RECORD_SEARCH_COLUMNS), ["record_id"])
        xref = self.read("customer_xref", _among("record_id", record_hits.column("record_id").to_pylist()),
                         ["record_id", "golden_id"])
        matched_on: dict[str, list[str]] = {g: [] for g in golden_hits.column("golden_id").to_pylist()}
        for row in xref.to_pylist():
            matched_on.setdefault(row["golden_id"], []).append(row["record_id"])
        found = self.rows("golden_customers", _among("golden_id", sorted(matched_on)[:limit]))
        results = [{**row, "matched_on": sorted(matched_on[row["golden_id"]])} for row in found]
        return sorted(results, key=lambda r: (r["status"] != "active", r["full_name"] or "", r["golden_id"]))

    # -- change feed -------------------------------------------------------------------------------

    def changes(self, since_version: int) -> tuple[list[dict[str, Any]], int]:
        """``golden_customers`` change data feed rows from ``since_version`` on, and the latest version.

        The feed keeps every earlier version of a row, so the rows of a golden id that is erased now
        come out ``redacted``: its status and timestamps pass through, none of its values.
        """
        table = DeltaTable(self.lake.gold("golden_customers"))
        latest = table.version()
        if since_version > latest:
            return [], latest
        erased = set(self.read("golden_customers", pc.field("status") == "erased", ["golden_id"])["golden_id"].to_pylist())
        rows = [redacted(r) if r["golden_id"] in erased else r
                for r in as_dicts(pa.table(table.load_cdf(starting_version=since_version)))]
        return sorted(rows, key=lambda r: (r["_commit_version"], r["golden_id"], r["_change_type"])), latest

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
        table = pa.Table.from_pylist([decision.row()], schema=DECISIONS_ARROW_SCHEMA)
        path = self.lake.gold("steward_decisions")
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                # Created without per-column min/max statistics, so no value (a comment, a record id)
                # is copied into the transaction log, where `cdi erase` could not remove it.
                write_deltalake(path, table, mode="append", configuration={"delta.dataSkippingNumIndexedCols": "0"})
                break
            except (CommitFailedError, DeltaError) as error:
                if attempt == COMMIT_ATTEMPTS or not _is_commit_conflict(error):
                    raise
                time.sleep(0.01 * attempt)
        log.info("decision %s recorded: %s by %s", decision.decision_id, decision.action, decision.steward)


def to_json_value(value: Any) -> Any:
    """JSON-friendly form of a row value (dates and timestamps as ISO text, NaN as null)."""
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: to_json_value(v) for k, v in row.items()}
