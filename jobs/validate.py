"""The ``validate`` stage: Great Expectations suites, quarantine, reconciliation.

Per source, the source suite (``conf/quality/sources/<source>.yaml``) runs on
the current bronze snapshot (so row-count checks compare like with like
between runs). The canonical suite runs once, on the rows every source staged
in this run (one table, one schema: the batch ``all-sources``); each
checkpoint costs about a second of fixed work, whatever the rows.
A batch-level failure anywhere stops the run before anything is written, and
rolls bronze back to before this run's landing (``roll_back_landing``), so
the next run with a corrected source is compared with the bronze of before.
Otherwise failing rows go to ``quarantine`` (stage ``validate``) and passing
rows are merged into ``customers_std``, and records deleted at their source
(a tombstone is their current bronze version) leave it; for every source
``staged = merged + quarantined`` is checked and recorded in ``run_audit``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.audit import AuditRow, Stopwatch, read_audit, record_audit
from config.pipeline import SourceConfig
from jobs.delta_io import Merge, read_table, replace_where, sql_string, table_exists
from config.errors import ValidationStopped
from jobs.faults import fault_point
from jobs.runs import RunContext
from jobs.ingest import roll_back_landing
from jobs.standardize import deleted_record_ids, latest_bronze, staged_path
from quality.validate import ISSUES_COLUMN, ValidationResult, build_data_docs, validate
from schemas.canonical import CANONICAL_SCHEMA, MATCH_ONLY_ATTRIBUTES
from schemas.tables import QUARANTINE_SCHEMA

log = logging.getLogger("cdi.validate")
# The canonical suite's one batch a run: every source's staged rows. Not a valid source name
# (no '-' in those), so it cannot clash with one in messages and validation.json.
CANONICAL_BATCH = "all-sources"


@dataclass(frozen=True)
class ValidateCounts:
    source: str
    staged: int
    standardized: int
    quarantined: int
    snapshot_rows: int


def local_run_dir(context: RunContext) -> Path:
    """Where a run's files (Data Docs, results, model, report) go on the driver."""
    root = Path(context.lake.run_dir(context.run_id)) if context.lake.is_local else Path("runs") / context.run_id
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class AuditFacts:
    """What ``run_audit`` says about each source, read once for the stage."""

    previous_snapshot_rows: dict[str, int]  # the snapshot size the last successful validate of an earlier run recorded
    empty_full_reads: frozenset[str]  # sources this run's full (non-incremental) ingest read no rows from


def audit_facts(spark: SparkSession, context: RunContext) -> AuditFacts:
    """Read the few ``run_audit`` rows the stage needs at once."""
    rows = read_audit(spark, context.lake, stages=("validate", "ingest"))
    previous: dict[str, int | None] = {}
    earlier_validations = (
        r for r in rows if r["stage"] == "validate" and r["status"] == "ok" and r["run_id"] != context.run_id
    )
    for row in sorted(earlier_validations, key=lambda r: r["started_at"]):
        previous[row["source_system"]] = json.loads(row["detail"]).get("snapshot_rows")
    empty = frozenset(
        r["source_system"] for r in rows
        if r["stage"] == "ingest" and r["run_id"] == context.run_id and r["rows_in"] == 0
        and not json.loads(r["detail"]).get("incremental")
    )
    return AuditFacts({k: v for k, v in previous.items() if v is not None}, empty)


def _validate_source(
    spark: SparkSession, context: RunContext, source: SourceConfig, staged: DataFrame, docs: Path,
    facts: AuditFacts, cached: list[DataFrame],
) -> tuple[list[ValidationResult], int, list[str]]:
    """The source suite on the source's bronze snapshot (its quarantine cut to the rows this run staged)."""
    results, failures = [], []
    snapshot = latest_bronze(spark, context, source).persist()
    cached.append(snapshot)
    snapshot_rows = snapshot.count()
    if source.suite:
        previous = facts.previous_snapshot_rows.get(source.name)
        raw = validate(
            snapshot, context.settings.source_suites[source.name], source_system=source.name, key_column="source_key",
            run_id=context.run_id, docs_dir=docs, previous_row_count=previous,
        )
        pending_keys = staged.select("source_key")
        results.append(
            ValidationResult(
                passed=raw.passed,
                quarantined=raw.quarantined.join(pending_keys, "source_key", "left_semi"),
                batch_failures=raw.batch_failures,
                summary=raw.summary,
            )
        )
    if source.name in facts.empty_full_reads and snapshot_rows:
        failures.append(f"source {source.name!r}: the source returned no rows (it had {snapshot_rows} before)")
    for result in results:
        failures.extend(result.batch_failures)
    return results, snapshot_rows, failures


def _quarantine(results: list[ValidationResult], staged: DataFrame) -> DataFrame:
    """One quarantine row per staged record that failed anything, all its checks named."""
    failed = results[0].quarantined
    for result in results[1:]:
        failed = failed.unionByName(result.quarantined)
    merged = failed.groupBy("run_id", "stage", "source_system", "source_key").agg(
        F.concat_ws("; ", F.collect_list("check")).alias("check"),
        F.concat_ws("; ", F.collect_list("reason")).alias("reason"),
        F.first("record").alias("record"),
        F.min("quarantined_at").alias("quarantined_at"),
    )
    pending = staged.select("source_system", "source_key")
    return merged.join(pending, ["source_system", "source_key"], "left_semi").select(*QUARANTINE_SCHEMA.fieldNames())


def remove_deleted(spark: SparkSession, path: str, deleted: DataFrame | None) -> None:
    """Take records deleted at their source out of ``customers_std`` (a MERGE on record id, so a re-run finds
    nothing left to do and no key is written into the commit's predicate)."""
    if deleted is None or not table_exists(spark, path):
        return
    doomed = deleted.join(read_table(spark, path).select("record_id"), "record_id", "left_semi")
    if doomed.isEmpty():
        return
    Merge(path, doomed, "t.record_id = s.record_id").when_matched_delete().execute(spark)


def merge_into_customers_std(spark: SparkSession, path: str, passed: DataFrame) -> None:
    """Upsert by record id; a record whose hash is unchanged is left alone.

    ``std_issues`` stays on the record: which values standardization or a
    field-level check left out of matching, and why (never the values). A
    lake written before a ``MATCH_ONLY_ATTRIBUTES`` column existed gains it
    (schema evolution); its records have it from their next change on.
    """
    rows = passed.select(*CANONICAL_SCHEMA.fieldNames(), *MATCH_ONLY_ATTRIBUTES, ISSUES_COLUMN)
    fault_point("validate:during:customers_std")
    if not table_exists(spark, path):
        rows.write.format("delta").save(path)
        return
    (
        Merge(path, rows, "t.record_id = s.record_id")
        .with_schema_evolution()
        .when_matched_update_all(condition="t.record_hash <> s.record_hash")
        .when_not_matched_insert_all()
        .execute(spark)
    )


def run_validate(spark: SparkSession, context: RunContext) -> list[ValidateCounts]:
    """Validate every source; the frames cached on the way are released however the stage ends."""
    cached: list[DataFrame] = []
    try:
        return _run_validate(spark, context, cached)
    finally:
        for frame in cached:
            frame.unpersist()


def _run_validate(spark: SparkSession, context: RunContext, cached: list[DataFrame]) -> list[ValidateCounts]:
    docs = local_run_dir(context) / "gx"
    staged_all = read_table(spark, staged_path(context)).where(F.col("run_id") == context.run_id).persist()
    cached.append(staged_all)
    facts = audit_facts(spark, context)
    outcomes, failures, results = [], [], []
    summaries: dict[str, list[dict]] = {}
    for source in context.config.sources:
        watch = Stopwatch()
        staged = staged_all.where(F.col("source_system") == source.name)
        source_results, snapshot_rows, source_failures = _validate_source(
            spark, context, source, staged, docs, facts, cached
        )
        failures.extend(source_failures)
        results.extend(source_results)
        summaries[source.name] = [r.summary for r in source_results]
        outcomes.append((source, snapshot_rows, watch))
    canonical = validate(
        staged_all, context.settings.canonical_suite, source_system=CANONICAL_BATCH, key_column="record_id",
        run_id=context.run_id, docs_dir=docs,
    )
    failures.extend(canonical.batch_failures)
    results.append(canonical)
    summaries[CANONICAL_BATCH] = [canonical.summary]
    (docs.parent / "validation.json").write_text(json.dumps(summaries, indent=2, sort_keys=True, default=str))
    build_data_docs(docs)
    if failures:
        rolled_back = roll_back_landing(spark, context.config, context.lake, context.run_id)
        note = f"\n  bronze rolled back to before this run: {', '.join(rolled_back)}" if rolled_back else ""
        raise ValidationStopped("validation stopped the run:\n  " + "\n  ".join(failures) + note)

    quarantine_all = _quarantine(results, staged_all).persist()
    cached.append(quarantine_all)
    staged_counts = _counts_by_source(staged_all)
    quarantined_counts = _counts_by_source(quarantine_all)

    counts, audit_rows = [], []
    for source, snapshot_rows, watch in outcomes:
        staged_n, quarantined_n = staged_counts.get(source.name, 0), quarantined_counts.get(source.name, 0)
        passed_n = staged_n - quarantined_n
        counts.append(ValidateCounts(source.name, staged_n, passed_n, quarantined_n, snapshot_rows))
        audit_rows.append(
            AuditRow(
                run_id=context.run_id, stage="validate", source_system=source.name, status="ok",
                rows_in=staged_n, rows_out=passed_n, rows_rejected=quarantined_n,
                detail={"snapshot_rows": snapshot_rows, "data_docs": str(docs)},
                started_at=watch.started_at, seconds=watch.seconds,
            )
        )
    replace_where(
        quarantine_all, context.lake.quarantine, f"run_id = {sql_string(context.run_id)} AND stage = 'validate'"
    )
    # The canonical suite's own view of the rows: values failing a field-level check nulled.
    passed_all = canonical.passed.join(
        quarantine_all.select("source_system", "source_key"), ["source_system", "source_key"], "left_anti"
    )
    merge_into_customers_std(spark, context.lake.customers_std, passed_all)
    remove_deleted(spark, context.lake.customers_std, deleted_record_ids(spark, context))
    reconcile(spark, context, counts)
    record_audit(spark, context.lake, audit_rows)
    return counts


def _counts_by_source(frame: DataFrame) -> dict[str, int]:
    return {r["source_system"]: r["count"] for r in frame.groupBy("source_system").count().collect()}


def reconcile(spark: SparkSession, context: RunContext, counts: list[ValidateCounts]) -> None:
    """staged = rows now in customers_std from this run's staging + rows quarantined by this run."""
    std = read_table(spark, context.lake.customers_std).select("source_system", "source_key", "record_hash")
    staged = read_table(spark, staged_path(context)).where(F.col("run_id") == context.run_id)
    in_std = dict(
        staged.join(std, ["source_system", "source_key", "record_hash"], "left_semi")
        .groupBy("source_system").count().collect()
    )
    in_quarantine = dict(
        read_table(spark, context.lake.quarantine, QUARANTINE_SCHEMA)
        .where((F.col("run_id") == context.run_id) & (F.col("stage") == "validate"))
        .groupBy("source_system").count().collect()
    )
    for c in counts:
        landed, held = in_std.get(c.source, 0), in_quarantine.get(c.source, 0)
        if landed + held != c.staged:
            raise AssertionError(
                f"source {c.source!r}: reconciliation failed: staged {c.staged} != "
                f"customers_std {landed} + quarantine {held}"
            )
