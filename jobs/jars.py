"""Resolve Spark's JVM jars (Delta, JDBC drivers) from Maven Central once.

``python -m jobs.jars`` fills the git-ignored Ivy cache (``.ivy/``); later
sessions take the jars from there as files and need no network.
"""

from __future__ import annotations

import os
import sys

from jobs.spark import JARS_CACHE, JVM_PACKAGES, jar_settings


def main() -> int:
    if "spark.jars" in jar_settings():
        print(f"JVM jars already cached in {JARS_CACHE / 'jars'}")
        return 0
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.jars.packages", ",".join(JVM_PACKAGES))
        .config("spark.jars.ivy", str(JARS_CACHE))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()
    if "spark.jars" not in jar_settings():
        print(f"JVM jars did not resolve into {JARS_CACHE}", file=sys.stderr)
        return 1
    print(f"JVM jars resolved into {JARS_CACHE / 'jars'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
