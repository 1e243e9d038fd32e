"""merge_checked: the changes a MERGE will make are counted beforehand and checked against Delta's metrics;
the review queue's rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyspark.sql.types import StringType, StructField, StructType

from jobs.publish import PublishMismatch, candidate_rows, merge_checked
from matching.settings import Thresholds
from schemas.golden import RECORD_STRUCT

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


def test_the_review_queue_holds_pairs_between_the_thresholds_low_inside_a_flagged_cluster_or_linked_apart(spark):
    members = {"a": "C1", "b": "C1", "b2": "C1", "c": "C2", "d": "C3", "e": "C3", "f": "C4", "g": "C5", "h": "C5",
               "i": "C6", "j": "C6", "k": "C7", "m": "C7"}
    clusters = spark.createDataFrame(
        [(r, c, "review" if c == "C3" else None) for r, c in members.items()], "record_id string, cluster_id string, cluster_flag string"
    )
    record_fields = [f.name for f in RECORD_STRUCT.fields]
    records = spark.createDataFrame(
        [tuple(r if name == "record_id" else ("crm" if name == "source_system" else None) for name in record_fields)
         for r in members],
        StructType([f if f.name != "record_id" else StructField("record_id", StringType(), False) for f in RECORD_STRUCT.fields]),
    )
    scored = [("a", "b", 0.6), ("a", "c", 0.9), ("a", "b2", 0.9), ("d", "e", 0.2), ("d", "f", 0.2), ("g", "h", 0.2),
              ("i", "j", 0.6), ("k", "m", None)]
    pairs = spark.createDataFrame(
        [(left, right, p, 1.5, 1.5, 2, "rule") for left, right, p in scored],
        "record_id_l string, record_id_r string, match_probability double, match_weight double, mw_name double, "
        "gamma_name int, blocking_rule string",
    )
    decided = spark.createDataFrame([("i", "j")], "record_id_l string, record_id_r string")

    queue = candidate_rows(records, pairs, clusters, decided, Thresholds(match=0.7, review=0.5), SimpleNamespace(run_id="r1"))

    rows = {r["pair_id"]: (r["reason"], r["evidence"], r["levels"], r["record_l"]["record_id"], r["record_r"]["record_id"],
                           r["run_id"]) for r in queue.collect()}
    assert rows == {
        "a|b": ("between thresholds", {"name": 1.5}, {"name": 2}, "a", "b", "r1"),
        "a|c": ("linked but kept apart", {"name": 1.5}, {"name": 2}, "a", "c", "r1"),
        "d|e": ("cluster members disagree", {"name": 1.5}, {"name": 2}, "d", "e", "r1"),
    }
