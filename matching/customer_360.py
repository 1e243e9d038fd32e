"""The customer 360 view: source activity linked to golden customers and summed up per customer.

Pure DataFrame logic, no I/O. The ingest job writes every department's activity
(invoices, tickets, visits...) in ``ACTIVITY_SCHEMA``; here:

1. ``link_activities`` gives each activity row the golden id of its customer
   record through ``gold/customer_xref``, or the reason it has none
   (``link_status``). Every input row comes out exactly once.
2. ``customer_360`` sums the linked activity up into one row per active golden
   customer (``CUSTOMER_360_SCHEMA``), with a ``content_hash`` so that a job
   can MERGE only the rows that changed.
3. ``link_counts``, ``segment_sizes`` and ``department_combinations`` are the
   run report's tables.

Decisions:

- Erased records. ``cdi erase`` replaces an xref row's key by
  ``erased:<sha256(salt|source_system|source_key)>``, so an activity of an
  erased record does not join by its record id. Given the lake's ``salt``,
  ``link_activities`` hashes the record id of every activity that found no
  xref row the same way and reports a hit as ``customer_erased``; without a
  salt such activity is ``unknown_customer``.
- Amounts without a currency are summed under ``UNKNOWN_CURRENCY`` (a lower
  case word, so it can never be taken for an ISO 4217 code); an activity
  without an amount adds nothing to any currency. A sum beyond decimal(38,4)
  is null (``try_sum``), not an error that would stop the run.
- Time. Activity dated after ``as_of`` (clock skew between systems) counts as
  if it happened at ``as_of`` for ``recency_days``, the 365-day window and the
  segment; ``first_contact`` / ``last_contact`` and ``per_department`` show
  the dates as the sources gave them. Activity without an ``event_time`` counts
  in ``interactions``, ``monetary`` and ``open_tickets`` but in no date, no
  365-day figure and no segment (a customer whose activity is all undated is
  ``undated``). Ages are whole days elapsed (``recency_days`` 3 means at least
  3 and less than 4 days before ``as_of``) and the segment uses the same ages,
  so that it agrees with ``recency_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

MONEY = DecimalType(38, 4)
AMOUNTS = MapType(StringType(), MONEY, True)  # currency -> sum; a sum that overflowed is null

ACTIVITY_SCHEMA = StructType(
    [
        StructField("source_system", StringType(), False),  # the department (source) the activity comes from
        StructField("activity", StringType(), False),  # the activity table, e.g. "invoices"
        StructField("activity_key", StringType(), False),  # the activity row's own key
        StructField("record_id", StringType(), False),  # "<source_system>:<source_key>" of its customer record
        StructField("event_time", TimestampType(), True),  # UTC
        StructField("event_type", StringType(), False),
        StructField("amount", MONEY, True),
        StructField("currency", StringType(), True),  # ISO 4217, upper case
        StructField("channel", StringType(), True),
        StructField("status", StringType(), True),
    ]
)

LINKED = "linked"
UNKNOWN_CUSTOMER = "unknown_customer"  # no xref row: the record never reached the lake, or was quarantined
CUSTOMER_DELETED = "customer_deleted"  # only a closed xref row: the record was deleted at its source
CUSTOMER_ERASED = "customer_erased"  # the record was erased (``cdi erase``)

LINKED_ACTIVITY_SCHEMA = StructType(
    [
        *ACTIVITY_SCHEMA.fields,
        StructField("golden_id", StringType(), True),  # null unless linked
        # linked | unknown_customer | customer_deleted | customer_erased
        StructField("link_status", StringType(), False),
    ]
)

LINK_COUNTS_SCHEMA = StructType(
    [
        StructField("source_system", StringType(), False),
        StructField("activity", StringType(), False),
        StructField("link_status", StringType(), False),
        StructField("rows", LongType(), False),
    ]
)

DEPARTMENT_STRUCT = StructType(
    [
        StructField("source_system", StringType(), False),
        StructField("first_interaction", TimestampType(), True),
        StructField("last_interaction", TimestampType(), True),
        StructField("interactions", LongType(), False),
        StructField("amount", AMOUNTS, False),
    ]
)

CUSTOMER_360_SCHEMA = StructType(
    [
        StructField("golden_id", StringType(), False),
        StructField("departments", ArrayType(StringType(), False), False),  # sorted
        StructField("department_count", IntegerType(), False),
        StructField("per_department", ArrayType(DEPARTMENT_STRUCT, False), False),  # sorted by source_system
        StructField("first_contact", TimestampType(), True),
        StructField("last_contact", TimestampType(), True),
        StructField("recency_days", IntegerType(), True),
        StructField("frequency_365d", LongType(), False),
        StructField("monetary", AMOUNTS, False),
        StructField("monetary_365d", AMOUNTS, False),
        StructField("open_tickets", LongType(), False),
        StructField("preferred_channel", StringType(), True),
        StructField("segment", StringType(), False),  # new | active | lapsing | lost | undated | none
        StructField("content_hash", StringType(), False),
        StructField("as_of", TimestampType(), False),
    ]
)

UNKNOWN_CURRENCY = "unknown"
WINDOW_DAYS = 365  # the window of frequency_365d and monetary_365d

# An activity is a ticket when its event_type contains this word (any case): sources name
# them "ticket", "support_ticket", "Ticket opened"... and nothing else carries the word.
TICKET_WORD = "ticket"
# Ticket statuses (lower case, trimmed) that mean "still waiting for us": the spellings the
# help desks in use write. Anything else (closed, resolved, cancelled, unknown) is not open,
# so a status nobody listed never inflates the open ticket count.
OPEN_TICKET_STATUSES: frozenset[str] = frozenset({"open", "new", "pending", "in progress", "in_progress", "waiting"})

_XREF_DELETED = "deleted"
_XREF_ERASED = "erased"
_ERASED_KEY_PREFIX = "erased:"  # jobs/erase_tables.py writes an erased key as this prefix and key_hash_column
_SECONDS_PER_DAY = 86_400
# to_json renders timestamps in the session's time zone and to the millisecond unless told otherwise.
_HASH_JSON_OPTIONS = {"timeZone": "UTC", "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"}


@dataclass(frozen=True)
class SegmentThresholds:
    """Ages in whole days that separate the segments (module docstring, Time)."""

    new_days: int = 90  # first contact at most this many days before as_of: new
    active_days: int = 180  # else last contact at most this many days before: active
    lapsing_days: int = 365  # else at most this many: lapsing; older: lost

    def __post_init__(self) -> None:
        if min(self.new_days, self.active_days, self.lapsing_days) < 0:
            raise ValueError(f"segment thresholds must not be negative: {self}")
        if self.active_days > self.lapsing_days:
            raise ValueError(f"active_days ({self.active_days}) must not exceed lapsing_days ({self.lapsing_days})")


def _current_xref(xref: DataFrame) -> DataFrame:
    """One xref row per record id: the current one, else the one closed last (then the smallest golden id)."""
    order = Window.partitionBy("record_id").orderBy(F.col("valid_to").desc_nulls_first(), F.col("golden_id"))
    return (
        xref.withColumn("_rank", F.row_number().over(order))
        .where(F.col("_rank") == 1)
        .select(
            "record_id",
            F.col("golden_id").alias("_golden_id"),
            F.col("linked_by").alias("_linked_by"),
            F.col("valid_to").alias("_valid_to"),
        )
    )


def _erased_record_id(salt: str, record_id: Column) -> Column:
    """The record id ``cdi erase`` leaves in the xref for ``record_id`` (``jobs.suppressions.key_hash_column``).

    Source names cannot hold ":" (``config.pipeline.SOURCE_NAME``), so the
    source key is everything after the first one.
    """
    source_system = F.substring_index(record_id, ":", 1)
    source_key = F.regexp_extract(record_id, r"(?s)^[^:]*:(.*)$", 1)
    key_hash = F.sha2(F.concat_ws("|", F.lit(salt), source_system, source_key), 256)
    return F.concat(F.lit(_ERASED_KEY_PREFIX), key_hash)


def link_activities(
    activities: DataFrame, xref: DataFrame, salt: str | None = None, broadcast_xref: bool = False
) -> DataFrame:
    """``activities`` (``ACTIVITY_SCHEMA``) with ``golden_id`` and ``link_status`` (``LINKED_ACTIVITY_SCHEMA``).

    ``xref`` is ``gold/customer_xref``. A record with several xref rows uses the
    current one (``valid_to`` null), so every activity row comes out once.
    ``salt`` is the lake's salt, to recognise erased records (module docstring).
    With ``broadcast_xref`` the activity meets the xref (and its erased ids) broadcast, for
    an xref the driver can hold: the activity rows, usually several per record, are not shuffled.
    Columns of ``activities`` beyond ``ACTIVITY_SCHEMA`` come out after ``link_status``, as they came in.
    """
    extra = [c for c in activities.columns if c not in ACTIVITY_SCHEMA.fieldNames()]
    current = _current_xref(xref)
    joined = activities.join(F.broadcast(current) if broadcast_xref else current, "record_id", "left")
    linked_by = F.col("_linked_by")
    if salt is None:
        erased_hit = F.lit(False)
    else:
        erased_ids = (
            xref.where(F.col("linked_by") == _XREF_ERASED)
            .select(F.col("record_id").alias("_erased_id"))
            .distinct()
            .withColumn("_erased_hit", F.lit(True))
        )
        # Only rows that found no xref row are hashed: the others are already settled.
        unmatched_id = F.when(linked_by.isNull(), _erased_record_id(salt, F.col("record_id")))
        erased_ids = F.broadcast(erased_ids) if broadcast_xref else erased_ids
        joined = joined.withColumn("_erased_id", unmatched_id).join(erased_ids, "_erased_id", "left")
        erased_hit = F.coalesce(F.col("_erased_hit"), F.lit(False))
    status = (
        F.when(erased_hit | (linked_by == _XREF_ERASED), F.lit(CUSTOMER_ERASED))
        .when(linked_by.isNull(), F.lit(UNKNOWN_CUSTOMER))
        # A closed row that is not an erasure: the record left its golden record when deleted at its source.
        .when((linked_by == _XREF_DELETED) | F.col("_valid_to").isNotNull(), F.lit(CUSTOMER_DELETED))
        .otherwise(F.lit(LINKED))
    )
    return joined.withColumn("link_status", status).select(
        *ACTIVITY_SCHEMA.fieldNames(),
        F.when(F.col("link_status") == LINKED, F.col("_golden_id")).alias("golden_id"),
        "link_status",
        *extra,
    )


def link_counts(linked: DataFrame) -> DataFrame:
    """Rows of ``link_activities`` output by source, activity and ``link_status``: linked, or why not."""
    return (
        linked.groupBy("source_system", "activity", "link_status")
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy("source_system", "activity", "link_status")
    )


def _amount_map(entries: Column) -> Column:
    """A currency -> amount map from a list of (key, value) structs, in currency order (stable hash)."""
    return F.map_from_entries(F.array_sort(entries))


def _age_days(moment: Column, at: Column) -> Column:
    """Whole days from ``moment`` to ``at``; a moment after ``at`` counts as ``at`` (0); null stays null.

    Seconds, not calendar dates: ``datediff`` would depend on the session time zone.
    ``least`` alone would turn a null moment into ``at``.
    """
    elapsed = F.unix_seconds(at) - F.unix_seconds(F.least(moment, at))
    return F.when(moment.isNotNull(), F.floor(elapsed / _SECONDS_PER_DAY).cast(IntegerType()))


def _in_window(as_of: datetime) -> Column:
    """The activity of the ``WINDOW_DAYS`` days up to ``as_of``, both ends included. Activity dated after
    ``as_of`` counts as at ``as_of``, so it is in; activity without a date is not (null)."""
    return F.col("event_time") >= F.lit(as_of - timedelta(days=WINDOW_DAYS))


def _department_facts(linked: DataFrame, as_of: datetime) -> DataFrame:
    """Linked activity per (golden_id, source_system, currency key, null without an amount): the figures
    of ``per_department`` and the customer's counts are summed from these."""
    in_window = _in_window(as_of)
    currency = F.when(F.col("amount").isNotNull(), F.coalesce(F.col("currency"), F.lit(UNKNOWN_CURRENCY)))
    open_ticket = F.lower(F.col("event_type")).contains(TICKET_WORD) & F.lower(F.trim(F.col("status"))).isin(
        sorted(OPEN_TICKET_STATUSES)
    )
    return (
        linked.where(F.col("link_status") == LINKED)
        .withColumn("_currency", currency)
        .groupBy("golden_id", "source_system", "_currency")
        .agg(
            F.min("event_time").alias("first_interaction"),
            F.max("event_time").alias("last_interaction"),
            F.count(F.lit(1)).alias("interactions"),
            F.count(F.when(in_window, 1)).alias("interactions_365d"),
            F.count(F.when(open_ticket, 1)).alias("open_tickets"),
            F.try_sum("amount").alias("amount"),
            F.try_sum(F.when(in_window, F.col("amount"))).alias("amount_365d"),
        )
    )


def _monetary(linked: DataFrame, as_of: datetime) -> DataFrame:
    """golden_id -> monetary, monetary_365d, summed from the activity rows (not from department sums,
    which would hide a department sum that overflowed to null)."""
    in_window = _in_window(as_of)
    sums = (
        linked.where((F.col("link_status") == LINKED) & F.col("amount").isNotNull())
        .withColumn("_currency", F.coalesce(F.col("currency"), F.lit(UNKNOWN_CURRENCY)))
        .groupBy("golden_id", "_currency")
        .agg(
            F.try_sum("amount").alias("amount"),
            F.count(F.when(in_window, 1)).alias("rows_365d"),
            F.try_sum(F.when(in_window, F.col("amount"))).alias("amount_365d"),
        )
    )
    return sums.groupBy("golden_id").agg(
        _amount_map(F.collect_list(F.struct(F.col("_currency"), F.col("amount")))).alias("monetary"),
        _amount_map(
            F.collect_list(F.when(F.col("rows_365d") > 0, F.struct(F.col("_currency"), F.col("amount_365d"))))
        ).alias("monetary_365d"),
    )


def _preferred_channel(linked: DataFrame) -> DataFrame:
    """golden_id -> the channel of most interactions; ties go to the alphabetically first."""
    counts = (
        linked.where((F.col("link_status") == LINKED) & F.col("channel").isNotNull())
        .groupBy("golden_id", "channel")
        .agg(F.count(F.lit(1)).alias("_interactions"))
    )
    # The smallest (-interactions, channel) is the most used channel, then the first by name.
    best = F.min(F.struct((-F.col("_interactions")).alias("_rank"), F.col("channel")))
    return counts.groupBy("golden_id").agg(best["channel"].alias("preferred_channel"))


def _known_departments(linked: DataFrame, xref: DataFrame) -> DataFrame:
    """(golden_id, source_system): a current xref row of the source links to it, or linked activity comes from it."""
    from_xref = xref.where(F.col("valid_to").isNull() & ~F.col("linked_by").isin(_XREF_DELETED, _XREF_ERASED))
    from_activity = linked.where(F.col("link_status") == LINKED)
    return (
        from_xref.select("golden_id", "source_system")
        .union(from_activity.select("golden_id", "source_system"))
        .distinct()
    )


def _segment(first_age: Column, recency_days: Column, interactions: Column, thresholds: SegmentThresholds) -> Column:
    return (
        F.when(interactions == 0, F.lit("none"))
        .when(recency_days.isNull(), F.lit("undated"))
        .when(first_age <= thresholds.new_days, F.lit("new"))
        .when(recency_days <= thresholds.active_days, F.lit("active"))
        .when(recency_days <= thresholds.lapsing_days, F.lit("lapsing"))
        .otherwise(F.lit("lost"))
    )


def customer_360(
    linked: DataFrame, golden: DataFrame, xref: DataFrame, as_of: datetime, thresholds: SegmentThresholds
) -> DataFrame:
    """One ``CUSTOMER_360_SCHEMA`` row per active golden customer of ``golden`` (``GOLDEN_CUSTOMERS_SCHEMA``).

    ``linked`` is ``link_activities`` output; ``xref`` is ``gold/customer_xref``
    (which departments know a customer). ``as_of`` is a UTC datetime (a naive one
    is taken as UTC). Linked activity of a golden id that is not active is left
    out: the xref points a merged record at its survivor.
    """
    as_of = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=timezone.utc)
    at = F.lit(as_of)
    zero = F.lit(0).cast(LongType())
    no_amounts = F.create_map().cast(AMOUNTS)
    amount_entry = F.when(F.col("_currency").isNotNull(), F.struct(F.col("_currency"), F.col("amount")))
    by_department = (
        _department_facts(linked, as_of)
        .groupBy("golden_id", "source_system")
        .agg(
            F.min("first_interaction").alias("first_interaction"),
            F.max("last_interaction").alias("last_interaction"),
            F.sum("interactions").alias("interactions"),
            F.sum("interactions_365d").alias("interactions_365d"),
            F.sum("open_tickets").alias("open_tickets"),
            _amount_map(F.collect_list(amount_entry)).alias("amount"),
        )
    )
    department = F.struct(
        F.col("source_system"),
        F.col("first_interaction"),
        F.col("last_interaction"),
        F.coalesce(F.col("interactions"), zero).alias("interactions"),
        F.coalesce(F.col("amount"), no_amounts).alias("amount"),
    )
    per_customer = (
        _known_departments(linked, xref)
        .join(by_department, ["golden_id", "source_system"], "left")
        .groupBy("golden_id")
        .agg(
            F.array_sort(
                F.collect_list(department),
                lambda left, right: F.when(left["source_system"] < right["source_system"], -1)
                .when(left["source_system"] > right["source_system"], 1)
                .otherwise(0),
            ).alias("per_department"),
            F.min("first_interaction").alias("first_contact"),
            F.max("last_interaction").alias("last_contact"),
            F.sum("interactions").alias("interactions"),
            F.sum("interactions_365d").alias("frequency_365d"),
            F.sum("open_tickets").alias("open_tickets"),
        )
    )
    per_department = F.coalesce(F.col("per_department"), F.array().cast(ArrayType(DEPARTMENT_STRUCT, False)))
    recency_days = _age_days(F.col("last_contact"), at)
    summary = (
        golden.where(F.col("status") == "active")
        .select("golden_id")
        .join(per_customer, "golden_id", "left")
        .join(_monetary(linked, as_of), "golden_id", "left")
        .join(_preferred_channel(linked), "golden_id", "left")
        .select(
            "golden_id",
            F.transform(per_department, lambda d: d["source_system"]).alias("departments"),
            F.size(per_department).alias("department_count"),
            per_department.alias("per_department"),
            "first_contact",
            "last_contact",
            recency_days.alias("recency_days"),
            F.coalesce(F.col("frequency_365d"), zero).alias("frequency_365d"),
            F.coalesce(F.col("monetary"), no_amounts).alias("monetary"),
            F.coalesce(F.col("monetary_365d"), no_amounts).alias("monetary_365d"),
            F.coalesce(F.col("open_tickets"), zero).alias("open_tickets"),
            "preferred_channel",
            _segment(
                _age_days(F.col("first_contact"), at), recency_days, F.coalesce(F.col("interactions"), zero), thresholds
            ).alias("segment"),
        )
    )
    hashed = F.to_json(F.struct(*[F.col(c) for c in summary.columns if c != "golden_id"]), _HASH_JSON_OPTIONS)
    # Never null (the JSON of a struct, hashed with a valid length), but Spark types to_json and sha2 as
    # nullable: the coalesce makes the column NOT NULL, as the schema says.
    content_hash = F.coalesce(F.sha2(hashed, 256), F.lit(""))
    return summary.select("*", content_hash.alias("content_hash"), at.alias("as_of"))


def segment_sizes(c360: DataFrame) -> DataFrame:
    """(segment, customers) of ``customer_360`` output."""
    return c360.groupBy("segment").agg(F.count(F.lit(1)).alias("customers")).orderBy("segment")


def department_combinations(c360: DataFrame) -> DataFrame:
    """(departments, customers): customers per set of departments that know them ("billing+crm"), most first;
    the bars of an UpSet chart."""
    return (
        c360.groupBy(F.array_join("departments", "+").alias("departments"))
        .agg(F.count(F.lit(1)).alias("customers"))
        .orderBy(F.col("customers").desc(), F.col("departments"))
    )
