from jobs.spark import resolve_settings, settings_from_env


def test_environment_overrides_config_which_overrides_defaults():
    settings = resolve_settings(
        {"spark.master": "local[1]", "spark.sql.shuffle.partitions": "3"},
        {"CDI_SPARK_MASTER": "spark://127.0.0.1:7077", "CDI_SPARK_CONF_spark__executor__memory": "2g"},
    )
    assert settings["spark.master"] == "spark://127.0.0.1:7077"
    assert settings["spark.sql.shuffle.partitions"] == "3"
    assert settings["spark.executor.memory"] == "2g"
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_unrelated_environment_is_ignored():
    assert settings_from_env({"PATH": "/bin", "CDI_LAKE": "x"}) == {}


def test_session_runs_python_workers_with_this_interpreter(spark):
    import sys

    def interpreter(_):
        import sys as worker_sys

        return [worker_sys.executable]

    assert spark.sparkContext.parallelize([0], 1).mapPartitions(interpreter).collect() == [sys.executable]
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
