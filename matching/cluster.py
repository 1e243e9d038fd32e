"""Clustering: linked pairs to clusters of records that describe one customer.

``cluster_pairs`` composes the steps:

1. ``linked_edges``: pairs scored at or above the match threshold plus the
   steward's must-links, restricted to known records;
2. ``component_parents``: up to a million distinct links, collected and
   solved on the driver (scipy), the answer broadcast to the joins that
   follow; more, large-star / small-star (Kiveris et al., "Connected
   Components in MapReduce and Beyond", 2014) in DataFrame operations, with
   no collect to the driver;
3. ``split_disagreeing``: components holding both ends of a steward's
   cannot-link, or a scored pair below the review threshold, are
   re-partitioned greedily, one component per pandas group. Links join two
   groups strongest first, unless a cannot-link lies between them or the
   scored pairs between them average below the review threshold (average
   linkage: one strong link does not chain two people whose other records
   clearly differ, such as twins or a parent and child sharing an address);
4. ``flag_disagreeing_clusters``: clusters still holding a scored pair below
   the review threshold are flagged for a steward.

A cluster's id is the smallest record id in it (binary string order, which
Spark and Python share), so it does not depend on partitioning or row order.

Must-link against cannot-link: the cannot-link always wins. Splitting records
that belong together only sends them back to the review queue, while a merge
the steward has explicitly rejected would publish a wrong golden customer.
Must-links still go first in the greedy re-partition, ahead of model scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from scipy import sparse
from scipy.sparse import csgraph

REVIEW_FLAG = "review: members disagree"

PAIR_COLUMNS = ("record_id_l", "record_id_r")
SCORED_PAIR_COLUMNS = (*PAIR_COLUMNS, "match_probability")
CLUSTER_SCHEMA = "record_id string, cluster_id string"
PARENT_SCHEMA = "record_id string, parent string"
# Distinct links solved on the driver, where the distributed rounds cost two Spark jobs or more each. The
# parents go back to Spark as a local relation, which the plan carries. At 1M demo rows (769,548 links)
# clustering took 57 s this way against 63 s in distributed rounds (run one after the other).
LOCAL_EDGES = 1_000_000


class ClusteringDidNotConverge(RuntimeError):
    """Connected components did not reach a fixed point within the allowed iterations."""


def cluster_pairs(
    nodes: DataFrame,
    pairs: DataFrame,
    match_threshold: float,
    must_links: DataFrame,
    cannot_links: DataFrame,
    review_threshold: float,
    max_iterations: int = 50,
) -> DataFrame:
    """Cluster ``nodes`` (``record_id``) from scored ``pairs`` and steward decisions.

    ``pairs`` has ``record_id_l``, ``record_id_r``, ``match_probability``;
    ``must_links`` and ``cannot_links`` have ``record_id_l``, ``record_id_r``.
    Decisions and pairs naming records absent from ``nodes`` are ignored. A
    low-scored pair that a steward accepted as a must-link raises no flag.
    Returns ``record_id``, ``cluster_id``, ``cluster_flag`` (NULL or
    ``REVIEW_FLAG``) and ``component_id`` (the connected component before
    cannot-link splits; records of different components never share a cluster,
    which is what lets an incremental run re-cluster only the components a
    change touches), one row per node.
    """
    if not 0.0 <= review_threshold <= match_threshold <= 1.0:
        raise ValueError(
            "expected 0 <= review_threshold <= match_threshold <= 1, got "
            f"review_threshold={review_threshold}, match_threshold={match_threshold}"
        )
    _require_columns(nodes, "nodes", ("record_id",))
    _require_columns(pairs, "pairs", SCORED_PAIR_COLUMNS)
    _require_columns(must_links, "must_links", PAIR_COLUMNS)
    _require_columns(cannot_links, "cannot_links", PAIR_COLUMNS)

    # Each step reads its input several times: keep the inputs computed once.
    links = linked_edges(nodes, pairs, match_threshold, must_links).localCheckpoint(eager=False)
    parents = component_parents(links, max_iterations)
    components = _with_parents(nodes, parents).localCheckpoint(eager=False)
    accepted = _normalized_pairs(must_links)
    unreviewed = _normalized_pairs(pairs.select(*SCORED_PAIR_COLUMNS)).join(accepted, list(PAIR_COLUMNS), "left_anti")
    # Splits only cut components, so a pair inside a cluster is inside a component: the scored pairs are
    # matched to components once, and the steps below read those few instead of every scored pair.
    within = _inside_components(parents, unreviewed).localCheckpoint(eager=False)
    clusters = split_disagreeing(
        components, links, _known_pairs(nodes, cannot_links), within, review_threshold
    ).localCheckpoint(eager=False)
    flagged = flag_disagreeing_clusters(clusters, within, review_threshold)
    return flagged.join(components.withColumnRenamed("cluster_id", "component_id"), "record_id")


def linked_edges(
    nodes: DataFrame, pairs: DataFrame, match_threshold: float, must_links: DataFrame
) -> DataFrame:
    """Edges to cluster on: ``record_id_l`` < ``record_id_r``, ``match_probability``, ``must_link``.

    One row per record pair. ``match_probability`` is NULL for a must-link
    that was never scored; ``must_link`` says whether a steward accepted it.
    """
    scored = (
        pairs.filter(F.col("match_probability") >= match_threshold)
        .select(*SCORED_PAIR_COLUMNS)
        .withColumn("must_link", F.lit(False))
    )
    accepted = must_links.select(
        *PAIR_COLUMNS,
        F.lit(None).cast("double").alias("match_probability"),
        F.lit(True).alias("must_link"),
    )
    return (
        _known_pairs(nodes, _normalized_pairs(scored.unionByName(accepted)))
        .groupBy(*PAIR_COLUMNS)
        .agg(
            F.max("match_probability").alias("match_probability"),
            F.max("must_link").alias("must_link"),
        )
    )


class Parents(NamedTuple):
    """``record_id``, ``parent``: every record of a link with its component's smallest record id, where that is
    not itself. ``local``: solved on the driver, small enough to broadcast."""

    frame: DataFrame
    local: bool


def connected_components(
    nodes: DataFrame, edges: DataFrame, max_iterations: int = 50, local_edges: int = LOCAL_EDGES
) -> DataFrame:
    """``record_id``, ``cluster_id``: each node with the smallest record id of its component.

    ``edges`` (``record_id_l``, ``record_id_r``) must name only records in ``nodes``; see ``component_parents``.
    """
    return _with_parents(nodes, component_parents(edges, max_iterations, local_edges))


def component_parents(edges: DataFrame, max_iterations: int = 50, local_edges: int = LOCAL_EDGES) -> Parents:
    """The ``Parents`` of the connected components of ``edges`` (``record_id_l``, ``record_id_r``).

    Up to ``local_edges`` distinct edges are collected and labelled on the
    driver (``star_forest``). More are solved in DataFrame operations: each
    iteration runs a large-star then a small-star step on edges kept as
    (larger id -> smaller id), cut from the previous lineage by a local
    checkpoint. The fixed point is a forest of stars centred on each
    component's smallest id; reaching it costs one small job per iteration.
    """
    current = (
        edges.select(
            F.greatest(*PAIR_COLUMNS).alias("src"), F.least(*PAIR_COLUMNS).alias("dst")
        )
        .filter(F.col("src") != F.col("dst"))
        .distinct()
        .localCheckpoint(eager=False)
    )
    if local_edges > 0:
        few = current.limit(local_edges + 1).toArrow()
        if few.num_rows <= local_edges:
            parents = star_forest(few.column("src").combine_chunks(), few.column("dst").combine_chunks())
            return Parents(edges.sparkSession.createDataFrame(parents, PARENT_SCHEMA), local=True)
    iterations = 0
    while not _is_star_forest(current):
        if iterations == max_iterations:
            raise ClusteringDidNotConverge(
                f"connected components did not converge in max_iterations={max_iterations}"
            )
        current = _small_star(_large_star(current)).localCheckpoint(eager=False)
        iterations += 1
    return Parents(current.select(F.col("src").alias("record_id"), F.col("dst").alias("parent")), local=False)


def star_forest(left: Sequence[str] | pa.Array, right: Sequence[str] | pa.Array) -> pa.Table:
    """``record_id``, ``parent``: every id of an edge (``left[i]``, ``right[i]``) with the smallest id of its
    connected component, where that is not itself (the component's centre has no row).

    In Arrow and numpy, not Python objects (a million links take about a second): ids are numbered by
    Arrow's dictionary encoding (pandas' ``factorize`` would take ``""`` and ``"\\x00"`` for one string, as
    it hashes C strings), and each component's smallest id found by the ids' rank in byte order, which
    is Python's string order and Spark's.
    """
    ends = [side if isinstance(side, pa.Array) else pa.array(list(side), pa.string()) for side in (left, right)]
    half = len(ends[0])
    if half == 0:
        return pa.table({"record_id": pa.array([], pa.string()), "parent": pa.array([], pa.string())})
    encoded = pc.dictionary_encode(pa.concat_arrays(ends))
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = encoded.dictionary
    count = len(uniques)
    graph = sparse.coo_matrix((np.ones(half, dtype=np.int32), (ids[:half], ids[half:])), shape=(count, count))
    _, labels = csgraph.connected_components(graph, directed=False)
    order = pc.sort_indices(uniques).to_numpy()
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    smallest = np.full(labels.max() + 1, count, dtype=np.int64)
    np.minimum.at(smallest, labels, rank)
    parent = order[smallest[labels]]
    moved = np.flatnonzero(parent != np.arange(count))
    return pa.table({"record_id": uniques.take(moved), "parent": uniques.take(parent[moved])})


def _with_parents(nodes: DataFrame, parents: Parents) -> DataFrame:
    return nodes.select("record_id").join(_shared(parents), "record_id", "left").select(
        "record_id", F.coalesce("parent", "record_id").alias("cluster_id")
    )


def _shared(parents: Parents) -> DataFrame:
    """The parents, broadcast to the joins when they were solved on the driver (at most ``LOCAL_EDGES`` links'
    records, which the driver held)."""
    return F.broadcast(parents.frame) if parents.local else parents.frame


def _inside_components(parents: Parents, pairs: DataFrame) -> DataFrame:
    """The ``pairs`` (of two different records, as ``_normalized_pairs`` gives them) whose two records are in
    one component: as ``_inside_clusters`` over the components, but joined to the parents (a record without
    one is its own component), which are broadcast when small: the pairs are not shuffled."""
    shared = _shared(parents)
    parent_l = shared.select(F.col("record_id").alias("record_id_l"), F.col("parent").alias("__parent_l"))
    parent_r = shared.select(F.col("record_id").alias("record_id_r"), F.col("parent").alias("__parent_r"))
    return (
        pairs.join(parent_l, "record_id_l", "left").join(parent_r, "record_id_r", "left")
        .filter(F.coalesce("__parent_l", "record_id_l") == F.coalesce("__parent_r", "record_id_r"))
        .select(*pairs.columns)
    )


def split_disagreeing(
    clusters: DataFrame, links: DataFrame, cannot_links: DataFrame, scored: DataFrame, review_threshold: float
) -> DataFrame:
    """Re-partition only the clusters holding a cannot-link or a scored pair below ``review_threshold``.

    In such a cluster, a union-find merges records over its ``links`` (as from
    ``linked_edges``), must-links first, then by descending probability, ties
    by record ids. It skips a merge that would join two cannot-linked records,
    and, unless the link is a must-link, one where the ``scored`` pairs
    between the two groups (must-links counting as 1) average below
    ``review_threshold``. Each resulting sub-cluster takes its smallest record id.

    One small job finds the clusters to re-partition; when there are none, the
    clusters come back unchanged.
    """
    cannot = (
        _inside_clusters(clusters, _normalized_pairs(cannot_links))
        .select("cluster_id", *PAIR_COLUMNS).localCheckpoint(eager=False)
    )
    low = _inside_clusters(clusters, scored.filter(F.col("match_probability") < review_threshold)).select("cluster_id")
    conflicted = cannot.select("cluster_id").unionByName(low).distinct().localCheckpoint(eager=False)
    if conflicted.isEmpty():
        return clusters
    nulls = {
        "record_id_r": F.lit(None).cast("string"),
        "match_probability": F.lit(None).cast("double"),
        "must_link": F.lit(None).cast("boolean"),
    }
    members = clusters.join(conflicted, "cluster_id").select(
        "cluster_id", F.lit("member").alias("kind"), F.col("record_id").alias("record_id_l"),
        *[value.alias(name) for name, value in nulls.items()],
    )
    edges = _inside_clusters(clusters, links).join(conflicted, "cluster_id").select(
        "cluster_id", F.lit("edge").alias("kind"), *PAIR_COLUMNS, "match_probability", "must_link"
    )
    cannots = cannot.join(conflicted, "cluster_id").select(
        "cluster_id", F.lit("cannot").alias("kind"), *PAIR_COLUMNS, nulls["match_probability"].alias("match_probability"),
        nulls["must_link"].alias("must_link"),
    )
    scores = _inside_clusters(clusters, scored).join(conflicted, "cluster_id").select(
        "cluster_id", F.lit("scored").alias("kind"), *PAIR_COLUMNS, "match_probability",
        nulls["must_link"].alias("must_link"),
    )

    def partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return partition_batches(batches, review_threshold)

    # Each partition sorted by cluster: a batch holds whole clusters but its last, which the next batch
    # completes. (One applyInPandas call per cluster cost about 5 ms each: 40 s for 8,000 clusters.)
    split = (
        members.unionByName(edges)
        .unionByName(cannots)
        .unionByName(scores)
        .repartition("cluster_id")
        .sortWithinPartitions("cluster_id")
        .mapInPandas(partition, CLUSTER_SCHEMA)
    )
    untouched = clusters.join(conflicted, "cluster_id", "left_anti").select("record_id", "cluster_id")
    return untouched.unionByName(split)


def flag_disagreeing_clusters(
    clusters: DataFrame, pairs: DataFrame, review_threshold: float
) -> DataFrame:
    """Add ``cluster_flag``: ``REVIEW_FLAG`` where two members were scored below ``review_threshold``.

    Such a cluster is usually a chain of good links between records that
    clearly differ; it is left whole for a steward to split.
    """
    low = pairs.filter(F.col("match_probability") < review_threshold).filter(F.col("record_id_l") != F.col("record_id_r"))
    disagreeing = (
        _inside_clusters(clusters, low).select("cluster_id", F.lit(REVIEW_FLAG).alias("cluster_flag")).distinct()
    )
    return clusters.join(disagreeing, "cluster_id", "left").select(
        "record_id", "cluster_id", "cluster_flag"
    )


def _large_star(edges: DataFrame) -> DataFrame:
    """Connect every larger neighbour of a node to the smallest id in its closed neighbourhood.

    Duplicate edges are left for ``_small_star`` to drop, saving a shuffle.
    """
    both = edges.select(F.col("src").alias("u"), F.col("dst").alias("v")).unionByName(
        edges.select(F.col("dst").alias("u"), F.col("src").alias("v"))
    )
    smallest = F.least(F.col("u"), F.min("v").over(Window.partitionBy("u")))
    return (
        both.withColumn("m", smallest)
        .filter(F.col("v") > F.col("u"))
        .select(F.col("v").alias("src"), F.col("m").alias("dst"))
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Connect a node and its smaller neighbours to the smallest of them."""
    with_min = edges.withColumn("m", F.min("dst").over(Window.partitionBy("src")))
    neighbours = with_min.select(F.col("dst").alias("src"), F.col("m").alias("dst")).filter(
        F.col("src") != F.col("dst")
    )
    node = with_min.select("src", F.col("m").alias("dst"))
    return neighbours.unionByName(node).distinct()


def _is_star_forest(edges: DataFrame) -> bool:
    """True when every node points to at most one node and no pointed-to node points anywhere.

    With edges from larger to smaller ids this is the algorithm's fixed point:
    each star's centre is the smallest id of its component.
    """
    as_src = edges.select(F.col("src").alias("node"), F.lit(1).alias("out"), F.lit(0).alias("into"))
    as_dst = edges.select(F.col("dst").alias("node"), F.lit(0).alias("out"), F.lit(1).alias("into"))
    roles = as_src.unionByName(as_dst)
    not_a_star = (
        roles.groupBy("node")
        .agg(F.sum("out").alias("out"), F.max("into").alias("into"))
        .filter((F.col("out") > 1) | ((F.col("out") == 1) & (F.col("into") == 1)))
    )
    return not_a_star.isEmpty()


def partition_batches(batches: Iterable[pd.DataFrame], review_threshold: float) -> Iterator[pd.DataFrame]:
    """``greedy_partitions`` of batches of rows sorted by ``cluster_id``: a cluster may run on into the next
    batch, so each batch's last cluster waits for it."""
    held: pd.DataFrame | None = None
    for batch in batches:
        if held is not None:
            batch = pd.concat([held, batch], ignore_index=True)
        if batch.empty:
            continue
        ids = batch["cluster_id"].to_numpy()
        last = ids == ids[-1]
        held = batch[last]
        if not last.all():
            yield greedy_partitions(batch[~last], review_threshold)
    if held is not None and not held.empty:
        yield greedy_partitions(held, review_threshold)


def greedy_partitions(rows: pd.DataFrame, review_threshold: float) -> pd.DataFrame:
    """``record_id``, ``cluster_id`` of every member of the clusters in ``rows`` (see ``split_disagreeing``).

    ``rows`` are the ``member``, ``edge``, ``cannot`` and ``scored`` rows of
    whole clusters; the edges of all of them are sorted in one go, then each
    cluster is partitioned by ``_greedy_partition``.
    """
    kind = rows["kind"]
    edges = rows.loc[kind == "edge"].astype({"must_link": bool}).sort_values(
        ["cluster_id", "must_link", "match_probability", "record_id_l", "record_id_r"],
        ascending=[True, False, False, True, True],
        na_position="last",
    )
    members = _by_cluster(rows.loc[kind == "member"], ["record_id_l"])
    ordered = _by_cluster(edges, ["record_id_l", "record_id_r", "must_link"])
    cannots = _by_cluster(rows.loc[kind == "cannot"], ["record_id_l", "record_id_r"])
    scored = _by_cluster(rows.loc[kind == "scored"], ["record_id_l", "record_id_r", "match_probability"])
    records: list[str] = []
    clusters: list[str] = []
    for cluster, its_members in members.items():
        cluster_of = _greedy_partition(
            [member for (member,) in its_members], ordered.get(cluster, []), cannots.get(cluster, []),
            scored.get(cluster, []), review_threshold,
        )
        records += cluster_of
        clusters += cluster_of.values()
    return pd.DataFrame({"record_id": pd.Series(records, dtype=object), "cluster_id": pd.Series(clusters, dtype=object)})


def _by_cluster(rows: pd.DataFrame, columns: list[str]) -> dict[str, list[tuple]]:
    """Each cluster's rows as tuples of ``columns``, in the order of ``rows``."""
    found: dict[str, list[tuple]] = {}
    for cluster, *values in zip(rows["cluster_id"].tolist(), *(rows[c].tolist() for c in columns)):
        found.setdefault(cluster, []).append(tuple(values))
    return found


def _greedy_partition(
    members: list[str],
    edges: list[tuple[str, str, bool]],
    cannots: list[tuple[str, str]],
    scored: list[tuple[str, str, float]],
    review_threshold: float,
) -> dict[str, str]:
    """Greedy union-find over one component's ``edges``, in the order given (see ``split_disagreeing``).

    ``between[a][b]`` holds the sum and count of scored probabilities
    between groups ``a`` and ``b``, kept up to date as groups merge, so each
    decision costs the size of the groups' neighbourhoods, not of the groups.
    Returns each member's sub-cluster (its smallest record id).
    """
    root = {record: record for record in members}
    group_of = {record: {record} for record in members}
    forbidden: dict[str, set[str]] = {record: set() for record in members}
    for left, right in cannots:
        forbidden[left].add(right)
        forbidden[right].add(left)
    between: dict[str, dict[str, list[float]]] = {record: {} for record in members}

    def add(a: str, b: str, probability: float) -> None:
        for x, y in ((a, b), (b, a)):
            total = between[x].setdefault(y, [0.0, 0])
            total[0] += probability
            total[1] += 1

    for left, right, probability in scored:
        add(left, right, probability)
    for left, right, must_link in edges:
        if must_link:
            add(left, right, 1.0)

    for left, right, must_link in edges:
        keep, absorb = root[left], root[right]
        if keep == absorb or forbidden[keep] & group_of[absorb]:
            continue
        total, count = between[keep].get(absorb, (0.0, 0))
        if not must_link and count and total / count < review_threshold:
            continue
        if len(group_of[keep]) < len(group_of[absorb]):
            keep, absorb = absorb, keep
        for record in group_of[absorb]:
            root[record] = keep
        group_of[keep] |= group_of.pop(absorb)
        forbidden[keep] |= forbidden.pop(absorb)
        for neighbour, (total, count) in between.pop(absorb).items():
            between[neighbour].pop(absorb)
            if neighbour != keep:
                for x, y in ((keep, neighbour), (neighbour, keep)):
                    merged = between[x].setdefault(y, [0.0, 0])
                    merged[0] += total
                    merged[1] += count
    return {record: min(group_of[root[record]]) for record in members}


def _normalized_pairs(pairs: DataFrame) -> DataFrame:
    """Pairs with ``record_id_l`` < ``record_id_r``; self-pairs dropped; other columns kept."""
    others = [c for c in pairs.columns if c not in PAIR_COLUMNS]
    return pairs.filter(F.col("record_id_l") != F.col("record_id_r")).select(
        F.least(*PAIR_COLUMNS).alias("record_id_l"),
        F.greatest(*PAIR_COLUMNS).alias("record_id_r"),
        *others,
    )


def _inside_clusters(clusters: DataFrame, pairs: DataFrame) -> DataFrame:
    """The ``pairs`` whose two records are in one cluster of ``clusters`` (``record_id``, ``cluster_id``),
    with that ``cluster_id``."""
    cluster_l = clusters.select(F.col("record_id").alias("record_id_l"), "cluster_id")
    cluster_r = clusters.select(F.col("record_id").alias("record_id_r"), F.col("cluster_id").alias("__cluster_r"))
    return (
        pairs.join(cluster_l, "record_id_l").join(cluster_r, "record_id_r")
        .filter(F.col("cluster_id") == F.col("__cluster_r"))
        .drop("__cluster_r")
    )


def _known_pairs(nodes: DataFrame, pairs: DataFrame) -> DataFrame:
    """Pairs whose two records are both in ``nodes``."""
    ids = nodes.select("record_id")
    known_l = ids.withColumnRenamed("record_id", "record_id_l")
    known_r = ids.withColumnRenamed("record_id", "record_id_r")
    return pairs.join(known_l, "record_id_l", "left_semi").join(known_r, "record_id_r", "left_semi")


def _require_columns(frame: DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; has {frame.columns}")
