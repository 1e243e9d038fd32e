"""The run report's figures, read from the lake after the run and returned as plain Python data.

``run_audit`` gives counts, timings, reconciliation and the customer 360 figures, ``validation.json``
the suite outcomes, ``silver/pairs`` and ``silver/clusters`` are aggregated in Spark (only bins and counts reach the
driver, whatever the number of pairs), and ``golden_id_history`` and ``golden_customers`` are read as
this run published them (time travel to the version in the run's ``_publications`` marker, so a report
rebuilt later says the same). No customer value is read out: only counts, stage, source, rule, suite
and table names.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.lake import Lake
from jobs.audit import read_audit
from jobs.delta_io import read_table, table_exists
from jobs.runs import RunContext
from jobs.stages import STAGES
from matching.settings import Thresholds

PROBABILITY_BINS = 20
DATA_DOCS_INDEX = "gx/**/data_docs/local_site/index.html"  # GX puts its project one folder down: gx/gx/...
AUDIT_COUNTS = ("rows_in", "rows_out", "rows_rejected", "rows_unchanged")
AUDIT_COLUMNS = ("stage", "source_system", "status", *AUDIT_COUNTS, "started_at", "seconds")
# The customer_360 stage's segments in the order of the customer's life (matching.customer_360._segment);
# a segment a later cdi adds goes after them.
SEGMENTS = ("new", "active", "lapsing", "lost", "undated", "none")
SEGMENT_RUNS = 12  # runs in the segment history: this one and the ones before it


def audit_rows(spark: SparkSession, lake: Lake, run_id: str) -> list[dict[str, Any]]:
    """This run's audit rows, the latest attempt of each stage and source (a re-run appends again)."""
    latest: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in read_audit(spark, lake, run_id=run_id):
        key = (row["stage"], row["source_system"])
        if row["stage"] != "run" and (key not in latest or row["started_at"] > latest[key]["started_at"]):
            latest[key] = row
    order = {stage: i for i, stage in enumerate(STAGES)}
    found = [{name: row.get(name) for name in AUDIT_COLUMNS} for row in latest.values()]
    return sorted(found, key=lambda r: (order.get(r["stage"], len(order)), r["source_system"] or ""))


def reconciliation(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source: ingest's read = landed + unchanged + rejected, validate's staged = standardized + quarantined."""
    sources: dict[str, dict[str, Any]] = {}
    for row in rows:
        source = row["source_system"]
        if source is None or row["stage"] not in ("ingest", "validate"):
            continue
        entry = sources.setdefault(source, {})
        if row["stage"] == "ingest":
            entry.update(read=row["rows_in"], landed=row["rows_out"], unchanged=row["rows_unchanged"],
                         rejected=row["rows_rejected"])
            entry["ingest_balanced"] = entry["read"] == entry["landed"] + entry["unchanged"] + entry["rejected"]
        else:
            entry.update(staged=row["rows_in"], standardized=row["rows_out"], quarantined=row["rows_rejected"])
            entry["validate_balanced"] = entry["staged"] == entry["standardized"] + entry["quarantined"]
    return sources


def timings(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage: its whole-stage row when there is one, else the span of its per-source rows.

    A span, not a sum: validate's per-source stopwatches overlap (they all stop when the stage writes).
    """
    whole = {r["stage"]: r["seconds"] for r in rows if r["source_system"] is None}
    spans: dict[str, tuple[datetime, datetime]] = {}
    for row in rows:
        if row["source_system"] is not None:
            start, end = row["started_at"], row["started_at"] + timedelta(seconds=row["seconds"])
            first, last = spans.get(row["stage"], (start, end))
            spans[row["stage"]] = (min(first, start), max(last, end))
    spanned = {stage: (end - start).total_seconds() for stage, (start, end) in spans.items()}
    return {stage: round(whole.get(stage, spanned.get(stage, 0.0)), 3) for stage in dict.fromkeys(r["stage"] for r in rows)}


def validation_summary(run_dir: Path) -> dict[str, Any] | None:
    """Suite outcomes from ``validation.json`` (counts only) and the Data Docs index, relative to the run dir."""
    path = run_dir / "validation.json"
    if not path.exists():
        return None
    suites = []
    for source, results in sorted(json.loads(path.read_text(encoding="utf-8")).items()):
        for result in results:
            expectations = result.get("expectations", [])
            suites.append(
                {
                    "source_system": source,
                    "suite": result.get("suite"),
                    "success": bool(result.get("success")),
                    "expectations": len(expectations),
                    "failed": sum(1 for e in expectations if not e.get("success")),
                    "failing_keys": result.get("failing_keys"),
                }
            )
    index = next(iter(sorted(run_dir.glob(DATA_DOCS_INDEX))), None)
    docs = index.relative_to(run_dir).as_posix() if index else None
    return {"success": all(s["success"] for s in suites), "data_docs": docs, "suites": suites}


def _this_run(spark: SparkSession, path: str, run_id: str) -> DataFrame | None:
    """The rows ``run_id`` wrote to the table at ``path``; None when there is no table."""
    return read_table(spark, path).where(F.col("run_id") == run_id) if table_exists(spark, path) else None


def cluster_summary(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, Any] | None:
    """Clusters by size, counted in Spark; None when this run did not match."""
    clusters = _this_run(spark, lake.path("silver", "clusters"), run_id)
    if clusters is None:
        return None
    sizes = (
        clusters.groupBy("cluster_id")
        .agg(F.count(F.lit(1)).alias("size"), F.max(F.col("cluster_flag").isNotNull().cast("int")).alias("flagged"))
        .groupBy("size")
        .agg(F.count(F.lit(1)).alias("clusters"), F.sum("flagged").alias("flagged"))
        .orderBy("size")
        .collect()
    )
    if not sizes:
        return None
    return {
        "clusters": sum(r["clusters"] for r in sizes),
        "records": sum(r["size"] * r["clusters"] for r in sizes),
        "flagged": sum(r["flagged"] for r in sizes),
        "size_distribution": {str(r["size"]): r["clusters"] for r in sizes},
    }


def pair_summary(spark: SparkSession, lake: Lake, run_id: str, thresholds: Thresholds) -> dict[str, Any]:
    """Match probability histogram and pairs per blocking rule, from one aggregation in Spark.

    At most (rules x bins) rows reach the driver, whatever the number of pairs.
    """
    histogram = [0] * PROBABILITY_BINS
    rules: dict[str, dict[str, Any]] = {}
    pairs = _this_run(spark, lake.path("silver", "pairs"), run_id)
    if pairs is not None:
        probability = F.col("match_probability")
        cells = pairs.groupBy(
            "blocking_rule",
            F.least(F.floor(probability * PROBABILITY_BINS), F.lit(PROBABILITY_BINS - 1)).cast("int").alias("bin"),
        ).agg(
            F.count(F.lit(1)).alias("pairs"),
            F.sum((probability >= thresholds.match).cast("int")).alias("linked"),
            F.sum(((probability >= thresholds.review) & (probability < thresholds.match)).cast("int")).alias("review"),
        )
        for cell in cells.collect():
            histogram[cell["bin"]] += cell["pairs"]
            rule = rules.setdefault(cell["blocking_rule"], {"blocking_rule": cell["blocking_rule"], "pairs": 0,
                                                            "linked": 0, "review": 0})
            for key in ("pairs", "linked", "review"):
                rule[key] += cell[key]
    by_rule = sorted(rules.values(), key=lambda r: (-r["pairs"], r["blocking_rule"] or ""))
    return {
        "pairs": sum(histogram),
        "linked": sum(r["linked"] for r in by_rule),
        "review": sum(r["review"] for r in by_rule),
        "thresholds": {"match": thresholds.match, "review": thresholds.review},
        "probability_histogram": {
            "bin_edges": [round(i / PROBABILITY_BINS, 4) for i in range(PROBABILITY_BINS + 1)],
            "counts": histogram,
        },
        "by_blocking_rule": by_rule,
    }


def golden_changes(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, Any] | None:
    """What this run did to golden_customers, as it published it; None when it published nothing."""
    markers = _this_run(spark, lake.gold("_publications"), run_id)
    marker = markers.first() if markers is not None else None
    if marker is None:
        return None
    version = marker["golden_customers_version"]
    history = read_table(spark, lake.gold("golden_id_history")).where(F.col("run_id") == run_id)
    events = {r["event"]: r["count"] for r in history.groupBy("event").count().collect()}
    new_ids = history.where(F.col("event").isin("create", "split")).select("golden_id")
    changed = (
        spark.read.format("delta").option("versionAsOf", version).load(lake.gold("golden_customers"))
        .where(F.col("run_id") == run_id)
        .join(new_ids.withColumn("_new", F.lit(True)), "golden_id", "left")
    )
    counts = changed.agg(
        F.sum(((F.col("status") == "active") & F.col("_new").isNotNull()).cast("int")).alias("inserted"),
        F.sum(((F.col("status") == "active") & F.col("_new").isNull()).cast("int")).alias("updated"),
        F.sum((F.col("status") == "retired").cast("int")).alias("retired"),
    ).first()
    return {
        "golden_customers_version": version,
        "inserted": counts["inserted"] or 0,
        "updated": counts["updated"] or 0,
        "retired": counts["retired"] or 0,
        "events": dict(sorted(events.items())),
    }


def build_summary(spark: SparkSession, context: RunContext, run_dir: Path) -> dict[str, Any]:
    """Every figure of the report for ``context``'s run, as ``summary.json`` holds them."""
    rows = audit_rows(spark, context.lake, context.run_id)
    clusters = cluster_summary(spark, context.lake, context.run_id)
    pairs = None
    if clusters is not None:
        pairs = pair_summary(spark, context.lake, context.run_id, context.settings.matching.thresholds)
    return {
        "run_id": context.run_id,
        "lake": context.lake.root,
        "started_at": context.started_at.isoformat(),
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "audit": rows,
        "reconciliation": reconciliation(rows),
        "timings_seconds": timings(rows),
        "validation": validation_summary(run_dir),
        "pairs": pairs,
        "clusters": clusters,
        "matching_notes": matching_notes(run_dir),
        "golden": golden_changes(spark, context.lake, context.run_id),
        "customer_360": customer_360_summary(spark, context.lake, context.run_id),
    }


def matching_notes(run_dir: Path) -> dict[str, Any] | None:
    """What the match stage noted in ``matching.json``: placeholder attributes and shares, model checks (no values)."""
    path = run_dir / "matching.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _ordered_segments(names: set[str]) -> list[str]:
    return [s for s in SEGMENTS if s in names] + sorted(names - set(SEGMENTS))


def customer_360_summary(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, Any] | None:
    """Customers across departments, orphaned activity and segment sizes from the ``customer_360`` stage's
    ``run_audit`` rows (``jobs/customer_360.py`` writes its figures in ``detail``); None when this run has none.

    The segment history is the latest ``ok`` row of each run that reached the stage, up to this run's
    (a report rebuilt later leaves the runs after it out), oldest first and this run last.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in read_audit(spark, lake, stages=("customer_360",)):
        if row["status"] == "ok" and (row["run_id"] not in latest or row["started_at"] > latest[row["run_id"]]["started_at"]):
            latest[row["run_id"]] = row
    rows = sorted(latest.values(), key=lambda r: (r["started_at"], r["run_id"]))
    this = next((row for row in rows if row["run_id"] == run_id), None)
    if this is None:
        return None
    earlier = [row for row in rows if row["started_at"] < this["started_at"] and row["run_id"] != run_id]
    history = [*earlier[-(SEGMENT_RUNS - 1):], this]
    details = {row["run_id"]: json.loads(row["detail"] or "{}") for row in history}
    detail = details[run_id]
    combinations = sorted(
        (
            {"departments": name.split("+") if name else [], "customers": customers}
            for name, customers in detail.get("department_combinations", {}).items()
        ),
        key=lambda c: (-c["customers"], c["departments"]),
    )
    by_count: dict[int, int] = {}
    for combination in combinations:
        count = len(combination["departments"])
        by_count[count] = by_count.get(count, 0) + combination["customers"]
    orphans = [
        {"table": table, "reason": reason, "rows": rows}
        for table, reasons in sorted(detail.get("orphans", {}).items())
        for reason, rows in sorted(reasons.items())
    ]
    segments = _ordered_segments({s for d in details.values() for s in d.get("segments", {})})
    return {
        "activity_rows": this["rows_in"],
        "linked": this["rows_out"],
        "orphan_rows": this["rows_rejected"],
        "customers": sum(c["customers"] for c in combinations),
        "departments": sorted({d for c in combinations for d in c["departments"]}),
        "customers_by_department_count": {str(n): by_count[n] for n in sorted(by_count)},
        "department_combinations": combinations,
        "orphans": orphans,
        "households": detail.get("households"),
        "household_members": detail.get("household_members"),
        "as_of": detail.get("as_of"),
        "segments": segments,
        "segment_history": [
            {"run_id": row["run_id"], "started_at": row["started_at"].isoformat(),
             "customers": {s: details[row["run_id"]].get("segments", {}).get(s, 0) for s in segments}}
            for row in history
        ],
    }
