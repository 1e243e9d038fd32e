"""``cdi run``: the stages in order, each timed and audited."""

from __future__ import annotations

import logging
import textwrap
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from pyspark.sql import SparkSession

from jobs.audit import AuditRow, Stopwatch, read_audit, record_audit
from config.errors import CdiError
from config.lake import Lake
from jobs.faults import fault_point
from jobs.runs import RunContext
from jobs.progress import progress
from jobs.stages import STAGES
from jobs.steps import step

log = logging.getLogger("cdi.pipeline")


def stage_ingest(spark: SparkSession, context: RunContext) -> None:
    from jobs.activities import ingest_activities
    from jobs.ingest import format_ingest, ingest

    results = ingest(spark, context.config, context.lake, context.run_id, context.started_at, context.incremental)
    print(format_ingest(results + ingest_activities(spark, context)))


def stage_standardize(spark: SparkSession, context: RunContext) -> None:
    from jobs.standardize import run_standardize

    staged = run_standardize(spark, context)
    print("  pending records standardized: " + (", ".join(f"{c.source} {c.pending}" for c in staged) or "none"))


def stage_validate(spark: SparkSession, context: RunContext) -> None:
    from jobs.validate import local_run_dir, run_validate

    counts = run_validate(spark, context)
    print(f"  {'source':<14} {'staged':>8} {'standardized':>13} {'quarantined':>12}")
    for c in counts:
        print(f"  {c.source:<14} {c.staged:>8} {c.standardized:>13} {c.quarantined:>12}")
    print(f"  Data Docs: {local_run_dir(context) / 'gx'}")


def stage_match(spark: SparkSession, context: RunContext) -> None:
    from jobs.match import run_match
    from jobs.validate import local_run_dir
    from matching.blocking import format_refinements
    from matching.placeholders import describe as describe_placeholder

    outcome = run_match(spark, context, context.settings.matching, local_run_dir(context), context.settings.model)
    progress.clear()
    if outcome.refinements:
        print(textwrap.indent(format_refinements(outcome.refinements), "  "))
    if outcome.sparse_rules:
        listed = ", ".join(f"{name} ({share:.0%})" for name, share in outcome.sparse_rules)
        print(f"  blocking rules whose keys few records have (they can pair at most that share): {listed}")
    for placeholder in outcome.placeholders:
        print(f"  placeholder value: {describe_placeholder(placeholder)}")
    if outcome.training is not None and outcome.training.problems:
        fix = (
            f"m pooled over the EM sessions' likely matches ({outcome.training.pooled:.0f} candidate pairs)"
            if outcome.training.pooled
            else f"m re-estimated from anchor pairs for: {', '.join(outcome.training.recovered) or 'none'}"
        )
        print(f"  EM's model was implausible ({'; '.join(outcome.training.problems)}); {fix}")
    if outcome.changed_records is not None:
        print(f"  incremental: {outcome.changed_records} new or changed records scored with the last model")
    print(
        f"  {outcome.records} records, {outcome.candidate_pairs} candidate pairs "
        f"({outcome.linked_pairs} linked, {outcome.review_pairs} for review) → "
        f"{outcome.clusters} customers ({outcome.multi_record_clusters} with several records, "
        f"{outcome.flagged_clusters} flagged for review); model: {outcome.model_kind}"
    )


def stage_publish(spark: SparkSession, context: RunContext) -> None:
    from jobs.publish import run_publish

    outcome = run_publish(spark, context, context.settings.survivorship, context.settings.matching.thresholds)
    progress.clear()
    if outcome.already_published:
        print(f"  run {context.run_id} was already published: nothing changed")
        return
    print(
        f"  golden_customers: {outcome.active_golden} active ({outcome.golden_inserted} new, "
        f"{outcome.golden_updated} updated); customer_xref: {outcome.xref_inserted} new, "
        f"{outcome.xref_updated} updated; {outcome.candidates} pairs await review"
    )
    print(f"  golden id events: {outcome.events}")


def stage_customer_360(spark: SparkSession, context: RunContext) -> None:
    from jobs.customer_360 import stage_customer_360 as build

    outcome = build(spark, context)
    orphans = sum(n for table in outcome.orphans.values() for n in table.values())
    print(
        f"  activity: {outcome.activity_rows} rows, {outcome.linked} linked to a golden customer, {orphans} orphaned"
        + "".join(f"\n    {table}: {', '.join(f'{n} {why}' for why, n in sorted(reasons.items()))}"
                  for table, reasons in sorted(outcome.orphans.items()))
    )
    print(f"  customer_360: {outcome.customers} customers; segments "
          + ", ".join(f"{name} {n}" for name, n in sorted(outcome.segments.items())))
    print(f"  households: {outcome.households} ({outcome.household_members} golden customers)")


STAGE_FUNCTIONS: dict[str, Callable[[SparkSession, RunContext], None]] = {
    "ingest": stage_ingest,
    "standardize": stage_standardize,
    "validate": stage_validate,
    "match": stage_match,
    "publish": stage_publish,
    "customer_360": stage_customer_360,
}


def first_started_at(spark: SparkSession, context: RunContext) -> datetime | None:
    """When an earlier attempt of this run started: a re-run keeps the run's timestamps."""
    starts = [r["started_at"] for r in read_audit(spark, context.lake, run_id=context.run_id, stages=("run",))]
    starts = [moment for moment in starts if moment is not None]
    return min(starts).replace(tzinfo=timezone.utc, microsecond=0) if starts else None


def _record_failure(spark: SparkSession, context: RunContext, stage: str, watch: Stopwatch, error: Exception) -> None:
    """A ``failed`` row in run_audit (the stage, the error's class; the message only for cdi's own errors,
    which never carry values) and the run's report, as far as they can be written: the original error is
    what the caller re-raises either way."""
    from jobs.report import write_report
    from jobs.validate import local_run_dir

    detail = {"error": type(error).__name__}
    if isinstance(error, CdiError):
        detail["message"] = str(error)[:2000]
    try:
        record_audit(
            spark,
            context.lake,
            [AuditRow(context.run_id, stage, None, "failed", detail=detail, started_at=watch.started_at,
                      seconds=watch.seconds)],
        )
        report, _ = write_report(spark, context, local_run_dir(context))
        print(f"[{stage}] failed after {watch.seconds:.1f} s ({type(error).__name__}); report: {report}")
    except Exception:
        log.warning("could not record the failure of stage %s", stage, exc_info=True)


def _size_session(spark: SparkSession, context: RunContext, stage: str) -> None:
    """Session settings sized to the rows of the run: those landed in bronze so far and, before ingest, an
    estimate of the sources' rows from their files' bytes (``size_to_lake``). A source not read from local
    files (a database server) leaves the configured settings before ingest."""
    from jobs.sources import estimated_rows

    incoming: int | None = 0
    if stage == "ingest":
        incoming = estimated_rows([t for source in context.config.sources for t in (source, *source.activities)])
    size_to_lake(spark, context.lake, context.config.spark, incoming)


def size_to_lake(spark: SparkSession, lake: Lake, configured: Mapping[str, str], incoming: int | None = 0) -> None:
    """Session settings sized to the rows of ``lake`` (``jobs.spark.size_settings``): those in its bronze
    tables' current versions, plus ``incoming``. Used by a run, ``cdi erase`` and ``cdi maintain``: on a
    small lake their Delta MERGEs, OPTIMIZEs and VACUUMs run interpreted. A lake on a Hadoop URI, an unknown ``incoming`` (None) or a row count not in a Delta log
    leaves the configured settings."""
    from jobs.delta_io import landed_rows
    from jobs.spark import resolve_settings, size_settings

    rows = landed_rows(lake.path("bronze")) if lake.is_local else None
    if rows is None or incoming is None:
        return
    for key, value in size_settings(rows + incoming, resolve_settings(configured)).items():
        spark.conf.set(key, value)


def run_pipeline(spark: SparkSession, context: RunContext, stages: tuple[str, ...] = STAGES) -> None:
    """Run ``stages`` holding the lake's lock; a finished run writes its report to the run folder."""
    from jobs.lock import lake_lock

    with lake_lock(context.lake, context.run_id):
        _run_stages(spark, context, stages)


def _run_stages(spark: SparkSession, context: RunContext, stages: tuple[str, ...]) -> None:
    from jobs.publish import is_published
    from jobs.report import write_report
    from jobs.validate import local_run_dir

    if "publish" in stages and is_published(spark, context):
        after = stages[stages.index("publish") + 1:]
        print(f"run {context.run_id} was already published on lake {context.lake.root}: "
              + (f"running what comes after: {' → '.join(after)}" if after else "nothing to do"))
        if not after:
            return
        stages = after
    earlier = first_started_at(spark, context)
    if earlier is None:
        record_audit(spark, context.lake, [AuditRow(context.run_id, "run", None, "started", started_at=context.started_at)])
    else:
        context = replace(context, started_at=earlier)
    print(f"run {context.run_id} on lake {context.lake.root}: {' → '.join(stages)}")
    total = time.monotonic()
    for stage in stages:
        _size_session(spark, context, stage)
        watch = Stopwatch()
        print(f"[{stage}] started")
        with step(spark, stage):
            try:
                STAGE_FUNCTIONS[stage](spark, context)
            except Exception as error:
                progress.clear()
                _record_failure(spark, context, stage, watch, error)
                raise
            progress.clear()
        fault_point(f"stage:after:{stage}")
        record_audit(
            spark,
            context.lake,
            [AuditRow(context.run_id, stage, None, "ok", started_at=watch.started_at, seconds=watch.seconds)],
        )
        print(f"[{stage}] done in {watch.seconds:.1f} s")
    with step(spark, "report"):
        report, _ = write_report(spark, context, local_run_dir(context))
    print(f"run {context.run_id} finished in {time.monotonic() - total:.1f} s; report: {report}")
