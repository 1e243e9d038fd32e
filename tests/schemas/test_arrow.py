"""Small frames handed to Spark as Arrow (``schemas.arrow.local_frame``) hold what ``createDataFrame`` of a list holds."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from pyspark.sql import types as T

from jobs.customer_360 import HOUSEHOLDS_SCHEMA
from schemas.arrow import local_frame
from schemas.golden import PUBLICATIONS_SCHEMA
from schemas.tables import RUN_AUDIT_SCHEMA

SCHEMA = T.StructType(
    [
        T.StructField("id", T.StringType(), False),
        T.StructField("n", T.IntegerType()),
        T.StructField("big", T.LongType()),
        T.StructField("short", T.ShortType()),
        T.StructField("x", T.DoubleType()),
        T.StructField("amount", T.DecimalType(12, 2)),
        T.StructField("flag", T.BooleanType()),
        T.StructField("day", T.DateType()),
        T.StructField("at", T.TimestampType()),
        T.StructField("tags", T.ArrayType(T.StringType())),
        T.StructField("lineage", T.MapType(T.StringType(), T.StringType())),
        T.StructField("address", T.StructType([T.StructField("city", T.StringType()), T.StructField("zip", T.StringType())])),
    ]
)
ROWS = [
    (
        "a", 1, 2**40, 7, 0.5, Decimal("12.34"), True, date(1, 1, 1), datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc),
        ["x", None], {"name": "r1"}, ("Łódź", "90-001"),
    ),
    ("b", None, None, None, None, None, None, date(9999, 12, 31), None, None, None, None),
]


def test_rows_of_every_type_read_back_as_a_list_would(spark):
    frame = local_frame(spark, ROWS, SCHEMA)

    assert frame.schema == SCHEMA
    assert sorted(frame.collect()) == sorted(spark.createDataFrame(ROWS, SCHEMA).collect())


def test_no_rows_is_an_empty_frame_of_the_schema(spark):
    frame = local_frame(spark, [], PUBLICATIONS_SCHEMA)

    assert frame.schema == PUBLICATIONS_SCHEMA
    assert frame.count() == 0


def test_a_naive_datetime_is_utc(spark):
    frame = local_frame(spark, [("r", datetime(2026, 3, 1, 9, 30), 1, 2)], PUBLICATIONS_SCHEMA)

    assert frame.selectExpr("date_format(published_at, 'yyyy-MM-dd HH:mm')").first()[0] == "2026-03-01 09:30"


def test_the_tables_written_from_python_rows_convert(spark):
    households = [("h1", ["g1", "g2"], 2, ["same address"], "run-1")]

    assert local_frame(spark, households, HOUSEHOLDS_SCHEMA).collect() == spark.createDataFrame(
        households, HOUSEHOLDS_SCHEMA
    ).collect()
    assert local_frame(spark, [], RUN_AUDIT_SCHEMA).schema == RUN_AUDIT_SCHEMA
