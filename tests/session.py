"""The test session's Spark settings: small data, two cores (used by ``tests/conftest.py`` and ``bench.stage_times``)."""

TEST_SESSION = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "false",
    # Every test's data is small: as a run over small data does (jobs.spark.size_settings).
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.driver.memory": "2g",
}
