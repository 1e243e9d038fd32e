"""An incremental match: only pairs of new or changed records scored, only their components re-clustered."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from jobs.decisions import PAIR
from jobs.delta_io import Merge, read_table
from jobs.match_model import comparison_vectors, score_pairs
from jobs.match_silver import cluster_records, clusters_with_lineage, write_table
from jobs.match_state import guard_signature, write_match_state
from jobs.runs import RunContext
from matching.blocking import (
    GuardedBlock,
    Refinement,
    guarded_candidate_pairs,
)
from matching.model_io import SavedModel, saved_model_from_json
from matching.settings import MatchSettings

log = logging.getLogger("cdi.match")

def match_changed(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    records: DataFrame,
    decisions: DataFrame,
    state: Row,
    refinements: list[Refinement],
    big_rules: frozenset[int],
) -> tuple[SavedModel, list[GuardedBlock], int] | None:
    """Score and re-cluster only what records new or changed since the last match touch.

    Returns None, having written nothing, when the pair budget's refinements or
    the guard's blocks differ from the last full run's, or when the guard
    skipped a block: then only a full scoring equals a full run. ``big_rules`` as for ``match_full.match_everything``.
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

    pairs, guarded = guarded_candidate_pairs(records, settings, new_record_ids=changed, big_rules=big_rules)
    if guard_signature(guarded, refinements) != state["guarded_blocks"]:
        log.warning(
            "incremental match: the pair budget or the huge-block guard acts otherwise than at the last full run; "
            "scoring all pairs"
        )
        return None
    if any(block.action == "skipped" for block in guarded):
        # A skipped block's identical records are paired with the lowest id among them: a new, changed or
        # gone record can move that pairing onto records no longer scored again here.
        log.warning("incremental match: the huge-block guard skipped a block, whose identical records are "
                    "paired anew on each run; scoring all pairs")
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
    reclustered = cluster_records(records.join(region, "record_id", "left_semi"), region_pairs, decisions, settings)
    kept = before.join(region, "record_id", "left_anti").select("record_id", "cluster_id", "cluster_flag", "component_id")
    clusters = clusters_with_lineage(kept.unionByName(reclustered), records, context.run_id).localCheckpoint()
    write_table(clusters, clusters_path)
    write_match_state(spark, context, saved, state["guarded_blocks"])
    return saved, guarded, changed.count()


def replace_pairs(spark: SparkSession, path: str, scored: DataFrame, touched: DataFrame) -> None:
    """One MERGE: pairs of ``touched`` records not scored again are deleted, ``scored`` pairs upserted."""
    current = read_table(spark, path).select(*PAIR)
    stale = (
        current.join(touched.withColumnRenamed("record_id", "record_id_l"), "record_id_l", "left_semi")
        .unionByName(current.join(touched.withColumnRenamed("record_id", "record_id_r"), "record_id_r", "left_semi"))
        .distinct()
        .join(scored.select(*PAIR), PAIR, "left_anti")
    )
    source = scored.withColumn("_keep", F.lit(True)).unionByName(
        stale.withColumn("_keep", F.lit(False)), allowMissingColumns=True
    )
    (
        Merge(path, source, "t.record_id_l = s.record_id_l AND t.record_id_r = s.record_id_r")
        .when_matched_delete(condition="NOT s._keep")
        .when_matched_update(scored.columns)
        .when_not_matched_insert(scored.columns, condition="s._keep")
        .execute(spark)
    )
