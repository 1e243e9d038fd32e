"""The ``publish`` stage: golden ids, survivorship, and the gold tables.

Order of writes, so a reader never sees an xref pointing at a golden id that
does not exist and a killed run can simply be run again:

1. ``golden_customers`` MERGE: new ids inserted, changed ones updated, ids
   that stop being used marked ``retired`` in place (never deleted);
2. ``customer_xref`` MERGE: every record → its golden id (all exist by now);
3. ``match_candidates`` MERGE: the review queue (pairs no longer proposed deleted);
4. ``golden_id_history``: this run's events (replaced as a whole);
5. ``_publications``: the run marker with the versions of 1 and 2.

Into a table still empty (a lake's first publication) 1-3 append the same
rows instead of merging them (``merge_checked``).

Everything is computed from the state recorded by the last run marker (not
from whatever a killed attempt of this run left behind) and golden ids are
derived from the run id, so a re-run writes exactly the same rows and each
MERGE finds nothing left to change. A run that has a marker is not
published again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.decisions import open_xref_rows, steward_overrides, steward_pair_decisions
from jobs.delta_io import (
    Merge, create_if_missing, delta_identifier, is_empty, last_commit, quoted, read_table, replace_where, row_count,
    sql_string, table_exists,
)
from jobs.faults import fault_point
from jobs.runs import RunContext
from jobs.steps import step
from matching.golden_ids import golden_id_decisions, split_decisions
from matching.settings import Thresholds
from matching.survivorship import SurvivorshipSettings, apply_overrides, golden_attributes
from schemas.arrow import local_frame
from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.golden import (
    CUSTOMER_XREF_SCHEMA,
    GOLDEN_CUSTOMERS_SCHEMA,
    GOLDEN_ID_HISTORY_SCHEMA,
    MATCH_CANDIDATES_SCHEMA,
    PUBLICATIONS_SCHEMA,
    RECORD_STRUCT,
)

log = logging.getLogger("cdi.publish")

CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
TABLES: dict[str, tuple[StructType, dict[str, str]]] = {
    "golden_customers": (GOLDEN_CUSTOMERS_SCHEMA, CHANGE_FEED),
    "customer_xref": (CUSTOMER_XREF_SCHEMA, CHANGE_FEED),
    "match_candidates": (MATCH_CANDIDATES_SCHEMA, {}),
    "golden_id_history": (GOLDEN_ID_HISTORY_SCHEMA, {}),
    "_publications": (PUBLICATIONS_SCHEMA, {}),
}


class PublishMismatch(RuntimeError):
    """A MERGE changed a different number of rows than the job expected."""


@dataclass(frozen=True)
class PublishOutcome:
    already_published: bool
    golden_inserted: int = 0
    golden_updated: int = 0
    xref_inserted: int = 0
    xref_updated: int = 0
    candidates: int = 0
    active_golden: int = 0
    events: dict[str, int] | None = None


def ensure_tables(spark: SparkSession, context: RunContext) -> None:
    """Create the gold tables, and add the columns a table written by an older cdi lacks."""
    for name, (schema, properties) in TABLES.items():
        path = context.lake.gold(name)
        create_if_missing(spark, path, schema, properties)
        present = set(read_table(spark, path).columns)
        missing = [f for f in schema.fields if f.name not in present]
        if missing:
            columns = ", ".join(f"{quoted(f.name)} {f.dataType.simpleString()}" for f in missing)
            spark.sql(f"ALTER TABLE {delta_identifier(path)} ADD COLUMNS ({columns})")


def is_published(spark: SparkSession, context: RunContext) -> bool:
    path = context.lake.gold("_publications")
    return (
        table_exists(spark, path)
        and not is_empty(spark, path)
        and not read_table(spark, path).where(F.col("run_id") == context.run_id).isEmpty()
    )


def previous_state(spark: SparkSession, context: RunContext) -> tuple[DataFrame, DataFrame]:
    """golden_customers and customer_xref as the last completed run left them."""
    publications = context.lake.gold("_publications")
    marker = None if is_empty(spark, publications) else (
        read_table(spark, publications)
        .where(F.col("run_id") != context.run_id)
        .orderBy(F.col("published_at").desc(), F.col("run_id").desc())
        .first()
    )
    if marker is None:
        return (
            local_frame(spark, [], GOLDEN_CUSTOMERS_SCHEMA),
            local_frame(spark, [], CUSTOMER_XREF_SCHEMA),
        )

    def at(name: str, version: int) -> DataFrame:
        return spark.read.format("delta").option("versionAsOf", version).load(context.lake.gold(name))

    return at("golden_customers", marker["golden_customers_version"]), at("customer_xref", marker["customer_xref_version"])


def closed_rows(previous_xref: DataFrame, records: DataFrame, context: RunContext) -> DataFrame:
    """The xref rows of records that left ``customers_std`` (deleted at their source): closed, not removed."""
    return (
        open_xref_rows(previous_xref)
        .join(records.select("record_id"), "record_id", "left_anti")
        .select(
            "source_system",
            "source_key",
            "record_id",
            "golden_id",
            F.lit(None).cast("double").alias("match_probability"),
            F.lit("deleted").alias("linked_by"),
            F.lit(context.run_id).alias("run_id"),
            F.lit(context.started_at).cast("timestamp").alias("valid_to"),
        )
    )


def content_hash(columns: list[str]) -> Column:
    return F.sha2(F.to_json(F.struct(*[F.col(c) for c in columns])), 256)


HASHED = ["status", "survivor_id", *CANONICAL_ATTRIBUTES, "lineage", "num_records"]


def golden_rows(
    attributes: DataFrame, assigned: DataFrame, retired: DataFrame, previous_golden: DataFrame, context: RunContext
) -> DataFrame:
    """The new state of every golden id this run touches: active ones and newly retired ones."""
    now = F.lit(context.started_at).cast("timestamp")
    active = (
        attributes.join(assigned, "cluster_id")
        .drop("cluster_id")
        .withColumn("status", F.lit("active"))
        .withColumn("survivor_id", F.lit(None).cast("string"))
    )
    retired_rows = (
        previous_golden.join(retired, "golden_id")
        .drop("status", "survivor_id")
        .withColumn("status", F.when(F.col("related_id").isNull(), F.lit("deleted")).otherwise(F.lit("retired")))
        .withColumnRenamed("related_id", "survivor_id")
        .drop("first_seen", "last_updated", "content_hash", "run_id")
    )
    first_seen = previous_golden.select("golden_id", F.col("first_seen").alias("_prev_first_seen"))
    rows = active.unionByName(retired_rows.select(*active.columns)).join(first_seen, "golden_id", "left")
    return rows.select(
        "golden_id",
        "status",
        "survivor_id",
        *CANONICAL_ATTRIBUTES,
        "lineage",
        F.col("num_records").cast("int").alias("num_records"),
        F.coalesce("_prev_first_seen", now).alias("first_seen"),
        now.alias("last_updated"),
        content_hash(HASHED).alias("content_hash"),
        F.lit(context.run_id).alias("run_id"),
    )


def xref_rows(records: DataFrame, clusters: DataFrame, assigned: DataFrame, pairs: DataFrame,
              must_links: DataFrame, thresholds: Thresholds, context: RunContext) -> DataFrame:
    """Every record → its golden id, the best link that put it there and who made it."""
    membership = clusters.select("record_id", "cluster_id")
    linked = pairs.where(F.col("match_probability") >= thresholds.match).select(
        "record_id_l", "record_id_r", "match_probability", F.lit(False).alias("steward")
    ).unionByName(must_links.select("record_id_l", "record_id_r", F.lit(1.0).alias("match_probability"),
                                    F.lit(True).alias("steward")))
    ends = linked.select(F.col("record_id_l").alias("record_id"), F.col("record_id_r").alias("other"), "match_probability", "steward").unionByName(
        linked.select(F.col("record_id_r").alias("record_id"), F.col("record_id_l").alias("other"), "match_probability", "steward")
    )
    same_cluster = (
        ends.join(membership, "record_id")
        .join(membership.select(F.col("record_id").alias("other"), F.col("cluster_id").alias("_other_cluster")), "other")
        .where(F.col("cluster_id") == F.col("_other_cluster"))
        .groupBy("record_id")
        .agg(F.max("match_probability").alias("match_probability"), F.max("steward").alias("steward"))
    )
    return (
        records.select("record_id", "source_system", "source_key")
        .join(membership, "record_id")
        .join(assigned, "cluster_id")
        .join(same_cluster, "record_id", "left")
        .select(
            "source_system",
            "source_key",
            "record_id",
            "golden_id",
            F.when(F.col("steward"), F.lit(None).cast("double")).otherwise(F.col("match_probability")).alias("match_probability"),
            F.when(F.col("steward"), "steward").when(F.col("match_probability").isNotNull(), "model").otherwise("singleton").alias("linked_by"),
            F.lit(context.run_id).alias("run_id"),
            F.lit(None).cast("timestamp").alias("valid_to"),
        )
    )


def candidate_rows(records: DataFrame, pairs: DataFrame, clusters: DataFrame, decided: DataFrame,
                   thresholds: Thresholds, context: RunContext) -> DataFrame:
    """Pairs for a steward: between the thresholds, low inside a flagged cluster, or linked but kept apart.

    A pair scored above the match threshold whose records ended in different
    clusters was outweighed by the other pairs between their groups (see
    ``matching.cluster.split_disagreeing``): a steward should see that too.
    """
    probability = F.col("match_probability")

    def located(some_pairs: DataFrame, members: DataFrame) -> DataFrame:
        ends = {side: members.select(F.col("record_id").alias(f"record_id_{side}"), F.col("cluster_id").alias(f"_c{side}"))
                for side in ("l", "r")}
        return some_pairs.join(ends["l"], "record_id_l").join(ends["r"], "record_id_r")

    high = located(pairs.where(probability >= thresholds.review), clusters).withColumn(
        "reason",
        F.when(probability < thresholds.match, F.lit("between thresholds"))
        .when(F.col("_cl") != F.col("_cr"), F.lit("linked but kept apart")),
    )
    # A pair below the review threshold is shown only inside a flagged cluster. Those clusters' members are
    # few and most pairs are low: the members go to the pairs (broadcast), the pairs are not shuffled.
    flagged = F.broadcast(clusters.where(F.col("cluster_flag").isNotNull()))
    low = located(pairs.where(probability < thresholds.review), flagged).where(F.col("_cl") == F.col("_cr")).withColumn(
        "reason", F.lit("cluster members disagree")
    )
    queue = (
        high.unionByName(low)
        .where(F.col("reason").isNotNull())
        .select(*pairs.columns, "reason")
        .join(decided, ["record_id_l", "record_id_r"], "left_anti")
    )
    gamma = [c for c in pairs.columns if c.startswith("gamma_")]
    weights = [c for c in pairs.columns if c.startswith("mw_")]
    record = F.struct(*[F.col(f.name) for f in RECORD_STRUCT.fields])
    sides = {side: records.select(F.col("record_id").alias(f"record_id_{side}"), record.alias(f"record_{side}"))
             for side in ("l", "r")}
    return (
        queue.join(sides["l"], "record_id_l")
        .join(sides["r"], "record_id_r")
        .select(
            F.concat_ws("|", "record_id_l", "record_id_r").alias("pair_id"),
            "record_id_l",
            "record_id_r",
            "match_probability",
            "match_weight",
            F.map_from_arrays(F.array(*[F.lit(c[3:]) for c in weights]), F.array(*[F.col(c) for c in weights])).alias("evidence"),
            F.map_from_arrays(F.array(*[F.lit(c[6:]) for c in gamma]), F.array(*[F.col(c).cast("int") for c in gamma])).alias("levels"),
            "blocking_rule",
            "reason",
            "record_l",
            "record_r",
            F.lit(context.run_id).alias("run_id"),
        )
        .dropDuplicates(["pair_id"])
    )


def _merge_metrics(spark: SparkSession, path: str) -> dict[str, int]:
    """Rows the table's last commit inserted, updated and deleted, from Delta's operation metrics."""
    metrics = last_commit(spark, path)
    m = metrics["operationMetrics"]
    if metrics["operation"] == "WRITE":
        return {"inserted": int(m.get("numOutputRows", 0)), "updated": 0, "deleted": 0}
    if metrics["operation"] != "MERGE":
        return {"inserted": 0, "updated": 0, "deleted": 0}
    return {
        "inserted": int(m.get("numTargetRowsInserted", 0)),
        "updated": int(m.get("numTargetRowsUpdated", 0)),
        "deleted": int(m.get("numTargetRowsDeleted", 0)),
    }


def _expected_changes(path: str, source: DataFrame, target: DataFrame, key: str, changed: str,
                      delete_missing: bool) -> dict[str, int]:
    """Rows a MERGE of ``source`` into ``target`` on ``key`` inserts, updates and deletes, in one Spark job.

    Raises ``PublishMismatch`` when the source holds several rows for a key.
    """
    s = source.withColumn("__in_s", F.lit(True)).alias("s")
    t = target.withColumn("__in_t", F.lit(True)).alias("t")
    in_s, in_t = F.col("s.__in_s").isNotNull(), F.col("t.__in_t").isNotNull()
    totals = (
        s.join(t, F.col(f"s.{key}") == F.col(f"t.{key}"), "full_outer")
        .agg(
            F.sum((in_s & ~in_t).cast("long")).alias("inserted"),
            F.sum((in_s & in_t & F.expr(changed)).cast("long")).alias("updated"),
            F.sum((in_t & ~in_s).cast("long")).alias("deleted"),
            F.count(F.col(f"s.{key}")).alias("source_keys"),
            F.count_distinct(F.col(f"s.{key}")).alias("distinct_source_keys"),
        )
        .first()
    )
    _check_unique_keys(path, source, key, totals)
    return {
        "inserted": totals["inserted"] or 0,
        "updated": totals["updated"] or 0,
        "deleted": (totals["deleted"] or 0) if delete_missing else 0,
    }


def _expected_inserts(path: str, source: DataFrame, key: str) -> dict[str, int]:
    """As ``_expected_changes`` for an empty target: every source row is inserted."""
    totals = source.agg(
        F.count(F.lit(1)).alias("inserted"),
        F.count(F.col(key)).alias("source_keys"),
        F.count_distinct(F.col(key)).alias("distinct_source_keys"),
    ).first()
    _check_unique_keys(path, source, key, totals)
    return {"inserted": totals["inserted"], "updated": 0, "deleted": 0}


def _check_unique_keys(path: str, source: DataFrame, key: str, totals: Row) -> None:
    if totals["source_keys"] != totals["distinct_source_keys"]:
        duplicated = source.groupBy(key).count().where("count > 1").first()
        raise PublishMismatch(f"{path}: MERGE source has several rows for {key} {duplicated[key]}")


def merge_checked(spark: SparkSession, path: str, source: DataFrame, key: str, compare: list[str],
                  delete_missing: bool = False) -> dict[str, int]:
    """MERGE ``source`` into ``path`` on ``key``; update a row when any ``compare`` column differs.

    The source is checked to hold one row per key, and Delta's operation
    metrics are checked against the counts computed beforehand. Nothing is
    committed when nothing would change, so replaying a run adds no version.
    An empty table is appended to instead: the same rows, one join fewer.
    """
    source = source.persist()
    try:
        target = read_table(spark, path)
        if is_empty(spark, path):
            # A first publication: appending is the same change as the MERGE, without joining an empty table.
            expected = _expected_inserts(path, source, key)
            if expected["inserted"]:
                fault_point(f"publish:during:{path.rsplit('/', 1)[-1]}")
                source.select(*target.columns).write.format("delta").mode("append").save(path)
                _check_metrics(spark, path, expected)
            return expected
        changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in compare)
        expected = _expected_changes(path, source, target, key, changed, delete_missing)
        if any(expected.values()):
            fault_point(f"publish:during:{path.rsplit('/', 1)[-1]}")
            merge = (
                Merge(path, source, f"t.{key} = s.{key}")
                .when_matched_update_all(condition=changed)
                .when_not_matched_insert_all()
            )
            if delete_missing:
                merge = merge.when_not_matched_by_source_delete()
            merge.execute(spark)
            _check_metrics(spark, path, expected)
        return expected
    finally:
        source.unpersist()


def _check_metrics(spark: SparkSession, path: str, expected: dict[str, int]) -> None:
    actual = _merge_metrics(spark, path)
    if actual != expected:
        raise PublishMismatch(f"{path}: MERGE changed {actual}, expected {expected}")


def run_publish(spark: SparkSession, context: RunContext, survivorship: SurvivorshipSettings,
                thresholds: Thresholds) -> PublishOutcome:
    lake = context.lake
    ensure_tables(spark, context)
    if is_published(spark, context):
        return PublishOutcome(already_published=True)
    previous_golden, published_xref = previous_state(spark, context)
    previous_xref = open_xref_rows(published_xref)
    records = read_table(spark, lake.customers_std)
    clusters = read_table(spark, lake.path("silver", "clusters"))
    pairs = read_table(spark, lake.path("silver", "pairs"))
    decided = steward_pair_decisions(spark, context)
    must_links = decided.where("is_match").select("record_id_l", "record_id_r")

    with step(spark, "publish.assign_ids", "assigning golden ids"):
        id_decisions = golden_id_decisions(
            clusters, previous_xref, previous_golden.select("golden_id", "first_seen"), context.run_id
        ).localCheckpoint()
        assigned, history = split_decisions(id_decisions, context.run_id)
    retired = history.where(F.col("event").isin("retire", "delete")).select("golden_id", "related_id")
    members = records.join(clusters.select("record_id", "cluster_id"), "record_id")
    # A steward's override of a golden value holds while that golden record's records are unchanged.
    overrides = steward_overrides(spark, context).join(assigned, "golden_id")
    attributes = apply_overrides(
        golden_attributes(members, survivorship), members.select("cluster_id", "record_id", "record_hash"), overrides
    )

    golden = golden_rows(attributes, assigned, retired, previous_golden, context)
    with step(spark, "publish.golden_customers", "writing golden customers"):
        golden_counts = merge_checked(spark, lake.gold("golden_customers"), golden, "golden_id", ["content_hash"])
    fault_point("publish:after:golden_customers")

    xref = xref_rows(records, clusters, assigned, pairs, must_links, thresholds, context).unionByName(
        closed_rows(previous_xref, records, context)
    )
    with step(spark, "publish.customer_xref", "writing the cross-reference"):
        # A probability that moved alone is not a change a reader cares about: the row is left as it was.
        xref_counts = merge_checked(
            spark, lake.gold("customer_xref"), xref, "record_id", ["golden_id", "linked_by", "valid_to"]
        )
    fault_point("publish:after:customer_xref")

    candidates = candidate_rows(records, pairs, clusters, decided.select("record_id_l", "record_id_r"), thresholds, context)
    with step(spark, "publish.match_candidates", "writing the review queue"):
        merge_checked(
            spark, lake.gold("match_candidates"), candidates, "pair_id",
            ["match_probability", "match_weight", "reason", "record_l", "record_r"], delete_missing=True,
        )

    stamped = history.withColumn("at", F.lit(context.started_at).cast("timestamp")).select(*GOLDEN_ID_HISTORY_SCHEMA.fieldNames())
    replace_where(stamped, lake.gold("golden_id_history"), f"run_id = {sql_string(context.run_id)}")
    fault_point("publish:after:golden_id_history")

    versions = {name: last_commit(spark, lake.gold(name))["version"] for name in ("golden_customers", "customer_xref")}
    marker = local_frame(
        spark,
        [(context.run_id, context.started_at, versions["golden_customers"], versions["customer_xref"])],
        PUBLICATIONS_SCHEMA,
    )
    marker.write.format("delta").mode("append").save(lake.gold("_publications"))
    events = {r["event"]: r["count"] for r in history.groupBy("event").count().collect()}
    active = read_table(spark, lake.gold("golden_customers")).where("status = 'active'").count()
    return PublishOutcome(
        already_published=False,
        golden_inserted=golden_counts["inserted"],
        golden_updated=golden_counts["updated"],
        xref_inserted=xref_counts["inserted"],
        xref_updated=xref_counts["updated"],
        candidates=row_count(spark, lake.gold("match_candidates")),
        active_golden=active,
        events=events,
    )
