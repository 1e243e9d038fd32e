"""Delta helpers in SQL (``jobs.delta_io``) do what delta-spark's ``DeltaTable`` API does on the same tables.

The jobs use SQL because a Spark Connect server runs it without Delta's Connect
plugin; delta-spark's API, which the test session can still call, is the
reference each helper is compared with.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, MapType, StringType, StructField, StructType, TimestampType

from jobs.spark import DEFAULTS
from jobs.delta_io import (
    Merge,
    create_if_missing,
    delete_rows,
    delta_identifier,
    history,
    read_table,
    replace_where,
    restore,
    table_exists,
    table_folders,
    update_rows,
)

TARGET = [("a", 1, "x"), ("b", 2, "y"), ("c", 3, "z")]
SOURCE = [("a", 1, "x"), ("b", 20, "y"), ("d", 4, "w")]
SCHEMA = "key string, amount int, label string"


def table(spark: SparkSession, path: Path, rows=TARGET, schema: str = SCHEMA) -> str:
    spark.createDataFrame(rows, schema).write.format("delta").save(str(path))
    return str(path)


def contents(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def test_an_upsert_that_deletes_what_the_source_lacks_equals_delta_sparks(spark, tmp_path: Path) -> None:
    ours, theirs = table(spark, tmp_path / "ours"), table(spark, tmp_path / "theirs")
    source = spark.createDataFrame(SOURCE, SCHEMA)
    changed = "NOT (t.amount <=> s.amount) OR NOT (t.label <=> s.label)"

    (
        Merge(ours, source, "t.key = s.key")
        .when_matched_update_all(condition=changed)
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete()
        .execute(spark)
    )
    (
        DeltaTable.forPath(spark, theirs).alias("t").merge(source.alias("s"), "t.key = s.key")
        .whenMatchedUpdateAll(condition=changed).whenNotMatchedInsertAll().whenNotMatchedBySourceDelete().execute()
    )

    assert_df_equality(contents(spark, ours), contents(spark, theirs), ignore_row_order=True)
    assert sorted(contents(spark, ours).collect()) == [("a", 1, "x"), ("b", 20, "y"), ("d", 4, "w")]
    metrics = history(spark, ours).select("operation", "operationMetrics").first()
    assert metrics["operation"] == "MERGE"
    assert {k: metrics["operationMetrics"][k] for k in ("numTargetRowsUpdated", "numTargetRowsInserted", "numTargetRowsDeleted")} == {
        "numTargetRowsUpdated": "1", "numTargetRowsInserted": "1", "numTargetRowsDeleted": "1"
    }


def test_conditional_deletes_listed_updates_and_conditional_inserts_equal_delta_sparks(spark, tmp_path: Path) -> None:
    ours, theirs = table(spark, tmp_path / "ours"), table(spark, tmp_path / "theirs")
    source = spark.createDataFrame(
        [("a", 10, "x", False), ("b", 20, "q", True), ("d", 4, "w", True), ("e", 5, "v", False)],
        f"{SCHEMA}, _keep boolean",
    )
    columns = ["key", "amount", "label"]

    (
        Merge(ours, source, "t.key = s.key")
        .when_matched_delete(condition="NOT s._keep")
        .when_matched_update(columns)
        .when_not_matched_insert(columns, condition="s._keep")
        .execute(spark)
    )
    values = {c: F.col(f"s.{c}") for c in columns}
    (
        DeltaTable.forPath(spark, theirs).alias("t").merge(source.alias("s"), "t.key = s.key")
        .whenMatchedDelete(condition="NOT s._keep").whenMatchedUpdate(set=values)
        .whenNotMatchedInsert(condition="s._keep", values=values).execute()
    )

    assert_df_equality(contents(spark, ours), contents(spark, theirs), ignore_row_order=True)
    assert sorted(contents(spark, ours).collect()) == [("b", 20, "q"), ("c", 3, "z"), ("d", 4, "w")]


def test_schema_evolution_adds_the_sources_new_column(spark, tmp_path: Path) -> None:
    path = table(spark, tmp_path / "t")
    source = spark.createDataFrame([("a", 1, "x", "new"), ("e", 5, "v", "too")], f"{SCHEMA}, extra string")

    Merge(path, source, "t.key = s.key").with_schema_evolution().when_matched_update_all().when_not_matched_insert_all().execute(spark)

    assert sorted(contents(spark, path).collect(), key=lambda r: r["key"]) == [
        ("a", 1, "x", "new"), ("b", 2, "y", None), ("c", 3, "z", None), ("e", 5, "v", "too")
    ]


def test_a_replacement_with_a_new_column_adds_it_only_when_asked(spark, tmp_path: Path) -> None:
    path = table(spark, tmp_path / "t")
    wider = spark.createDataFrame([("a", 10, "x", "new")], f"{SCHEMA}, extra string")

    with pytest.raises(Exception, match="(?i)schema"):
        replace_where(wider, path, "key = 'a'")
    replace_where(wider, path, "key = 'a'", merge_schema=True)

    expected = spark.createDataFrame(
        [("a", 10, "x", "new"), ("b", 2, "y", None), ("c", 3, "z", None)], f"{SCHEMA}, extra string"
    )
    assert_df_equality(read_table(spark, path), expected, ignore_row_order=True, ignore_nullable=True)


def test_a_merge_leaves_no_temporary_view_behind_even_when_it_fails(spark, tmp_path: Path) -> None:
    path = table(spark, tmp_path / "t")
    views_before = {t.name for t in spark.catalog.listTables() if t.isTemporary}

    with pytest.raises(Exception, match="DELTA_MERGE_UNRESOLVED_EXPRESSION"):
        Merge(path, spark.createDataFrame(SOURCE, SCHEMA), "t.key = s.missing_column").when_matched_delete().execute(spark)

    assert {t.name for t in spark.catalog.listTables() if t.isTemporary} == views_before


def test_names_that_need_quoting_reach_sql_intact(spark, tmp_path: Path) -> None:
    path = tmp_path / "odd `name` dir"
    table(spark, path, rows=[("a", 1)], schema="`odd-col` string, `back``tick` int")
    source = spark.createDataFrame([("a", 2), ("b", 3)], "`odd-col` string, `back``tick` int")

    (
        Merge(str(path), source, "t.`odd-col` = s.`odd-col`")
        .when_matched_update(["odd-col", "back`tick"])
        .when_not_matched_insert(["odd-col", "back`tick"])
        .execute(spark)
    )

    assert sorted(contents(spark, str(path)).collect()) == [("a", 2), ("b", 3)]
    assert delta_identifier("/x/a`b") == "delta.`/x/a``b`"


def test_a_merge_without_clauses_is_refused_before_spark_sees_it(spark) -> None:
    with pytest.raises(ValueError, match="no WHEN clause"):
        Merge("/nowhere", spark.range(1), "t.id = s.id").sql("v")


def test_table_exists_agrees_with_delta_spark(spark, tmp_path: Path) -> None:
    delta = table(spark, tmp_path / "delta")
    (tmp_path / "empty_log" / "_delta_log").mkdir(parents=True)
    spark.range(2).write.parquet(str(tmp_path / "parquet"))
    (tmp_path / "plain_file").write_text("x")
    paths = [delta, tmp_path / "empty_log", tmp_path / "parquet", tmp_path / "missing", tmp_path / "plain_file"]

    for path in map(str, paths):
        expected = DeltaTable.isDeltaTable(spark, path)
        assert table_exists(spark, path) == expected, path
        assert table_exists(spark, Path(path).as_uri()) == expected, f"{path} as a URI"
    assert table_exists(spark, delta)


def test_create_if_missing_makes_the_table_delta_spark_would_and_then_leaves_it(spark, tmp_path: Path) -> None:
    """The same schema, and the given properties over the session's defaults for new tables (jobs/spark.py)."""
    schema = StructType([
        StructField("id", StringType(), False),
        StructField("count", IntegerType(), True),
        StructField("tags", ArrayType(StringType()), True),
        StructField("attributes", MapType(StringType(), StringType()), True),
        StructField("at", TimestampType(), True),
    ])
    properties = {"delta.enableChangeDataFeed": "true", "delta.appendOnly": "false"}
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")

    create_if_missing(spark, ours, schema, properties)
    create_if_missing(spark, ours, schema, properties)
    builder = DeltaTable.createIfNotExists(spark).location(theirs).addColumns(schema)
    for key, value in properties.items():
        builder = builder.property(key, value)
    builder.execute()

    assert contents(spark, ours).schema == contents(spark, theirs).schema
    detail = {p: spark.sql(f"DESCRIBE DETAIL {delta_identifier(p)}").first() for p in (ours, theirs)}
    prefix = "spark.databricks.delta.properties.defaults."
    defaults = {f"delta.{key.removeprefix(prefix)}": spark.conf.get(key) for key in DEFAULTS if key.startswith(prefix)}
    assert defaults
    assert detail[ours]["properties"] == detail[theirs]["properties"] == {**defaults, **properties}
    assert history(spark, ours).count() == 1


def test_update_delete_and_restore(spark, tmp_path: Path) -> None:
    path = table(spark, tmp_path / "t", rows=[("a", 1, None), ("b", 2, None)])
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    update_rows(spark, path, {"label": "CAST(:at AS STRING)", "amount": "amount + :step"}, "key = :key",
                args={"at": at, "step": 10, "key": "a"})
    assert sorted(contents(spark, path).collect()) == [("a", 11, "2026-01-02 03:04:05"), ("b", 2, None)]

    delete_rows(spark, path, "key = :key", args={"key": "b"})
    assert contents(spark, path).collect() == [("a", 11, "2026-01-02 03:04:05")]

    restore(spark, path, 0)
    assert sorted(contents(spark, path).collect()) == [("a", 1, None), ("b", 2, None)]
    assert [r["operation"] for r in history(spark, path).orderBy("version").collect()] == ["WRITE", "UPDATE", "DELETE", "RESTORE"]

    delete_rows(spark, path)
    assert contents(spark, path).count() == 0


def test_table_folders_finds_the_same_tables_on_a_local_path_and_a_uri(spark, tmp_path: Path) -> None:
    lake = tmp_path / "layer"
    table(spark, lake / "young")
    old = table(spark, lake / "old")
    spark.sql(f"ALTER TABLE {delta_identifier(old)} SET TBLPROPERTIES ('delta.checkpointInterval' = '2')")
    for _ in range(3):
        spark.createDataFrame(TARGET, SCHEMA).write.format("delta").mode("append").save(old)
    (lake / "old" / "_delta_log" / "00000000000000000000.json").unlink()  # as Delta's log clean-up leaves it
    (lake / "empty_log" / "_delta_log").mkdir(parents=True)
    spark.range(2).write.parquet(str(lake / "parquet"))
    (lake / "plain_file").write_text("x")

    assert contents(spark, old).count() == 12
    assert table_folders(spark, str(lake)) == ["old", "young"]
    assert table_folders(spark, lake.as_uri()) == ["old", "young"]
    assert table_folders(spark, str(tmp_path / "missing")) == table_folders(spark, (tmp_path / "missing").as_uri()) == []
