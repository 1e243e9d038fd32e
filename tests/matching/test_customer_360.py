"""Customer 360: linking activity to golden customers and the per-customer view, on hand-built rows.

Timestamps are naive UTC datetimes, as the test session runs in UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from jobs.spark import session_conf
from jobs.suppressions import key_hash
from matching.customer_360 import (
    ACTIVITY_SCHEMA,
    CUSTOMER_360_SCHEMA,
    LINKED_ACTIVITY_SCHEMA,
    LINK_COUNTS_SCHEMA,
    SegmentThresholds,
    customer_360,
    department_combinations,
    link_activities,
    link_counts,
    segment_sizes,
)
from schemas.golden import CUSTOMER_XREF_SCHEMA, GOLDEN_CUSTOMERS_SCHEMA

AS_OF = datetime(2026, 6, 30, 12, 0)
DAY = timedelta(days=1)
THRESHOLDS = SegmentThresholds()
NO_AMOUNT: dict[str, Decimal] = {}
TIMESTAMP_COLUMNS = ("per_department", "first_contact", "last_contact", "as_of")


def activity(
    record_id: str,
    key: str,
    at: datetime | None = AS_OF - DAY,
    *,
    source: str = "crm",
    table: str = "orders",
    event_type: str = "order",
    amount: str | None = None,
    currency: str | None = None,
    channel: str | None = None,
    status: str | None = None,
) -> tuple:
    """One ``ACTIVITY_SCHEMA`` row."""
    value = Decimal(amount) if amount is not None else None
    return (source, table, key, record_id, at, event_type, value, currency, channel, status)


def linked(golden_id: str, *rows: tuple) -> list[tuple]:
    """``rows`` as ``link_activities`` output linked to ``golden_id``."""
    return [(*row, golden_id, "linked") for row in rows]


def xref_row(
    record_id: str, golden_id: str, linked_by: str = "model", valid_to: datetime | None = None
) -> tuple:
    source_system, source_key = record_id.split(":", 1)
    return (source_system, source_key, record_id, golden_id, None, linked_by, "r1", valid_to)


def golden_row(golden_id: str, status: str = "active") -> dict:
    """A ``GOLDEN_CUSTOMERS_SCHEMA`` row; the attributes (unused here) are null."""
    row = dict.fromkeys(GOLDEN_CUSTOMERS_SCHEMA.fieldNames())
    row.update(golden_id=golden_id, status=status, num_records=1, first_seen=AS_OF, last_updated=AS_OF,
               content_hash="hash", run_id="r1")
    return row


def frame(spark: SparkSession, rows: list, schema: StructType) -> DataFrame:
    return spark.createDataFrame(rows, schema)


def view(
    spark: SparkSession,
    activity_rows: list[tuple],
    xref_rows: list[tuple],
    golden_ids: list[str],
    as_of: datetime = AS_OF,
    thresholds: SegmentThresholds = THRESHOLDS,
) -> DataFrame:
    golden = frame(spark, [golden_row(g) for g in golden_ids], GOLDEN_CUSTOMERS_SCHEMA)
    return customer_360(
        frame(spark, activity_rows, LINKED_ACTIVITY_SCHEMA),
        golden,
        frame(spark, xref_rows, CUSTOMER_XREF_SCHEMA),
        as_of,
        thresholds,
    )


def rows_of(df: DataFrame, *columns: str) -> list[tuple]:
    """The collected rows (all columns but content_hash unless named), sorted."""
    selected = df.select(*columns) if columns else df.drop("content_hash")
    return sorted(tuple(r) for r in selected.collect())


def hashes(df: DataFrame) -> dict[str, str]:
    return {r["golden_id"]: r["content_hash"] for r in df.collect()}


# ---------------------------------------------------------------- link_activities


def test_link_activities_gives_each_row_its_golden_id_or_orphan_reason(spark):
    salt = "lake-salt"
    erased_id = "erased:" + key_hash(salt, "crm", "7|x")
    activities = frame(
        spark,
        [
            activity("crm:1", "a1"),
            activity("crm:2", "a2"),
            activity("crm:3", "a3", source="billing", table="invoices"),
            activity("crm:7|x", "a4"),
            activity("crm:9", "a5"),
        ],
        ACTIVITY_SCHEMA,
    )
    xref = frame(
        spark,
        [
            xref_row("crm:1", "G1"),
            xref_row("crm:2", "G2", "steward"),
            xref_row("crm:3", "G3", "deleted", AS_OF - DAY),
            ("crm", erased_id, erased_id, "G4", None, "erased", "r1", AS_OF - DAY),
            xref_row("crm:8", "G1", "singleton"),
        ],
        CUSTOMER_XREF_SCHEMA,
    )

    result = link_activities(activities, xref, salt)

    assert result.schema == LINKED_ACTIVITY_SCHEMA
    assert rows_of(result) == sorted(
        [
            (*activity("crm:1", "a1"), "G1", "linked"),
            (*activity("crm:2", "a2"), "G2", "linked"),
            (*activity("crm:3", "a3", source="billing", table="invoices"), None, "customer_deleted"),
            (*activity("crm:7|x", "a4"), None, "customer_erased"),
            (*activity("crm:9", "a5"), None, "unknown_customer"),
        ]
    )
    # Without the salt an erased record cannot be recognised: it is an unknown customer.
    assert rows_of(link_activities(activities, xref).where("activity_key = 'a4'"), "link_status") == [
        ("unknown_customer",)
    ]


def test_a_broadcast_xref_links_the_same_rows_without_shuffling_the_activity(spark):
    activities = frame(spark, [activity(f"crm:{n % 7}", f"a{n}") for n in range(40)], ACTIVITY_SCHEMA)
    xref = frame(
        spark,
        [xref_row(f"crm:{n}", f"G{n % 3}") for n in range(5)] + [xref_row("crm:5", "G9", "deleted", AS_OF - DAY)],
        CUSTOMER_XREF_SCHEMA,
    )

    with session_conf(spark, {"spark.sql.autoBroadcastJoinThreshold": "-1"}):
        shuffled = link_activities(activities, xref, "salt")
        broadcast = link_activities(activities, xref, "salt", broadcast_xref=True)
        plans = [frame_._jdf.queryExecution().executedPlan().toString() for frame_ in (shuffled, broadcast)]

    assert rows_of(broadcast) == rows_of(shuffled)
    assert len({row[-1] for row in rows_of(broadcast)}) == 3  # linked, customer_deleted, unknown_customer
    assert "SortMergeJoin" in plans[0] and "BroadcastHashJoin" not in plans[0]
    assert "BroadcastHashJoin" in plans[1] and "SortMergeJoin" not in plans[1]


def test_an_xref_row_that_still_holds_the_plain_key_of_an_erased_record_is_erased(spark):
    activities = frame(spark, [activity("crm:1", "a1")], ACTIVITY_SCHEMA)
    xref = frame(spark, [xref_row("crm:1", "G1", "erased", AS_OF - DAY)], CUSTOMER_XREF_SCHEMA)

    assert rows_of(link_activities(activities, xref), "activity_key", "golden_id", "link_status") == [
        ("a1", None, "customer_erased")
    ]


def test_columns_beyond_the_activity_schema_pass_through_after_the_link(spark):
    schema = StructType([*ACTIVITY_SCHEMA.fields, StructField("value_issues", ArrayType(StringType(), False), False)])
    activities = frame(
        spark, [(*activity("crm:1", "a1"), ["amount: not a number"]), (*activity("crm:9", "a2"), [])], schema
    )
    xref = frame(spark, [xref_row("crm:1", "G1")], CUSTOMER_XREF_SCHEMA)

    result = link_activities(activities, xref, "lake-salt")

    assert result.columns == [*LINKED_ACTIVITY_SCHEMA.fieldNames(), "value_issues"]
    assert rows_of(result, "activity_key", "golden_id", "link_status", "value_issues") == [
        ("a1", "G1", "linked", ["amount: not a number"]),
        ("a2", None, "unknown_customer", []),
    ]


def test_a_record_with_several_xref_rows_links_each_activity_once_to_the_current_row(spark):
    activities = frame(spark, [activity("crm:1", "a1"), activity("crm:1", "a2"), activity("crm:2", "a3")], ACTIVITY_SCHEMA)
    xref = frame(
        spark,
        [
            xref_row("crm:1", "G_OLD", "deleted", AS_OF - 10 * DAY),
            xref_row("crm:1", "G_NEW"),
            xref_row("crm:1", "G_OLDER", "deleted", AS_OF - 20 * DAY),
            # Two closed rows only: the one closed last.
            xref_row("crm:2", "G_A", "deleted", AS_OF - 20 * DAY),
            xref_row("crm:2", "G_B", "model", AS_OF - 10 * DAY),
        ],
        CUSTOMER_XREF_SCHEMA,
    )

    assert rows_of(link_activities(activities, xref), "activity_key", "golden_id", "link_status") == [
        ("a1", "G_NEW", "linked"),
        ("a2", "G_NEW", "linked"),
        ("a3", None, "customer_deleted"),
    ]


def test_link_counts_count_rows_by_source_activity_and_link_status(spark):
    rows = [
        (*activity("crm:1", "a1"), "G1", "linked"),
        (*activity("crm:2", "a2"), None, "unknown_customer"),
        (*activity("crm:3", "a3"), None, "unknown_customer"),
        (*activity("crm:4", "a4", table="visits"), None, "unknown_customer"),
        (*activity("crm:5", "a5", source="billing", table="invoices"), None, "customer_deleted"),
    ]

    result = link_counts(frame(spark, rows, LINKED_ACTIVITY_SCHEMA))

    assert result.schema == LINK_COUNTS_SCHEMA
    assert [tuple(r) for r in result.collect()] == [
        ("billing", "invoices", "customer_deleted", 1),
        ("crm", "orders", "linked", 1),
        ("crm", "orders", "unknown_customer", 2),
        ("crm", "visits", "unknown_customer", 1),
    ]


# ---------------------------------------------------------------- customer_360


def test_departments_merge_of_records_and_a_department_without_activity(spark):
    t1, t2, t3 = AS_OF - 40 * DAY, AS_OF - 30 * DAY, AS_OF - 5 * DAY
    activities = [
        # G1: its crm record has orders and billing invoices; its shop record has no activity.
        *linked(
            "G1",
            activity("crm:1", "o1", t1, amount="10.00", currency="EUR", channel="web"),
            activity("crm:1", "i1", t3, source="billing", table="invoices", event_type="invoice", amount="5.5",
                     currency="EUR", channel="email"),
        ),
        # G2: two records of different departments (a merge): one row for both.
        *linked("G2", activity("crm:2", "o2", t2, amount="1", currency="USD", channel="web")),
        *linked("G2", activity("shop:9", "o3", t3, source="shop", amount="2", currency="USD", channel="web")),
    ]
    xref = [
        xref_row("crm:1", "G1"),
        xref_row("shop:1", "G1"),
        xref_row("crm:2", "G2"),
        xref_row("shop:9", "G2"),
        xref_row("web:5", "G2", "deleted", AS_OF - DAY),  # closed: web no longer knows G2
    ]

    result = view(spark, activities, xref, ["G1", "G2"])

    assert result.schema == CUSTOMER_360_SCHEMA
    assert rows_of(result) == [
        (
            "G1", ["billing", "crm", "shop"], 3,
            [
                ("billing", t3, t3, 1, {"EUR": Decimal("5.5000")}),
                ("crm", t1, t1, 1, {"EUR": Decimal("10.0000")}),
                ("shop", None, None, 0, NO_AMOUNT),
            ],
            t1, t3, 5, 2, {"EUR": Decimal("15.5000")}, {"EUR": Decimal("15.5000")}, 0, "email", "new", AS_OF,
        ),
        (
            "G2", ["crm", "shop"], 2,
            [("crm", t2, t2, 1, {"USD": Decimal("1.0000")}), ("shop", t3, t3, 1, {"USD": Decimal("2.0000")})],
            t2, t3, 5, 2, {"USD": Decimal("3.0000")}, {"USD": Decimal("3.0000")}, 0, "web", "new", AS_OF,
        ),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes(result).values())


def test_a_customer_without_activity_has_empty_aggregates_and_segment_none(spark):
    result = view(spark, [], [xref_row("crm:1", "G1")], ["G1"])

    assert rows_of(result) == [
        ("G1", ["crm"], 1, [("crm", None, None, 0, NO_AMOUNT)], None, None, None, 0, NO_AMOUNT, NO_AMOUNT, 0, None,
         "none", AS_OF)
    ]


def test_retired_deleted_and_erased_golden_customers_have_no_row(spark):
    golden = frame(
        spark,
        [golden_row("G1"), golden_row("G2", "retired"), golden_row("G3", "deleted"), golden_row("G4", "erased")],
        GOLDEN_CUSTOMERS_SCHEMA,
    )
    activities = frame(
        spark, [*linked("G1", activity("crm:1", "a1")), *linked("G2", activity("crm:2", "a2"))], LINKED_ACTIVITY_SCHEMA
    )
    xref = frame(spark, [xref_row("crm:1", "G1"), xref_row("crm:2", "G2")], CUSTOMER_XREF_SCHEMA)

    result = customer_360(activities, golden, xref, AS_OF, THRESHOLDS)

    assert rows_of(result, "golden_id", "departments", "frequency_365d") == [("G1", ["crm"], 1)]


@pytest.mark.parametrize(
    ("ages", "recency_days", "segment"),
    [
        ([90 * DAY], 90, "new"),  # first contact exactly new_days ago
        ([90 * DAY + 23 * timedelta(hours=1)], 90, "new"),  # whole days: still 90
        ([91 * DAY], 91, "active"),
        ([200 * DAY, 180 * DAY], 180, "active"),  # last contact exactly active_days ago
        ([181 * DAY], 181, "lapsing"),
        ([365 * DAY], 365, "lapsing"),  # exactly lapsing_days ago
        ([366 * DAY], 366, "lost"),
        ([-3 * DAY], 0, "new"),  # dated after as_of (clock skew): counts as at as_of
        ([400 * DAY, -DAY], 0, "active"),
    ],
)
def test_segment_boundaries(spark, ages, recency_days, segment):
    times = [AS_OF - age for age in ages]
    activities = linked("G1", *[activity("crm:1", f"a{i}", t) for i, t in enumerate(times)])

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"])

    in_window = sum(1 for t in times if t >= AS_OF - 365 * DAY)
    assert rows_of(result, "golden_id", "first_contact", "last_contact", "recency_days", "frequency_365d", "segment") == [
        ("G1", min(times), max(times), recency_days, in_window, segment)
    ]


def test_other_thresholds_move_the_segments(spark):
    activities = linked("G1", activity("crm:1", "a1", AS_OF - 10 * DAY))

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"], thresholds=SegmentThresholds(5, 9, 10))

    assert rows_of(result, "golden_id", "segment") == [("G1", "lapsing")]


def test_frequency_window_holds_exactly_365_days(spark):
    activities = linked(
        "G1",
        activity("crm:1", "a1", AS_OF - 365 * DAY, amount="1", currency="EUR"),
        activity("crm:1", "a2", AS_OF - 365 * DAY - timedelta(seconds=1), amount="2", currency="EUR"),
        activity("crm:1", "a3", AS_OF + DAY, amount="4", currency="EUR"),  # future: as at as_of
    )

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"])

    assert rows_of(result, "golden_id", "frequency_365d", "monetary", "monetary_365d") == [
        ("G1", 2, {"EUR": Decimal("7.0000")}, {"EUR": Decimal("5.0000")})
    ]


def test_open_tickets_count_open_like_statuses_of_ticket_events(spark):
    activities = linked(
        "G1",
        activity("crm:1", "t1", event_type="ticket", status="open"),
        activity("crm:1", "t2", event_type="Support_Ticket", status="Open"),
        activity("crm:1", "t3", event_type="ticket_created", status=" In Progress "),
        activity("crm:1", "t4", event_type="TICKET", status="waiting"),
        activity("crm:1", "t5", event_type="ticket", status="closed"),
        activity("crm:1", "t6", event_type="ticket", status=None),
        activity("crm:1", "t7", event_type="ticket", status="reopened later"),
        activity("crm:1", "o1", event_type="order", status="open"),
    )

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"])

    assert rows_of(result, "golden_id", "open_tickets") == [("G1", 4)]


def test_preferred_channel_is_the_most_used_and_ties_go_to_the_first_by_name(spark):
    activities = [
        *linked(
            "G1",
            activity("crm:1", "a1", channel="web"),
            activity("crm:1", "a2", channel="web"),
            activity("crm:1", "a3", channel="email"),
            activity("crm:1", "a4", channel="email"),
            activity("crm:1", "a5", channel="phone"),
            activity("crm:1", "a6", channel=None),
            activity("crm:1", "a7", channel=None),
            activity("crm:1", "a8", channel=None),
        ),
        *linked("G2", activity("crm:2", "b1", channel=None)),
        *linked("G3", activity("crm:3", "c1", channel="store"), activity("crm:3", "c2", channel="phone"),
                activity("crm:3", "c3", channel="store")),
    ]
    xref = [xref_row("crm:1", "G1"), xref_row("crm:2", "G2"), xref_row("crm:3", "G3")]

    result = view(spark, activities, xref, ["G1", "G2", "G3"])

    assert rows_of(result, "golden_id", "preferred_channel") == [("G1", "email"), ("G2", None), ("G3", "store")]


def test_monetary_sums_refunds_and_keeps_currencies_apart(spark):
    old = AS_OF - 400 * DAY
    activities = linked(
        "G1",
        activity("crm:1", "a1", amount="100.00", currency="EUR"),
        activity("crm:1", "a2", amount="-30.50", currency="EUR"),  # refund
        activity("crm:1", "a3", old, amount="20", currency="EUR"),
        activity("crm:1", "a4", amount="7.1234", currency="USD"),
        activity("crm:1", "a5", old, amount="3", currency="GBP"),
        activity("crm:1", "a6", amount="2", currency=None),  # no currency: "unknown"
        activity("crm:1", "a7", amount=None, currency="JPY"),  # no amount: no entry
        activity("crm:1", "a8", source="billing", amount="-5", currency="USD"),
    )

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"])

    assert rows_of(result, "golden_id", "per_department", "monetary", "monetary_365d") == [
        (
            "G1",
            [
                ("billing", AS_OF - DAY, AS_OF - DAY, 1, {"USD": Decimal("-5.0000")}),
                ("crm", old, AS_OF - DAY, 7, {"EUR": Decimal("89.5000"), "GBP": Decimal("3.0000"),
                                             "USD": Decimal("7.1234"), "unknown": Decimal("2.0000")}),
            ],
            {"EUR": Decimal("89.5000"), "GBP": Decimal("3.0000"), "USD": Decimal("2.1234"), "unknown": Decimal("2.0000")},
            {"EUR": Decimal("69.5000"), "USD": Decimal("2.1234"), "unknown": Decimal("2.0000")},
        )
    ]


def test_a_sum_beyond_decimal_38_4_is_null_not_an_error(spark):
    huge = "9" * 34 + ".0"  # the largest whole number of decimal(38,4)
    activities = linked(
        "G1",
        activity("crm:1", "a1", amount=huge, currency="EUR"),
        activity("crm:1", "a2", amount=huge, currency="EUR"),
        activity("crm:1", "a3", amount="1", currency="USD"),
    )

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"])

    assert rows_of(result, "golden_id", "monetary") == [("G1", {"EUR": None, "USD": Decimal("1.0000")})]


def test_activity_without_event_time_counts_but_has_no_date(spark):
    dated = AS_OF - 10 * DAY
    activities = [
        *linked("G1", activity("crm:1", "a1", None, amount="4", currency="EUR"), activity("crm:1", "a2", dated)),
        *linked("G2", activity("crm:2", "b1", None, amount="1", currency="EUR", channel="web")),
    ]
    xref = [xref_row("crm:1", "G1"), xref_row("crm:2", "G2")]

    result = view(spark, activities, xref, ["G1", "G2"])

    assert rows_of(result) == [
        ("G1", ["crm"], 1, [("crm", dated, dated, 2, {"EUR": Decimal("4.0000")})], dated, dated, 10, 1,
         {"EUR": Decimal("4.0000")}, NO_AMOUNT, 0, None, "new", AS_OF),
        ("G2", ["crm"], 1, [("crm", None, None, 1, {"EUR": Decimal("1.0000")})], None, None, None, 0,
         {"EUR": Decimal("1.0000")}, NO_AMOUNT, 0, "web", "undated", AS_OF),
    ]


def test_dates_from_year_1_to_9999_do_not_break_the_view(spark):
    first, last = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)
    activities = linked("G1", activity("crm:1", "a1", first), activity("crm:1", "a2", last))

    result = view(spark, activities, [xref_row("crm:1", "G1")], ["G1"])

    # PySpark cannot turn 0001-01-01 into a Python datetime: the timestamps are compared as text.
    as_text = [F.col(c).cast("string").alias(c) if c in TIMESTAMP_COLUMNS else F.col(c) for c in result.columns]
    assert rows_of(result.select(*as_text)) == [
        ("G1", ["crm"], 1, "[{crm, 0001-01-01 00:00:00, 9999-12-31 23:59:59.999999, 2, {}}]",
         "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", 0, 1, NO_AMOUNT, NO_AMOUNT, 0, None, "active",
         "2026-06-30 12:00:00")
    ]


def test_content_hash_changes_with_an_aggregate_and_only_then(spark):
    xref = [xref_row("crm:1", "G1"), xref_row("crm:2", "G2"), xref_row("crm:3", "G3")]
    base = [
        *linked("G1", activity("crm:1", "a1", amount="1", currency="EUR", channel="web"),
                activity("crm:1", "a2", amount="2", currency="USD", channel="email")),
        *linked("G2", activity("crm:2", "b1", amount="3", currency="EUR")),
    ]
    before = hashes(view(spark, base, xref, ["G1", "G2", "G3"]))

    # The same rows in another order, and a later as_of for a customer without activity: nothing changed.
    assert hashes(view(spark, list(reversed(base)), xref, ["G1", "G2", "G3"])) == before
    later = hashes(view(spark, base, xref, ["G1", "G2", "G3"], as_of=AS_OF + timedelta(hours=1)))
    assert later == before
    # A refund of G1 changes its monetary: only G1's hash changes.
    refund = linked("G1", activity("crm:1", "a3", amount="-1", currency="EUR"))
    after = hashes(view(spark, base + refund, xref, ["G1", "G2", "G3"]))
    assert {g for g in before if before[g] != after[g]} == {"G1"}
    # A department that starts to know G3 (no activity) changes G3 only.
    more_departments = hashes(view(spark, base, [*xref, xref_row("shop:3", "G3")], ["G1", "G2", "G3"]))
    assert {g for g in before if before[g] != more_departments[g]} == {"G3"}
    # Recency is an aggregate too: a day later changes the customers with activity.
    next_day = hashes(view(spark, base, xref, ["G1", "G2", "G3"], as_of=AS_OF + DAY))
    assert {g for g in before if before[g] != next_day[g]} == {"G1", "G2"}


def test_segment_sizes_and_department_combinations(spark):
    activities = [
        *linked("G1", activity("crm:1", "a1")),
        *linked("G2", activity("crm:2", "b1", AS_OF - 500 * DAY)),
        *linked("G3", activity("crm:3", "c1", source="billing")),
    ]
    xref = [xref_row("crm:1", "G1"), xref_row("crm:2", "G2"), xref_row("crm:3", "G3"), xref_row("shop:4", "G4"),
            xref_row("shop:1", "G1")]
    c360 = view(spark, activities, xref, ["G1", "G2", "G3", "G4"])

    assert [tuple(r) for r in segment_sizes(c360).collect()] == [("lost", 1), ("new", 2), ("none", 1)]
    assert [tuple(r) for r in department_combinations(c360).collect()] == [
        ("billing+crm", 1), ("crm", 1), ("crm+shop", 1), ("shop", 1)
    ]


def test_segment_thresholds_refuse_impossible_values():
    with pytest.raises(ValueError, match="must not be negative"):
        SegmentThresholds(new_days=-1)
    with pytest.raises(ValueError, match="must not exceed"):
        SegmentThresholds(active_days=400, lapsing_days=365)
