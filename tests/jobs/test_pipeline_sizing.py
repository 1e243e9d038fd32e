"""The run sizes the Spark session to the rows landed in bronze (``jobs.pipeline._size_session``)."""

from __future__ import annotations

from dataclasses import replace

from jobs.pipeline import _size_session
from jobs.spark import CODEGEN_FACTORY_MODE, SMALL_DATA_ROWS, WHOLE_STAGE_CODEGEN
from tests.demo_run import demo_context

SIZED = (WHOLE_STAGE_CODEGEN, CODEGEN_FACTORY_MODE)


def sized(spark) -> dict[str, str]:
    return {key: spark.conf.get(key) for key in SIZED}


def test_code_generation_follows_the_landed_rows_and_is_restored_for_large_data(spark, tmp_path):
    context = demo_context(tmp_path / "lake", "r1")
    before = sized(spark)
    try:
        spark.range(10).write.format("delta").save(context.lake.bronze("crm"))
        _size_session(spark, context)
        assert sized(spark) == {WHOLE_STAGE_CODEGEN: "false", CODEGEN_FACTORY_MODE: "NO_CODEGEN"}
        spark.range(SMALL_DATA_ROWS).write.format("delta").save(context.lake.bronze_activity("crm", "orders"))
        _size_session(spark, context)
        assert sized(spark) == {WHOLE_STAGE_CODEGEN: "true", CODEGEN_FACTORY_MODE: "FALLBACK"}
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)


def test_a_configured_value_is_left_alone(spark, tmp_path):
    context = demo_context(tmp_path / "lake", "r1")
    context = replace(context, config=context.config.model_copy(update={"spark": {WHOLE_STAGE_CODEGEN: "true"}}))
    spark.range(10).write.format("delta").save(context.lake.bronze("crm"))
    before = sized(spark)
    try:
        spark.conf.set(WHOLE_STAGE_CODEGEN, "true")
        spark.conf.set(CODEGEN_FACTORY_MODE, "FALLBACK")
        _size_session(spark, context)
        assert sized(spark) == {WHOLE_STAGE_CODEGEN: "true", CODEGEN_FACTORY_MODE: "NO_CODEGEN"}
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)
