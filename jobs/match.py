"""The ``match`` stage: block, compare, classify, cluster.

Reads ``customers_std``; writes ``silver/pairs`` (every scored candidate pair
with its comparison levels and match weights), ``silver/clusters`` (each
record's cluster, connected component and the ``record_hash`` it was
clustered with), ``silver/match_model`` (the model the pairs were scored with)
and the model as ``model.json`` in the run folder.

A full run trains a model (or loads ``--model``) and scores every candidate
pair. An incremental run (``cdi run --incremental`` with a model from an
earlier full run) scores only the pairs of records that are new or changed
since the clusters were computed, with that earlier model and its frozen term
frequencies; it replaces those records' pairs in one MERGE and re-clusters
only the connected components they touch. Both give the same pairs and
clusters on the same data with the same model. When the huge-block guard now
acts on other blocks than at the full run (pairs between unchanged records
would differ), the run falls back to scoring everything with that model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from delta.tables import DeltaTable

from jobs.delta_io import read_table, table_exists
from jobs.progress import progress
from jobs.runs import RunContext
from jobs.steps import step
from matching.blocking import (
    GuardedBlock,
    Refinement,
    guarded_candidate_pairs,
    key_fingerprint,
    possible_pairs,
    random_pairs,
    refine_rules,
    sparse_rules,
)
from matching.cluster import cluster_pairs
from matching.compare import (
    attach_for_settings,
    compare_pairs,
    comparison_levels,
    term_frequencies,
    tf_columns,
    tf_comparisons,
)
from matching.fellegi_sunter import (
    Household,
    TrainingReport,
    estimate_u,
    random_pair_prior,
    train_checked,
    u_sample_sizes,
    u_settled,
)
from matching.model_io import MatchModel, SavedModel, TermFrequencies, saved_model_from_json, score_with
from matching.placeholders import Placeholder, attribute_value_counts, find_placeholders, mask_placeholders
from matching.placeholders import describe as describe_placeholder
from matching.settings import MatchSettings
from matching.supervised import train_supervised
from schemas.golden import CLUSTERS_SCHEMA, CUSTOMER_XREF_SCHEMA, STEWARD_DECISIONS_SCHEMA

log = logging.getLogger("cdi.match")

# A supervised model needs at least this many labelled pairs of each class.
MIN_LABELS_PER_CLASS = 10
PAIR = ["record_id_l", "record_id_r"]
MODEL_STATE_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("model_json", StringType(), False),
        StructField("guarded_blocks", StringType(), False),
    ]
)


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
    refinements: list[Refinement] = field(default_factory=list)
    changed_records: int | None = None  # set by an incremental run: records new or changed since the last match
    placeholders: list[Placeholder] = field(default_factory=list)
    training: TrainingReport | None = None  # set when this run trained a Fellegi-Sunter model
    sparse_rules: list[tuple[str, float]] = field(default_factory=list)  # rules whose keys few records have


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


def collect_term_frequencies(records: DataFrame, settings: MatchSettings) -> TermFrequencies:
    """Every term-frequency column's value shares, collected to freeze them into the model."""
    frequencies: TermFrequencies = {}
    for column in tf_columns(settings):
        shares = term_frequencies(records, column).toPandas()
        frequencies[column] = {str(v): float(s) for v, s in zip(shares[column], shares[f"tf_{column}"])}
    return frequencies


def comparison_vectors(
    pairs: DataFrame, records: DataFrame, settings: MatchSettings, frequencies: TermFrequencies
) -> DataFrame:
    return compare_pairs(attach_for_settings(pairs, records, settings, frequencies), settings)


def _gamma_columns(settings: MatchSettings) -> list[str]:
    return [f"gamma_{name}" for name in comparison_levels(settings)]


def pattern_counts(vectors: DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """Distinct comparison patterns with their counts: small, whatever the number of pairs."""
    return vectors.groupBy(*_gamma_columns(settings)).count().toPandas()


def household_of(settings: MatchSettings) -> Household | None:
    household = settings.model.household
    return None if household is None else Household(household.key, tuple(household.own), tuple(household.shared))


def log_training_report(report: TrainingReport) -> None:
    """Warn about an implausible EM model and what was done about it (comparison names and numbers only)."""
    if report.problems:
        log.warning("EM's model was implausible: %s", "; ".join(report.problems))
        if report.recovered:
            log.warning("m re-estimated from anchor pairs (exact agreement on identity comparisons) for: %s",
                        ", ".join(report.recovered))
        else:
            log.warning("no anchor pairs to re-estimate m from; the model is kept as EM left it")
        if report.remaining:
            log.warning("still implausible after re-estimation: %s", "; ".join(report.remaining))
    if report.clamped:
        log.info("agreeing levels that counted against a match now count 0: %s", ", ".join(report.clamped))


def random_pair_patterns(
    records: DataFrame, settings: MatchSettings, frequencies: TermFrequencies, source_sizes: list[int]
) -> pd.DataFrame:
    """Comparison patterns of random record pairs, drawn in samples of doubling size until u settles.

    See ``matching.fellegi_sunter.u_sample_sizes`` and ``u_settled``: never
    more pairs than the data has, and no more samples once a sample twice as
    big as the last one leaves u where it was.
    """
    link_only = settings.link_type == "link_only"
    levels = comparison_levels(settings)
    possible = possible_pairs(source_sizes, settings.link_type)
    sizes = u_sample_sizes(settings.model.u_first_pairs, settings.model.u_random_pairs, possible)
    patterns: pd.DataFrame | None = None
    for number, size in enumerate(sizes or [0]):
        progress.show("match", "estimating u from samples of random pairs", number, len(sizes))
        sample = random_pairs(records, size, settings.model.seed + 10 * number, link_only, source_sizes)
        drawn = pattern_counts(comparison_vectors(sample, records, settings, frequencies), settings)
        merged = drawn if patterns is None else _add_patterns(patterns, drawn, settings)
        settled = patterns is not None and u_settled(patterns, merged, levels)
        patterns = merged
        if settled:
            break
    log.info("u from %d random pairs in %d samples", int(patterns["count"].sum()), number + 1)
    return patterns


def _add_patterns(left: pd.DataFrame, right: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    both = pd.concat([left, right], ignore_index=True)
    return both.groupby(_gamma_columns(settings), as_index=False, dropna=False)["count"].sum()


def train_model(
    records: DataFrame,
    vectors: DataFrame,
    labelled: DataFrame,
    settings: MatchSettings,
    source_sizes: list[int],
    frequencies: TermFrequencies,
) -> tuple[MatchModel, TrainingReport | None]:
    """Supervised when asked for or when enough steward labels exist; else Fellegi-Sunter with EM (and its report).

    ``source_sizes`` are the records per source: u and the prior are for the
    record pairs the link type allows among them.
    """
    levels = comparison_levels(settings)
    labels = labelled.toPandas()
    enough_labels = (
        len(labels) > 0 and labels["is_match"].value_counts().reindex([True, False], fill_value=0).min() >= MIN_LABELS_PER_CLASS
    )
    if settings.model.kind == "supervised" or enough_labels:
        log.info("training the supervised model on %d labelled pairs", len(labels))
        return train_supervised(labels.drop(columns=["is_match"]), labels["is_match"], levels), None
    possible = possible_pairs(source_sizes, settings.link_type)
    with step(records.sparkSession, "match.train.u"):
        u = estimate_u(random_pair_patterns(records, settings, frequencies, source_sizes), levels)
    with step(records.sparkSession, "match.train.patterns"):
        patterns = pattern_counts(vectors, settings)
    model, report = train_checked(
        patterns,
        levels,
        u,
        settings.model.em_sessions,
        settings.model.identity,
        tf_comparisons=tf_comparisons(settings),
        max_iterations=settings.model.em_max_iterations,
        tolerance=settings.model.em_tolerance,
        household=household_of(settings),
    )
    log_training_report(report)
    prior = random_pair_prior(model.lambda_, int(patterns["count"].sum()), possible)
    log.info(
        "EM: %d iterations, converged=%s, match share among candidates %.4g, prior for a random pair %.4g",
        model.iterations, model.converged, model.lambda_, prior,
    )
    return replace(model, lambda_=prior), report


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


def guard_signature(guarded: list[GuardedBlock], refinements: list[Refinement]) -> str:
    """The keys the pair budget added and the blocks the guard acted on, ignoring sizes: equal signatures, equal pair sets."""
    return json.dumps(
        {
            "refined": sorted([r.rule, list(r.added)] for r in refinements),
            "blocks": sorted([b.rule, repr(b.key), b.action, b.sub_key] for b in guarded),
        }
    )


def _state_path(context: RunContext) -> str:
    return context.lake.path("silver", "match_model")


def last_match_state(spark: SparkSession, context: RunContext) -> Row | None:
    """The model and guard signature of the last full match, if the silver tables still go with it."""
    path = _state_path(context)
    if not table_exists(spark, path):
        return None
    return read_table(spark, path).first()


def _write_table(frame: DataFrame, path: str) -> None:
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def _clusters_with_lineage(clusters: DataFrame, records: DataFrame, run_id: str) -> DataFrame:
    return clusters.join(records.select("record_id", "record_hash"), "record_id").select(
        *CLUSTERS_SCHEMA.fieldNames()[:-1], F.lit(run_id).alias("run_id")
    )


def _cluster(
    records: DataFrame, pairs: DataFrame, decisions: DataFrame, settings: MatchSettings
) -> DataFrame:
    return cluster_pairs(
        records.select("record_id"),
        pairs,
        settings.thresholds.match,
        decisions.where("is_match").select(*PAIR),
        decisions.where("NOT is_match").select(*PAIR),
        settings.thresholds.review,
    )


def match_everything(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    records: DataFrame,
    decisions: DataFrame,
    saved: SavedModel | None,
    refinements: list[Refinement],
) -> tuple[SavedModel, list[GuardedBlock], TrainingReport | None]:
    """Score every candidate pair (training a model unless ``saved``) and cluster all records.

    ``settings`` carry the blocking rules as refined for the pair budget (``refinements``).
    The training report is None when no Fellegi-Sunter model was trained here.
    """
    training = None
    spark.createDataFrame([], MODEL_STATE_SCHEMA).write.format("delta").mode("overwrite").save(_state_path(context))
    with step(spark, "match.block_compare", "blocking and comparing candidate pairs"):
        pairs, guarded = guarded_candidate_pairs(records, settings)
        frequencies = saved.term_frequencies if saved else collect_term_frequencies(records, settings)
        vectors = comparison_vectors(pairs, records, settings, frequencies).localCheckpoint()
    if saved is None:
        with step(spark, "match.train", "training the model"):
            labelled = comparison_vectors(decisions.select(*PAIR), records, settings, frequencies)
            labelled = labelled.join(decisions, PAIR).drop("blocking_rule")
            sizes = [row["count"] for row in records.groupBy("source_system").count().collect()]
            model, training = train_model(records, vectors, labelled, settings, sizes, frequencies)
        saved = SavedModel(model, frequencies)

    pairs_path = context.lake.path("silver", "pairs")
    with step(spark, "match.score", "scoring candidate pairs"):
        scored = score_pairs(vectors, saved.model, settings).withColumn("run_id", F.lit(context.run_id))
        _write_table(scored, pairs_path)
    with step(spark, "match.cluster", "clustering"):
        clusters = _cluster(records, read_table(spark, pairs_path), decisions, settings)
        _write_table(_clusters_with_lineage(clusters, records, context.run_id), context.lake.path("silver", "clusters"))
    signature = guard_signature(guarded, refinements)
    state = spark.createDataFrame([(context.run_id, saved.to_json(), signature)], MODEL_STATE_SCHEMA)
    state.write.format("delta").mode("overwrite").save(_state_path(context))
    return saved, guarded, training


def match_changed(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    records: DataFrame,
    decisions: DataFrame,
    state: Row,
    refinements: list[Refinement],
) -> tuple[SavedModel, list[GuardedBlock], int] | None:
    """Score and re-cluster only what records new or changed since the last match touch.

    Returns None, having written nothing, when the pair budget's refinements or
    the guard's blocks differ from the last full run's: then only a full
    scoring equals a full run.
    """
    saved = saved_model_from_json(state["model_json"])
    clusters_path = context.lake.path("silver", "clusters")
    pairs_path = context.lake.path("silver", "pairs")
    before = read_table(spark, clusters_path).localCheckpoint()
    changed = (
        records.select("record_id", "record_hash")
        .join(before.select("record_id", "record_hash"), ["record_id", "record_hash"], "left_anti")
        .select("record_id")
        .localCheckpoint()
    )
    gone = before.select("record_id").join(records.select("record_id"), "record_id", "left_anti")
    touched = changed.unionByName(gone).localCheckpoint()

    pairs, guarded = guarded_candidate_pairs(records, settings, new_record_ids=changed)
    if guard_signature(guarded, refinements) != state["guarded_blocks"]:
        log.warning(
            "incremental match: the pair budget or the huge-block guard acts otherwise than at the last full run; "
            "scoring all pairs"
        )
        return None
    vectors = comparison_vectors(pairs, records, settings, saved.term_frequencies)
    scored = score_pairs(vectors, saved.model, settings).withColumn("run_id", F.lit(context.run_id)).localCheckpoint()
    replace_pairs(spark, pairs_path, scored, touched)

    linked = scored.where(F.col("match_probability") >= settings.thresholds.match)
    seeds = touched
    for frame in (linked, decisions):
        for side in PAIR:
            seeds = seeds.unionByName(frame.select(F.col(side).alias("record_id")))
    components = before.join(seeds, "record_id", "left_semi").select("component_id").distinct()
    region = (
        before.join(components, "component_id", "left_semi").select("record_id").unionByName(seeds).distinct().localCheckpoint()
    )
    region_pairs = (
        read_table(spark, pairs_path)
        .join(region.withColumnRenamed("record_id", "record_id_l"), "record_id_l", "left_semi")
        .join(region.withColumnRenamed("record_id", "record_id_r"), "record_id_r", "left_semi")
    )
    reclustered = _cluster(records.join(region, "record_id", "left_semi"), region_pairs, decisions, settings)
    kept = before.join(region, "record_id", "left_anti").select("record_id", "cluster_id", "cluster_flag", "component_id")
    clusters = _clusters_with_lineage(kept.unionByName(reclustered), records, context.run_id).localCheckpoint()
    _write_table(clusters, clusters_path)
    return saved, guarded, changed.count()


def replace_pairs(spark: SparkSession, path: str, scored: DataFrame, touched: DataFrame) -> None:
    """One MERGE: pairs of ``touched`` records not scored again are deleted, ``scored`` pairs upserted."""
    table = DeltaTable.forPath(spark, path)
    current = table.toDF().select(*PAIR)
    stale = (
        current.join(touched.withColumnRenamed("record_id", "record_id_l"), "record_id_l", "left_semi")
        .unionByName(current.join(touched.withColumnRenamed("record_id", "record_id_r"), "record_id_r", "left_semi"))
        .distinct()
        .join(scored.select(*PAIR), PAIR, "left_anti")
    )
    source = scored.withColumn("_keep", F.lit(True)).unionByName(
        stale.withColumn("_keep", F.lit(False)), allowMissingColumns=True
    )
    columns = {c: F.col(f"s.{c}") for c in scored.columns}
    (
        table.alias("t")
        .merge(source.alias("s"), "t.record_id_l = s.record_id_l AND t.record_id_r = s.record_id_r")
        .whenMatchedDelete(condition="NOT s._keep")
        .whenMatchedUpdate(set=columns)
        .whenNotMatchedInsert(condition="s._keep", values=columns)
        .execute()
    )


def run_match(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    run_dir: Path,
    model: SavedModel | None = None,
) -> MatchOutcome:
    """Match all records, or with ``context.incremental`` the changed ones; ``model`` scores instead of training."""
    stored = read_table(spark, context.lake.customers_std)
    key_attributes = sorted(set().union(*(rule.attributes for rule in settings.blocking_rules)) - {"source_system"})
    with step(spark, "match.placeholders", "looking for placeholder values"):
        counts = attribute_value_counts(stored, sorted({*settings.placeholders.attributes, *key_attributes}))
    placeholders = find_placeholders(
        {a: c for a, c in counts.items() if a in settings.placeholders.attributes}, settings.placeholders
    )
    for placeholder in placeholders:
        log.warning("placeholder value: %s", describe_placeholder(placeholder))
    records = mask_placeholders(stored, placeholders).persist()
    present = {a: c.total for a, c in counts.items()}
    for placeholder in placeholders:
        present[placeholder.attribute] -= placeholder.records
    with step(spark, "match.records"):
        record_count = records.count()
        decisions = steward_pair_decisions(spark, context).localCheckpoint()
    sparse = sparse_rules(settings.blocking_rules, present, record_count)
    with step(spark, "match.refine", "counting pairs per blocking rule"):
        settings, refinements = refine_rules(records, settings)
    state = last_match_state(spark, context) if context.incremental and model is None else None
    incremental = match_changed(spark, context, settings, records, decisions, state, refinements) if state else None
    if incremental is not None:
        saved, guarded, changed = incremental
        training = None
    else:
        if model is not None:
            given = model
        elif state is not None:
            given = saved_model_from_json(state["model_json"])
        else:
            if context.incremental:
                log.warning("incremental match: no model from an earlier full match; training one on all records")
            given = None
        saved, guarded, training = match_everything(spark, context, settings, records, decisions, given, refinements)
        changed = None
    for block in guarded:
        log.warning(
            "blocking rule %r: a block of %d records was %s (key %s; values in cdi blocking-report)",
            block.rule, block.size, block.action.replace("_", "-"), key_fingerprint(block.key),
        )
    (run_dir / "model.json").write_text(saved.to_json())
    notes = {
        "placeholders": [{"attribute": p.attribute, "records": p.records, "share": p.share} for p in placeholders],
        "sparse_rules": [{"rule": name, "share": share} for name, share in sparse],
        "training": asdict(training) if training else None,
    }
    (run_dir / "matching.json").write_text(json.dumps(notes, indent=2))
    with step(spark, "match.outcome"):
        outcome = _outcome(spark, context, settings, record_count, saved, guarded, refinements, changed)
    outcome = replace(outcome, placeholders=placeholders, training=training, sparse_rules=sparse)
    records.unpersist()
    return outcome


def _outcome(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    record_count: int,
    saved: SavedModel,
    guarded: list[GuardedBlock],
    refinements: list[Refinement],
    changed: int | None,
) -> MatchOutcome:
    scored = read_table(spark, context.lake.path("silver", "pairs"))
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
    return MatchOutcome(
        records=record_count,
        candidate_pairs=pair_stats["pairs"],
        linked_pairs=pair_stats["linked"] or 0,
        review_pairs=pair_stats["review"] or 0,
        clusters=cluster_stats["clusters"],
        multi_record_clusters=cluster_stats["multi"] or 0,
        flagged_clusters=cluster_stats["flagged"] or 0,
        model_kind=type(saved.model).__name__,
        guarded_blocks=guarded,
        refinements=refinements,
        changed_records=changed,
    )
