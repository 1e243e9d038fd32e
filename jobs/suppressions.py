"""The suppression list: source records ``cdi erase`` removed, which ingest must not land again.

``ops/suppressions`` holds one row per erased source record, identified only
by a salted hash of ``source_system|source_key`` (never the key itself), the
erasure that put it there and, once an operator lifts it, when and by whom.
The salt is random per lake (``ops/lake_salt``, made on first use), so the
hashes in the suppression list and the erasure log cannot be matched against
another lake's or looked up in a table of common keys.
"""

from __future__ import annotations

import hashlib
import secrets

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from config.lake import Lake
from jobs.delta_io import read_table, table_exists

SALT_SCHEMA = StructType([StructField("salt", StringType(), False)])
SUPPRESSIONS_SCHEMA = StructType(
    [
        StructField("source_system", StringType(), False),
        StructField("key_hash", StringType(), False),
        StructField("erasure_id", StringType(), False),
        StructField("suppressed_at", TimestampType(), False),
        StructField("lifted_at", TimestampType(), True),
        StructField("lifted_by", StringType(), True),
    ]
)


def salt_path(lake: Lake) -> str:
    return lake.path("ops", "lake_salt")


def suppressions_path(lake: Lake) -> str:
    return lake.path("ops", "suppressions")


def lake_salt(spark: SparkSession, lake: Lake, *, create: bool = False) -> str | None:
    """The lake's salt; made (once) when ``create`` is set, else None while there is none."""
    path = salt_path(lake)
    if table_exists(spark, path):
        row = read_table(spark, path).first()
        if row is not None:
            return row["salt"]
    if not create:
        return None
    spark.createDataFrame([(secrets.token_hex(32),)], SALT_SCHEMA).write.format("delta").mode("append").save(path)
    return read_table(spark, path).orderBy("salt").first()["salt"]


def key_hash(salt: str, source_system: str, source_key: str) -> str:
    """The hash ``key_hash_column`` computes in Spark, for one key."""
    return hashlib.sha256(f"{salt}|{source_system}|{source_key}".encode("utf-8")).hexdigest()


def key_hash_column(salt: str, source_system: Column, source_key: Column) -> Column:
    return F.sha2(F.concat_ws("|", F.lit(salt), source_system, source_key), 256)


def active_suppressions(spark: SparkSession, lake: Lake, source_system: str) -> DataFrame | None:
    """``key_hash`` of every suppression in force for a source, or None when there is none at all."""
    path = suppressions_path(lake)
    if not table_exists(spark, path):
        return None
    return (
        read_table(spark, path)
        .where((F.col("source_system") == source_system) & F.col("lifted_at").isNull())
        .select("key_hash")
        .distinct()
    )


def mark_suppressed(spark: SparkSession, lake: Lake, rows: DataFrame, salt: str) -> DataFrame:
    """``rows`` (with ``source_system``, ``source_key``) with ``_suppressed``: whether a suppression holds the key."""
    path = suppressions_path(lake)
    hashed = rows.withColumn("_key_hash", key_hash_column(salt, F.col("source_system"), F.col("source_key")))
    if not table_exists(spark, path):
        return hashed.withColumn("_suppressed", F.lit(False)).drop("_key_hash")
    held = (
        read_table(spark, path)
        .where(F.col("lifted_at").isNull())
        .select(F.col("source_system").alias("_s_system"), F.col("key_hash").alias("_key_hash"))
        .distinct()
        .withColumn("_suppressed", F.lit(True))
    )
    joined = hashed.join(
        F.broadcast(held),
        (hashed["_key_hash"] == held["_key_hash"]) & (hashed["source_system"] == held["_s_system"]),
        "left",
    )
    return joined.select(*rows.columns, F.coalesce(F.col("_suppressed"), F.lit(False)).alias("_suppressed"))
