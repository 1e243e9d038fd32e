"""Activity rows in the canonical shape: typed values, nulled unusable ones with a reason."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from chispa import assert_df_equality
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from matching.customer_360 import ACTIVITY_SCHEMA
from matching.normalize_activities import ISSUES_COLUMN, canonical_activities
from matching.standardize import SqlExpression

RAW = "source_key string, customer_key string, at string, kind string, total string, cur string, via string, state string"
FIELDS = {"timestamp": "at", "type": "kind", "amount": "total", "currency": "cur", "channel": "via", "status": "state"}


def _canonical(spark, rows, fields=FIELDS, day_first=False):
    return canonical_activities(spark.createDataFrame(rows, RAW), "billing", "invoices", fields, day_first)


def test_values_become_typed_and_unusable_ones_are_nulled_with_a_reason(spark):
    rows = [
        ("i1", "a1", "2025-03-04T10:11:12Z", " Invoice ", "£1,234.50", "gbp", "Web", "PAID"),
        ("i2", "a1", "03/04/2025 09:30", None, "1.234,5", "EUR", None, None),
        ("i3", "a2", "not a date", "invoice", "twelve", "pounds", " ", ""),
        ("i4", "a2", None, "refund", "-20", None, "phone", "open"),
    ]
    expected = [
        ("billing", "invoices", "i1", "billing:a1", dt.datetime(2025, 3, 4, 10, 11, 12), "invoice",
         Decimal("1234.5000"), "GBP", "web", "paid", []),
        ("billing", "invoices", "i2", "billing:a1", dt.datetime(2025, 3, 4, 9, 30), "unknown",
         Decimal("1234.5000"), "EUR", None, None, []),
        ("billing", "invoices", "i3", "billing:a2", None, "invoice", None, None, None, None,
         ["unparseable timestamp", "unparseable amount", "currency is not a three-letter code"]),
        ("billing", "invoices", "i4", "billing:a2", None, "refund", Decimal("-20.0000"), None, "phone", "open", []),
    ]
    schema = StructType([*ACTIVITY_SCHEMA.fields, StructField(ISSUES_COLUMN, ArrayType(StringType()))])

    actual = _canonical(spark, rows)

    assert_df_equality(actual, spark.createDataFrame(expected, schema), ignore_nullable=True, ignore_row_order=True)


def test_day_first_decides_an_ambiguous_date_only(spark):
    rows = [("i1", "a1", "03/04/2025 09:30", "x", None, None, None, None),
            ("i2", "a1", "13/04/2025 09:30", "x", None, None, None, None)]

    day_first = {r["activity_key"]: r["event_time"] for r in _canonical(spark, rows, day_first=True).collect()}
    month_first = {r["activity_key"]: r["event_time"] for r in _canonical(spark, rows, day_first=False).collect()}

    assert day_first == {"i1": dt.datetime(2025, 4, 3, 9, 30), "i2": dt.datetime(2025, 4, 13, 9, 30)}
    assert month_first == {"i1": dt.datetime(2025, 3, 4, 9, 30), "i2": dt.datetime(2025, 4, 13, 9, 30)}


def test_typed_columns_expressions_and_missing_fields(spark):
    raw = spark.createDataFrame(
        [("t1", "c1", dt.date(2024, 1, 2), 12.345678)], "source_key string, customer_key string, day date, value double"
    )
    fields = {"timestamp": "day", "type": SqlExpression("'ticket'"), "amount": "value", "currency": None}

    [row] = canonical_activities(raw, "support", "tickets", fields).collect()

    assert (row["event_time"], row["event_type"], row["amount"], row["currency"], row["channel"]) == (
        dt.datetime(2024, 1, 2), "ticket", Decimal("12.3457"), None, None
    )


def test_an_unknown_field_is_refused(spark):
    raw = spark.createDataFrame([("t1", "c1")], "source_key string, customer_key string")
    with pytest.raises(ValueError, match="unknown activity fields"):
        canonical_activities(raw, "support", "tickets", {"when": "x", "timestamp": None, "type": None})


@given(st.lists(st.tuples(st.text(max_size=30), st.text(max_size=20), st.text(max_size=8)), min_size=1, max_size=8))
@settings(max_examples=20, deadline=None)
def test_any_text_gives_a_row_and_never_fails(spark, values):
    rows = [(f"k{i}", "c", at, "x", amount, currency, None, None) for i, (at, amount, currency) in enumerate(values)]

    out = _canonical(spark, rows).collect()

    assert len(out) == len(rows)
    for row in out:
        assert row["currency"] is None or (len(row["currency"]) == 3 and row["currency"].isupper())
        assert row["amount"] is None or abs(row["amount"]) < Decimal(10) ** 34


@settings(max_examples=10, deadline=None)
@given(st.lists(st.from_regex(r"\A[+-]?[0-9]{1,36}(\.[0-9]{0,8})?\Z"), min_size=20, max_size=60))
def test_a_plain_number_is_its_value_to_four_decimals(spark, numbers):
    rows = [(f"k{i}", "c", None, "x", f" {number} ", None, None, None) for i, number in enumerate(numbers)]

    actual = {r["activity_key"]: r["amount"] for r in _canonical(spark, rows).collect()}

    def expected(number: str) -> Decimal | None:
        with localcontext() as context:
            context.prec = 60  # 36 digits and 4 decimals: beyond the default 28
            value = Decimal(number).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        return value if abs(value) < Decimal(10) ** 34 else None

    assert actual == {f"k{i}": expected(number) for i, number in enumerate(numbers)}
