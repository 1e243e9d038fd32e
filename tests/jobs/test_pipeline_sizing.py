"""The run sizes the Spark session to its rows (``jobs.pipeline._size_session``): those landed in bronze, and
before ingest the sources' estimated rows (``jobs.sources.estimated_rows``); ``cdi erase`` and ``cdi maintain``
size it to the lake's bronze rows (``jobs.pipeline.size_to_lake``)."""

from __future__ import annotations

import contextlib
import io
import sqlite3
from dataclasses import replace

import pytest

from config.lake import Lake
from config.pipeline import ReadSettings
from demo.generator import generate
from jobs.cli import main
from jobs.pipeline import _size_session
from jobs.sources import BYTES_PER_ROW, estimated_rows
from jobs.spark import CODEGEN_FACTORY_MODE, CODEGEN_ROWS, WHOLE_STAGE_CODEGEN
from tests.demo_run import CONF, data_dir, demo_context

SIZED = (WHOLE_STAGE_CODEGEN, CODEGEN_FACTORY_MODE)
SMALL = {WHOLE_STAGE_CODEGEN: "false", CODEGEN_FACTORY_MODE: "NO_CODEGEN"}
LARGE = {WHOLE_STAGE_CODEGEN: "true", CODEGEN_FACTORY_MODE: "FALLBACK"}


def sized(spark) -> dict[str, str]:
    return {key: spark.conf.get(key) for key in SIZED}


def restore(spark, before: dict[str, str]) -> None:
    for key, value in before.items():
        spark.conf.set(key, value)


def test_code_generation_follows_the_landed_rows_and_is_restored_for_large_data(spark, tmp_path):
    context = demo_context(tmp_path / "lake", "r1")
    before = sized(spark)
    try:
        spark.range(10).write.format("delta").save(context.lake.bronze("crm"))
        _size_session(spark, context, "standardize")
        assert sized(spark) == SMALL
        spark.range(CODEGEN_ROWS).write.format("delta").save(context.lake.bronze_activity("crm", "orders"))
        _size_session(spark, context, "standardize")
        assert sized(spark) == LARGE
    finally:
        restore(spark, before)


def test_before_ingest_the_sources_files_size_the_session(spark, tmp_path):
    data = tmp_path / "data"
    generate(data, customers=20, seed=3)
    with data_dir(data):
        context = demo_context(tmp_path / "lake", "r1", activities=True)
    before = sized(spark)
    try:
        spark.conf.set(WHOLE_STAGE_CODEGEN, "true")
        spark.conf.set(CODEGEN_FACTORY_MODE, "FALLBACK")
        _size_session(spark, context, "ingest")
        assert sized(spark) == SMALL
        with (data / "webshop_orders.jsonl").open("a", encoding="utf-8") as orders:
            orders.write("\n" * (CODEGEN_ROWS * BYTES_PER_ROW))
        _size_session(spark, context, "ingest")
        assert sized(spark) == LARGE
    finally:
        restore(spark, before)


def test_a_configured_value_is_left_alone(spark, tmp_path):
    context = demo_context(tmp_path / "lake", "r1")
    context = replace(context, config=context.config.model_copy(update={"spark": {WHOLE_STAGE_CODEGEN: "true"}}))
    spark.range(10).write.format("delta").save(context.lake.bronze("crm"))
    before = sized(spark)
    try:
        spark.conf.set(WHOLE_STAGE_CODEGEN, "true")
        spark.conf.set(CODEGEN_FACTORY_MODE, "FALLBACK")
        _size_session(spark, context, "standardize")
        assert sized(spark) == {WHOLE_STAGE_CODEGEN: "true", CODEGEN_FACTORY_MODE: "NO_CODEGEN"}
    finally:
        restore(spark, before)


def test_estimated_rows_count_each_local_file_once_and_know_nothing_of_a_server(tmp_path):
    database = tmp_path / "crm.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE contacts (id INTEGER, name TEXT)")
        conn.executemany("INSERT INTO contacts VALUES (?, ?)", [(i, "x" * 50) for i in range(500)])
    parts = tmp_path / "signups"
    parts.mkdir()
    (parts / "part-1.json").write_text("a" * 1000)
    (parts / "part-2.json").write_text("b" * 3000)
    crm = ReadSettings(name="crm", kind="jdbc", url=f"jdbc:sqlite:{database}", table="contacts")
    orders = ReadSettings(name="orders", kind="jdbc", url=f"jdbc:sqlite:{database}", query="SELECT 1")
    signups = ReadSettings(name="signups", kind="json", path=str(parts))
    globbed = ReadSettings(name="globbed", kind="json", path=str(parts / "part-*.json"))
    server = ReadSettings(name="pg", kind="jdbc", url="jdbc:postgresql://127.0.0.1/x", table="contacts")
    remote = ReadSettings(name="s3", kind="csv", path="s3a://bucket/contacts.csv")

    assert estimated_rows([crm, orders]) == database.stat().st_size // BYTES_PER_ROW
    assert estimated_rows([crm, signups, globbed]) == (database.stat().st_size + 4000) // BYTES_PER_ROW
    assert estimated_rows([crm, server]) is None
    assert estimated_rows([remote]) is None
    assert estimated_rows([]) == 0


def test_a_file_that_cannot_be_looked_at_leaves_the_estimate_unknown(tmp_path, monkeypatch):
    source = tmp_path / "contacts.csv"
    source.write_text("id\n1\n")
    dangling = tmp_path / "gone.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    csv = ReadSettings(name="contacts", kind="csv", path=str(source))

    assert estimated_rows([ReadSettings(name="gone", kind="csv", path=str(dangling))]) == 0

    def unreadable(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(source), "stat", unreadable)
    assert estimated_rows([csv]) is None


@pytest.mark.parametrize(
    "command", [("maintain",), ("erase", "--source", "crm", "--key", "1", "--reason", "TICKET-1", "--dry-run")], ids=lambda c: c[0]
)
def test_erase_and_maintain_size_the_session_to_the_lake(spark, tmp_path, monkeypatch, command):
    lake = Lake.at(tmp_path / "lake")
    bronze = spark.range(10).selectExpr("'crm' AS source_system", "CAST(id AS STRING) AS source_key")
    bronze.write.format("delta").save(lake.bronze("crm"))
    monkeypatch.setenv("CDI_LAKE", lake.root)
    before = sized(spark)
    try:
        spark.conf.set(WHOLE_STAGE_CODEGEN, "true")
        spark.conf.set(CODEGEN_FACTORY_MODE, "FALLBACK")
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(out):
            code = main([command[0], "--config", str(CONF), *command[1:]])
        assert code == 0, out.getvalue()
        assert sized(spark) == SMALL
    finally:
        restore(spark, before)
