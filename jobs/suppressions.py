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
from datetime import datetime

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from config.errors import ConfigError
from config.lake import Lake
from jobs.delta_io import append, read_table, table_exists, update_rows
from schemas.arrow import local_frame

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
    local_frame(spark, [(secrets.token_hex(32),)], SALT_SCHEMA).write.format("delta").mode("append").save(path)
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


def suppress_keys(
    spark: SparkSession, lake: Lake, salt: str, keys: list[tuple[str, str]], erasure_id: str, at: datetime
) -> int:
    """Add a suppression for every ``(source_system, source_key)`` not already suppressed; returns how many.

    A key an earlier erasure still suppresses keeps that suppression (lifting
    either erasure then behaves the same), so the list holds a key once.
    """
    rows = sorted({(system, key_hash(salt, system, key)) for system, key in keys})
    if not rows:
        return 0
    frame = local_frame(
        spark,
        [(system, hashed, erasure_id, at, None, None) for system, hashed in rows], SUPPRESSIONS_SCHEMA
    )
    path = suppressions_path(lake)
    if table_exists(spark, path):
        held = read_table(spark, path).where(F.col("lifted_at").isNull()).select("source_system", "key_hash")
        frame = frame.join(held, ["source_system", "key_hash"], "left_anti").select(*SUPPRESSIONS_SCHEMA.fieldNames())
    frame = frame.localCheckpoint()
    added = frame.count()
    if added or not table_exists(spark, path):
        append(frame, path)
    return added


def list_suppressions(spark: SparkSession, lake: Lake) -> list[Row]:
    """One row per erasure and source: ``erasure_id``, ``source_system``, ``keys``, ``suppressed_at``, ``lifted_at``, ``lifted_by``."""
    path = suppressions_path(lake)
    if not table_exists(spark, path):
        return []
    return (
        read_table(spark, path)
        .groupBy("erasure_id", "source_system")
        .agg(
            F.count(F.lit(1)).alias("keys"),
            F.min("suppressed_at").alias("suppressed_at"),
            F.max("lifted_at").alias("lifted_at"),
            F.max("lifted_by").alias("lifted_by"),
        )
        .orderBy("suppressed_at", "erasure_id", "source_system")
        .collect()
    )


def lift_suppressions(spark: SparkSession, lake: Lake, erasure_id: str, lifted_by: str, at: datetime) -> int:
    """Lift every suppression in force of one erasure; returns how many keys it frees.

    Raises ConfigError when the erasure put no key on the list.
    """
    path = suppressions_path(lake)
    if not table_exists(spark, path) or read_table(spark, path).where(F.col("erasure_id") == erasure_id).isEmpty():
        raise ConfigError(f"--lift {erasure_id!r}: no suppression of that erasure (see `cdi suppressions`)")
    held = F.col("erasure_id") == erasure_id
    held &= F.col("lifted_at").isNull()
    count = read_table(spark, path).where(held).count()
    if count:
        update_rows(
            spark, path, {"lifted_at": ":at", "lifted_by": ":by"}, "erasure_id = :erasure AND lifted_at IS NULL",
            args={"at": at, "by": lifted_by, "erasure": erasure_id},
        )
    return count


def format_suppressions(rows: list[Row]) -> str:
    if not rows:
        return "no suppressions: no erased key is kept out of ingest"
    lines = [f"{'erasure':<32} {'source':<14} {'keys':>6}  {'suppressed at':<20} lifted"]
    for r in rows:
        lifted = f"{r['lifted_at']:%Y-%m-%d %H:%M:%S} by {r['lifted_by']}" if r["lifted_at"] else "no (in force)"
        lines.append(
            f"{r['erasure_id']:<32} {r['source_system']:<14} {r['keys']:>6}  {r['suppressed_at']:%Y-%m-%d %H:%M:%S}  {lifted}"
        )
    return "\n".join(lines)
