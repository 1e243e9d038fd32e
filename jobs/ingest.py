"""``cdi ingest``: land every configured source in a bronze Delta table.

A bronze table holds the source's original columns plus lineage:
``source_system``, ``source_key`` (primary key columns joined by ``|``),
``run_id``, ``ingested_at`` and ``record_hash`` (SHA-256 of the row's JSON).

A row lands only when it differs from the current (newest) version of its
source key, so re-running a run adds nothing, a changed row lands as a new
version, and a record that goes A -> B -> A upstream lands three versions.
Rows that cannot land (malformed, no key, a key used twice, bytes that are
not UTF-8) go to ``quarantine`` with a reason; rows of keys on the
suppression list (erased people, ``jobs/suppressions.py``) are counted and
dropped; so for every source and run
``read = landed + unchanged + rejected + suppressed``.

Deletions (``deletes:`` in a source's config) land as tombstones: a bronze
row with ``cdi_tombstone = true``. With ``flag`` the flagged row itself is
the tombstone; with ``snapshot`` every key whose current version is live but
that a full read no longer holds gets a tombstone with only its lineage
columns. A snapshot read that loses more than ``max_share`` of the live keys
stops the run before anything is written (exit 4).

With ``--incremental`` a source with a ``watermark`` is read from its stored
watermark on, inclusive (rows at the boundary come again and the version
check finds them unchanged), compared in the column's own type so the filter
is pushed down to a JDBC database; rows with no watermark are always read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from config.errors import SourceError, ValidationStopped
from config.lake import Lake
from config.pipeline import PipelineConfig, SourceConfig
from jobs.audit import AuditRow, Stopwatch, record_audit
from jobs.delta_io import (
    append, delete_rows, history, read_table, replace_where, restore, sole_commit, sql_string, table_exists,
)
from jobs.faults import fault_point
from jobs.ingest_checks import TextRepairs, check_null_drift, live_rows, repair_text
from jobs.suppressions import lake_salt, mark_suppressed
from jobs.sources import CORRUPT_COLUMN, read_source, safe_column_name, short_error
from jobs.threads import SHARED_WRITES, run_side_by_side

log = logging.getLogger("cdi.ingest")

LINEAGE = ("source_system", "source_key", "run_id", "ingested_at", "record_hash", "cdi_tombstone")
TOMBSTONE = "cdi_tombstone"
TOMBSTONE_HASH = "tombstone"
REJECT_COLUMN = "_reject_reason"
CHECK_COLUMN = "_reject_check"
SUPPRESSED = "suppressed"


@dataclass
class IngestCounts:
    source: str
    read: int
    landed: int
    unchanged: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0
    deleted: int = 0  # tombstones landed: flagged rows, or keys a snapshot read no longer holds
    repaired_encoding: int = 0  # rows with UTF-8 text read as the declared single-byte encoding, repaired
    repaired_control_characters: int = 0  # rows with control characters removed
    null_drift: dict[str, dict[str, float]] = field(default_factory=dict)  # landed anyway (null_drift: warn)

    @property
    def reconciles(self) -> bool:
        return self.read == self.landed + self.unchanged + self.rejected + self.suppressed


def tombstone_flag(source: SourceConfig) -> Column:
    """Whether a row is a deletion: the configured flag, compared as text; never for other modes."""
    if source.deletes.mode != "flag":
        return F.lit(False)
    flagged = F.col(safe_column_name(source.deletes.column)).cast("string") == F.lit(source.deletes.value)
    return F.coalesce(flagged, F.lit(False))


def with_lineage(df: DataFrame, source: SourceConfig, run_id: str, ingested_at: datetime) -> DataFrame:
    """Add the lineage columns; the hash covers every original column."""
    original = [c for c in df.columns if c != CORRUPT_COLUMN]
    key_parts = [F.col(safe_column_name(k)).cast("string") for k in source.primary_key]
    any_key_null = F.greatest(*[p.isNull() for p in key_parts]) if len(key_parts) > 1 else key_parts[0].isNull()
    row_json = F.to_json(F.struct(*[F.col(c) for c in original]))
    return df.select(
        *original,
        CORRUPT_COLUMN,
        F.lit(source.name).alias("source_system"),
        F.when(any_key_null, F.lit(None)).otherwise(F.concat_ws("|", *key_parts)).alias("source_key"),
        F.lit(run_id).alias("run_id"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.sha2(row_json, 256).alias("record_hash"),
        tombstone_flag(source).alias(TOMBSTONE),
        row_json.alias("_row_json"),
    )


def with_reject_reasons(df: DataFrame) -> DataFrame:
    """Flag the rows that cannot land, first reason wins; a suppressed key is dropped before any check.

    Rows of an activity table (``jobs/activities.py``) carry ``customer_key``: one without it cannot be
    linked to any customer and is rejected too.
    """
    # Keys are counted apart from the rows, so only keys are shuffled; the few keys seen twice meet the rows
    # broadcast. (A window over the key shuffled and sorted every whole row.)
    repeated = df.where(F.col("source_key").isNotNull()).groupBy("source_key").agg(
        F.count(F.lit(1)).alias("_key_rows")
    ).where(F.col("_key_rows") > 1)
    no_customer = F.col("customer_key").isNull() if "customer_key" in df.columns else F.lit(False)
    counted = df.join(F.broadcast(repeated), "source_key", "left").select(*df.columns, "_key_rows")
    return counted.withColumn(
        CHECK_COLUMN,
        F.when(F.col(SUPPRESSED), F.lit(SUPPRESSED))
        .when(F.col(CORRUPT_COLUMN).isNotNull(), F.lit("malformed_row"))
        .when(F.col("source_key").isNull(), F.lit("primary_key_not_null"))
        .when(no_customer, F.lit("customer_key_not_null"))
        .when(F.instr(F.col("_row_json"), "\ufffd") > 0, F.lit("valid_utf8"))
        .when(F.col("_key_rows") > 1, F.lit("primary_key_unique")),
    ).withColumn(
        REJECT_COLUMN,
        F.when(F.col(CHECK_COLUMN) == "malformed_row", F.lit("row does not fit the declared schema (its number of fields or a value's type; or a quote left open, which holds the rows after it)"))
        .when(F.col(CHECK_COLUMN) == "primary_key_not_null", F.lit("primary key is null"))
        .when(F.col(CHECK_COLUMN) == "customer_key_not_null", F.lit("customer key is null"))
        .when(
            F.col(CHECK_COLUMN) == "valid_utf8",
            F.lit("text is not valid UTF-8 (declare the file's encoding in conf)"),
        )
        .when(
            F.col(CHECK_COLUMN) == "primary_key_unique",
            F.concat(F.lit("primary key appears "), F.col("_key_rows").cast("string"), F.lit(" times in the source")),
        ),
    )


def quarantine_rows(rejected: DataFrame, run_id: str, ingested_at: datetime) -> DataFrame:
    return rejected.select(
        F.lit(run_id).alias("run_id"),
        F.lit("ingest").alias("stage"),
        F.col("source_system"),
        F.col("source_key"),
        F.col(CHECK_COLUMN).alias("check"),
        F.col(REJECT_COLUMN).alias("reason"),
        F.coalesce(F.col(CORRUPT_COLUMN), F.col("_row_json")).alias("record"),
        F.lit(ingested_at).cast("timestamp").alias("quarantined_at"),
    )


def check_schema_drift(spark: SparkSession, lake: Lake, source: SourceConfig, raw: DataFrame) -> None:
    """Stop before writing anything when a column the source had before now has another type.

    New columns are fine (bronze grows with them); a retyped one would either
    fail the append or be cast into something else, so it stops the run.
    """
    path = lake.bronze(source.name)
    if not table_exists(spark, path):
        return
    landed = {f.name: f.dataType for f in read_table(spark, path).schema.fields}
    for column in raw.schema.fields:
        before = landed.get(column.name)
        if before is not None and before != column.dataType:
            raise ValidationStopped(
                f"source {source.name!r}: column {column.name!r} changed type from {before.simpleString()} "
                f"to {column.dataType.simpleString()} (schema drift upstream); fix the source or its config"
            )


def stored_watermark(spark: SparkSession, lake: Lake, source: SourceConfig) -> Any:
    """The largest watermark value already landed, in the column's own type, or None."""
    path = lake.bronze(source.name)
    column = safe_column_name(source.watermark) if source.watermark else None
    if column is None or not table_exists(spark, path):
        return None
    bronze = read_table(spark, path)
    if column not in bronze.columns:
        return None
    return bronze.agg(F.max(column)).first()[0]


def past_watermark(raw: DataFrame, source: SourceConfig, watermark: Any) -> DataFrame:
    """Rows at or past ``watermark`` (and rows without one), as a filter a JDBC source pushes down.

    The literal takes the column's type, so the comparison is in that type
    (numbers as numbers, timestamps as instants) and Spark hands it to the
    database instead of casting every row.
    """
    column = safe_column_name(source.watermark)
    bound = F.lit(watermark).cast(raw.schema[column].dataType)
    return raw.where((F.col(column) >= bound) | F.col(column).isNull())


def ingest_source(
    spark: SparkSession,
    lake: Lake,
    source: SourceConfig,
    raw: DataFrame,
    run_id: str,
    ingested_at: datetime,
    incremental: bool,
) -> IngestCounts:
    watermark = stored_watermark(spark, lake, source) if incremental else None
    if watermark is not None:
        raw = past_watermark(raw, source, watermark)
    repairs = repair_text(raw, source)
    repairs.checked.persist()  # before ``prepared`` is: the one read of the source fills both
    lineaged = with_lineage(repairs.repaired, source, run_id, ingested_at)
    salt = lake_salt(spark, lake)
    marked = mark_suppressed(spark, lake, lineaged, salt) if salt else lineaged.withColumn(SUPPRESSED, F.lit(False))
    prepared = with_reject_reasons(marked.withColumnRenamed("_suppressed", SUPPRESSED)).persist()
    try:
        return _land(spark, lake, source, prepared, run_id, ingested_at, full_read=watermark is None, repairs=repairs)
    finally:
        prepared.unpersist()
        repairs.checked.unpersist()


def newest_rows(bronze: DataFrame, path: str) -> DataFrame:
    """The newest row of every source key of the bronze table at ``path`` (read as ``bronze``), ``cdi_tombstone``
    never null.

    A table that holds one landing only, where every key is unique (a key seen twice is rejected), is taken as
    it is, without the sort by key that picks the newest of several landings.
    """
    if TOMBSTONE not in bronze.columns:
        bronze = bronze.withColumn(TOMBSTONE, F.lit(False))
    if not one_landing(path):
        newest_first = Window.partitionBy("source_key").orderBy(F.col("ingested_at").desc(), F.col("run_id").desc())
        bronze = bronze.withColumn("_rank", F.row_number().over(newest_first)).where("_rank = 1").drop("_rank")
    return bronze.withColumn(TOMBSTONE, F.coalesce(F.col(TOMBSTONE), F.lit(False)))


def one_landing(path: str) -> bool:
    """Whether the bronze table at ``path`` holds one landing only: its one commit is an append ingest tagged
    with a run id. A table made otherwise in one commit (a copy, a clone) may hold several versions of a key."""
    commit = sole_commit(path)
    return (
        commit is not None
        and commit.get("operation") == "WRITE"
        and (commit.get("operationParameters") or {}).get("mode") == "Append"
        and bool(commit.get("userMetadata"))
    )


def current_versions(spark: SparkSession, path: str) -> DataFrame:
    """The newest bronze row of every source key (``source_key``, ``record_hash``, ``cdi_tombstone``)."""
    bronze = read_table(spark, path)
    return newest_rows(bronze, path).select("source_key", "record_hash", TOMBSTONE)


def snapshot_tombstones(
    current: DataFrame, prepared: DataFrame, good: DataFrame, source: SourceConfig, run_id: str, ingested_at: datetime
) -> DataFrame:
    """A tombstone (lineage only) for every live key a full read no longer holds."""
    seen = prepared.where(F.col("source_key").isNotNull()).select("source_key")
    gone = current.where(~F.col(TOMBSTONE)).select("source_key").join(seen, "source_key", "left_anti")
    return gone.select(
        *[F.lit(None).cast(f.dataType).alias(f.name) for f in good.schema.fields if f.name not in LINEAGE],
        F.lit(source.name).alias("source_system"),
        F.col("source_key"),
        F.lit(run_id).alias("run_id"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(TOMBSTONE_HASH).alias("record_hash"),
        F.lit(True).alias(TOMBSTONE),
    )


def check_deletion_share(source: SourceConfig, deleted: int, live: int) -> None:
    """Stop (exit 4) when a snapshot read loses more than ``max_share`` of the live keys at once."""
    if live and deleted / live > source.deletes.max_share:
        raise ValidationStopped(
            f"source {source.name!r}: the read no longer holds {deleted} of {live} records "
            f"({deleted / live:.0%}, more than deletes.max_share {source.deletes.max_share:.0%}); "
            "nothing was written. A broken or partial export is the usual cause; if the records really "
            "were deleted, raise deletes.max_share for this run"
        )


def _has_rows(spark: SparkSession, path: str, predicate: str) -> bool:
    return table_exists(spark, path) and not read_table(spark, path).where(predicate).isEmpty()


def _read_source(prepared: DataFrame, source: SourceConfig) -> tuple[dict[str | None, int], int]:
    """Rows per reject reason, and the good rows flagged as deletions: the first action, where the source is read.

    ``prepared`` caches what it reads. A failure here is the source's (a CSV
    header that no longer matches its declared columns, a database that drops
    the connection mid-read): a SourceError (exit 3) naming the source and the
    cause in one line; the trace is logged at debug level (``--verbose``),
    Spark's side is in its log.
    """
    try:
        rows = prepared.groupBy(CHECK_COLUMN, TOMBSTONE).count().collect()
    except (Py4JJavaError, PySparkException) as exc:
        log.debug("reading source %s failed", source.name, exc_info=True)
        raise SourceError(f"source {source.name!r}: reading failed: {short_error(exc)}") from None
    reasons: dict[str | None, int] = {}
    for row in rows:
        reasons[row[CHECK_COLUMN]] = reasons.get(row[CHECK_COLUMN], 0) + row["count"]
    flagged = sum(row["count"] for row in rows if row[CHECK_COLUMN] is None and row[TOMBSTONE])
    return reasons, flagged


def _land(
    spark: SparkSession,
    lake: Lake,
    source: SourceConfig,
    prepared: DataFrame,
    run_id: str,
    ingested_at: datetime,
    full_read: bool,
    repairs: TextRepairs,
) -> IngestCounts:
    reasons, flagged_good = _read_source(prepared, source)
    repaired = repairs.totals(source.name)
    read = sum(reasons.values())
    suppressed = reasons.pop(SUPPRESSED, 0)
    rejected_count = read - suppressed - reasons.pop(None, 0)
    path = lake.bronze(source.name)
    exists = table_exists(spark, path)
    good = prepared.where(F.col(CHECK_COLUMN).isNull()).drop(
        CORRUPT_COLUMN, "_row_json", "_key_rows", CHECK_COLUMN, REJECT_COLUMN, SUPPRESSED
    )
    current = current_versions(spark, path).localCheckpoint() if exists else None
    live = live_rows(read_table(spark, path), current.where(~F.col(TOMBSTONE))) if exists else None
    drift = check_null_drift(source, good.where(~F.col(TOMBSTONE)), live) if exists else {}
    new_rows = good.join(current.select("source_key", "record_hash"), ["source_key", "record_hash"], "left_anti") if exists else good
    tombstones_landed = 0
    if exists and full_read and source.deletes.mode == "snapshot":
        tombstones = snapshot_tombstones(current, prepared, good, source, run_id, ingested_at).localCheckpoint()
        tombstones_landed = tombstones.count()
        check_deletion_share(source, tombstones_landed, current.where(~F.col(TOMBSTONE)).count())
        new_rows = new_rows.unionByName(tombstones)

    rejected = prepared.where(F.col(CHECK_COLUMN).isNotNull() & (F.col(CHECK_COLUMN) != SUPPRESSED))
    scope = f"run_id = {sql_string(run_id)} AND stage = 'ingest' AND source_system = {sql_string(source.name)}"
    with SHARED_WRITES:
        if rejected_count or _has_rows(spark, lake.quarantine, scope):
            replace_where(quarantine_rows(rejected, run_id, ingested_at), lake.quarantine, scope)

    good_count = read - rejected_count - suppressed
    if exists:
        new_rows = new_rows.persist()
        try:
            landed = new_rows.count()
            flagged = new_rows.where(F.col(TOMBSTONE)).count() - tombstones_landed if source.deletes.mode == "flag" else 0
            if landed:
                fault_point(f"ingest:during:{source.name}")
                append(new_rows, path, user_metadata=run_id)
        finally:
            new_rows.unpersist()
    else:
        landed, flagged = good_count, flagged_good  # a first landing takes every good row: counted as it was read
        fault_point(f"ingest:during:{source.name}")
        append(new_rows, path, user_metadata=run_id)
    return IngestCounts(
        source=source.name,
        read=read,
        landed=landed - tombstones_landed,
        unchanged=good_count - (landed - tombstones_landed),
        rejected=rejected_count,
        reasons={k: v for k, v in reasons.items() if k is not None},
        suppressed=suppressed,
        deleted=tombstones_landed + flagged,
        **repaired,
        null_drift=drift,
    )


def roll_back_landing(spark: SparkSession, config: PipelineConfig, lake: Lake, run_id: str) -> list[str]:
    """Put every bronze table back as it was before ``run_id`` landed rows in it; the sources rolled back.

    Used when a batch-level check rejects what this run read (the mass-deletion
    guard, a failed source suite): the next run, given a good file, then
    compares it with the bronze of before, not with the rejected batch. A table
    this run created is emptied (Delta cannot restore to before version 0).
    """
    rolled_back = []
    tables = [(source.name, lake.bronze(source.name)) for source in config.sources]
    tables += [(f"{s.name}/{a.name}", lake.bronze_activity(s.name, a.name)) for s in config.sources for a in s.activities]
    for name, path in tables:
        if not table_exists(spark, path):
            continue
        first = history(spark, path).where(F.col("userMetadata") == run_id).agg(F.min("version")).first()[0]
        if first is None:
            continue
        if first == 0:
            delete_rows(spark, path)
        else:
            restore(spark, path, first - 1)
        rolled_back.append(name)
        log.warning("bronze of %s rolled back to before run %s", name, run_id)
    return rolled_back


def format_ingest(results: list[IngestCounts]) -> str:
    """The ingest counts as a table, one line per source (or activity table) and per reject reason."""
    width = max([14, *(len(r.source) for r in results)])
    lines = [f"{'source':<{width}} {'read':>9} {'landed':>9} {'unchanged':>10} {'rejected':>9} {'suppressed':>10} {'deleted':>8}"]
    for r in results:
        lines.append(
            f"{r.source:<{width}} {r.read:>9} {r.landed:>9} {r.unchanged:>10} {r.rejected:>9} {r.suppressed:>10} {r.deleted:>8}"
        )
        lines += [f"{'':<{width}}   rejected {count} × {check}" for check, count in sorted(r.reasons.items())]
    return "\n".join(lines)


def ingest(
    spark: SparkSession,
    config: PipelineConfig,
    lake: Lake,
    run_id: str,
    ingested_at: datetime,
    incremental: bool = False,
    only: tuple[str, ...] = (),
) -> list[IngestCounts]:
    """Open every source first (so a bad one fails before anything is written), then land them side by side
    (``jobs/threads.py``); after a batch-level stop (``ValidationStopped``) in any, every table is rolled back."""
    sources = [s for s in config.sources if not only or s.name in only]
    opened = [(source, read_source(spark, source)) for source in sources]
    for source, raw in opened:
        check_schema_drift(spark, lake, source, raw)

    def land(source: SourceConfig, raw: DataFrame) -> tuple[IngestCounts, AuditRow]:
        watch = Stopwatch()
        counts = ingest_source(spark, lake, source, raw, run_id, ingested_at, incremental)
        if not counts.reconciles:
            raise AssertionError(f"source {source.name!r}: ingest counts do not reconcile: {counts}")
        log.info(
            "ingested %s: read %d, landed %d, unchanged %d, rejected %d, suppressed %d, deleted %d",
            source.name, counts.read, counts.landed, counts.unchanged, counts.rejected, counts.suppressed,
            counts.deleted,
        )
        return counts, AuditRow(
            run_id=run_id,
            stage="ingest",
            source_system=source.name,
            status="ok",
            rows_in=counts.read,
            rows_out=counts.landed,
            rows_rejected=counts.rejected,
            rows_unchanged=counts.unchanged,
            detail={
                "rejected_by_check": counts.reasons,
                "incremental": incremental,
                "suppressed": counts.suppressed,
                "deleted": counts.deleted,
                "repaired_encoding": counts.repaired_encoding,
                "repaired_control_characters": counts.repaired_control_characters,
                "null_drift": counts.null_drift,
            },
            started_at=watch.started_at,
            seconds=watch.seconds,
        )

    try:
        landed = run_side_by_side(spark, [partial(land, source, raw) for source, raw in opened])
    except ValidationStopped:
        roll_back_landing(spark, config, lake, run_id)
        raise
    results = [counts for counts, _ in landed]
    audit_rows = [row for _, row in landed]
    record_audit(spark, lake, audit_rows)
    return results
