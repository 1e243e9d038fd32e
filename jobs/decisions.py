"""Steward decisions as record pairs and golden-record overrides, read by the match stage and by publish.

Only decisions that still hold are applied: a ``retract`` row withdraws the
decision it ``supersedes`` (a retraction of a retraction withdraws nothing),
and the retraction itself is no decision. The table may predate the later
columns (``record_ids``, ``supersedes``, ...): they read as nulls.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StringType, StructField, StructType

from jobs.delta_io import read_table, table_exists
from jobs.runs import RunContext
from schemas.arrow import local_frame
from schemas.golden import CUSTOMER_XREF_SCHEMA, STEWARD_DECISIONS_SCHEMA

PAIR = ["record_id_l", "record_id_r"]


def ordered_pair(left: str, right: str) -> list:
    """Columns ``record_id_l < record_id_r`` from two record id columns."""
    return [F.least(left, right).alias("record_id_l"), F.greatest(left, right).alias("record_id_r")]


def with_every_column(decisions: DataFrame) -> DataFrame:
    """``decisions`` with every column of ``STEWARD_DECISIONS_SCHEMA``: those an older table lacks as nulls."""
    for field in STEWARD_DECISIONS_SCHEMA.fields:
        if field.name not in decisions.columns:
            decisions = decisions.withColumn(field.name, F.lit(None).cast(field.dataType))
    return decisions.select(*STEWARD_DECISIONS_SCHEMA.fieldNames())


def effective_decisions(decisions: DataFrame) -> DataFrame:
    """The decisions that still hold: not retracted, and not a retraction."""
    retractions = decisions.where(F.col("action") == "retract")
    withdrawn = retractions.join(
        retractions.select(F.col("decision_id").alias("supersedes")), "supersedes", "left_anti"
    ).select(F.col("supersedes").alias("decision_id"))
    return decisions.where(F.col("action") != "retract").join(withdrawn, "decision_id", "left_anti")


def split_pairs(decisions: DataFrame, xref: DataFrame) -> DataFrame:
    """Splits as pair decisions.

    A split that names its records (``record_ids`` taken out, ``other_ids``
    left, both as at decision time) becomes ``no_match`` between each record
    taken out and each record left, and ``match`` among the records taken out:
    they stay together, and a record that joins the golden record later is not
    kept apart from anyone. A split written before ``record_ids`` existed names
    one record only (``record_id_l``); it keeps its old meaning, ``no_match``
    with every *current* member of its golden record, since the members at
    decision time were not recorded.
    """
    splits = decisions.where(F.col("action") == "split")
    named = splits.where(F.col("record_ids").isNotNull())
    taken = named.select("decision_id", "decided_at", F.explode("record_ids").alias("_out"), "other_ids", "record_ids")
    apart = taken.select(
        "decision_id", "decided_at", "_out", F.explode("other_ids").alias("_left")
    ).select(*ordered_pair("_out", "_left"), F.lit("no_match").alias("action"), "decided_at", "decision_id")
    together = (
        taken.select("decision_id", "decided_at", "_out", F.explode("record_ids").alias("_with"))
        .where(F.col("_out") < F.col("_with"))
        .select(*ordered_pair("_out", "_with"), F.lit("match").alias("action"), "decided_at", "decision_id")
    )
    members = xref.select("record_id", "golden_id")
    legacy = (
        splits.where(F.col("record_ids").isNull())
        .join(members.withColumnRenamed("record_id", "_other"), "golden_id")
        .where(F.col("_other") != F.col("record_id_l"))
        .select(*ordered_pair("record_id_l", "_other"), F.lit("no_match").alias("action"), "decided_at", "decision_id")
    )
    return apart.unionByName(together).unionByName(legacy)


def golden_decisions_as_pairs(decisions: DataFrame, xref: DataFrame) -> DataFrame:
    """Steward actions on golden records as pair decisions: splits (``split_pairs``) and merges.

    A merge (G1, G2) becomes one ``match`` between their smallest current
    record ids (clusters are connected components, one link joins them).
    """
    members = xref.select("record_id", "golden_id")
    first = members.groupBy("golden_id").agg(F.min("record_id").alias("_first"))
    merges = (
        decisions.where(F.col("action") == "merge")
        .join(first.withColumnRenamed("_first", "_a"), "golden_id")
        .join(first.select(F.col("golden_id").alias("golden_id_other"), F.col("_first").alias("_b")), "golden_id_other")
        .select(*ordered_pair("_a", "_b"), F.lit("match").alias("action"), "decided_at", "decision_id")
    )
    return split_pairs(decisions, xref).unionByName(merges)


def open_xref_rows(xref: DataFrame) -> DataFrame:
    """The xref rows of records still current: not deleted at their source, not erased."""
    if "valid_to" not in xref.columns:
        return xref
    return xref.where(F.col("valid_to").isNull())


def read_decisions(spark: SparkSession, context: RunContext) -> DataFrame:
    """The decisions that still hold (``effective_decisions``), every column present."""
    table = read_table(spark, context.lake.gold("steward_decisions"), STEWARD_DECISIONS_SCHEMA)
    return effective_decisions(with_every_column(table))


def latest_pair_decisions(decisions: DataFrame, xref: DataFrame) -> DataFrame:
    """The latest match / no_match per pair, splits and merges included: ``record_id_l, record_id_r, is_match``."""
    pairs = decisions.where(F.col("action").isin("match", "no_match")).select(
        *ordered_pair("record_id_l", "record_id_r"), "action", "decided_at", "decision_id"
    )
    everything = pairs.unionByName(golden_decisions_as_pairs(decisions, xref))
    latest = Window.partitionBy(*PAIR).orderBy(F.col("decided_at").desc(), F.col("decision_id").desc())
    return (
        everything.withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select(*PAIR, (F.col("action") == "match").alias("is_match"))
    )


PAIR_DECISIONS_SCHEMA = StructType(
    [StructField("record_id_l", StringType()), StructField("record_id_r", StringType()), StructField("is_match", BooleanType())]
)


def steward_pair_decisions(spark: SparkSession, context: RunContext) -> DataFrame:
    """``latest_pair_decisions`` of the lake's decisions and current xref.

    A lake where no steward has decided anything yet has no decisions table:
    then the answer is empty without planning the query over the xref (about
    a second of every run's match and publish stages).
    """
    if not table_exists(spark, context.lake.gold("steward_decisions")):
        return local_frame(spark, [], PAIR_DECISIONS_SCHEMA)
    xref = open_xref_rows(read_table(spark, context.lake.gold("customer_xref"), CUSTOMER_XREF_SCHEMA))
    return latest_pair_decisions(read_decisions(spark, context), xref)


def latest_overrides(decisions: DataFrame) -> DataFrame:
    """The latest override per golden id and attribute:
    ``golden_id, attribute, value, record_ids, record_hashes, decision_id``."""
    latest = Window.partitionBy("golden_id", "attribute").orderBy(F.col("decided_at").desc(), F.col("decision_id").desc())
    return (
        decisions.where(F.col("action") == "override")
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select("golden_id", "attribute", "value", "record_ids", "record_hashes", "decision_id")
    )


def steward_overrides(spark: SparkSession, context: RunContext) -> DataFrame:
    """``latest_overrides`` of the lake's decisions that still hold."""
    return latest_overrides(read_decisions(spark, context))
