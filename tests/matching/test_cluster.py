"""Clustering on small, tricky graphs; each test compares the whole result."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from chispa import assert_df_equality
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from jobs.spark import session_conf
from matching.cluster import (
    LOCAL_EDGES,
    REVIEW_FLAG,
    ClusteringDidNotConverge,
    _inside_clusters,
    _inside_components,
    cluster_pairs,
    component_parents,
    connected_components,
    greedy_partitions,
    partition_batches,
    star_forest,
)

# Each connected-components case runs both ways: solved on the driver, and in distributed rounds.
BOTH_WAYS = pytest.mark.parametrize("local_edges", [LOCAL_EDGES, 0], ids=["driver", "distributed"])

NODES = StructType([StructField("record_id", StringType(), False)])
LINKS = StructType(
    [StructField("record_id_l", StringType()), StructField("record_id_r", StringType())]
)
PAIRS = StructType([*LINKS.fields, StructField("match_probability", DoubleType())])
COMPONENTS = StructType([StructField("record_id", StringType()), StructField("cluster_id", StringType())])
CLUSTERS = StructType([*COMPONENTS.fields, StructField("cluster_flag", StringType())])


def nodes(spark, ids):
    return spark.createDataFrame([(i,) for i in ids], NODES)


def links(spark, rows=()):
    return spark.createDataFrame(list(rows), LINKS)


def pairs(spark, rows=()):
    return spark.createDataFrame(list(rows), PAIRS)


def components(spark, rows):
    return spark.createDataFrame(rows, COMPONENTS)


def clusters(spark, rows):
    return spark.createDataFrame(rows, CLUSTERS)


def check(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def cluster(spark, ids, scored, must=(), cannot=(), match_threshold=0.9, review_threshold=0.5):
    return cluster_pairs(
        nodes(spark, ids),
        pairs(spark, scored),
        match_threshold,
        links(spark, must),
        links(spark, cannot),
        review_threshold=review_threshold,
    ).drop("component_id")


# connected_components


@BOTH_WAYS
def test_chain_is_one_cluster_named_by_its_smallest_id(spark, local_edges):
    edges = links(spark, [("d", "c"), ("b", "c"), ("a", "b")])
    actual = connected_components(nodes(spark, "abcd"), edges, local_edges=local_edges)
    check(actual, components(spark, [(r, "a") for r in "abcd"]))


@BOTH_WAYS
def test_star_with_centre_in_the_middle_of_the_order(spark, local_edges):
    edges = links(spark, [("e", leaf) for leaf in "bfag"])
    actual = connected_components(nodes(spark, "abefg"), edges, local_edges=local_edges)
    check(actual, components(spark, [(r, "a") for r in "abefg"]))


@BOTH_WAYS
def test_singletons_are_their_own_clusters(spark, local_edges):
    actual = connected_components(nodes(spark, "xyz"), links(spark), local_edges=local_edges)
    check(actual, components(spark, [(r, r) for r in "xyz"]))


@BOTH_WAYS
def test_two_components_and_a_singleton(spark, local_edges):
    edges = links(spark, [("q", "p"), ("r", "q"), ("c", "b"), ("b", "d"), ("p", "r")])
    actual = connected_components(nodes(spark, "bcdpqrz"), edges, local_edges=local_edges)
    expected = [("b", "b"), ("c", "b"), ("d", "b"), ("p", "p"), ("q", "p"), ("r", "p"), ("z", "z")]
    check(actual, components(spark, expected))


@BOTH_WAYS
def test_long_chain_in_random_order_converges(spark, local_edges):
    ids = [f"n{i:02d}" for i in range(30)]
    order = random.Random(7).sample(ids, len(ids))
    rng = random.Random(11)
    chain = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in zip(order, order[1:])]
    actual = connected_components(nodes(spark, ids), links(spark, chain), local_edges=local_edges)
    check(actual, components(spark, [(r, "n00") for r in ids]))


def test_more_edges_than_the_driver_takes_are_solved_in_distributed_rounds(spark):
    ids = [f"n{i:02d}" for i in range(12)]
    edges = [(a, b) for a, b in zip(ids, ids[1:])] + [("x", "y")]
    actual = connected_components(nodes(spark, [*ids, "x", "y"]), links(spark, edges), local_edges=5)
    check(actual, components(spark, [(r, "n00") for r in ids] + [("x", "x"), ("y", "x")]))


def test_not_converging_within_max_iterations_raises(spark):
    with pytest.raises(ClusteringDidNotConverge, match="max_iterations=0"):
        chain = links(spark, [("a", "b"), ("b", "c")])
        connected_components(nodes(spark, "abc"), chain, max_iterations=0, local_edges=0)


def smallest_of_each_component(edges: list[tuple[str, str]]) -> dict[str, str]:
    """Reference: a plain union-find over the edges, each id mapped to its component's smallest id."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in list(parent)}


@given(st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=40))
@example([("\x00", "")])  # one id to pandas' factorize, which hashes strings as C strings
@example([("é", "z"), ("z", "\U0001f600")])  # byte order is code point order
def test_the_driver_s_star_forest_points_every_id_at_its_component_s_smallest(edges):
    found = star_forest([a for a, _ in edges], [b for _, b in edges]).to_pydict()
    expected = {x: smallest for x, smallest in smallest_of_each_component(edges).items() if x != smallest}
    assert dict(zip(found["record_id"], found["parent"])) == expected
    assert len(found["record_id"]) == len(expected)



IDS = st.sampled_from("abcdefgh")


@BOTH_WAYS
@settings(max_examples=5, deadline=None)
@given(
    edges=st.lists(st.tuples(IDS, IDS), max_size=10),
    scored=st.lists(
        st.tuples(st.sampled_from("abcdefghxy"), st.sampled_from("abcdefghxy")).filter(lambda pair: pair[0] != pair[1]),
        max_size=15,
    ),
)
@example(edges=[("c", "b"), ("a", "b"), ("e", "d")], scored=[("a", "c"), ("c", "d"), ("a", "x"), ("x", "y"), ("e", "d")])
def test_pairs_inside_components_found_from_the_parents_as_from_the_components(spark, local_edges, edges, scored):
    """x and y are no nodes: a pair naming one is inside no component."""
    graph = links(spark, edges)
    found = _inside_components(component_parents(graph, local_edges=local_edges), links(spark, scored))
    by_components = _inside_clusters(connected_components(nodes(spark, "abcdefgh"), graph, local_edges=local_edges),
                                     links(spark, scored))
    check(found, by_components.select(*found.columns))


def test_pairs_meet_parents_solved_on_the_driver_in_a_broadcast_join(spark):
    """However many they are: Spark's own size threshold is off here."""
    graph = links(spark, [("a", "b"), ("c", "b")])
    parents = component_parents(graph)
    with session_conf(spark, {"spark.sql.autoBroadcastJoinThreshold": "-1"}):
        inside = _inside_components(parents, pairs(spark, [("a", "c", 0.1)]))
        plan = inside._jdf.queryExecution().executedPlan().toString()
    assert parents.local
    assert "BroadcastHashJoin" in plan and "SortMergeJoin" not in plan


# cluster_pairs


def partition_rows(clusters: dict[str, tuple[str, list, list, list]]) -> pd.DataFrame:
    """``split_disagreeing``'s rows for ``greedy_partitions``: per cluster its members, edges (l, r, p, must),
    cannot-links (l, r) and scored pairs (l, r, p), sorted by cluster as Spark hands them over."""
    rows = []
    for cluster_id, (members, edges, cannots, scored) in sorted(clusters.items()):
        rows += [(cluster_id, "member", m, None, None, None) for m in members]
        rows += [(cluster_id, "edge", l, r, p, must) for l, r, p, must in edges]
        rows += [(cluster_id, "cannot", l, r, None, None) for l, r in cannots]
        rows += [(cluster_id, "scored", l, r, p, None) for l, r, p in scored]
    return pd.DataFrame(rows, columns=["cluster_id", "kind", "record_id_l", "record_id_r", "match_probability", "must_link"])


# Two clusters in one: c-a cannot be linked, so the chain a-b-c splits at its weakest link.
SPLIT = ("abc", [("a", "b", 0.99, False), ("b", "c", 0.95, False)], [("a", "c")], [("a", "b", 0.99), ("b", "c", 0.95)])
# A must-link joins d and e although they were scored low.
JOINED = ("de", [("d", "e", None, True)], [], [("d", "e", 0.1)])
# Two groups held apart by their disagreeing pairs, one strong link between them notwithstanding.
TWINS = ("fghi", [("f", "g", 0.99, False), ("h", "i", 0.99, False), ("g", "h", 0.96, False)], [],
         [("f", "g", 0.99), ("h", "i", 0.99), ("g", "h", 0.96), ("f", "h", 0.05), ("f", "i", 0.05), ("g", "i", 0.05)])


def test_greedy_partitions_split_each_cluster_on_its_own():
    rows = partition_rows({"a": SPLIT, "d": JOINED, "f": TWINS})
    actual = greedy_partitions(rows, 0.5).sort_values("record_id").reset_index(drop=True)
    expected = pd.DataFrame({"record_id": list("abcdefghi"), "cluster_id": list("aacddffhh")})
    pd.testing.assert_frame_equal(actual, expected)


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=6))
def test_batches_that_cut_through_a_cluster_partition_as_one_frame_does(cuts):
    rows = partition_rows({"a": SPLIT, "d": JOINED, "f": TWINS})
    bounds = [0, *sorted(set(cuts)), len(rows)]
    batches = [rows.iloc[start:end] for start, end in zip(bounds, bounds[1:])]
    actual = pd.concat(list(partition_batches(batches, 0.5))).sort_values("record_id").reset_index(drop=True)
    expected = greedy_partitions(rows, 0.5).sort_values("record_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(actual, expected)


def test_pairs_below_match_threshold_do_not_link(spark):
    actual = cluster(spark, "abc", [("a", "b", 0.95), ("b", "c", 0.7)])
    expected = [("a", "a", None), ("b", "a", None), ("c", "c", None)]
    check(actual, clusters(spark, expected))


def test_cannot_link_splits_chain_at_its_weakest_link(spark):
    actual = cluster(
        spark, "abcde", [("a", "b", 0.99), ("c", "b", 0.95), ("d", "e", 0.97)], cannot=[("c", "a")]
    )
    expected = [
        ("a", "a", None),
        ("b", "a", None),
        ("c", "c", None),
        ("d", "d", None),
        ("e", "d", None),
    ]
    check(actual, clusters(spark, expected))


def test_split_clusters_keep_the_component_they_came_from(spark):
    actual = cluster_pairs(
        nodes(spark, "abcd"),
        pairs(spark, [("a", "b", 0.99), ("c", "b", 0.95)]),
        0.9,
        links(spark, []),
        links(spark, [("c", "a")]),
        review_threshold=0.5,
    ).select("record_id", "cluster_id", "component_id")
    expected = spark.createDataFrame(
        [("a", "a", "a"), ("b", "a", "a"), ("c", "c", "a"), ("d", "d", "d")],
        "record_id string, cluster_id string, component_id string",
    )
    check(actual, expected)


def test_must_link_joins_two_clusters(spark):
    scored = [("a", "b", 0.99), ("c", "d", 0.92), ("b", "c", 0.6)]
    actual = cluster(spark, "abcd", scored, must=[("d", "b")])
    check(actual, clusters(spark, [(r, "a", None) for r in "abcd"]))


def test_cannot_link_wins_over_must_link_on_the_same_pair(spark):
    actual = cluster(spark, "ab", [("a", "b", 0.99)], must=[("a", "b")], cannot=[("b", "a")])
    check(actual, clusters(spark, [("a", "a", None), ("b", "b", None)]))


def test_must_links_merge_first_then_cannot_link_blocks_the_rest(spark):
    actual = cluster(spark, "abc", [("a", "c", 0.99)], must=[("b", "c"), ("a", "b")], cannot=[("a", "c")])
    check(actual, clusters(spark, [("a", "a", None), ("b", "a", None), ("c", "c", None)]))


def test_chain_whose_links_outweigh_the_disagreement_is_flagged_not_split(spark):
    scored = [("a", "b", 0.99), ("b", "c", 0.98), ("c", "a", 0.1), ("d", "e", 0.95), ("d", "f", 0.2)]
    actual = cluster(spark, "abcdef", scored)
    expected = [
        ("a", "a", REVIEW_FLAG),
        ("b", "a", REVIEW_FLAG),
        ("c", "a", REVIEW_FLAG),
        ("d", "d", None),
        ("e", "d", None),
        ("f", "f", None),
    ]
    check(actual, clusters(spark, expected))


def test_one_strong_link_does_not_chain_groups_whose_other_pairs_disagree(spark):
    # a, b: one person; c, d: their twin. b~c scored high, every other cross pair low.
    scored = [
        ("a", "b", 0.99), ("c", "d", 0.99), ("b", "c", 0.96),
        ("a", "c", 0.05), ("a", "d", 0.05), ("b", "d", 0.05),
    ]
    actual = cluster(spark, "abcd", scored)
    check(actual, clusters(spark, [("a", "a", None), ("b", "a", None), ("c", "c", None), ("d", "c", None)]))


def test_a_must_link_joins_records_whose_pairs_disagree(spark):
    # b, c must-linked first; a joins on a-b 0.99 (average with a-c: 0.52); d would bring the average to 0.36.
    scored = [("a", "b", 0.99), ("c", "d", 0.99), ("b", "c", 0.3), ("a", "c", 0.05), ("a", "d", 0.05), ("b", "d", 0.05)]
    actual = cluster(spark, "abcd", scored, must=[("b", "c")])
    expected = [("a", "a", REVIEW_FLAG), ("b", "a", REVIEW_FLAG), ("c", "a", REVIEW_FLAG), ("d", "d", None)]
    check(actual, clusters(spark, expected))


def test_steward_accepted_pair_scored_low_is_not_flagged(spark):
    actual = cluster(spark, "ab", [("a", "b", 0.1)], must=[("b", "a")])
    check(actual, clusters(spark, [("a", "a", None), ("b", "a", None)]))


def test_links_to_unknown_records_are_ignored(spark):
    actual = cluster(
        spark,
        "abc",
        [("a", "x", 0.99), ("x", "b", 0.99), ("a", "c", 0.95)],
        must=[("b", "y"), ("y", "c")],
        cannot=[("a", "z"), ("c", "x")],
    )
    check(actual, clusters(spark, [("a", "a", None), ("b", "b", None), ("c", "a", None)]))


def test_review_threshold_above_match_threshold_is_rejected(spark):
    with pytest.raises(ValueError, match="review_threshold=0.95, match_threshold=0.9"):
        cluster(spark, "ab", [], review_threshold=0.95)
