"""Stable golden ids: carry the last published ids over to this run's clusters.

Cluster ids are arbitrary per run; golden ids are what downstream systems
hold. The only input that matters is the *overlap* of each new cluster with
each previous golden record (records they share), so the implementation
reduces the records to that table first.

One round, proposer and acceptor:

1. every cluster holding previously assigned records *proposes* the golden id
   most of them had (ties: the larger golden record by previous member count,
   then the older ``first_seen`` (unknown counts as newest), then the smaller id);
2. every proposed golden id goes to its proposer holding the largest part of it
   (ties: the part whose smallest record_id is smallest). The other proposers
   are parts split off that golden record: they get new ids, ``event='split'``
   with ``related_id`` = the origin;
3. clusters holding no previously assigned record get new ids, ``event='create'``;
4. a previous golden id no cluster keeps is retired, ``event='retire'`` with
   ``related_id`` = the id of the cluster holding most of its records (same
   tie-break as 2.); when all its records are gone (deleted at the source:
   nobody absorbed it, so there is no survivor to point to) it is deleted,
   ``event='delete'`` with ``related_id`` null;
5. every id that absorbs a retired one logs ``event='merge'`` (``related_id``
   null; the ``retire`` rows point to it).

There is no second round: a losing proposer gets a new id even if another of
its previous golden ids went unclaimed; that id is retired into whichever
cluster holds most of its records. When whole golden records merge, overlap
equals previous size, so "the larger, then the older survives" holds.

``records`` in the history is the cluster's size for create/split/merge and
the retired record's previous member count for retire.

New ids are ``'G' + sha256(run_id + '|' + the cluster's smallest record_id)[:16]``:
opaque, and the same on a replay of the same run with the same input. A new
id that was ever issued before is never reused: the run fails instead.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_ID_HEX_CHARS = 16


def assign_golden_ids_spark(
    clusters: DataFrame, previous_xref: DataFrame, issued: DataFrame, run_id: str
) -> tuple[DataFrame, DataFrame]:
    """(cluster_id → golden_id, history without ``at``) for ``clusters`` (record_id, cluster_id).

    The two frames share one plan (``golden_id_decisions``); a job that needs
    both computes the decisions once (checkpoints them) and splits them with
    ``split_decisions``.
    """
    return split_decisions(golden_id_decisions(clusters, previous_xref, issued, run_id), run_id)


def golden_id_decisions(clusters: DataFrame, previous_xref: DataFrame, issued: DataFrame, run_id: str) -> DataFrame:
    """One row per (cluster, previous golden id) overlap with every decision about it taken.

    ``previous_xref`` is the last published xref (record_id, golden_id);
    ``issued`` every golden id ever issued (golden_id, first_seen). Tested
    against the pandas reference in ``tests/matching/golden_ids_reference.py``.

    Records are shuffled once, into the overlap table: one row per (cluster,
    previous golden id) pair sharing records, plus (cluster, null) for a
    cluster's records new to the xref and (null, golden) for a golden's
    records that vanished. Every decision is then a window over that table,
    alternating between cluster and golden partitions, and the history is
    exploded from the same rows, so the plan stays one chain. A reused id
    fails the query that evaluates it.
    """
    previous = previous_xref.select("record_id", "golden_id")
    cluster, golden = F.col("cluster_id"), F.col("golden_id")
    overlap = (
        clusters.select("record_id", "cluster_id")
        .join(previous, "record_id", "full")
        .groupBy("cluster_id", "golden_id")
        .agg(F.count(F.lit(1)).cast("int").alias("n"), F.min("record_id").alias("part_min"))
        .join(issued.select("golden_id", "first_seen"), "golden_id", "left")
    )
    by_golden = Window.partitionBy("golden_id")
    by_cluster = Window.partitionBy("cluster_id")
    proposal_order = by_cluster.orderBy(
        golden.isNull(), F.desc("n"), F.desc("golden_size"), F.asc_nulls_last("first_seen"), golden
    )
    part_order = by_golden.orderBy(cluster.isNull(), F.desc("n"), F.asc("part_min"))
    accept_order = by_golden.orderBy(F.desc("_proposal"), F.desc("n"), F.asc("part_min"))
    in_cluster = cluster.isNotNull()
    decided = (
        overlap.withColumn("golden_size", F.sum("n").over(by_golden).cast("int"))
        .withColumn("size", F.sum("n").over(by_cluster).cast("int"))
        .withColumn("min_record", F.min("part_min").over(by_cluster))
        # 1. each cluster proposes one previous golden id
        .withColumn("_proposal", in_cluster & golden.isNotNull() & (F.row_number().over(proposal_order) == 1))
        # 2. each golden id goes to its proposer holding the largest part
        .withColumn("_won", F.col("_proposal") & (F.row_number().over(accept_order) == 1))
        .withColumn("kept_id", F.max(F.when(F.col("_won"), golden)).over(by_cluster))
        .withColumn("origin_id", F.max(F.when(F.col("_proposal") & ~F.col("_won"), golden)).over(by_cluster))
        # 4. a golden id nobody keeps is retired, on the row of its largest part (vanished records last)
        .withColumn(
            "_retired",
            golden.isNotNull() & ~F.max("_won").over(by_golden) & (F.row_number().over(part_order) == 1),
        )
        # 5. the cluster holding that part absorbs it
        .withColumn("_absorbs", F.max("_retired").over(by_cluster))
        .withColumn("_has_previous", F.max(golden.isNotNull()).over(by_cluster))
        .withColumn("_first", in_cluster & (F.row_number().over(by_cluster.orderBy(golden)) == 1))
        .withColumn(
            "new_id",
            F.when(in_cluster & F.col("kept_id").isNull(), _spark_new_id(run_id, F.col("min_record"))),
        )
    )
    taken = (
        issued.select("golden_id")
        .union(previous.select("golden_id"))
        .distinct()
        .select(F.col("golden_id").alias("new_id"), F.lit(True).alias("_taken"))
    )
    reuse = F.concat(
        F.lit("new golden id "), F.col("new_id"), F.lit(f" was issued before; run {run_id!r} cannot reuse it")
    )
    return decided.join(taken, "new_id", "left").withColumn(
        "assigned_id",
        F.when(F.col("_taken"), F.raise_error(reuse)).otherwise(F.coalesce("kept_id", "new_id")),
    )


def split_decisions(decided: DataFrame, run_id: str) -> tuple[DataFrame, DataFrame]:
    """(cluster_id → golden_id, history without ``at``) from ``golden_id_decisions``."""
    cluster, golden = F.col("cluster_id"), F.col("golden_id")
    in_cluster = cluster.isNotNull()
    assigned = decided.filter("_first").select("cluster_id", F.col("assigned_id").alias("golden_id"))

    assigned_id, none = F.col("assigned_id"), F.lit(None).cast("string")
    events = F.array(
        _event(F.col("_first") & ~F.col("_has_previous"), "create", assigned_id, none, "size"),
        _event(F.col("_first") & F.col("origin_id").isNotNull(), "split", assigned_id, F.col("origin_id"), "size"),
        _event(F.col("_first") & F.col("_absorbs"), "merge", assigned_id, none, "size"),
        _event(F.col("_retired") & in_cluster, "retire", golden, assigned_id, "golden_size"),
        _event(F.col("_retired") & ~in_cluster, "delete", golden, none, "golden_size"),
    )
    history = (
        decided.select(F.explode(F.filter(events, lambda e: e.isNotNull())).alias("e"))
        .select(F.lit(run_id).alias("run_id"), "e.event", "e.golden_id", "e.related_id", "e.records")
    )
    return assigned, history


def _spark_new_id(run_id: str, min_record: Column) -> Column:
    digest = F.sha2(F.concat(F.lit(f"{run_id}|"), min_record), 256)
    return F.concat(F.lit("G"), F.substring(digest, 1, _ID_HEX_CHARS))


def _event(condition: Column, event: str, golden_id: Column, related_id: Column, records: str) -> Column:
    """An event struct where ``condition`` holds, else null."""
    return F.when(
        condition,
        F.struct(
            F.lit(event).alias("event"),
            golden_id.alias("golden_id"),
            related_id.alias("related_id"),
            F.col(records).alias("records"),
        ),
    )
