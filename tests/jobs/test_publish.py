"""merge_checked: the changes a MERGE will make are counted beforehand and checked against Delta's metrics."""

from __future__ import annotations

import pytest

from jobs.publish import PublishMismatch, merge_checked

SCHEMA = "id string, value string, note string"


def _table(spark, path, rows):
    spark.createDataFrame(rows, SCHEMA).write.format("delta").mode("overwrite").save(path)


def test_counts_inserts_updates_and_deletes_and_the_table_holds_the_source(spark, tmp_path):
    path = str(tmp_path / "t")
    _table(spark, path, [("a", "1", "x"), ("b", "2", "x"), ("c", "3", "x")])
    source = spark.createDataFrame([("a", "1", "changed note only"), ("b", "20", "x"), ("d", "4", "x")], SCHEMA)

    counts = merge_checked(spark, path, source, "id", ["value"], delete_missing=True)

    assert counts == {"inserted": 1, "updated": 1, "deleted": 1}
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert rows == [("a", "1", "x"), ("b", "20", "x"), ("d", "4", "x")]


def test_nothing_to_change_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    _table(spark, path, [("a", "1", "x")])
    versions = lambda: spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()  # noqa: E731
    before = versions()

    counts = merge_checked(spark, path, spark.createDataFrame([("a", "1", "y")], SCHEMA), "id", ["value"])

    assert counts == {"inserted": 0, "updated": 0, "deleted": 0}
    assert versions() == before


def test_a_source_with_two_rows_for_one_key_is_refused_before_writing(spark, tmp_path):
    path = str(tmp_path / "t")
    _table(spark, path, [("a", "1", "x")])
    source = spark.createDataFrame([("b", "1", "x"), ("b", "2", "x")], SCHEMA)

    with pytest.raises(PublishMismatch, match="several rows for id b"):
        merge_checked(spark, path, source, "id", ["value"])

    assert [tuple(r) for r in spark.read.format("delta").load(path).collect()] == [("a", "1", "x")]


def test_an_empty_table_is_appended_to_with_the_same_counts(spark, tmp_path):
    path = str(tmp_path / "t")
    _table(spark, path, [])
    source = spark.createDataFrame([("b", "2", "x"), ("a", "1", "x")], SCHEMA)

    counts = merge_checked(spark, path, source.select("note", "value", "id"), "id", ["value"], delete_missing=True)

    assert counts == {"inserted": 2, "updated": 0, "deleted": 0}
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").first()["operation"] == "WRITE"
    assert sorted(tuple(r) for r in spark.read.format("delta").load(path).collect()) == [("a", "1", "x"), ("b", "2", "x")]


def test_an_empty_source_into_an_empty_table_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    _table(spark, path, [])
    before = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()

    assert merge_checked(spark, path, spark.createDataFrame([], SCHEMA), "id", ["value"]) == {
        "inserted": 0, "updated": 0, "deleted": 0
    }
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count() == before


def test_two_rows_for_one_key_are_refused_by_an_empty_table_too(spark, tmp_path):
    path = str(tmp_path / "t")
    _table(spark, path, [])
    source = spark.createDataFrame([("b", "1", "x"), ("b", "2", "x")], SCHEMA)

    with pytest.raises(PublishMismatch, match="several rows for id b"):
        merge_checked(spark, path, source, "id", ["value"])

    assert spark.read.format("delta").load(path).count() == 0
