"""Steward decisions as record pairs, read by the match stage and by publish."""

from __future__ import annotations


from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.delta_io import read_table
from jobs.runs import RunContext
from schemas.golden import CUSTOMER_XREF_SCHEMA, STEWARD_DECISIONS_SCHEMA

PAIR = ["record_id_l", "record_id_r"]


def ordered_pair(left: str, right: str) -> list:
    """Columns ``record_id_l < record_id_r`` from two record id columns."""
    return [F.least(left, right).alias("record_id_l"), F.greatest(left, right).alias("record_id_r")]


def golden_decisions_as_pairs(decisions: DataFrame, xref: DataFrame) -> DataFrame:
    """Steward actions on golden records as pair decisions.

    A split (record R out of golden G) becomes ``no_match`` between R and every
    other current record of G; a merge (G1, G2) becomes one ``match`` between
    their smallest record ids (clusters are connected components, one link
    joins them).
    """
    members = xref.select("record_id", "golden_id")
    splits = (
        decisions.where(F.col("action") == "split")
        .join(members.withColumnRenamed("record_id", "_other"), "golden_id")
        .where(F.col("_other") != F.col("record_id_l"))
        .select(*ordered_pair("record_id_l", "_other"), F.lit("no_match").alias("action"), "decided_at", "decision_id")
    )
    first = members.groupBy("golden_id").agg(F.min("record_id").alias("_first"))
    merges = (
        decisions.where(F.col("action") == "merge")
        .join(first.withColumnRenamed("_first", "_a"), "golden_id")
        .join(first.select(F.col("golden_id").alias("golden_id_other"), F.col("_first").alias("_b")), "golden_id_other")
        .select(*ordered_pair("_a", "_b"), F.lit("match").alias("action"), "decided_at", "decision_id")
    )
    return splits.unionByName(merges)


def open_xref_rows(xref: DataFrame) -> DataFrame:
    """The xref rows of records still current: not deleted at their source, not erased."""
    if "valid_to" not in xref.columns:
        return xref
    return xref.where(F.col("valid_to").isNull())


def steward_pair_decisions(spark: SparkSession, context: RunContext) -> DataFrame:
    """The latest match / no_match decision per pair, splits and merges included: ``record_id_l, record_id_r, is_match``."""
    everything = read_table(spark, context.lake.gold("steward_decisions"), STEWARD_DECISIONS_SCHEMA)
    xref = open_xref_rows(read_table(spark, context.lake.gold("customer_xref"), CUSTOMER_XREF_SCHEMA))
    pairs = everything.where(F.col("action").isin("match", "no_match")).select(
        *ordered_pair("record_id_l", "record_id_r"), "action", "decided_at", "decision_id"
    )
    decisions = pairs.unionByName(golden_decisions_as_pairs(everything, xref))
    latest = Window.partitionBy(*PAIR).orderBy(F.col("decided_at").desc(), F.col("decision_id").desc())
    return (
        decisions.withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select(*PAIR, (F.col("action") == "match").alias("is_match"))
    )
