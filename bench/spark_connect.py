"""Which operations cdi's jobs use work through a Spark Connect server here, and which do not.

Starts a Spark Connect server from the pip distribution (pyspark ships
``spark-connect_2.13`` in its jars) with the Delta jars ``make setup``
resolved and Delta's SQL extension and catalog, connects to it, runs each
probe on its own, prints a table, writes ``bench/out/spark_connect.json`` and
stops the server. It also asks Maven Central for Delta's Connect server
plugin, which the ``DeltaTable`` API needs on Spark Connect::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.spark_connect
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from jobs.spark import DELTA_PACKAGE
from tools.connect_server import start_server

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "spark_connect.json"
MAVEN = "https://repo1.maven.org/maven2"
DELTA_VERSION = DELTA_PACKAGE.rsplit(":", 1)[1]
# Delta's Connect server plugin (the DeltaTable API's handler on the server) and the module it depends on.
DELTA_CONNECT_ARTIFACTS = ("delta-connect-server_2.13", "delta-connect-common_2.13")


def probes(spark, folder: Path) -> dict[str, Callable[[], str]]:
    """Each operation cdi's jobs rely on, as a call that returns what it found or raises."""
    from pyspark.sql import functions as F

    table = str(folder / "table")

    def delta_write() -> str:
        spark.range(5).withColumn("name", F.lit("a")).write.format("delta").save(table)
        return "5 rows written"

    def delta_read() -> str:
        return f"{spark.read.format('delta').load(table).count()} rows read"

    def sql_merge() -> str:
        spark.range(3, 8).withColumn("name", F.lit("b")).createOrReplaceTempView("changes")
        spark.sql(
            f"MERGE INTO delta.`{table}` t USING changes s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        ).collect()
        return f"{spark.read.format('delta').load(table).count()} rows after the merge"

    def describe_history() -> str:
        row = spark.sql(f"DESCRIBE HISTORY delta.`{table}` LIMIT 1").first()
        return f"last commit {row['version']}: {row['operation']}"

    def local_checkpoint() -> str:
        return f"{spark.range(3).localCheckpoint().count()} rows"

    @F.pandas_udf("long")
    def plus_one(values: pd.Series) -> pd.Series:
        return values + 1

    def pandas_udf() -> str:
        return str([row[0] for row in spark.range(3).select(plus_one("id")).collect()])

    def job_tags() -> str:
        spark.addTag("cdi:probe")
        spark.range(1).collect()
        spark.removeTag("cdi:probe")
        return "tagged"

    def arrow_frame() -> str:
        import pyarrow as pa

        return f"{spark.createDataFrame(pa.table({'x': [1, 2]}).to_pandas()).count()} rows"

    def delta_table_api() -> str:
        from delta.tables import DeltaTable

        return f"{DeltaTable.forPath(spark, table).toDF().count()} rows"

    def delta_table_merge() -> str:
        from delta.tables import DeltaTable

        changes = spark.range(9, 10).withColumn("name", F.lit("c"))
        DeltaTable.forPath(spark, table).alias("t").merge(changes.alias("s"), "t.id = s.id").whenNotMatchedInsertAll().execute()
        return "merged"

    def spark_context() -> str:
        return str(spark.sparkContext)

    def cdi_merge() -> str:
        from jobs.delta_io import Merge

        changes = spark.range(8, 11).withColumn("name", F.lit("d"))
        Merge(table, changes, "t.id = s.id").when_matched_update_all().when_not_matched_insert_all().execute(spark)
        return f"{spark.read.format('delta').load(table).count()} rows after the merge"

    def cdi_create() -> str:
        from pyspark.sql.types import StringType, StructField, StructType

        from jobs.delta_io import create_if_missing

        created = str(folder / "created")
        create_if_missing(spark, created, StructType([StructField("id", StringType(), False)]), {"delta.appendOnly": "false"})
        return f"{len(spark.read.format('delta').load(created).columns)} column(s)"

    def cdi_table_folders() -> str:
        from jobs.delta_io import table_folders

        return f"tables under the folder, as a file: URI: {table_folders(spark, folder.as_uri())}"

    return {
        "Delta write (DataFrameWriter)": delta_write,
        "Delta read (DataFrameReader)": delta_read,
        "MERGE INTO in SQL": sql_merge,
        "DESCRIBE HISTORY in SQL": describe_history,
        "localCheckpoint": local_checkpoint,
        "pandas UDF": pandas_udf,
        "job tags (addTag)": job_tags,
        "createDataFrame from pandas": arrow_frame,
        "DeltaTable.forPath (delta-spark)": delta_table_api,
        "DeltaTable merge (delta-spark)": delta_table_merge,
        "sparkContext": spark_context,
        "cdi's Merge (MERGE INTO in SQL, jobs.delta_io)": cdi_merge,
        "cdi's create_if_missing (CREATE TABLE IF NOT EXISTS)": cdi_create,
        "cdi's table_folders (Spark's listing of a URI)": cdi_table_folders,
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def maven_status(artifact: str, version: str) -> str:
    """Whether Maven Central serves ``io.delta:<artifact>:<version>`` here (its POM)."""
    url = f"{MAVEN}/io/delta/{artifact}/{version}/{artifact}-{version}.pom"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return f"served ({response.status})"
    except urllib.error.HTTPError as error:
        return f"not served (HTTP {error.code})"
    except OSError as error:
        return f"unreachable ({error})"


def main() -> int:
    from pyspark.sql import SparkSession

    folder = Path(tempfile.mkdtemp(prefix="cdi-connect-"))
    started = time.monotonic()
    server = start_server(folder / "server.log")
    results: dict[str, dict[str, str]] = {}
    try:
        spark = SparkSession.builder.remote(server.url).getOrCreate()
        print(f"Spark Connect server up in {time.monotonic() - started:.1f} s (Spark {spark.version})")
        for name, probe in probes(spark, folder).items():
            try:
                results[name] = {"status": "works", "detail": probe()}
            except Exception as error:  # a probe's failure is its result
                results[name] = {"status": "fails", "detail": _first_line(error)}
        spark.stop()
    finally:
        server.stop()
    plugins = {artifact: maven_status(artifact, DELTA_VERSION) for artifact in DELTA_CONNECT_ARTIFACTS}

    print("\n| operation | on Spark Connect | detail |\n| --- | --- | --- |")
    for name, found in results.items():
        print(f"| {name} | {found['status']} | {found['detail']} |")
    print()
    for artifact, status in plugins.items():
        print(f"io.delta:{artifact}:{DELTA_VERSION} on Maven Central: {status}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"probes": results, "delta_connect": plugins}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
