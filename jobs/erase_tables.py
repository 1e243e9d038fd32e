"""The table writes of ``cdi erase`` (``jobs/erase.py``): deletes, blanking updates, VACUUM.

Every delete is a MERGE from a DataFrame of the rows' keys, never a DELETE
whose predicate spells out keys or values: a predicate is stored in the
commit's ``operationParameters`` in ``_delta_log``, which no VACUUM removes.
The key frames are computed from the table itself and from the erased
records (``Scope``), which are built from lists on the driver and never
written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from config.lake import Lake
from jobs.delta_io import (
    Merge, append, delta_identifier, detail, history, last_commit, read_table, table_exists, table_version, vacuum,
)
from jobs.ingest import TOMBSTONE
from jobs.publish import HASHED, content_hash
from jobs.spark import listing_parallelism, session_conf
from jobs.suppressions import key_hash_column
from schemas.arrow import local_frame
from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.golden import GOLDEN_ID_HISTORY_SCHEMA, PUBLICATIONS_SCHEMA

ERASED = "erased"
# Operations that change a table's rows; OPTIMIZE, VACUUM and property changes do not.
DATA_CHANGES = {
    "WRITE",
    "MERGE",
    "UPDATE",
    "DELETE",
    "RESTORE",
    "TRUNCATE",
    "STREAMING UPDATE",
    "CREATE TABLE AS SELECT",
    "REPLACE TABLE AS SELECT",
    "CREATE OR REPLACE TABLE AS SELECT",
}


@dataclass(frozen=True)
class Scope:
    """The erased records (``source_system``, ``source_key``, ``record_id``) and golden ids (``golden_id``)."""

    records: DataFrame
    golden_ids: DataFrame

    def record_ids(self, column: str = "record_id") -> DataFrame:
        return F.broadcast(self.records.select(F.col("record_id").alias(column)))

    def keys(self) -> DataFrame:
        return F.broadcast(self.records.select("source_system", "source_key"))

    def golden(self, column: str = "golden_id") -> DataFrame:
        return F.broadcast(self.golden_ids.select(F.col("golden_id").alias(column)))


Doomed = Callable[[DataFrame, Scope], DataFrame]


@dataclass(frozen=True)
class Deletion:
    """Rows of one table to delete: ``doomed`` gives their ``on`` columns."""

    name: str
    path: str
    on: tuple[str, ...]
    doomed: Doomed


def by_key(table: DataFrame, scope: Scope) -> DataFrame:
    return table.join(scope.keys(), ["source_system", "source_key"], "left_semi").select("source_system", "source_key")


def by_record(table: DataFrame, scope: Scope) -> DataFrame:
    return table.join(scope.record_ids(), "record_id", "left_semi").select("record_id")


def _either_side(table: DataFrame, scope: Scope) -> DataFrame:
    return table.join(scope.record_ids("record_id_l"), "record_id_l", "left_semi").unionByName(
        table.join(scope.record_ids("record_id_r"), "record_id_r", "left_semi")
    )


def by_pair(table: DataFrame, scope: Scope) -> DataFrame:
    return _either_side(table, scope).select("record_id_l", "record_id_r")


def by_pair_id(table: DataFrame, scope: Scope) -> DataFrame:
    return _either_side(table, scope).select("pair_id")


def by_decision(table: DataFrame, scope: Scope) -> DataFrame:
    """Decisions naming an erased record or golden id (a pair, a split, a merge or an override), the
    record id lists of a split or an override included (columns a table written by an older cdi lacks)."""
    about_golden = table.join(scope.golden(), "golden_id", "left_semi").unionByName(
        table.join(scope.golden("golden_id_other"), "golden_id_other", "left_semi")
    )
    doomed = _either_side(table, scope).unionByName(about_golden).select("decision_id")
    for column in ("record_ids", "other_ids"):
        if column in table.columns:
            erased = scope.record_ids("_erased")
            listed = table.join(erased, F.array_contains(table[column], erased["_erased"]), "left_semi")
            doomed = doomed.unionByName(listed.select("decision_id"))
    return doomed


def by_customer(table: DataFrame, scope: Scope) -> DataFrame:
    """Rows of a bronze activity table whose customer is an erased record (every version), and the
    tombstones of activity keys no other customer's row holds: they would keep the person's activity keys."""
    customers = scope.keys().withColumnRenamed("source_key", "customer_key")
    theirs = table.join(customers, ["source_system", "customer_key"], "left_semi")
    others = table.where(F.col("customer_key").isNotNull()).join(customers, ["source_system", "customer_key"], "left_anti")
    keys = ["source_system", "source_key"]
    tombstones = (
        table.where(F.col(TOMBSTONE))
        .join(theirs.select(*keys), keys, "left_semi")
        .join(others.select(*keys), keys, "left_anti")
    )
    return theirs.unionByName(tombstones).select(*keys, "record_hash")


def by_golden(table: DataFrame, scope: Scope) -> DataFrame:
    return table.join(scope.golden(), "golden_id", "left_semi").select("golden_id")


def by_member(table: DataFrame, scope: Scope) -> DataFrame:
    """Households with an erased golden id among their members."""
    erased = scope.golden("_erased")
    return table.join(erased, F.array_contains(table["golden_ids"], erased["_erased"]), "left_semi").select(
        "household_id"
    )


def by_quarantined_activity(customer_keys: Mapping[str, tuple[str, ...]]) -> Doomed:
    """Quarantined activity rows (source ``<source>/<activity>``) whose customer key, read from the row's JSON
    with ``customer_keys`` (label -> the key's bronze column names), is an erased record's key."""

    def doomed(table: DataFrame, scope: Scope) -> DataFrame:
        found = table.limit(0).select("source_system", "source_key")
        for label, columns in customer_keys.items():
            source = label.split("/", 1)[0]
            key = F.concat_ws("|", *[F.get_json_object("record", f"$['{c}']") for c in columns])
            erased = scope.keys().where(F.col("source_system") == source).select(F.col("source_key").alias("_customer"))
            rows = table.where(F.col("source_system") == label).withColumn("_customer", key)
            found = found.unionByName(rows.join(erased, "_customer", "left_semi").select("source_system", "source_key"))
        return found

    return doomed


def deletions(
    lake: Lake,
    bronze: dict[str, str],
    activity: dict[str, str],
    customer_keys: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Deletion]:
    """Every table rows of an erased record are deleted from, ``bronze`` being source name -> path and
    ``activity`` ``<source>.<activity>`` -> path and ``customer_keys`` each configured activity table's
    ``<source>/<activity>`` -> its customer key columns (for its quarantined rows).

    A household with an erased member is deleted whole rather than shrunk: what
    its other members share (``evidence``) may have been shared only through the
    erased one, and a household of two would be one person. The next
    ``customer_360`` stage finds the remaining members' household again, under
    a new id.
    """

    def silver(name: str) -> str:
        return lake.path("silver", name)

    return [
        *[
            Deletion(f"bronze/{source}", path, ("source_system", "source_key"), by_key)
            for source, path in bronze.items()
        ],
        *[
            Deletion(f"bronze/{name}", path, ("source_system", "source_key", "record_hash"), by_customer)
            for name, path in activity.items()
        ],
        Deletion("silver/customers_staged", silver("customers_staged"), ("record_id",), by_record),
        Deletion("silver/customers_std", lake.customers_std, ("record_id",), by_record),
        Deletion("silver/quarantine", lake.quarantine, ("source_system", "source_key"), by_key),
        Deletion(
            "silver/quarantine (activity)", lake.quarantine, ("source_system", "source_key"),
            by_quarantined_activity(customer_keys or {}),
        ),
        Deletion("silver/pairs", silver("pairs"), ("record_id_l", "record_id_r"), by_pair),
        Deletion("silver/clusters", silver("clusters"), ("record_id",), by_record),
        Deletion("gold/match_candidates", lake.gold("match_candidates"), ("pair_id",), by_pair_id),
        Deletion("gold/steward_decisions", lake.gold("steward_decisions"), ("decision_id",), by_decision),
        Deletion("gold/customer_activity", lake.gold("customer_activity"), ("record_id",), by_record),
        Deletion("gold/customer_360", lake.gold("customer_360"), ("golden_id",), by_golden),
        Deletion("gold/households", lake.gold("households"), ("household_id",), by_member),
    ]


def doomed_rows(spark: SparkSession, deletion: Deletion, scope: Scope) -> DataFrame | None:
    """The distinct keys of the rows to delete, materialized; None when the table does not exist."""
    if not table_exists(spark, deletion.path):
        return None
    return deletion.doomed(read_table(spark, deletion.path), scope).distinct().localCheckpoint()


def last_metric(spark: SparkSession, path: str, metric: str) -> int:
    return int(last_commit(spark, path)["operationMetrics"].get(metric, 0))


def merge_delete(spark: SparkSession, path: str, doomed: DataFrame, on: tuple[str, ...]) -> int:
    """Delete the rows whose ``on`` columns equal a row of ``doomed``; returns how many went."""
    condition = " AND ".join(f"t.{c} = s.{c}" for c in on)
    Merge(path, doomed, condition).when_matched_delete().execute(spark)
    return last_metric(spark, path, "numTargetRowsDeleted")


def relabel_clusters(spark: SparkSession, path: str, scope: Scope) -> int:
    """Give clusters and components named after an erased record the smallest remaining record id.

    ``cluster_id`` and ``component_id`` are the smallest ``record_id`` of their
    group, so another person's row may carry an erased record's id as a label.
    Run after the erased rows are deleted; the labels stay consistent, which
    is all the incremental match needs of them.
    """
    if not table_exists(spark, path):
        return 0
    clusters = read_table(spark, path)
    flagged = clusters.join(
        scope.record_ids("cluster_id").withColumn("_cluster_erased", F.lit(True)), "cluster_id", "left"
    ).join(scope.record_ids("component_id").withColumn("_component_erased", F.lit(True)), "component_id", "left")
    stale = flagged.where(F.col("_cluster_erased").isNotNull() | F.col("_component_erased").isNotNull())
    relabelled = stale.select(
        "record_id",
        F.when(F.col("_cluster_erased").isNotNull(), F.min("record_id").over(Window.partitionBy("cluster_id")))
        .otherwise(F.col("cluster_id"))
        .alias("cluster_id"),
        F.when(F.col("_component_erased").isNotNull(), F.min("record_id").over(Window.partitionBy("component_id")))
        .otherwise(F.col("component_id"))
        .alias("component_id"),
    ).localCheckpoint()
    if relabelled.isEmpty():
        return 0
    Merge(path, relabelled, "t.record_id = s.record_id").when_matched_update(["cluster_id", "component_id"]).execute(spark)
    return last_metric(spark, path, "numTargetRowsUpdated")


def erased_golden_rows(golden: DataFrame, scope: Scope, erasure_id: str, at: datetime) -> DataFrame:
    """The erased golden rows: every attribute and the lineage null, no records, ``status='erased'``.

    ``golden_id``, ``survivor_id`` (another golden id) and ``first_seen`` stay:
    they say nothing about the person and keep the golden id's history readable.
    """
    blank = {a: F.lit(None).cast(golden.schema[a].dataType) for a in (*CANONICAL_ATTRIBUTES, "lineage")}
    replaced = {
        **blank,
        "status": F.lit(ERASED),
        "num_records": F.lit(0).cast("int"),
        "last_updated": F.lit(at).cast("timestamp"),
        "run_id": F.lit(erasure_id),
    }
    rows = golden.join(scope.golden(), "golden_id", "left_semi").where(F.col("status") != ERASED)
    blanked = rows.select(*[replaced.get(c, F.col(c)).alias(c) for c in golden.columns])
    return blanked.withColumn("content_hash", content_hash(HASHED)).select(*golden.columns)


def erase_golden(spark: SparkSession, path: str, scope: Scope, erasure_id: str, at: datetime, dry_run: bool) -> int:
    if not table_exists(spark, path):
        return 0
    rows = erased_golden_rows(read_table(spark, path), scope, erasure_id, at).localCheckpoint()
    count = rows.count()
    if count and not dry_run:
        Merge(path, rows, "t.golden_id = s.golden_id").when_matched_update_all().execute(spark)
    return count


def ensure_valid_to(spark: SparkSession, path: str) -> None:
    """Add ``valid_to`` to a customer_xref written before the column existed."""
    if "valid_to" not in read_table(spark, path).columns:
        spark.sql(f"ALTER TABLE {delta_identifier(path)} ADD COLUMNS (valid_to TIMESTAMP)")


def erased_xref_rows(xref: DataFrame, scope: Scope, salt: str, erasure_id: str, at: datetime) -> DataFrame:
    """The erased golden ids' xref rows, closed, with the key replaced by ``erased:<salted key hash>``.

    The row stays so a downstream system that held the record id learns (from
    the change feed) that it was erased, and ``source_system`` stays as
    non-personal lineage; the key itself cannot be read back from the hash
    without the lake's salt.
    """
    hashed = F.concat(F.lit(f"{ERASED}:"), key_hash_column(salt, F.col("source_system"), F.col("source_key")))
    replaced = {
        "source_key": hashed,
        "record_id": hashed,
        "match_probability": F.lit(None).cast("double"),
        "linked_by": F.lit(ERASED),
        "run_id": F.lit(erasure_id),
        "valid_to": F.lit(at).cast("timestamp"),
    }
    rows = xref.join(scope.golden(), "golden_id", "left_semi").where(
        ~F.coalesce(F.col("linked_by") == ERASED, F.lit(False))
    )
    return rows.select(
        F.col("record_id").alias("_erased_record_id"), *[replaced.get(c, F.col(c)).alias(c) for c in xref.columns]
    )


def erase_xref(
    spark: SparkSession, path: str, scope: Scope, salt: str | None, erasure_id: str, at: datetime, dry_run: bool
) -> int:
    if not table_exists(spark, path):
        return 0
    if dry_run:
        rows = read_table(spark, path).join(scope.golden(), "golden_id", "left_semi")
        return rows.where(~F.coalesce(F.col("linked_by") == ERASED, F.lit(False))).count()
    ensure_valid_to(spark, path)
    rows = erased_xref_rows(read_table(spark, path), scope, salt, erasure_id, at).localCheckpoint()
    count = rows.count()
    if count:
        columns = [c for c in rows.columns if c != "_erased_record_id"]
        Merge(path, rows, "t.record_id = s._erased_record_id").when_matched_update(columns).execute(spark)
    return count


def log_erase_events(
    spark: SparkSession, lake: Lake, records_per_golden: dict[str, int], erasure_id: str, at: datetime
) -> None:
    """An ``erase`` event per golden id in ``golden_id_history`` (ids and counts only)."""
    path = lake.gold("golden_id_history")
    if not records_per_golden or not table_exists(spark, path):
        return
    rows = [
        (erasure_id, "erase", golden_id, None, count, at) for golden_id, count in sorted(records_per_golden.items())
    ]
    append(local_frame(spark, rows, GOLDEN_ID_HISTORY_SCHEMA), path)


def announce_erasure(spark: SparkSession, lake: Lake, scope: Scope) -> None:
    """Give the change feed an update of every erased golden and xref row, showing its erased state.

    VACUUM at 0 hours deletes the change data of the erasing commits too (their
    pre-images hold the person's values), so a feed reader would otherwise
    never hear of the erasure. Run after the vacuum: these changes hold no
    personal value, in pre- or post-image.
    """
    for name, erased in (("golden_customers", "t.status = 'erased'"), ("customer_xref", "t.linked_by = 'erased'")):
        path = lake.gold(name)
        if table_exists(spark, path):
            (
                Merge(path, scope.golden(), "t.golden_id = s.golden_id")
                .when_matched_set({"run_id": "t.run_id"}, condition=erased)
                .execute(spark)
            )


def latest_publication(spark: SparkSession, lake: Lake) -> Row | None:
    path = lake.gold("_publications")
    if not table_exists(spark, path):
        return None
    return read_table(spark, path).orderBy(F.col("published_at").desc(), F.col("run_id").desc()).first()


def unpublished_changes(spark: SparkSession, lake: Lake) -> list[str]:
    """Gold tables whose rows changed after the last run marker (a run that stopped while publishing).

    The next run reads the marker's versions by time travel, which VACUUM at 0
    hours would make unreadable; that run must be finished first.
    """
    marker = latest_publication(spark, lake)
    if marker is None:
        return []
    changed = []
    for name in ("golden_customers", "customer_xref"):
        later = history(spark, lake.gold(name)).where(
            (F.col("version") > marker[f"{name}_version"]) & F.col("operation").isin(*DATA_CHANGES)
        )
        if not later.isEmpty():
            changed.append(name)
    return changed


def mark_publication(spark: SparkSession, lake: Lake, erasure_id: str, at: datetime) -> bool:
    """A run marker at the erased versions of golden_customers and customer_xref, for the next run's ``previous_state``."""
    if latest_publication(spark, lake) is None:
        return False
    versions = (table_version(spark, lake.gold("golden_customers")), table_version(spark, lake.gold("customer_xref")))
    marker = local_frame(spark, [(erasure_id, at, *versions)], PUBLICATIONS_SCHEMA)
    append(marker, lake.gold("_publications"))
    return True


@contextmanager
def zero_retention(spark: SparkSession) -> Iterator[None]:
    """Let VACUUM remove every file the current version does not use, and list files with a few tasks.

    Delta lists a table's folders with ``parallelPartitionDiscovery.parallelism``
    tasks (10 000 by default): on a small machine that alone takes minutes
    per table.
    """
    settings = {
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(listing_parallelism(spark)),
    }
    with session_conf(spark, settings):
        yield


def vacuum_now(spark: SparkSession, paths: list[str]) -> list[str]:
    """VACUUM RETAIN 0 HOURS every existing table of ``paths``; returns the ones vacuumed."""
    done = []
    with zero_retention(spark):
        for path in paths:
            if table_exists(spark, path):
                vacuum(spark, path, 0)
                done.append(path)
    return done


def keep_no_statistics(spark: SparkSession, paths: list[str]) -> list[str]:
    """Stop the tables of ``paths`` recording column statistics; returns the ones that did until now.

    Their older commits still hold per-file min/max values in ``_delta_log``
    until Delta's log retention removes them (``delta.logRetentionDuration``).
    """
    changed = []
    for path in paths:
        if not table_exists(spark, path):
            continue
        properties = detail(spark, path)["properties"] or {}
        if properties.get("delta.dataSkippingNumIndexedCols") != "0":
            spark.sql(
                f"ALTER TABLE {delta_identifier(path)} SET TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '0')"
            )
            changed.append(path)
    return changed


def silver_versions(spark: SparkSession, lake: Lake) -> tuple[int | None, int | None]:
    return table_version(spark, lake.path("silver", "pairs")), table_version(spark, lake.path("silver", "clusters"))


def rewrite_match_state(
    spark: SparkSession, lake: Lake, redact_json: Callable[[str], str], silver_before: tuple[int | None, int | None]
) -> bool:
    """The saved match model without the erased values, at the silver versions the erasure left.

    The versions move on only when the state went with the silver tables
    before the erasure (``jobs/match_state.silver_goes_with``), so the next
    ``--incremental`` run still scores only new records, and a state that was
    already stale stays stale. Call it after silver/pairs and silver/clusters
    are vacuumed: VACUUM adds versions too.
    """
    path = lake.path("silver", "match_model")
    if not table_exists(spark, path):
        return False
    table = read_table(spark, path)
    state = table.first()
    if state is None:
        return False
    row = state.asDict()
    for column in ("model_json", "guarded_blocks"):
        if row.get(column):
            row[column] = redact_json(row[column])
    if (row.get("pairs_version"), row.get("clusters_version")) == silver_before:
        row["pairs_version"], row["clusters_version"] = silver_versions(spark, lake)
    rewritten = local_frame(spark, [tuple(row[c] for c in table.columns)], table.schema)
    rewritten.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    return True
