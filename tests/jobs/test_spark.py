import pandas as pd
import phonenumbers
import pyarrow.parquet as pq

from jobs.spark import (
    CODEGEN_FACTORY_MODE, CODEGEN_ROWS, DRIVER_CLASS_PATH, E164_FUNCTION, NIO_LOCAL_FS, PHONENUMBER_PACKAGE,
    WHOLE_STAGE_CODEGEN, SessionStart, cdi_jar_settings, has_function, register_functions, remote_settings,
    resolve_settings, settings_from_env, size_settings,
)
from tests.session import TEST_SESSION


def test_environment_overrides_config_which_overrides_defaults():
    settings = resolve_settings(
        {"spark.master": "local[1]", "spark.sql.shuffle.partitions": "3"},
        {"CDI_SPARK_MASTER": "spark://127.0.0.1:7077", "CDI_SPARK_CONF_spark__executor__memory": "2g"},
    )
    assert settings["spark.master"] == "spark://127.0.0.1:7077"
    assert settings["spark.sql.shuffle.partitions"] == "3"
    assert settings["spark.executor.memory"] == "2g"
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_a_remote_from_the_environment_wins_over_the_configs_and_sends_only_session_settings():
    settings = resolve_settings(
        {"spark.remote": "sc://config:15002", "spark.sql.shuffle.partitions": "3", "spark.executor.memory": "2g"},
        {"CDI_SPARK_REMOTE": "sc://env:15002", "CDI_SPARK_CONF_spark__databricks__delta__x": "1"},
    )

    sent = remote_settings(settings)

    assert sent["spark.remote"] == "sc://env:15002"
    assert sent["spark.sql.shuffle.partitions"] == "3"
    assert sent["spark.databricks.delta.x"] == "1"
    assert sent["spark.sql.session.timeZone"] == "UTC"
    assert all(key == "spark.remote" or key.startswith(("spark.sql.", "spark.databricks.")) for key in sent)
    assert not {"spark.master", "spark.jars", "spark.executor.memory", "spark.driver.extraJavaOptions"} & set(sent)


def test_unrelated_environment_is_ignored():
    assert settings_from_env({"PATH": "/bin", "CDI_LAKE": "x"}) == {}


def test_session_runs_python_workers_with_this_interpreter(spark):
    import sys

    def interpreter(_):
        import sys as worker_sys

        return [worker_sys.executable]

    assert spark.sparkContext.parallelize([0], 1).mapPartitions(interpreter).collect() == [sys.executable]
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"


def test_a_session_start_in_a_process_that_has_a_session_returns_that_session(spark, tmp_path):
    starting = SessionStart(TEST_SESSION, tmp_path / "spark.log")

    assert starting.session() is spark
    assert not (tmp_path / "spark.log").exists()


def test_code_generation_is_off_for_small_data_on_for_large_and_a_configured_value_wins():
    small = {WHOLE_STAGE_CODEGEN: "false", CODEGEN_FACTORY_MODE: "NO_CODEGEN"}
    large = {WHOLE_STAGE_CODEGEN: "true", CODEGEN_FACTORY_MODE: "FALLBACK"}

    assert size_settings(0, {}) == small
    assert size_settings(CODEGEN_ROWS, {}) == small
    assert size_settings(CODEGEN_ROWS + 1, {}) == large
    assert size_settings(10, resolve_settings({WHOLE_STAGE_CODEGEN: "true"}, {})) == {CODEGEN_FACTORY_MODE: "NO_CODEGEN"}
    assert size_settings(10, resolve_settings({}, {"CDI_SPARK_CONF_spark__sql__codegen__factoryMode": "FALLBACK"})) == {
        WHOLE_STAGE_CODEGEN: "false"
    }


def test_column_calls_send_no_python_call_site_to_the_jvm(spark):
    """PySpark 4's DataFrame debugging adds about ten py4j round trips to every Column call; the session has it off."""
    from pyspark.errors.utils import is_debugging_enabled

    assert spark.conf.get("spark.python.sql.dataFrameDebugging.enabled") == "false"
    assert is_debugging_enabled() is False


def test_cached_frames_are_kept_uncompressed(spark):
    """Choosing a compression scheme for every cached column batch cost more CPU than it saved memory."""
    assert spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed") == "false"


def test_generated_methods_stay_small_enough_for_the_jit(spark):
    """HotSpot runs a method of more than 8,000 bytes of bytecode interpreted; Spark splits such a stage."""
    assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "8000"


def test_python_gets_arrow_batches_of_fifty_thousand_rows(spark):
    """The comparisons pay a fixed pandas set-up per batch: larger batches spread it over more pairs."""

    def sizes(batches):
        for batch in batches:
            yield pd.DataFrame({"rows": [len(batch)]})

    seen = spark.range(60_000).coalesce(1).mapInPandas(sizes, "rows long").collect()

    assert [row["rows"] for row in seen] == [50_000, 10_000]


def test_parquet_is_written_without_dictionaries(spark, tmp_path):
    """Nearly every value cdi stores is distinct: filling a dictionary only to abandon it costs CPU."""
    spark.range(50).selectExpr("cast(id % 2 as string) as parity").coalesce(1).write.parquet(str(tmp_path / "t"))
    (written,) = (tmp_path / "t").glob("*.parquet")
    assert not pq.ParquetFile(written).metadata.row_group(0).column(0).has_dictionary_page


def test_the_jar_goes_on_every_driver_the_nio_file_system_only_on_a_local_one_and_a_configured_one_wins(tmp_path):
    jar, no_phones = tmp_path / "cdi.jar", tmp_path / "not resolved.jar"
    jar.write_bytes(b"")
    with_jar = {DRIVER_CLASS_PATH: str(jar)}

    def settings(given: dict[str, str], built=jar) -> dict[str, str]:
        return cdi_jar_settings(given, built, no_phones)

    assert settings({"spark.master": "local[*]"}) == {**NIO_LOCAL_FS, **with_jar}
    assert settings({"spark.master": "local"}) == {**NIO_LOCAL_FS, **with_jar}
    assert settings({"spark.master": "local[2]", DRIVER_CLASS_PATH: "/x.jar"})[DRIVER_CLASS_PATH] == f"/x.jar:{jar}"
    assert settings({"spark.master": "spark://127.0.0.1:7077"}) == with_jar
    assert settings({"spark.master": "local-cluster[2,1,1024]"}) == with_jar
    assert settings({"spark.master": "local", "spark.hadoop.fs.file.impl": "x.Fs"}) == with_jar
    assert settings({"spark.master": "local[*]"}, tmp_path / "not built.jar") == {}


def test_libphonenumber_goes_on_the_class_path_beside_the_jar_when_resolved(tmp_path):
    jar, phones = tmp_path / "cdi.jar", tmp_path / "libphonenumber.jar"
    jar.write_bytes(b"")
    phones.write_bytes(b"")

    assert cdi_jar_settings({"spark.master": "local[*]"}, jar, phones)[DRIVER_CLASS_PATH] == f"{jar}:{phones}"
    assert cdi_jar_settings({"spark.master": "local[*]"}, tmp_path / "not built.jar", phones) == {}


def test_the_phone_library_is_the_version_of_the_python_package():
    """The JVM function and ``to_e164`` must read every number alike: the same library at the same version."""
    assert PHONENUMBER_PACKAGE.rsplit(":", 1)[1] == phonenumbers.__version__


def test_the_session_has_cdis_jvm_functions(spark):
    """The suite's session is a local master with cdi's jar, as a `cdi run` on this machine."""
    assert has_function(spark, E164_FUNCTION)
    assert register_functions(spark)
