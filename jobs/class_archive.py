"""Build the JVM class archive that lets every later session start faster.

A cold Spark driver loads and verifies thousands of classes (Spark
SQL, Delta, Hadoop, Jackson...) before it runs a query. The JDK can write the
classes a JVM loaded into a class data sharing archive as it exits
(``-XX:ArchiveClassesAtExit``); a JVM started with that archive
(``-XX:SharedArchiveFile``) maps them instead (``jobs.spark.archive_options``).

``python -m jobs.class_archive`` (run by ``make setup``) starts a session,
runs a small workload through the paths every run takes (Delta write, read
and MERGE, a CSV read, a pandas UDF, a join and an aggregate), lets the JVM
exit, checks that it exited cleanly and that a JVM starts with the archive,
and only then moves it to ``jobs.spark.CLASS_ARCHIVE``: a cut-off archive
crashes the JVM that maps it, so none is put in place unchecked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs.spark import CLASS_ARCHIVE, DEFAULTS, EXTRA_JAVA_OPTIONS, QUIET_CLASS_ARCHIVE as QUIET, build_session

WORKLOAD_ROWS = 1_000
DUMP_TIMEOUT = 300


def _workload(spark, folder: Path) -> None:
    from pyspark.sql import functions as F

    people = spark.range(WORKLOAD_ROWS).select(
        F.col("id").cast("string").alias("record_id"),
        F.concat(F.lit("name "), (F.col("id") % 97).cast("string")).alias("name"),
        F.date_add(F.lit("1950-01-01").cast("date"), (F.col("id") * 37 % 20000).cast("int")).alias("born"),
    )
    table = str(folder / "table")
    people.write.format("delta").save(table)
    people.write.option("header", True).csv(str(folder / "csv"))
    spark.read.option("header", True).csv(str(folder / "csv")).count()

    from delta.tables import DeltaTable

    changed = spark.read.format("delta").load(table).withColumn("name", F.upper("name"))
    (
        DeltaTable.forPath(spark, table).alias("t")
        .merge(changed.alias("s"), "t.record_id = s.record_id")
        .whenMatchedUpdateAll(condition="NOT (t.name <=> s.name)")
        .whenNotMatchedInsertAll()
        .execute()
    )

    def lengths(batches):
        for batch in batches:
            yield batch.assign(name=batch["name"].str.len().astype("string"))

    current = spark.read.format("delta").load(table)
    joined = current.join(current.mapInPandas(lengths, current.schema).withColumnRenamed("name", "n"), ["record_id", "born"])
    joined.groupBy("n").agg(F.count(F.lit(1)).alias("count"), F.min("born")).orderBy("n").toPandas()


def _runs_with(archive: Path) -> bool:
    """Whether a JVM started with ``archive`` runs: a cut-off archive crashes it (SIGBUS) as it maps the
    file; a file that is no archive at all, or one for another JDK, is ignored."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None:
        return False
    with tempfile.TemporaryDirectory(prefix="cdi-class-archive-check-") as scratch:
        # A crash writes its report (hs_err_pid*.log) into a scratch folder, not the working directory.
        done = subprocess.run(
            [java, f"-XX:SharedArchiveFile={archive}", *QUIET, "-XX:-CreateCoredumpOnCrash",
             f"-XX:ErrorFile={scratch}/hs_err_pid%p.log", "-version"],
            capture_output=True, timeout=60, cwd=scratch,
        )
    return done.returncode == 0


def build(archive: Path = CLASS_ARCHIVE) -> Path | None:
    """Write the archive to ``archive``; None when this JVM could not make a usable one (sessions then start without)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    options = " ".join([DEFAULTS[EXTRA_JAVA_OPTIONS], f"-XX:ArchiveClassesAtExit={partial}", *QUIET])
    with tempfile.TemporaryDirectory(prefix="cdi-class-archive-") as scratch:
        spark = build_session(
            {
                "spark.master": "local[2]",
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "2",
                EXTRA_JAVA_OPTIONS: options,
            },
            Path(scratch) / "jvm.log",
        )
        _workload(spark, Path(scratch))
        jvm = spark.sparkContext._gateway.proc
        spark.stop()
        jvm.stdin.close()  # the JVM exits on end of input, and writes the archive as it does
        try:
            jvm.wait(timeout=DUMP_TIMEOUT)
        except subprocess.TimeoutExpired:
            jvm.kill()
            jvm.wait()
    if jvm.returncode != 0 or not partial.exists() or not _runs_with(partial):
        partial.unlink(missing_ok=True)
        return None
    partial.replace(archive)
    return archive


def main() -> int:
    if CLASS_ARCHIVE.exists():
        print(f"JVM class archive already built: {CLASS_ARCHIVE}")
        return 0
    built = build()
    if built is None:
        # Not an error: sessions start without the archive, only slower.
        print("JVM class archive not built: this JVM could not write or map one", file=sys.stderr)
        return 0
    print(f"JVM class archive built: {built}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
