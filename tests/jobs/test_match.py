"""The match stage's reading of ``customers_std``."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from jobs.match import with_match_only_attributes

COLUMNS = "record_id string, birth_date date"


def test_a_lake_written_before_a_match_only_attribute_gets_it_null(spark):
    older = spark.createDataFrame([("crm:1", dt.date(1997, 12, 25))], COLUMNS)
    expected = spark.createDataFrame([("crm:1", dt.date(1997, 12, 25), None)], f"{COLUMNS}, birth_date_written string")

    assert_df_equality(with_match_only_attributes(older), expected, ignore_nullable=True)


def test_a_lake_with_every_match_only_attribute_is_read_as_it_is(spark):
    current = spark.createDataFrame([("crm:1", None, "1997-21-25")], f"{COLUMNS}, birth_date_written string")

    assert with_match_only_attributes(current) is current
