"""The ``customer_360`` stage: activity linked to golden customers, the 360 view, households.

Runs after ``publish``, on what it published:

- ``gold/customer_activity``: every live activity row of every activity table
  (``jobs/activities.py``) with its golden id through ``customer_xref`` and a
  ``link_status`` (``linked``, or why not: ``unknown_customer``,
  ``customer_deleted``, ``customer_erased``) and the reasons any of its values
  were nulled (``value_issues``), rewritten in one commit when any row
  changed: when golden ids merge, split or retire, each activity follows its
  source record to the customer that record belongs to now, in the same run;
- ``gold/customer_360``: one row per active golden customer
  (``matching.customer_360``), merged by golden id: only rows whose content
  changed are rewritten, customers no longer active are removed, and the
  Change Data Feed records each change;
- ``gold/households``: golden customers who live together
  (``matching.households``), one row per household with its members and the
  evidence, merged the same way; a household keeps its id across runs while
  most of its members stay.

Every activity row is accounted for: ``rows = linked + orphans`` is checked,
and the orphans' counts per table and reason go to ``run_audit`` and the
run folder (``activity.json``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timezone

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, StringType, StructField, StructType

from jobs.activities import current_activity
from jobs.audit import AuditRow, Stopwatch, record_audit
from jobs.delta_io import Merge, read_table, row_count, rows_in_new_table, table_exists
from jobs.runs import RunContext
from jobs.steps import step
from jobs.suppressions import lake_salt
from jobs.validate import local_run_dir
from matching.customer_360 import (
    ACTIVITY_SCHEMA,
    LINKED,
    LINKED_ACTIVITY_SCHEMA,
    SegmentThresholds,
    customer_360,
    department_combinations,
    link_activities,
    link_counts,
    segment_sizes,
)
from matching.households import find_households
from matching.normalize_activities import ISSUES_COLUMN
from schemas.arrow import local_frame
from schemas.golden import CUSTOMER_XREF_SCHEMA, GOLDEN_CUSTOMERS_SCHEMA

log = logging.getLogger("cdi.customer_360")

ACTIVITY_TABLE, VIEW_TABLE, HOUSEHOLDS_TABLE = "customer_activity", "customer_360", "households"
TABLES = (ACTIVITY_TABLE, VIEW_TABLE, HOUSEHOLDS_TABLE)
CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
ACTIVITY_KEY = ["source_system", "activity", "activity_key"]
# Up to this many cross-reference rows the activity meets them broadcast (``link_activities``): at a million
# (about 100 MB on the driver) the 4.4M activity rows of the 1M demo lake linked in 6.0-7.0 s instead of
# 8.5-9.6 s, warm (docs/benchmarks.md). Beyond it both sides are shuffled, as Spark would choose.
BROADCAST_XREF_ROWS = 2_000_000

CUSTOMER_ACTIVITY_SCHEMA = StructType(
    [*LINKED_ACTIVITY_SCHEMA.fields, StructField(ISSUES_COLUMN, ArrayType(StringType(), False), False),
     StructField("run_id", StringType(), False)]
)
HOUSEHOLDS_SCHEMA = StructType(
    [
        StructField("household_id", StringType(), False),
        StructField("golden_ids", ArrayType(StringType(), False), False),  # sorted
        StructField("size", IntegerType(), False),
        StructField("evidence", ArrayType(StringType(), False), False),  # email, family_name, phone: what they share
        StructField("run_id", StringType(), False),  # the run that last changed the row
    ]
)


@dataclass
class Customer360Outcome:
    activity_rows: int
    linked: int
    orphans: dict[str, dict[str, int]]  # "<source>/<activity>" -> reason -> rows
    customers: int
    segments: dict[str, int]
    department_combinations: dict[str, int]
    households: int
    household_members: int
    changed_rows: dict[str, int] = field(default_factory=dict)  # table -> rows inserted, updated or deleted


def as_of_time(context: RunContext) -> datetime:
    """The moment contact ages are measured from: the run's start, or the configured date at 00:00 UTC."""
    configured = context.config.customer_360.as_of
    if configured == "run":
        return context.started_at.astimezone(timezone.utc)
    return datetime.combine(configured, time(0, 0), tzinfo=timezone.utc)


def thresholds_of(context: RunContext) -> SegmentThresholds:
    settings = context.config.customer_360
    return SegmentThresholds(settings.new_days, settings.active_days, settings.lapsing_days)


def _merge_by_key(
    spark: SparkSession, rows: DataFrame, path: str, keys: list[str], compare: list[str], change_feed: bool = True
) -> int:
    """Make the table at ``path`` hold exactly ``rows``, rewriting only rows whose ``compare`` columns changed.

    The changes are counted first (one join): with none, nothing is committed,
    so a re-run of a run leaves the table's version as it was. With
    ``change_feed`` the table is created with the Change Data Feed on and
    changed by a MERGE, so the feed holds only the changed rows; without it a
    changed table is overwritten in one commit, which on millions of rows with
    changes spread over every file is quicker than a MERGE. Returns the rows
    inserted, updated or deleted. ``rows`` is computed once: written as it is
    into a new table, checkpointed first when it is compared with a stored one.
    """
    if not table_exists(spark, path):
        writer = rows.write.format("delta")
        for name, value in (CHANGE_FEED if change_feed else {}).items():
            writer = writer.option(name, value)
        writer.save(path)
        return rows_in_new_table(path, rows)
    rows = rows.localCheckpoint()
    target = read_table(spark, path)
    source_side, target_side = rows.withColumn("_in_source", F.lit(True)), target.withColumn("_in_target", F.lit(True))
    joined = source_side.alias("s").join(target_side.alias("t"), keys, "full_outer")
    differs = F.lit(False)
    for column in compare:
        differs = differs | ~F.col(f"s.{column}").eqNullSafe(F.col(f"t.{column}"))
    changes = joined.where(F.col("_in_source").isNull() | F.col("_in_target").isNull() | differs).count()
    if changes == 0:
        return 0
    if not change_feed:
        rows.write.format("delta").mode("overwrite").save(path)
        return changes
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in compare)
    (
        Merge(path, rows, " AND ".join(f"t.{k} = s.{k}" for k in keys))
        .when_matched_update_all(condition=changed)
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete()
        .execute(spark)
    )
    return changes


def _households(spark: SparkSession, golden: DataFrame, path: str, run_id: str) -> DataFrame:
    """This run's households, keeping the ids of the last run's (``matching.households``)."""
    columns = ["golden_id", "family_name", "phone", "email", "address_line1", "address_line2", "postcode"]
    active = golden.where(F.col("status") == "active").select(*columns).toPandas()
    previous = None
    if table_exists(spark, path):
        members = read_table(spark, path).select(F.explode("golden_ids").alias("golden_id"), "household_id").toPandas()
        previous = pd.Series(members["household_id"].to_numpy(), index=members["golden_id"].to_numpy(), dtype=object)
    found = find_households(active, previous)
    rows = [
        (row.household_id, list(row.golden_ids), int(row.size), list(row.evidence), run_id)
        for row in found.households.itertuples(index=False)
    ]
    return local_frame(spark, rows, HOUSEHOLDS_SCHEMA)


def run_customer_360(spark: SparkSession, context: RunContext) -> Customer360Outcome:
    lake, run_id = context.lake, context.run_id
    golden = read_table(spark, lake.gold("golden_customers"), GOLDEN_CUSTOMERS_SCHEMA)
    xref = read_table(spark, lake.gold("customer_xref"), CUSTOMER_XREF_SCHEMA)
    changed: dict[str, int] = {}
    with step(spark, "customer_360.link", "linking activity to golden customers"):
        activity = current_activity(spark, lake, context.config)
        if activity is None:
            activity = local_frame(spark, [], StructType([*ACTIVITY_SCHEMA.fields, CUSTOMER_ACTIVITY_SCHEMA[ISSUES_COLUMN]]))
        small_xref = row_count(spark, lake.gold("customer_xref")) <= BROADCAST_XREF_ROWS
        linked = (
            link_activities(activity, xref, lake_salt(spark, lake), broadcast_xref=small_xref)
            .withColumn("run_id", F.lit(run_id))
            .select(*CUSTOMER_ACTIVITY_SCHEMA.fieldNames())
        )
        activity_path = lake.gold(ACTIVITY_TABLE)
        changed[ACTIVITY_TABLE] = _merge_by_key(
            spark, linked, activity_path, ACTIVITY_KEY,
            [c for c in CUSTOMER_ACTIVITY_SCHEMA.fieldNames() if c not in (*ACTIVITY_KEY, "run_id")],
            change_feed=False,
        )
        linked = read_table(spark, activity_path)
        orphans: dict[str, dict[str, int]] = {}
        total = linked_rows = 0
        for row in link_counts(linked).collect():
            total += row["rows"]
            if row["link_status"] == LINKED:
                linked_rows += row["rows"]
            else:
                orphans.setdefault(f"{row['source_system']}/{row['activity']}", {})[row["link_status"]] = row["rows"]
    with step(spark, "customer_360.view", "building the customer 360 view"):
        view = customer_360(linked, golden, xref, as_of_time(context), thresholds_of(context))
        changed[VIEW_TABLE] = _merge_by_key(spark, view, lake.gold(VIEW_TABLE), ["golden_id"], ["content_hash"])
        stored = read_table(spark, lake.gold(VIEW_TABLE))
        segments = {row["segment"]: row["customers"] for row in segment_sizes(stored).collect()}
        combinations = {row["departments"]: row["customers"] for row in department_combinations(stored).collect()}
    with step(spark, "customer_360.households", "finding households"):
        households_path = lake.gold(HOUSEHOLDS_TABLE)
        households = _households(spark, golden, households_path, run_id)
        changed[HOUSEHOLDS_TABLE] = _merge_by_key(
            spark, households, households_path, ["household_id"], ["golden_ids", "evidence"]
        )
        sizes = read_table(spark, households_path).agg(F.count(F.lit(1)), F.sum("size")).first()
    return Customer360Outcome(
        activity_rows=total,
        linked=linked_rows,
        orphans=orphans,
        customers=sum(segments.values()),
        segments=segments,
        department_combinations=combinations,
        households=sizes[0],
        household_members=sizes[1] or 0,
        changed_rows=changed,
    )


def stage_customer_360(spark: SparkSession, context: RunContext) -> Customer360Outcome:
    """Build the tables, then record the counts in ``run_audit`` (source ``activity``: rows in, linked,
    orphaned) and ``activity.json`` in the run folder."""
    watch = Stopwatch()
    outcome = run_customer_360(spark, context)
    detail = {
        "orphans": outcome.orphans,
        "segments": outcome.segments,
        "department_combinations": outcome.department_combinations,
        "households": outcome.households,
        "household_members": outcome.household_members,
        "changed_rows": outcome.changed_rows,
        "as_of": as_of_time(context).isoformat(),
    }
    record_audit(
        spark,
        context.lake,
        [
            AuditRow(
                run_id=context.run_id, stage="customer_360", source_system="activity", status="ok",
                rows_in=outcome.activity_rows, rows_out=outcome.linked,
                rows_rejected=outcome.activity_rows - outcome.linked, detail=detail,
                started_at=watch.started_at, seconds=watch.seconds,
            )
        ],
    )
    (local_run_dir(context) / "activity.json").write_text(json.dumps(detail, indent=2, sort_keys=True))
    return outcome
