"""Activity tables: landed in bronze beside their customer source, read back in the canonical activity shape.

A source's ``activities:`` (orders, invoices, tickets...) land in
``bronze/<source>.<activity>`` with the customer sources' lineage
(``source_system`` is the owning source, ``source_key`` the activity's own
key) plus ``activity`` and ``customer_key`` (the customer's key in the
source, which links the row to its golden customer). The rules are the
customer sources' (``jobs/ingest.py``):

- a row lands only when it differs from the current version of its key;
- rows that cannot land go to ``quarantine`` (stage ``ingest``, source
  ``<source>/<activity>``) with a reason: malformed, no key, a key used twice,
  text that is not UTF-8, and here also no customer key;
- rows of a customer on the suppression list (an erased person) are counted
  and dropped: an erasure covers the person's activity too;
- the activity's suite (``suite:``), when it has one, runs on the rows about
  to land: a failing row goes to quarantine (stage ``validate``) instead, a
  failing batch-level expectation stops the run and rolls back this run's
  landings;
- ``deletes: snapshot`` lands a tombstone for each key a full read no longer
  holds; with ``--incremental`` a table with a ``watermark`` is read from it on;
- ``read = landed + unchanged + rejected + suppressed`` for every table, and
  one ``run_audit`` row (stage ``ingest``, source ``<source>/<activity>``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from config.errors import SourceError, ValidationStopped
from config.lake import Lake
from config.pipeline import ActivityConfig, MappingExpression, PipelineConfig, SourceConfig
from jobs.audit import AuditRow, Stopwatch, record_audit
from jobs.delta_io import append, read_table, replace_where, sql_string, table_exists
from jobs.ingest import (
    CHECK_COLUMN,
    REJECT_COLUMN,
    SUPPRESSED,
    TOMBSTONE,
    IngestCounts,
    check_deletion_share,
    current_versions,
    newest_rows,
    past_watermark,
    quarantine_rows,
    roll_back_landing,
    snapshot_tombstones,
    with_reject_reasons,
)
from jobs.ingest_checks import repair_text
from jobs.runs import RunContext
from jobs.sources import CORRUPT_COLUMN, column_exists, check_expression, open_table, safe_column_name, safe_path, short_error
from jobs.suppressions import lake_salt, mark_suppressed
from jobs.threads import SHARED_WRITES, run_side_by_side
from jobs.validate import local_run_dir
from matching.normalize_activities import FIELDS, canonical_activities
from matching.standardize import SqlExpression
from quality.suites import SuiteConfig
from quality.validate import build_data_docs, validate

log = logging.getLogger("cdi.ingest")

LINEAGE = ("source_system", "activity", "source_key", "customer_key", "run_id", "ingested_at", "record_hash", TOMBSTONE)


def activity_path(lake: Lake, source: SourceConfig, activity: ActivityConfig) -> str:
    return lake.bronze_activity(source.name, activity.name)


def activity_label(source: SourceConfig, activity: ActivityConfig) -> str:
    """``<source>/<activity>``: how audit, quarantine and messages name an activity table."""
    return f"{source.name}/{activity.name}"


def activity_tables(config: PipelineConfig) -> Iterator[tuple[SourceConfig, ActivityConfig]]:
    for source in config.sources:
        for activity in source.activities:
            yield source, activity


def _fields(activity: ActivityConfig) -> dict[str, str | MappingExpression | None]:
    return {name: getattr(activity, name) for name in FIELDS}


def open_activity(spark: SparkSession, source: SourceConfig, activity: ActivityConfig) -> DataFrame:
    """Open an activity table and check its configured columns; SourceError / ConfigError in one line."""
    label = activity_label(source, activity)
    df = open_table(spark, activity, f"activity {label!r}")
    available = [c for c in df.columns if c != CORRUPT_COLUMN]
    named = [("primary_key", k) for k in activity.primary_key] + [("customer_key", k) for k in activity.customer_key]
    named += [("watermark", activity.watermark)] if activity.watermark else []
    for field, column in named + [(n, c) for n, c in _fields(activity).items() if isinstance(c, str)]:
        if not column_exists(df, safe_path(column)):
            raise SourceError(
                f"activity {label!r}: {field} names column {column!r}, which the table lacks; "
                f"it has: {', '.join(available)}"
            )
    for field, mapped in _fields(activity).items():
        if isinstance(mapped, MappingExpression):
            check_expression(df, activity, field, mapped.expr)
    if CORRUPT_COLUMN not in df.columns:
        df = df.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
    return df


def _joined_key(columns: tuple[str, ...]) -> Column:
    parts = [F.col(safe_column_name(k)).cast("string") for k in columns]
    any_null = F.greatest(*[p.isNull() for p in parts]) if len(parts) > 1 else parts[0].isNull()
    return F.when(~any_null, F.concat_ws("|", *parts))


def with_lineage(df: DataFrame, source: SourceConfig, activity: ActivityConfig, run_id: str, at: datetime) -> DataFrame:
    original = [c for c in df.columns if c != CORRUPT_COLUMN]
    row_json = F.to_json(F.struct(*[F.col(c) for c in original]))
    return df.select(
        *original,
        CORRUPT_COLUMN,
        F.lit(source.name).alias("source_system"),
        F.lit(activity.name).alias("activity"),
        _joined_key(activity.primary_key).alias("source_key"),
        _joined_key(activity.customer_key).alias("customer_key"),
        F.lit(run_id).alias("run_id"),
        F.lit(at).cast("timestamp").alias("ingested_at"),
        F.sha2(row_json, 256).alias("record_hash"),
        F.lit(False).alias(TOMBSTONE),
        row_json.alias("_row_json"),
    )


def _stored_watermark(spark: SparkSession, path: str, activity: ActivityConfig) -> object:
    column = safe_column_name(activity.watermark) if activity.watermark else None
    if column is None or not table_exists(spark, path):
        return None
    bronze = read_table(spark, path)
    return bronze.agg(F.max(column)).first()[0] if column in bronze.columns else None


def _suite_failures(
    good: DataFrame, suite: SuiteConfig, label: str, run_id: str, docs: Path | None
) -> tuple[DataFrame, DataFrame, list[str]]:
    """Rows passing the suite, rows failing it (quarantine rows, stage validate), batch-level failures."""
    # Great Expectations refuses a "/" in the names it stores results under.
    result = validate(
        good.drop("source_system"), suite, source_system=label.replace("/", "."), key_column="source_key",
        run_id=run_id, docs_dir=docs,
    )
    passed = result.passed.withColumn("source_system", F.lit(label.split("/")[0]))
    quarantined = result.quarantined.withColumn("source_system", F.lit(label))
    return passed.select(*good.columns), quarantined, result.batch_failures


def ingest_activity(
    spark: SparkSession,
    context: RunContext,
    source: SourceConfig,
    activity: ActivityConfig,
    raw: DataFrame,
    salt: str | None,
    quarantined_before: set[str],
) -> IngestCounts:
    """Land one activity table; its counts (``source`` is ``<source>/<activity>``).

    ``salt`` is the lake's (None before any erasure); ``quarantined_before``
    the tables an earlier attempt of this run quarantined rows of, whose rows
    are replaced even when this attempt rejects none.
    """
    lake, run_id, at = context.lake, context.run_id, context.started_at
    label, path = activity_label(source, activity), activity_path(lake, source, activity)
    watermark = _stored_watermark(spark, path, activity) if context.incremental else None
    if watermark is not None:
        raw = past_watermark(raw, activity, watermark)
    repairs = repair_text(raw, activity)
    lineaged = with_lineage(repairs.repaired, source, activity, run_id, at)
    if salt:
        marked = mark_suppressed(
            spark, lake, lineaged.withColumnRenamed("source_key", "_key").withColumnRenamed("customer_key", "source_key"), salt
        ).withColumnRenamed("source_key", "customer_key").withColumnRenamed("_key", "source_key")
    else:
        marked = lineaged.withColumn("_suppressed", F.lit(False))
    prepared = with_reject_reasons(marked.withColumnRenamed("_suppressed", SUPPRESSED)).persist()
    try:
        try:
            reasons = {row[CHECK_COLUMN]: row["count"] for row in prepared.groupBy(CHECK_COLUMN).count().collect()}
        except (Py4JJavaError, PySparkException) as exc:
            log.debug("reading activity %s failed", label, exc_info=True)
            raise SourceError(f"activity {label!r}: reading failed: {short_error(exc)}") from None
        read = sum(reasons.values())
        suppressed = reasons.pop(SUPPRESSED, 0)
        rejected_count = read - suppressed - reasons.pop(None, 0)
        exists = table_exists(spark, path)
        good = prepared.where(F.col(CHECK_COLUMN).isNull()).drop(
            CORRUPT_COLUMN, "_row_json", "_key_rows", CHECK_COLUMN, REJECT_COLUMN, SUPPRESSED
        )
        current = current_versions(spark, path).localCheckpoint() if exists else None
        new_rows = (
            good.join(current.select("source_key", "record_hash"), ["source_key", "record_hash"], "left_anti")
            if current is not None else good
        )
        suite = context.settings.activity_suites.get(label)
        failed_suite = None
        if suite is not None:
            with SHARED_WRITES:  # the run's Great Expectations folder
                new_rows, failed_suite, batch_failures = _suite_failures(
                    new_rows.localCheckpoint(), suite, label, run_id, local_run_dir(context) / "gx"
                )
                if batch_failures:
                    build_data_docs(local_run_dir(context) / "gx")
            if batch_failures:
                raise ValidationStopped(f"activity {label!r}: " + "; ".join(batch_failures))
        tombstones_landed = 0
        if current is not None and watermark is None and activity.deletes.mode == "snapshot":
            tombstones = snapshot_tombstones(current, prepared, good, source, run_id, at).withColumn(
                "activity", F.lit(activity.name)
            ).withColumn("customer_key", F.lit(None).cast("string")).localCheckpoint()
            tombstones_landed = tombstones.count()
            check_deletion_share(activity, tombstones_landed, current.where(~F.col(TOMBSTONE)).count())
            new_rows = new_rows.unionByName(tombstones)

        rejected = prepared.where(F.col(CHECK_COLUMN).isNotNull() & (F.col(CHECK_COLUMN) != SUPPRESSED))
        quarantined = quarantine_rows(rejected.withColumn("source_system", F.lit(label)), run_id, at)
        failed_rows = 0
        if failed_suite is not None:
            failed_suite = failed_suite.localCheckpoint()
            failed_rows = failed_suite.count()
            quarantined = quarantined.unionByName(failed_suite.select(*quarantined.columns))
        scope = f"run_id = {sql_string(run_id)} AND stage IN ('ingest', 'validate') AND source_system = {sql_string(label)}"
        if rejected_count or failed_rows or label in quarantined_before:
            with SHARED_WRITES:
                replace_where(quarantined, lake.quarantine, scope)

        good_count = read - rejected_count - suppressed
        if exists or suite is not None:
            new_rows = new_rows.persist()
            try:
                landed = new_rows.count()
                if landed or not exists:
                    append(new_rows, path, user_metadata=run_id)
            finally:
                new_rows.unpersist()
        else:
            landed = good_count  # a first landing that no suite filtered takes every good row, counted as read
            append(new_rows, path, user_metadata=run_id)
    finally:
        prepared.unpersist()
    return IngestCounts(
        source=label,
        read=read,
        landed=landed - tombstones_landed,
        unchanged=good_count - (landed - tombstones_landed) - failed_rows,
        rejected=rejected_count + failed_rows,
        reasons={k: v for k, v in reasons.items() if k is not None} | ({"suite": failed_rows} if failed_rows else {}),
        suppressed=suppressed,
        deleted=tombstones_landed,
    )


def _quarantined_by_this_run(spark: SparkSession, context: RunContext) -> set[str]:
    """The activity tables (``<source>/<activity>``) an earlier attempt of this run quarantined rows of."""
    if not table_exists(spark, context.lake.quarantine):
        return set()
    rows = (
        read_table(spark, context.lake.quarantine)
        .where((F.col("run_id") == context.run_id) & F.col("source_system").contains("/"))
        .select("source_system")
        .distinct()
        .collect()
    )
    return {row["source_system"] for row in rows}


def ingest_activities(spark: SparkSession, context: RunContext, only: tuple[str, ...] = ()) -> list[IngestCounts]:
    """Open every activity table first (a bad one fails before anything is written), then land them side by
    side (``jobs/threads.py``)."""
    tables = [(s, a) for s, a in activity_tables(context.config) if not only or s.name in only]
    opened = [(source, activity, open_activity(spark, source, activity)) for source, activity in tables]
    salt = lake_salt(spark, context.lake)
    quarantined_before = _quarantined_by_this_run(spark, context) if opened else set()

    def land(source: SourceConfig, activity: ActivityConfig, raw: DataFrame) -> tuple[IngestCounts, AuditRow]:
        watch = Stopwatch()
        counts = ingest_activity(spark, context, source, activity, raw, salt, quarantined_before)
        if not counts.reconciles:
            raise AssertionError(f"activity {counts.source!r}: ingest counts do not reconcile: {counts}")
        return counts, AuditRow(
            run_id=context.run_id, stage="ingest", source_system=counts.source, status="ok",
            rows_in=counts.read, rows_out=counts.landed, rows_rejected=counts.rejected,
            rows_unchanged=counts.unchanged,
            detail={"rejected_by_check": counts.reasons, "incremental": context.incremental,
                    "suppressed": counts.suppressed, "deleted": counts.deleted, "activity": True},
            started_at=watch.started_at, seconds=watch.seconds,
        )

    try:
        landed = run_side_by_side(spark, [partial(land, source, activity, raw) for source, activity, raw in opened])
    except ValidationStopped:
        roll_back_landing(spark, context.config, context.lake, context.run_id)
        raise
    results = [counts for counts, _ in landed]
    audit_rows = [row for _, row in landed]
    record_audit(spark, context.lake, audit_rows)
    return results


def current_activity(spark: SparkSession, lake: Lake, config: PipelineConfig) -> DataFrame | None:
    """Every live activity of every table in the canonical shape (``ACTIVITY_SCHEMA`` + ``value_issues``)."""
    frames = []
    for source, activity in activity_tables(config):
        path = activity_path(lake, source, activity)
        if not table_exists(spark, path):
            continue
        newest = newest_rows(read_table(spark, path), path).where(~F.col(TOMBSTONE))
        fields = {
            name: SqlExpression(m.expr) if isinstance(m, MappingExpression) else (safe_path(m) if m else None)
            for name, m in _fields(activity).items()
        }
        frames.append(canonical_activities(newest, source.name, activity.name, fields, activity.day_first))
    if not frames:
        return None
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame)
    return combined
