"""The full match's comparisons planned statically (``jobs.match_full.STATIC_PLAN``), with hash joins
where they fit (``jobs.match_full.hash_joins_fit``)."""

from __future__ import annotations

from chispa import assert_df_equality

from jobs.match_full import HASH_JOIN_ROWS, STATIC_PLAN, STATIC_PLAN_RECORDS, hash_joins_fit
from jobs.match_model import comparison_vectors
from jobs.spark import session_conf
from matching.blocking import guarded_candidate_pairs, refine_rules
from tests.jobs.test_match_model import COLUMNS, FREQUENCIES, ROWS, SETTINGS

# The tests' session plans statically; sort-merge joins, as on data too big to broadcast.
ADAPTIVE = {"spark.sql.adaptive.enabled": "true", "spark.sql.autoBroadcastJoinThreshold": "-1"}
STATIC = {**ADAPTIVE, **STATIC_PLAN}


def _vectors_and_plan(spark, records, conf, hash_join=False):
    """The comparison vectors and their executed plan."""
    with session_conf(spark, conf):
        settings, _, big_rules = refine_rules(records, SETTINGS)
        pairs, _ = guarded_candidate_pairs(records, settings, big_rules=big_rules, hash_join=hash_join)
        vectors = comparison_vectors(pairs, records, settings, FREQUENCIES, hash_join)
        vectors.collect()  # an adaptive plan shows its final stages once this query has run
        return vectors.localCheckpoint(), vectors._jdf.queryExecution().executedPlan().toString()


def _vectors_and_blocks(spark, records, conf):
    """The comparison vectors, and the plan's lines that exchange the blocks for the self-join."""
    vectors, plan = _vectors_and_plan(spark, records, conf)
    return vectors, [line for line in plan.splitlines() if "Exchange" in line and "rule#" in line]


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


def test_hash_joins_give_the_same_vectors_as_sort_merge_joins(spark):
    """The blocking self-join and the pairs' two joins with their records become hash joins; the blocks
    are still exchanged once."""
    records = spark.createDataFrame(ROWS, COLUMNS).persist()
    try:
        sorted_vectors, sorted_plan = _vectors_and_plan(spark, records, STATIC)
        hashed_vectors, hashed_plan = _vectors_and_plan(spark, records, STATIC, hash_join=True)

        assert hashed_vectors.count() > 0
        assert_df_equality(hashed_vectors, sorted_vectors, ignore_row_order=True, ignore_nullable=True)
        assert sorted_plan.count("ShuffledHashJoin") == 0
        assert hashed_plan.count("ShuffledHashJoin") == 3, hashed_plan
        blocks = [line for line in hashed_plan.splitlines() if "Exchange" in line and "rule#" in line]
        assert len(blocks) == 2 and "ReusedExchange" in blocks[1], blocks
    finally:
        records.unpersist()


def test_hash_joins_only_for_statically_planned_data_whose_blocks_fit_each_partition():
    assert not hash_joins_fit(STATIC_PLAN_RECORDS, rules=9, partitions=8)
    assert hash_joins_fit(1_000_000, rules=9, partitions=8)
    assert hash_joins_fit(HASH_JOIN_ROWS * 8 // 9, rules=9, partitions=8)
    assert not hash_joins_fit(HASH_JOIN_ROWS * 8 // 9 + 1, rules=9, partitions=8)
    assert hash_joins_fit(10_000_000, rules=9, partitions=200)
    assert hash_joins_fit(1_000_000, rules=0, partitions=8)
