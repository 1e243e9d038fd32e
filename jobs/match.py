"""The ``match`` stage: block, compare, classify, cluster.

Reads ``customers_std``; writes ``silver/pairs`` (every scored candidate pair
with its comparison levels and match weights), ``silver/clusters`` and the
trained model as ``model.json`` in the run folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from jobs.delta_io import read_table
from jobs.runs import RunContext
from matching.blocking import GuardedBlock, guarded_candidate_pairs, random_pairs
from matching.cluster import cluster_pairs
from matching.compare import attach_for_settings, compare_pairs, comparison_levels, tf_comparisons
from matching.fellegi_sunter import estimate_u, random_pair_prior, train_in_sessions
from matching.model_io import MatchModel, model_from_json, score_with
from matching.settings import MatchSettings
from matching.supervised import train_supervised
from schemas.golden import CUSTOMER_XREF_SCHEMA, STEWARD_DECISIONS_SCHEMA

log = logging.getLogger("cdi.match")

# A supervised model needs at least this many labelled pairs of each class.
MIN_LABELS_PER_CLASS = 10
PAIR = ["record_id_l", "record_id_r"]


@dataclass
class MatchOutcome:
    records: int
    candidate_pairs: int
    linked_pairs: int
    review_pairs: int
    clusters: int
    multi_record_clusters: int
    flagged_clusters: int
    model_kind: str
    guarded_blocks: list[GuardedBlock] = field(default_factory=list)


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


def steward_pair_decisions(spark: SparkSession, context: RunContext) -> DataFrame:
    """The latest match / no_match decision per pair, splits and merges included: ``record_id_l, record_id_r, is_match``."""
    everything = read_table(spark, context.lake.gold("steward_decisions"), STEWARD_DECISIONS_SCHEMA)
    xref = read_table(spark, context.lake.gold("customer_xref"), CUSTOMER_XREF_SCHEMA)
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


def comparison_vectors(pairs: DataFrame, records: DataFrame, settings: MatchSettings) -> DataFrame:
    return compare_pairs(attach_for_settings(pairs, records, settings), settings)


def _gamma_columns(settings: MatchSettings) -> list[str]:
    return [f"gamma_{name}" for name in comparison_levels(settings)]


def pattern_counts(vectors: DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """Distinct comparison patterns with their counts: small, whatever the number of pairs."""
    return vectors.groupBy(*_gamma_columns(settings)).count().toPandas()


def train_model(
    records: DataFrame, vectors: DataFrame, labelled: DataFrame, settings: MatchSettings, record_count: int
) -> MatchModel:
    """Supervised when asked for or when enough steward labels exist; else Fellegi-Sunter with EM."""
    levels = comparison_levels(settings)
    labels = labelled.toPandas()
    enough_labels = (
        len(labels) > 0 and labels["is_match"].value_counts().reindex([True, False], fill_value=0).min() >= MIN_LABELS_PER_CLASS
    )
    if settings.model.kind == "supervised" or enough_labels:
        log.info("training the supervised model on %d labelled pairs", len(labels))
        return train_supervised(labels.drop(columns=["is_match"]), labels["is_match"], levels)
    possible = record_count * (record_count - 1) // 2
    sample = random_pairs(records, min(settings.model.u_random_pairs, possible), settings.model.seed)
    u = estimate_u(pattern_counts(comparison_vectors(sample, records, settings), settings), levels)
    patterns = pattern_counts(vectors, settings)
    model = train_in_sessions(
        patterns,
        levels,
        u,
        settings.model.em_sessions,
        tf_comparisons=tf_comparisons(settings),
        max_iterations=settings.model.em_max_iterations,
        tolerance=settings.model.em_tolerance,
    )
    prior = random_pair_prior(model.lambda_, int(patterns["count"].sum()), possible)
    log.info(
        "EM: %d iterations, converged=%s, match share among candidates %.4g, prior for a random pair %.4g",
        model.iterations, model.converged, model.lambda_, prior,
    )
    return replace(model, lambda_=prior)


def score_pairs(vectors: DataFrame, model: MatchModel, settings: MatchSettings) -> DataFrame:
    names = list(comparison_levels(settings))
    schema = StructType(
        [
            *vectors.schema.fields,
            *[StructField(f"mw_{n}", DoubleType(), False) for n in names],
            StructField("match_weight", DoubleType(), False),
            StructField("match_probability", DoubleType(), False),
        ]
    )

    def scored(batches):
        for batch in batches:
            weights = score_with(model, batch)
            yield pd.concat([batch.reset_index(drop=True), weights.reset_index(drop=True)], axis=1)

    return vectors.mapInPandas(scored, schema)


def run_match(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    run_dir: Path,
    model_path: Path | None = None,
) -> MatchOutcome:
    records = read_table(spark, context.lake.customers_std).persist()
    record_count = records.count()
    pairs, guarded = guarded_candidate_pairs(records, settings)
    for block in guarded:
        log.warning("blocking: %s", block)
    vectors = comparison_vectors(pairs, records, settings).localCheckpoint()
    decisions = steward_pair_decisions(spark, context)
    if model_path is not None:
        model = model_from_json(model_path.read_text())
    else:
        labelled_pairs = decisions.select(*PAIR)
        labelled = comparison_vectors(labelled_pairs, records, settings).join(decisions, PAIR).drop("blocking_rule")
        model = train_model(records, vectors, labelled, settings, record_count)
    (run_dir / "model.json").write_text(model.to_json())

    scored = score_pairs(vectors, model, settings).withColumn("run_id", F.lit(context.run_id))
    scored.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(context.lake.path("silver", "pairs"))
    scored = read_table(spark, context.lake.path("silver", "pairs"))

    clusters = cluster_pairs(
        records.select("record_id"),
        scored,
        settings.thresholds.match,
        decisions.where("is_match").select(*PAIR),
        decisions.where("NOT is_match").select(*PAIR),
        settings.thresholds.review,
    ).withColumn("run_id", F.lit(context.run_id))
    clusters.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        context.lake.path("silver", "clusters")
    )
    clusters = read_table(spark, context.lake.path("silver", "clusters"))

    pair_stats = scored.agg(
        F.count(F.lit(1)).alias("pairs"),
        F.sum((F.col("match_probability") >= settings.thresholds.match).cast("int")).alias("linked"),
        F.sum(
            ((F.col("match_probability") >= settings.thresholds.review) & (F.col("match_probability") < settings.thresholds.match)).cast("int")
        ).alias("review"),
    ).first()
    sizes = clusters.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("n"), F.max("cluster_flag").alias("flag"))
    cluster_stats = sizes.agg(
        F.count(F.lit(1)).alias("clusters"),
        F.sum((F.col("n") > 1).cast("int")).alias("multi"),
        F.sum(F.col("flag").isNotNull().cast("int")).alias("flagged"),
    ).first()
    records.unpersist()
    return MatchOutcome(
        records=record_count,
        candidate_pairs=pair_stats["pairs"],
        linked_pairs=pair_stats["linked"] or 0,
        review_pairs=pair_stats["review"] or 0,
        clusters=cluster_stats["clusters"],
        multi_record_clusters=cluster_stats["multi"] or 0,
        flagged_clusters=cluster_stats["flagged"] or 0,
        model_kind=type(model).__name__,
        guarded_blocks=guarded,
    )
