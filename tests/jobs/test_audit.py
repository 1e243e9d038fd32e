"""``run_audit`` rows: written with delta-rs on a local lake and with Spark on a URI, read back alike by Spark
and by ``read_audit`` (delta-rs on a local lake, Spark on a URI)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from chispa import assert_df_equality
from delta.tables import DeltaTable as SparkDeltaTable
from deltalake import DeltaTable

from config.lake import Lake
from jobs.audit import AuditRow, read_audit, record_audit
from jobs.delta_io import is_empty, landed_rows, last_commit, logged_rows, read_table, row_count, table_version
from schemas.tables import RUN_AUDIT_SCHEMA

AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
ROWS = [
    AuditRow("r1", "run", None, "started", started_at=AT),
    AuditRow("r1", "ingest", "crm", "ok", rows_in=3, rows_out=2, rows_rejected=1, rows_unchanged=0,
             detail={"why": "é ✓"}, started_at=AT.replace(tzinfo=None), seconds=1.25),  # naive: taken as UTC
]


def expected(spark):
    return spark.createDataFrame(
        [("r1", "run", None, "started", None, None, None, None, "{}", AT, 0.0),
         ("r1", "ingest", "crm", "ok", 3, 2, 1, 0, json.dumps({"why": "é ✓"}), AT, 1.25)],
        RUN_AUDIT_SCHEMA,
    )


def test_a_local_lake_is_written_by_delta_rs_and_read_by_spark(spark, tmp_path):
    lake = Lake.at(tmp_path)
    record_audit(spark, lake, ROWS[:1])
    record_audit(spark, lake, ROWS[1:])
    record_audit(spark, lake, [])
    table = DeltaTable(lake.run_audit)
    assert table.version() == 1  # two commits, nothing for no rows
    assert_df_equality(read_table(spark, lake.run_audit), expected(spark), ignore_row_order=True,
                       ignore_nullable=True)


def test_a_lake_on_a_uri_is_written_by_spark_and_both_writers_share_a_table(spark, tmp_path):
    uri_lake = Lake.at(tmp_path.as_uri())
    assert not uri_lake.is_local
    record_audit(spark, uri_lake, ROWS[:1])
    record_audit(spark, Lake.at(tmp_path), ROWS[1:])  # delta-rs appends to the table Spark created
    operations = [h["operation"] for h in DeltaTable(str(tmp_path / "ops" / "run_audit")).history()]
    assert len(operations) == 2
    assert_df_equality(read_table(spark, uri_lake.run_audit), expected(spark), ignore_row_order=True,
                       ignore_nullable=True)


def test_read_audit_reads_a_local_lake_and_a_uri_alike_and_filters_by_run_and_stage(spark, tmp_path):
    later = AuditRow("r2", "ingest", "crm", "ok", rows_in=5, started_at=AT.replace(hour=10), seconds=2.0)
    local, uri = Lake.at(tmp_path), Lake.at(tmp_path.as_uri())
    assert read_audit(spark, local) == [] and read_audit(spark, uri) == []
    record_audit(spark, local, [*ROWS, later])

    def key(row):
        return (row["run_id"], row["stage"])

    from_logs = sorted(read_audit(spark, local), key=key)
    assert from_logs == sorted(read_audit(spark, uri), key=key)  # delta-rs and Spark see the same rows
    assert [key(r) for r in from_logs] == [("r1", "ingest"), ("r1", "run"), ("r2", "ingest")]
    ingest = from_logs[0]
    assert (ingest["source_system"], ingest["rows_in"], ingest["rows_rejected"], ingest["seconds"]) == ("crm", 3, 1, 1.25)
    assert json.loads(ingest["detail"]) == {"why": "é ✓"}
    assert ingest["started_at"] == AT.replace(tzinfo=None)  # naive UTC, as Spark collects it here
    for lake in (local, uri):
        assert [key(r) for r in read_audit(spark, lake, run_id="r1", stages=("ingest",))] == [("r1", "ingest")]
        assert sorted(key(r) for r in read_audit(spark, lake, stages=("ingest",))) == [("r1", "ingest"), ("r2", "ingest")]


def test_landed_rows_counts_the_current_version_of_every_table_from_the_logs(spark, tmp_path):
    bronze = tmp_path / "bronze"
    assert landed_rows(str(bronze)) == 0
    spark.range(5).write.format("delta").save(str(bronze / "a"))
    spark.range(7).write.format("delta").save(str(bronze / "b"))
    spark.range(2).write.format("delta").mode("overwrite").save(str(bronze / "a"))
    (bronze / "not_a_table").mkdir()
    assert landed_rows(str(bronze)) == 9


def test_landed_rows_knows_nothing_of_a_table_delta_rs_cannot_read(spark, tmp_path):
    bronze = tmp_path / "bronze"
    spark.range(3).write.format("delta").save(str(bronze / "a"))
    broken = bronze / "b" / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text("not json\n")
    assert landed_rows(str(bronze)) is None


def test_a_table_is_empty_by_its_log_on_a_local_lake_and_by_spark_on_a_uri(spark, tmp_path):
    table = tmp_path / "t"
    spark.range(0).write.format("delta").save(str(table))
    assert logged_rows(str(table)) == 0
    assert is_empty(spark, str(table)) and is_empty(spark, f"file://{table}")
    spark.range(4).write.format("delta").mode("append").save(str(table))
    spark.range(0).write.format("delta").mode("append").save(str(table))
    assert logged_rows(str(table)) == 4 and logged_rows(f"file://{table}") is None
    assert not is_empty(spark, str(table)) and not is_empty(spark, f"file://{table}")


def test_the_last_commit_reads_alike_from_the_log_and_from_spark(spark, tmp_path):
    table = tmp_path / "t"
    spark.createDataFrame([(1, "a"), (2, "b")], "k int, v string").write.format("delta").save(str(table))
    assert table_version(spark, str(table)) == 0 and table_version(spark, str(tmp_path / "none")) is None
    (
        SparkDeltaTable.forPath(spark, str(table)).alias("t")
        .merge(spark.createDataFrame([(2, "c"), (3, "d")], "k int, v string").alias("s"), "t.k = s.k")
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    )
    from_log, from_spark = last_commit(spark, str(table)), last_commit(spark, f"file://{table}")
    assert from_log == from_spark
    assert from_log["version"] == 1 and from_log["operation"] == "MERGE"
    metrics = from_log["operationMetrics"]
    assert (metrics["numTargetRowsInserted"], metrics["numTargetRowsUpdated"]) == ("1", "1")
    assert row_count(spark, str(table)) == row_count(spark, f"file://{table}") == 3
