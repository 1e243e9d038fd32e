"""``cdi erase``: remove every value of a person from the lake, its Delta history and its run folders.

A person is a golden customer. ``--golden-id`` names one; ``--source`` and
``--key`` name one of its source records (the whole golden customer is
erased, and the command says so); ``--file`` names many. A key that never
reached the cross-reference (it is only in bronze or quarantine) is erased
on its own.

In order, holding the lake's lock, each phase timed:

1. resolve: the golden ids (a retired id leads to the golden record that
   absorbed it; ids retired into an erased one are erased too, as their rows
   keep the person's old values) and every source record linked to them in
   ``customer_xref``, closed rows included. Anything unknown is a
   ConfigError (exit 2) and nothing is written;
2. values: every value those records held (bronze, every version, and the
   standardized forms of every version; customers_std and customers_staged;
   quarantined rows; their activity rows in bronze), lower-cased too, minus
   the values a remaining row still holds (``London`` stays in everyone
   else's report);
3. suppress: the keys go on the suppression list (``jobs/suppressions.py``)
   so the next ingest skips them;
4. tables: rows deleted (their activity too: bronze activity tables,
   customer_activity, customer_360, households), golden rows blanked, xref
   rows closed with a hashed key, an ``erase`` event per golden id
   (``jobs/erase_tables.py``);
5. vacuum: every table that holds or held the records, in any version, is
   vacuumed at 0 hours; the saved match model is rewritten without their
   values; the erased golden and xref rows are touched once more so the
   change feed shows their erased state; a run marker points the next run at
   the erased state;
6. files: the run folders are redacted (``jobs/redact.py``);
7. log: a row in ``ops/erasure_log``, with golden ids and salted key hashes
   but no personal value.

Every phase can be repeated: an erasure that stops part-way is finished by
running the same command again (a key already replaced by its hash in the
cross-reference is found again through the hash).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from config.errors import ConfigError
from config.lake import Lake
from config.pipeline import PipelineConfig
from jobs.activities import LINEAGE as ACTIVITY_LINEAGE
from jobs.activities import activity_tables
from jobs.delta_io import append, read_table, table_exists, table_folders
from jobs.erase_tables import (
    ERASED,
    Scope,
    announce_erasure,
    deletions,
    doomed_rows,
    erase_golden,
    erase_xref,
    keep_no_statistics,
    log_erase_events,
    mark_publication,
    merge_delete,
    relabel_clusters,
    rewrite_match_state,
    silver_versions,
    unpublished_changes,
    vacuum_now,
)
from jobs.redact import RedactionCounts, Redactor, json_leaf_strings, redact_tree
from jobs.runs import RunContext
from jobs.sources import safe_column_name
from jobs.standardize import standardize_source
from jobs.suppressions import key_hash, key_hash_column, lake_salt, suppress_keys
from schemas.arrow import local_frame
from schemas.canonical import CANONICAL_ATTRIBUTES, LINEAGE_COLUMNS, MATCH_ONLY_ATTRIBUTES, record_id

log = logging.getLogger("cdi.erase")

VACUUM_RETENTION_HOURS = 0
LINEAGE = (*LINEAGE_COLUMNS, "cdi_tombstone")
# The values standardize makes of a record (a date as written among them).
STANDARDIZED = (*CANONICAL_ATTRIBUTES, *MATCH_ONLY_ATTRIBUTES)

ERASURE_LOG_SCHEMA = T.StructType(
    [
        T.StructField("erasure_id", T.StringType(), False),
        T.StructField("requested_by", T.StringType(), False),
        T.StructField("reason", T.StringType(), False),  # the operator's words: never personal data
        T.StructField("requested_at", T.TimestampType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("golden_ids", T.ArrayType(T.StringType(), False), False),
        T.StructField("key_hashes", T.ArrayType(T.StringType(), False), False),  # jobs.suppressions.key_hash
        T.StructField("counts", T.MapType(T.StringType(), T.LongType(), False), False),  # table -> rows
        T.StructField("vacuum_retention_hours", T.IntegerType(), False),
    ]
)

Key = tuple[str, str]  # (source_system, source_key)


@dataclass(frozen=True)
class ErasureRequest:
    reason: str
    requested_by: str
    golden_ids: tuple[str, ...] = ()
    keys: tuple[Key, ...] = ()


def read_request_file(path: Path) -> tuple[list[str], list[Key]]:
    """Golden ids, or source keys, from a CSV whose header has ``golden_id`` or ``source_system,source_key``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"--file {path}: {exc.strerror}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or ())
    rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    if "golden_id" in header:
        return [row["golden_id"] for row in rows if row["golden_id"]], []
    if {"source_system", "source_key"} <= header:
        keys = []
        for line, row in enumerate(rows, start=2):
            if not row["source_system"] or not row["source_key"]:
                raise ConfigError(f"--file {path}, line {line}: source_system and source_key must both be set")
            keys.append((row["source_system"], row["source_key"]))
        return [], keys
    raise ConfigError(f"--file {path}: expected a header with golden_id, or with source_system and source_key")


# -- phases -----------------------------------------------------------------------------------


@dataclass
class Phases:
    """Wall time per phase, printed as each one ends (the erasure's cost on a big lake is in these lines)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - start, 1)
        print(f"[erase] {name} done in {self.seconds[name]:.1f} s", flush=True)


# -- who ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subjects:
    """The golden ids and source records an erasure removes, resolved before anything is written."""

    golden_ids: tuple[str, ...]
    records: tuple[Key, ...]
    records_per_golden: dict[str, int]
    notes: tuple[str, ...] = ()

    def scope(self, spark: SparkSession) -> Scope:
        records = local_frame(
            spark,
            [(system, key, record_id(system, key)) for system, key in self.records],
            "source_system string, source_key string, record_id string",
        )
        golden = local_frame(spark, [(g,) for g in self.golden_ids], "golden_id string")
        return Scope(records.localCheckpoint(), golden.localCheckpoint())


def _bronze_folders(spark: SparkSession, lake: Lake) -> set[str]:
    return set(table_folders(spark, lake.path("bronze")))


def bronze_tables(spark: SparkSession, lake: Lake, config: PipelineConfig) -> dict[str, str]:
    """Every bronze table of customer records: the configured sources' and any other folder under ``bronze/``
    whose name holds no ``.`` (a source since removed; ``<source>.<activity>`` is an activity table)."""
    names = {source.name for source in config.sources}
    names |= {name for name in _bronze_folders(spark, lake) if "." not in name}
    return {name: lake.bronze(name) for name in sorted(names) if table_exists(spark, lake.bronze(name))}


def bronze_activity_tables(spark: SparkSession, lake: Lake, config: PipelineConfig) -> dict[str, str]:
    """Every bronze activity table (``<source>.<activity>``): the configured ones and any left by a removed one."""
    names = {f"{source.name}.{activity.name}" for source, activity in activity_tables(config)}
    names |= {name for name in _bronze_folders(spark, lake) if "." in name}
    paths = {name: lake.path("bronze", name) for name in sorted(names)}
    return {name: path for name, path in paths.items() if table_exists(spark, path)}


def _keys_frame(spark: SparkSession, keys: Iterable[Key]) -> DataFrame:
    return local_frame(spark, sorted(set(keys)), "source_system string, source_key string")


def _key_tables(spark: SparkSession, lake: Lake, bronze: dict[str, str]) -> list[DataFrame]:
    """``(source_system, source_key)`` of every table that holds source keys."""
    paths = [*bronze.values(), lake.customers_std, lake.quarantine]
    return [read_table(spark, p).select("source_system", "source_key") for p in paths if table_exists(spark, p)]


def keys_present(spark: SparkSession, lake: Lake, keys: list[Key], bronze: dict[str, str]) -> set[Key]:
    """The keys of ``keys`` found in bronze, customers_std or quarantine."""
    if not keys:
        return set()
    asked = F.broadcast(_keys_frame(spark, keys))
    found: set[Key] = set()
    for table in _key_tables(spark, lake, bronze):
        found |= {
            (r[0], r[1]) for r in table.join(asked, ["source_system", "source_key"], "left_semi").distinct().collect()
        }
    return found


def keys_of_hashes(spark: SparkSession, lake: Lake, hashed: set[str], bronze: dict[str, str], salt: str) -> set[Key]:
    """The keys still in the lake whose ``erased:<hash>`` is in ``hashed`` (a re-run of an erasure that stopped)."""
    wanted = F.broadcast(local_frame(spark, [(h,) for h in sorted(hashed)], "_hashed string"))
    found: set[Key] = set()
    for table in _key_tables(spark, lake, bronze):
        with_hash = table.distinct().withColumn(
            "_hashed", F.concat(F.lit(f"{ERASED}:"), key_hash_column(salt, F.col("source_system"), F.col("source_key")))
        )
        found |= {
            (r[0], r[1])
            for r in with_hash.join(wanted, "_hashed", "left_semi").select("source_system", "source_key").collect()
        }
    return found


def golden_of_keys(spark: SparkSession, lake: Lake, keys: list[Key], salt: str | None) -> dict[Key, str]:
    """The golden id each key is linked to in customer_xref (also when an earlier erasure hashed the key)."""
    path = lake.gold("customer_xref")
    if not keys or not table_exists(spark, path):
        return {}
    xref = read_table(spark, path).select("source_system", "source_key", "golden_id")
    asked = F.broadcast(_keys_frame(spark, keys))
    found = {(r[0], r[1]): r[2] for r in xref.join(asked, ["source_system", "source_key"]).collect()}
    if salt:
        hashed = asked.withColumn(
            "_hashed", F.concat(F.lit(f"{ERASED}:"), key_hash_column(salt, F.col("source_system"), F.col("source_key")))
        )
        again = hashed.join(xref.withColumnRenamed("source_key", "_hashed"), ["source_system", "_hashed"]).select(
            "source_system", "source_key", "golden_id"
        )
        found.update({(r[0], r[1]): r[2] for r in again.collect()})
    return found


def existing_golden_ids(spark: SparkSession, lake: Lake, golden_ids: Iterable[str]) -> set[str]:
    asked = sorted(set(golden_ids))
    path = lake.gold("golden_customers")
    if not asked:
        return set()
    found = set()
    if table_exists(spark, path):
        found = {
            r[0] for r in read_table(spark, path).where(F.col("golden_id").isin(asked)).select("golden_id").collect()
        }
    unknown = [g for g in asked if g not in found]
    if unknown:
        raise ConfigError(f"--golden-id: no golden customer {', '.join(unknown)} in {path}; nothing was erased")
    return found


def whole_people(spark: SparkSession, lake: Lake, golden_ids: set[str]) -> tuple[set[str], list[str]]:
    """``golden_ids`` plus the golden records they were retired into and the ones retired into them."""
    path = lake.gold("golden_customers")
    people, notes = set(golden_ids), []
    if not people or not table_exists(spark, path):
        return people, notes
    golden = read_table(spark, path).select("golden_id", "status", "survivor_id")
    while True:
        known = sorted(people)
        survivors = golden.where(
            F.col("golden_id").isin(known) & (F.col("status") == "retired") & ~F.col("survivor_id").isin(known)
        ).collect()
        absorbed = golden.where(F.col("survivor_id").isin(known) & ~F.col("golden_id").isin(known)).collect()
        if not survivors and not absorbed:
            return people, notes
        notes += [
            f"golden id {r['golden_id']} was retired into {r['survivor_id']}: erasing {r['survivor_id']} too"
            for r in survivors
        ]
        notes += [
            f"golden id {r['golden_id']} was retired into {r['survivor_id']}: erasing its old values too"
            for r in absorbed
        ]
        people |= {r["survivor_id"] for r in survivors} | {r["golden_id"] for r in absorbed}


def linked_records(
    spark: SparkSession, lake: Lake, golden_ids: set[str], bronze: dict[str, str], salt: str | None
) -> tuple[set[Key], dict[str, int]]:
    """Every source record linked to ``golden_ids`` in customer_xref, and how many per golden id."""
    path = lake.gold("customer_xref")
    if not golden_ids or not table_exists(spark, path):
        return set(), {}
    rows = (
        read_table(spark, path)
        .where(F.col("golden_id").isin(sorted(golden_ids)))
        .select("source_system", "source_key", "golden_id", "linked_by")
        .collect()
    )
    live = {(r["source_system"], r["source_key"]) for r in rows if r["linked_by"] != ERASED}
    hashed = {r["source_key"] for r in rows if r["linked_by"] == ERASED}
    if hashed and salt:
        live |= keys_of_hashes(spark, lake, hashed, bronze, salt)
    return live, dict(Counter(r["golden_id"] for r in rows))


def _given(request: ErasureRequest, key: Key) -> str:
    """A key by its position among the ones asked for: the erasure's output names no key."""
    return f"the {key[0]} record of key #{request.keys.index(key) + 1}"


def resolve(
    spark: SparkSession, lake: Lake, request: ErasureRequest, bronze: dict[str, str], salt: str | None
) -> Subjects:
    """The request's golden customers and records; a golden id or key the lake does not hold is a ConfigError."""
    keys = sorted(set(request.keys))
    linked = golden_of_keys(spark, lake, keys, salt)
    unlinked = [k for k in keys if k not in linked]
    alone = keys_present(spark, lake, unlinked, bronze)
    unknown = [k for k in unlinked if k not in alone]
    if unknown:
        listed = ", ".join(f"{system}:{key}" for system, key in unknown)
        raise ConfigError(
            f"--key: no record {listed} in the lake (bronze, customers_std, quarantine, customer_xref); nothing was erased"
        )
    notes = [f"{_given(request, k)} belongs to golden customer {g}: erasing all of it" for k, g in sorted(linked.items())]
    notes += [f"{_given(request, k)} is in no golden customer: erasing it alone" for k in sorted(alone)]
    asked = existing_golden_ids(spark, lake, request.golden_ids) | set(linked.values())
    people, retired_notes = whole_people(spark, lake, asked)
    records, per_golden = linked_records(spark, lake, people, bronze, salt)
    return Subjects(
        golden_ids=tuple(sorted(people)),
        records=tuple(sorted(records | alone)),
        records_per_golden=per_golden,
        notes=tuple(notes + retired_notes),
    )


# -- their values ---------------------------------------------------------------------------------


def _leaves(column: Column, data_type: T.DataType) -> list[Column]:
    """The column's atomic values as strings; arrays and maps as JSON; booleans and timestamps left out."""
    if isinstance(data_type, T.StructType):
        return [leaf for f in data_type.fields for leaf in _leaves(column.getField(f.name), f.dataType)]
    if isinstance(data_type, (T.StringType, T.DateType, T.NumericType)):
        return [column.cast("string")]
    if isinstance(data_type, (T.ArrayType, T.MapType)):
        return [F.to_json(column)]
    return []


def leaf_columns(frame: DataFrame, exclude: Iterable[str] = ()) -> list[Column]:
    skipped = set(exclude)
    return [
        leaf for f in frame.schema.fields if f.name not in skipped for leaf in _leaves(F.col(f"`{f.name}`"), f.dataType)
    ]


def leaf_values(frame: DataFrame, exclude: Iterable[str] = ()) -> set[str]:
    """Every value of every row of ``frame`` (a few rows: one person's), collected to the driver."""
    leaves = leaf_columns(frame, exclude)
    if not leaves:
        return set()
    found: set[str] = set()
    for row in frame.select(F.array(*leaves).alias("v")).collect():
        for value in row["v"]:
            if value is not None:
                found |= json_leaf_strings(value) if value[:1] in "[{" else {value}
    return found


def standardized_values(frame: DataFrame, context: RunContext, source_name: str) -> set[str]:
    """The values standardize makes of ``frame``'s bronze rows (every version, not only the current one)."""
    source = next((s for s in context.config.sources if s.name == source_name), None)
    if source is None:
        return set()
    try:
        standardized = standardize_source(frame, source, context.settings.vocabulary)
    except ConfigError as exc:
        log.warning(
            "erase: cannot standardize bronze/%s as configured (%s); its raw values are still erased", source_name, exc
        )
        return set()
    return leaf_values(standardized.select(*[a for a in STANDARDIZED if a in standardized.columns]))


def values_held(spark: SparkSession, frames: list[DataFrame], values: set[str]) -> set[str]:
    """The lower-cased ``values`` that some row of ``frames`` holds (any case)."""
    if not values:
        return set()
    wanted = F.broadcast(local_frame(spark, [(v,) for v in sorted({v.lower() for v in values})], "v string"))
    parts = [
        frame.select(F.explode(F.array(*leaves)).alias("v")).select(F.lower("v").alias("v"))
        for frame in frames
        if (leaves := leaf_columns(frame))
    ]
    if not parts:
        return set()
    everything = parts[0]
    for part in parts[1:]:
        everything = everything.unionByName(part)
    return {r["v"] for r in everything.join(wanted, "v", "left_semi").distinct().collect()}


def person_values(
    spark: SparkSession, context: RunContext, scope: Scope, bronze: dict[str, str], activity: dict[str, str]
) -> set[str]:
    """Every value of the erased records and of their activity that no remaining row holds, plus their keys
    and record ids."""
    lake = context.lake
    own: set[str] = set()
    others: list[DataFrame] = []
    for name, path in bronze.items():
        table = read_table(spark, path)
        theirs = table.join(scope.keys(), ["source_system", "source_key"], "left_semi").localCheckpoint()
        if not theirs.isEmpty():
            own |= leaf_values(theirs, LINEAGE) | standardized_values(theirs, context, name)
        others.append(table.join(scope.keys(), ["source_system", "source_key"], "left_anti").drop(*LINEAGE))
    customers = scope.keys().withColumnRenamed("source_key", "customer_key")
    for path in activity.values():
        table = read_table(spark, path)
        own |= leaf_values(table.join(customers, ["source_system", "customer_key"], "left_semi"), ACTIVITY_LINEAGE)
        others.append(table.join(customers, ["source_system", "customer_key"], "left_anti").drop(*ACTIVITY_LINEAGE))
    for path in (lake.customers_std, lake.path("silver", "customers_staged")):
        if table_exists(spark, path):
            table = read_table(spark, path)
            attributes = [a for a in STANDARDIZED if a in table.columns]
            own |= leaf_values(table.join(scope.record_ids(), "record_id", "left_semi").select(*attributes))
            others.append(table.join(scope.record_ids(), "record_id", "left_anti").select(*attributes))
    if table_exists(spark, lake.quarantine):
        quarantined = read_table(spark, lake.quarantine).join(
            scope.keys(), ["source_system", "source_key"], "left_semi"
        )
        for row in quarantined.select("record").collect():
            own |= json_leaf_strings(row["record"], LINEAGE)
    own |= {v.lower() for v in own}
    held = values_held(spark, others, own)
    kept = {v for v in own if v.lower() not in held}
    identifiers = {value for row in scope.records.collect() for value in (row["record_id"], row["source_key"])}
    return kept | identifiers


# -- the erasure ----------------------------------------------------------------------------------


@dataclass
class ErasureOutcome:
    erasure_id: str
    dry_run: bool
    subjects: Subjects
    values: int  # how many distinct values were looked for in the run folders (never the values)
    counts: dict[str, int] = field(default_factory=dict)
    files: RedactionCounts = field(default_factory=RedactionCounts)
    suppressed: int = 0
    legacy_statistics: list[str] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)


def runs_root(lake: Lake) -> Path:
    """Where run folders are: ``<lake>/_runs``, or ``./runs`` for a lake on a Hadoop URI (``jobs.validate.local_run_dir``)."""
    return Path(lake.path("_runs")) if lake.is_local else Path("runs")


def data_tables(lake: Lake, bronze: dict[str, str], activity: dict[str, str]) -> list[str]:
    """Every table that can hold a person's values, in its current version or an older one."""
    return [
        *dict.fromkeys(d.path for d in deletions(lake, bronze, activity)),
        lake.gold("golden_customers"),
        lake.gold("customer_xref"),
        lake.path("silver", "match_model"),
    ]


def count_rows(
    spark: SparkSession,
    lake: Lake,
    scope: Scope,
    bronze: dict[str, str],
    activity: dict[str, str],
    at: datetime,
    customer_keys: Mapping[str, tuple[str, ...]],
) -> dict[str, int]:
    """What an erasure would change, table by table (the dry run)."""
    counts = {}
    for deletion in deletions(lake, bronze, activity, customer_keys):
        doomed = doomed_rows(spark, deletion, scope)
        if doomed is not None:
            counts[deletion.name] = (
                read_table(spark, deletion.path).join(doomed, list(deletion.on), "left_semi").count()
            )
    counts["gold/golden_customers"] = erase_golden(spark, lake.gold("golden_customers"), scope, "", at, dry_run=True)
    counts["gold/customer_xref"] = erase_xref(spark, lake.gold("customer_xref"), scope, None, "", at, dry_run=True)
    return counts


def erase_rows(
    spark: SparkSession,
    lake: Lake,
    subjects: Subjects,
    scope: Scope,
    bronze: dict[str, str],
    activity: dict[str, str],
    salt: str,
    erasure_id: str,
    at: datetime,
    customer_keys: Mapping[str, tuple[str, ...]],
) -> dict[str, int]:
    """Delete, blank and close every row of the erased records, their activity and golden ids; rows changed per table."""
    counts = {}
    for deletion in deletions(lake, bronze, activity, customer_keys):
        doomed = doomed_rows(spark, deletion, scope)
        if doomed is not None:
            counts[deletion.name] = (
                merge_delete(spark, deletion.path, doomed, deletion.on) if not doomed.isEmpty() else 0
            )
    counts["silver/clusters relabelled"] = relabel_clusters(spark, lake.path("silver", "clusters"), scope)
    counts["gold/golden_customers"] = erase_golden(
        spark, lake.gold("golden_customers"), scope, erasure_id, at, dry_run=False
    )
    counts["gold/customer_xref"] = erase_xref(
        spark, lake.gold("customer_xref"), scope, salt, erasure_id, at, dry_run=False
    )
    log_erase_events(
        spark, lake, {g: subjects.records_per_golden.get(g, 0) for g in subjects.golden_ids}, erasure_id, at
    )
    return counts


def write_erasure_log(
    spark: SparkSession, lake: Lake, request: ErasureRequest, outcome: ErasureOutcome, salt: str, requested_at: datetime
) -> None:
    hashes = sorted(key_hash(salt, system, key) for system, key in outcome.subjects.records)
    counts = {
        **outcome.counts,
        "suppressed_keys": outcome.suppressed,
        "run_files_rewritten": len(outcome.files.rewritten),
        "run_files_deleted": len(outcome.files.deleted),
    }
    row = (
        outcome.erasure_id,
        request.requested_by,
        request.reason,
        requested_at,
        datetime.now(timezone.utc),
        list(outcome.subjects.golden_ids),
        hashes,
        {k: int(v) for k, v in counts.items()},
        VACUUM_RETENTION_HOURS,
    )
    append(local_frame(spark, [row], ERASURE_LOG_SCHEMA), lake.path("ops", "erasure_log"))


def erase(spark: SparkSession, context: RunContext, request: ErasureRequest, dry_run: bool = False) -> ErasureOutcome:
    """Erase the request's people from ``context.lake``; with ``dry_run`` only count what would go.

    The caller holds the lake's lock (``jobs/lock.py``) for a real erasure.
    """
    lake, erasure_id, now = context.lake, context.run_id, context.started_at
    phases = Phases()
    with phases.phase("resolve"):
        bronze = bronze_tables(spark, lake, context.config)
        activity = bronze_activity_tables(spark, lake, context.config)
        customer_keys = {
            f"{source.name}/{table.name}": tuple(safe_column_name(c) for c in table.customer_key)
            for source, table in activity_tables(context.config)
        }
        salt = lake_salt(spark, lake)
        subjects = resolve(spark, lake, request, bronze, salt)
        for note in subjects.notes:
            print(f"[erase] {note}")
        blocked = unpublished_changes(spark, lake)
        if blocked:
            raise ConfigError(
                f"{', '.join(blocked)} changed after the last run marker: a run stopped while publishing. "
                "Run it again (same --run-id) before erasing; nothing was erased"
            )
        scope = subjects.scope(spark)
    with phases.phase("values"):
        redactor = Redactor.of(person_values(spark, context, scope, bronze, activity))
    outcome = ErasureOutcome(erasure_id, dry_run, subjects, len(redactor.values), phases=phases)
    tables = data_tables(lake, bronze, activity)
    if dry_run:
        with phases.phase("count"):
            outcome.counts = count_rows(spark, lake, scope, bronze, activity, now, customer_keys)
            outcome.files = redact_tree(runs_root(lake), redactor, dry_run=True)
        return outcome
    salt = salt or lake_salt(spark, lake, create=True)
    with phases.phase("suppress"):
        outcome.suppressed = suppress_keys(spark, lake, salt, list(subjects.records), erasure_id, now)
    with phases.phase("tables"):
        outcome.legacy_statistics = keep_no_statistics(spark, tables)
        silver_before = silver_versions(spark, lake)
        outcome.counts = erase_rows(spark, lake, subjects, scope, bronze, activity, salt, erasure_id, now, customer_keys)
    with phases.phase("vacuum"):
        vacuum_now(spark, [t for t in tables if t != lake.path("silver", "match_model")])
        rewrite_match_state(spark, lake, redactor.json_text, silver_before)
        vacuum_now(spark, [lake.path("silver", "match_model")])
        announce_erasure(spark, lake, scope)
        mark_publication(spark, lake, erasure_id, now)
    with phases.phase("files"):
        outcome.files = redact_tree(runs_root(lake), redactor)
    with phases.phase("log"):
        write_erasure_log(spark, lake, request, outcome, salt, now)
    return outcome


def format_erasure(outcome: ErasureOutcome) -> str:
    """What was erased (or would be), table by table, and the wall time of each phase; no personal value."""
    subjects = outcome.subjects
    verb = "would change" if outcome.dry_run else "changed"
    lines = [
        f"erasure {outcome.erasure_id}{' (dry run: nothing written)' if outcome.dry_run else ''}: "
        f"{len(subjects.golden_ids)} golden customer(s) {', '.join(subjects.golden_ids) or '-'}, "
        f"{len(subjects.records)} source record(s)",
        f"  {'table':<32} {'rows ' + verb:>20}",
    ]
    lines += [f"  {name:<32} {count:>20}" for name, count in outcome.counts.items()]
    files = outcome.files
    lines.append(
        f"  run files: {len(files.rewritten)} {'to rewrite' if outcome.dry_run else 'rewritten'}, "
        f"{len(files.deleted)} {'to delete' if outcome.dry_run else 'deleted'} of {files.files_seen} "
        f"({outcome.values} values looked for)"
    )
    if not outcome.dry_run:
        lines.append(
            f"  suppressed keys added: {outcome.suppressed}; old versions vacuumed (retention {VACUUM_RETENTION_HOURS} hours)"
        )
    for path in outcome.legacy_statistics:
        lines.append(
            f"  note: {path} kept column statistics until now; its older _delta_log entries hold them "
            "until delta.logRetentionDuration expires them"
        )
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome.phases.seconds.items())
    lines.append(f"  wall time: {phases}; total {sum(outcome.phases.seconds.values()):.1f} s")
    return "\n".join(lines)
