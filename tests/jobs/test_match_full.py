"""The full match's comparisons planned statically (``jobs.match_full.STATIC_PLAN``)."""

from __future__ import annotations

from chispa import assert_df_equality

from jobs.match_full import STATIC_PLAN
from jobs.match_model import comparison_vectors
from jobs.spark import session_conf
from matching.blocking import guarded_candidate_pairs, refine_rules
from tests.jobs.test_match_model import COLUMNS, FREQUENCIES, ROWS, SETTINGS

# The tests' session plans statically; sort-merge joins, as on data too big to broadcast.
ADAPTIVE = {"spark.sql.adaptive.enabled": "true", "spark.sql.autoBroadcastJoinThreshold": "-1"}
STATIC = {**ADAPTIVE, **STATIC_PLAN}


def _vectors_and_blocks(spark, records, conf):
    """The comparison vectors, and the plan's lines that exchange the blocks for the self-join."""
    with session_conf(spark, conf):
        settings, _, big_rules = refine_rules(records, SETTINGS)
        pairs, _ = guarded_candidate_pairs(records, settings, big_rules=big_rules)
        vectors = comparison_vectors(pairs, records, settings, FREQUENCIES)
        vectors.collect()  # an adaptive plan shows its final stages once this query has run
        plan = vectors._jdf.queryExecution().executedPlan().toString()
        blocks = [line for line in plan.splitlines() if "Exchange" in line and "rule#" in line]
        return vectors.localCheckpoint(), blocks


def test_the_comparisons_planned_statically_are_the_adaptive_ones_with_the_blocks_exchanged_once(spark):
    """Over cached records (as the match stage's), adaptive execution exchanges the blocks a second time
    for the self-join's other side (SPARK-58767); a static plan reuses the first exchange. Should this
    test find the blocks reused adaptively too, Spark has mended it and ``STATIC_PLAN`` can go."""
    records = spark.createDataFrame(ROWS, COLUMNS).persist()
    try:
        adaptive, adaptive_blocks = _vectors_and_blocks(spark, records, ADAPTIVE)
        static, static_blocks = _vectors_and_blocks(spark, records, STATIC)

        assert adaptive.count() > 0
        assert_df_equality(static, adaptive, ignore_row_order=True, ignore_nullable=True)
        assert len(static_blocks) == 2 and "ReusedExchange" in static_blocks[1], static_blocks
        assert not any("ReusedExchange" in line for line in adaptive_blocks), adaptive_blocks
    finally:
        records.unpersist()
