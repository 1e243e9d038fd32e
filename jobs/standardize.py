"""The ``standardize`` stage: pending bronze rows → canonical rows, staged for validation.

Pending rows are the latest version of each live source record (by ingest
time; a record whose latest version is a tombstone is deleted, and validate
takes it out of ``customers_std``) whose ``record_hash`` is not what an
earlier run put in ``customers_std``. So
a run that stopped before validation leaves its rows pending for the next
run, a re-run of a killed run stages exactly what the first attempt staged,
and a record quarantined last time is tried again until it is fixed.
The staged rows go to ``silver/customers_staged`` (replaced per run).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.pipeline import MappingExpression, SourceConfig
from jobs.delta_io import read_table, replace_where, sql_string, table_exists
from jobs.ingest import TOMBSTONE, newest_rows
from config.errors import ConfigError
from jobs.runs import RunContext
from jobs.sources import safe_path
from jobs.spark import E164_FUNCTION, has_function
from matching.standardize import (
    MappingError,
    SqlExpression,
    StandardizeOptions,
    Vocabulary,
    standardize,
)

STAGED = ("silver", "customers_staged")


def staged_path(context: RunContext) -> str:
    return context.lake.path(*STAGED)


def current_bronze(spark: SparkSession, context: RunContext, source: SourceConfig) -> DataFrame:
    """The current version of every record of a source, tombstones (``cdi_tombstone``) included."""
    path = context.lake.bronze(source.name)
    return newest_rows(read_table(spark, path), path)


def latest_bronze(spark: SparkSession, context: RunContext, source: SourceConfig) -> DataFrame:
    """The current version of every live record of a source (deleted ones left out)."""
    return current_bronze(spark, context, source).where(~F.col(TOMBSTONE))


def deleted_record_ids(spark: SparkSession, context: RunContext) -> DataFrame | None:
    """``record_id`` of every record whose current bronze version is a tombstone, over all sources."""
    frames = [
        current_bronze(spark, context, source)
        .where(F.col(TOMBSTONE))
        .select(F.concat(F.lit(f"{source.name}:"), F.col("source_key").cast("string")).alias("record_id"))
        for source in context.config.sources
        if table_exists(spark, context.lake.bronze(source.name))
    ]
    if not frames:
        return None
    deleted = frames[0]
    for frame in frames[1:]:
        deleted = deleted.unionByName(frame)
    return deleted


def pending_bronze(spark: SparkSession, context: RunContext, source: SourceConfig) -> DataFrame:
    latest = latest_bronze(spark, context, source)
    if not table_exists(spark, context.lake.customers_std):
        return latest
    done = (
        read_table(spark, context.lake.customers_std)
        .where((F.col("source_system") == source.name) & (F.col("run_id") != context.run_id))
        .select("source_key", "record_hash")
    )
    return latest.join(done, ["source_key", "record_hash"], "left_anti")


def standardize_source(bronze: DataFrame, source: SourceConfig, vocabulary: Vocabulary) -> DataFrame:
    """The source's pending bronze rows in the canonical shape; a mapping bronze cannot satisfy is a ConfigError."""
    options = StandardizeOptions(**source.standardize.model_dump())
    mapping = {
        attribute: SqlExpression(mapped.expr) if isinstance(mapped, MappingExpression) else safe_path(mapped)
        for attribute, mapped in source.mapping.items()
    }
    phone_function = E164_FUNCTION if has_function(bronze.sparkSession, E164_FUNCTION) else None
    try:
        return standardize(bronze, mapping, options, vocabulary, phone_function)
    except MappingError as exc:
        raise ConfigError(f"source {source.name!r}: {exc}") from None


@dataclass(frozen=True)
class StagedCounts:
    source: str
    pending: int


def run_standardize(spark: SparkSession, context: RunContext) -> list[StagedCounts]:
    vocabulary = context.settings.vocabulary
    frames = []
    for source in context.config.sources:
        if not table_exists(spark, context.lake.bronze(source.name)):
            continue
        staged = standardize_source(pending_bronze(spark, context, source), source, vocabulary)
        frames.append(staged.withColumn("run_id", F.lit(context.run_id)))
    if not frames:
        return []
    everything = frames[0]
    for frame in frames[1:]:
        everything = everything.unionByName(frame)
    # A lake staged before a column was added to the canonical shape gains it.
    replace_where(everything, staged_path(context), f"run_id = {sql_string(context.run_id)}", merge_schema=True)
    counts = (
        read_table(spark, staged_path(context))
        .where(F.col("run_id") == context.run_id)
        .groupBy("source_system")
        .count()
        .collect()
    )
    return [StagedCounts(source=row["source_system"], pending=row["count"]) for row in counts]
