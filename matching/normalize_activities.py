"""Activity rows of one departmental table in the canonical activity shape (``ACTIVITY_SCHEMA``).

A source's activity table (orders, invoices, tickets...) names its event
fields in the config: a column or a Spark SQL expression for the timestamp,
the type and, optionally, the amount, currency, channel and status. Here they
become typed values. A value that cannot be used is nulled and the reason
named in ``value_issues`` (the value itself never is): the activity still
counts for its customer on the rest.

- ``event_time``: a timestamp column as it is, a date at midnight, text
  parsed as ``matching.normalize_dates.parse_timestamp`` does (ISO forms,
  numeric dates with a time, day or month first as configured);
- ``amount``: a number as it is; text without currency signs, spaces and
  thousands separators (``"£1,234.50"``, ``"1 234,50"`` with a decimal comma);
  at most 4 decimals are kept;
- ``currency``: three letters, upper-cased (``gbp`` -> ``GBP``); else null;
- ``event_type``, ``channel``, ``status``: trimmed and lower-cased; a missing
  type is ``unknown`` (an event happened, its kind was not recorded).

Pure column logic: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, DateType, NumericType, StringType, TimestampNTZType, TimestampType

from matching.customer_360 import ACTIVITY_SCHEMA, MONEY
from matching.normalize_dates import parse_timestamp
from matching.standardize import SqlExpression

ISSUES_COLUMN = "value_issues"
FIELDS: tuple[str, ...] = ("timestamp", "type", "amount", "currency", "channel", "status")
UNKNOWN_TYPE = "unknown"
ISSUES: dict[str, str] = {
    "timestamp": "unparseable timestamp",
    "amount": "unparseable amount",
    "currency": "currency is not a three-letter code",
}

Mapped = str | SqlExpression
_PLAIN_NUMBER = r"^[+-]?[0-9]+(\.[0-9]*)?$"


def _column(mapped: Mapped) -> Column:
    return F.expr(mapped.sql) if isinstance(mapped, SqlExpression) else F.col(mapped)


def _text(value: Column) -> Column:
    """Trimmed text; null when empty."""
    text = F.trim(value.cast("string"))
    return F.when(text != "", text)


def event_time(value: Column, data_type: DataType, day_first: bool) -> Column:
    if isinstance(data_type, TimestampType):
        return value
    if isinstance(data_type, (TimestampNTZType, DateType)):
        return value.cast("timestamp")
    return parse_timestamp(value, day_first=day_first)


def amount(value: Column, data_type: DataType) -> Column:
    """A decimal(38, 4), or null when the value is not a number."""
    if isinstance(data_type, NumericType):
        return value.try_cast(MONEY)
    trimmed = _text(value)
    text = F.regexp_replace(trimmed, r"[\s\u00a0'_]|[^\d.,+\-]", "")
    comma_decimal = text.rlike(r"^[+-]?\d+(\.\d{3})*,\d{1,4}$")
    plain = F.when(comma_decimal, F.translate(F.regexp_replace(text, r"\.", ""), ",", ".")).otherwise(
        F.regexp_replace(text, ",", "")
    )
    # A plain number (most amounts) is the same text after the clean-up above: cast at once.
    return F.when(trimmed.rlike(_PLAIN_NUMBER), trimmed.try_cast(MONEY)).when(
        plain.rlike(r"^[+-]?(\d+\.?\d*|\.\d+)$"), plain.try_cast(MONEY)
    )


def currency(value: Column) -> Column:
    code = F.upper(_text(value))
    return F.when(code.rlike("^[A-Z]{3}$"), code)


def canonical_activities(
    rows: DataFrame,
    source_system: str,
    activity: str,
    fields: Mapping[str, Mapped | None],
    day_first: bool = False,
) -> DataFrame:
    """``ACTIVITY_SCHEMA`` plus ``value_issues`` for bronze rows of one activity table.

    ``rows`` carries the lineage columns ``source_key`` (the activity's own
    key) and ``customer_key`` (its customer's key in ``source_system``);
    ``fields`` maps each of ``FIELDS`` to a column, an expression or None.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown activity fields {unknown}; expected {', '.join(FIELDS)}")
    raw = {name: _column(mapped) for name, mapped in fields.items() if mapped is not None}
    types = dict(zip(raw, rows.select(*raw.values()).schema.fields)) if raw else {}
    null = F.lit(None)

    def given(name: str) -> Column:
        return raw.get(name, null)

    values = {
        "event_time": event_time(given("timestamp"), types["timestamp"].dataType, day_first) if "timestamp" in raw else null,
        "amount": amount(given("amount"), types["amount"].dataType) if "amount" in raw else null,
        "currency": currency(given("currency")),
    }
    present = {"timestamp": _text(given("timestamp")), "amount": _text(given("amount")), "currency": _text(given("currency"))}
    produced = {"timestamp": "event_time", "amount": "amount", "currency": "currency"}
    # One-reason arrays concatenated rather than a filter over an array of reasons and nulls: the
    # filter's lambda kept the select out of the compiled code (the 1M demo sources' activity rows to
    # `noop`: 3.5-4.1 s against 7.5 s, with jobs.spark's hugeMethodLimit).
    no_issue = F.array().cast(ArrayType(StringType(), False))
    issues = F.concat(
        *[
            F.when(present[f].isNotNull() & values[produced[f]].isNull(), F.array(F.lit(reason))).otherwise(no_issue)
            for f, reason in ISSUES.items()
        ]
    )
    return rows.select(
        F.lit(source_system).alias("source_system"),
        F.lit(activity).alias("activity"),
        F.col("source_key").cast("string").alias("activity_key"),
        F.concat(F.lit(f"{source_system}:"), F.col("customer_key").cast("string")).alias("record_id"),
        values["event_time"].cast("timestamp").alias("event_time"),
        F.coalesce(F.lower(_text(given("type"))), F.lit(UNKNOWN_TYPE)).alias("event_type"),
        values["amount"].cast(MONEY).alias("amount"),
        values["currency"].cast("string").alias("currency"),
        F.lower(_text(given("channel"))).alias("channel"),
        F.lower(_text(given("status"))).alias("status"),
        issues.alias(ISSUES_COLUMN),
    ).select(*ACTIVITY_SCHEMA.fieldNames(), ISSUES_COLUMN)
