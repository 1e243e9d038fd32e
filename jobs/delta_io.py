"""Small, explicit helpers over Delta tables used by every job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from deltalake.exceptions import DeltaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from config.lake import Lake
from schemas.arrow import local_frame


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def read_table(spark: SparkSession, path: str, schema: StructType | None = None) -> DataFrame:
    """The table at ``path``; an empty frame of ``schema`` when it does not exist yet."""
    if table_exists(spark, path):
        return spark.read.format("delta").load(path)
    if schema is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    return local_frame(spark, [], schema)


def append(df: DataFrame, path: str, user_metadata: str | None = None) -> None:
    """Append rows; columns new to the table are added to its schema.

    ``user_metadata`` is kept in the commit (``DESCRIBE HISTORY``'s
    ``userMetadata``): ingest tags its appends with the run id, so a rejected
    landing can be found and rolled back.
    """
    writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
    writer.save(path)


def landed_rows(folder: str) -> int | None:
    """Rows in the current versions of the Delta tables directly under the local ``folder``, read from their
    logs with delta-rs (no Spark job); 0 when there is none. None when a file's count is not in the log or
    delta-rs cannot read a table (a feature it lacks): the caller then knows nothing, and a run goes on."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    total = 0
    for table in sorted(p for p in root.iterdir() if (p / "_delta_log").is_dir()):
        rows = logged_rows(str(table))
        if rows is None:
            return None
        total += rows
    return total


def logged_rows(path: str) -> int | None:
    """Rows in the current version of the Delta table at the local ``path``, from its log with delta-rs (no
    Spark job). None for a table on a URI, a file whose count is not in the log, or a table delta-rs cannot
    read."""
    if not Lake(path).is_local:
        return None
    try:
        actions = deltalake.DeltaTable(path).get_add_actions(flatten=True)
    except DeltaError:
        return None
    counts = pa.table(actions).column("num_records")
    if counts.null_count:
        return None
    return pc.sum(counts).as_py() or 0


def last_commit(spark: SparkSession, path: str) -> dict[str, Any]:
    """The last commit of the Delta table at ``path``: ``version``, ``operation`` and ``operationMetrics`` (a
    dict of strings, empty when the commit has none). Read from its log with delta-rs on a local lake (Spark's
    ``history(1)`` is a Spark job), else, or when delta-rs cannot read the table, by Spark."""
    if Lake(path).is_local:
        try:
            commit = deltalake.DeltaTable(path).history(1)[0]
        except DeltaError:
            commit = None
        if commit is not None:
            return {"version": commit["version"], "operation": commit.get("operation"),
                    "operationMetrics": dict(commit.get("operationMetrics") or {})}
    row = DeltaTable.forPath(spark, path).history(1).select("version", "operation", "operationMetrics").first()
    return {"version": row["version"], "operation": row["operation"], "operationMetrics": dict(row["operationMetrics"] or {})}


def table_version(spark: SparkSession, path: str) -> int | None:
    """The current version of the Delta table at ``path``; None when there is no table."""
    return last_commit(spark, path)["version"] if table_exists(spark, path) else None


def sole_commit(path: str) -> dict[str, Any] | None:
    """The commit info of the local Delta table at ``path`` when the table holds that one commit only (version
    0), read from its log with delta-rs (no Spark job); None for a table of several commits, or when it cannot
    be told (a table on a URI, a log delta-rs cannot read)."""
    if not Lake(path).is_local:
        return None
    try:
        table = deltalake.DeltaTable(path)
        return table.history(1)[0] if table.version() == 0 else None
    except DeltaError:
        return None


def row_count(spark: SparkSession, path: str) -> int:
    """Rows in the Delta table at ``path``: from its log when it can be read (no Spark job), else counted."""
    rows = logged_rows(path)
    return read_table(spark, path).count() if rows is None else rows


def rows_in_new_table(path: str, written: DataFrame) -> int:
    """Rows of the table just created at ``path`` from ``written``: from its log when it can be read (no
    Spark job), else ``written`` counted."""
    rows = logged_rows(path)
    return written.count() if rows is None else rows


def is_empty(spark: SparkSession, path: str) -> bool:
    """Whether the Delta table at ``path`` holds no rows: read from its log when it can be, else by a Spark job.

    A Spark ``isEmpty`` on a Delta table costs two jobs (its files, then a
    row), about half a second each time on a small lake.
    """
    rows = logged_rows(path)
    return read_table(spark, path).isEmpty() if rows is None else rows == 0


def replace_where(df: DataFrame, path: str, predicate: str) -> None:
    """Atomically replace the rows matching ``predicate`` with ``df`` (one commit)."""
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .save(path)
    )


def sql_string(value: str) -> str:
    """A SQL string literal for ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
