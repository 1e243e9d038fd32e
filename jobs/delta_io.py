"""Small, explicit helpers over Delta tables used by every job.

Every change to a Delta table goes through the DataFrame writer or Delta's SQL
(``MERGE``, ``UPDATE``, ``DESCRIBE HISTORY``), never delta-spark's Python
``DeltaTable`` API: on Spark Connect that API needs Delta's Connect plugin on
the server, which the SQL does not (``bench/spark_connect.py``).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import DeltaError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.types import StructType

from config.lake import Lake
from jobs.spark import session_conf
from schemas.arrow import local_frame

# A commit or checkpoint file of a Delta log: a version of twenty digits first.
_LOG_ENTRY = re.compile(r"\d{20}\..*(json|parquet)$")
FIRST_COMMIT = "00000000000000000000.json"
SCHEMA_AUTO_MERGE = "spark.databricks.delta.schema.autoMerge.enabled"
# What Spark answers for a path that holds no Delta table.
_NO_TABLE = frozenset({"DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND", "PATH_NOT_FOUND", "DELTA_PATH_DOES_NOT_EXIST"})


def delta_identifier(path: str) -> str:
    """The SQL identifier of the Delta table at ``path``: ``delta.`path```."""
    return "delta.`" + path.replace("`", "``") + "`"


def quoted(column: str) -> str:
    """A column name as a SQL identifier."""
    return "`" + column.replace("`", "``") + "`"


def table_exists(spark: SparkSession, path: str) -> bool:
    """Whether a Delta table with at least one commit is at ``path``.

    On a local lake its log is looked at directly; elsewhere Spark is asked
    (``DESCRIBE DETAIL``), as delta-spark's ``isDeltaTable`` would.
    """
    if Lake(path).is_local:
        return _has_log_entry(Path(path) / "_delta_log")
    try:
        detail = spark.sql(f"DESCRIBE DETAIL {delta_identifier(path)}").select("format").first()
    except AnalysisException as error:
        if error.getCondition() in _NO_TABLE:
            return False
        raise
    return detail is not None and detail["format"] == "delta"


def _has_log_entry(log: Path) -> bool:
    try:
        with os.scandir(log) as entries:
            return any(_LOG_ENTRY.match(entry.name) for entry in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


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
    row = history(spark, path).select("version", "operation", "operationMetrics").first()
    return {"version": row["version"], "operation": row["operation"], "operationMetrics": dict(row["operationMetrics"] or {})}


def history(spark: SparkSession, path: str) -> DataFrame:
    """The commits of the Delta table at ``path``, newest first (``DESCRIBE HISTORY``)."""
    return spark.sql(f"DESCRIBE HISTORY {delta_identifier(path)}")


def restore(spark: SparkSession, path: str, version: int) -> None:
    """Put the Delta table at ``path`` back to ``version`` (a new commit)."""
    spark.sql(f"RESTORE TABLE {delta_identifier(path)} TO VERSION AS OF {int(version)}")


def delete_rows(spark: SparkSession, path: str, condition: str | None = None, args: Mapping[str, Any] | None = None) -> None:
    """Delete the rows of the Delta table at ``path`` matching ``condition`` (SQL; every row without one)."""
    where = f" WHERE {condition}" if condition else ""
    spark.sql(f"DELETE FROM {delta_identifier(path)}{where}", args=dict(args or {}))


def update_rows(spark: SparkSession, path: str, assignments: Mapping[str, str], condition: str,
                args: Mapping[str, Any] | None = None) -> None:
    """``UPDATE`` the rows of the Delta table at ``path`` matching ``condition``: each column in
    ``assignments`` to its SQL expression; ``args`` fill the named parameters (``:name``) of both."""
    sets = ", ".join(f"{quoted(column)} = {expression}" for column, expression in assignments.items())
    spark.sql(f"UPDATE {delta_identifier(path)} SET {sets} WHERE {condition}", args=dict(args or {}))


def detail(spark: SparkSession, path: str) -> Row:
    """``DESCRIBE DETAIL`` of the Delta table at ``path`` (its files, size, properties)."""
    return spark.sql(f"DESCRIBE DETAIL {delta_identifier(path)}").first()


def vacuum(spark: SparkSession, path: str, hours: int) -> None:
    """VACUUM the Delta table at ``path``, keeping the files of the last ``hours`` of history."""
    spark.sql(f"VACUUM {delta_identifier(path)} RETAIN {int(hours)} HOURS")


def optimize(spark: SparkSession, path: str) -> None:
    """Compact the Delta table's small files (``OPTIMIZE``)."""
    spark.sql(f"OPTIMIZE {delta_identifier(path)}")


def table_folders(spark: SparkSession, folder: str) -> list[str]:
    """The names of the Delta tables directly under ``folder``, sorted: on a local lake from the file
    system, elsewhere from a listing Spark makes of the tables' logs (each log holds its first commit or,
    once Delta has cleaned that up, a checkpoint; Spark's listings skip ``_last_checkpoint``, as every file
    whose name starts with ``_``)."""
    if Lake(folder).is_local:
        try:
            with os.scandir(folder) as entries:
                names = [e.name for e in entries if e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(n for n in names if _has_log_entry(Path(folder, n, "_delta_log")))
    logs = f"{folder.rstrip('/')}/*/_delta_log/{{{FIRST_COMMIT},*.checkpoint*.parquet}}"
    try:
        files = spark.read.format("binaryFile").load(logs).select("path").collect()
    except AnalysisException as error:
        if error.getCondition() in _NO_TABLE:
            return []
        raise
    return sorted({row["path"].rstrip("/").split("/")[-3] for row in files})


def create_if_missing(spark: SparkSession, path: str, schema: StructType, properties: Mapping[str, str]) -> None:
    """Create an empty Delta table of ``schema`` and table ``properties`` at ``path`` unless one is there."""
    columns = ", ".join(
        f"{quoted(f.name)} {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}" for f in schema.fields
    )
    given = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {delta_identifier(path)} ({columns}) USING delta"
        + (f" TBLPROPERTIES ({given})" if given else "")
    )


@dataclass(frozen=True)
class Merge:
    """A Delta ``MERGE`` of ``source`` (alias ``s``) into the table at ``path`` (alias ``t``), as SQL.

    Built like delta-spark's merge builder, clause by clause, in the order
    given; ``execute`` runs it on the source registered as a temporary view.
    """

    path: str
    source: DataFrame
    on: str
    clauses: tuple[str, ...] = ()
    schema_evolution: bool = False

    def _with(self, when: str, action: str, condition: str | None) -> Merge:
        clause = f"{when}{f' AND ({condition})' if condition else ''} THEN {action}"
        return replace(self, clauses=(*self.clauses, clause))

    def when_matched_update_all(self, condition: str | None = None) -> Merge:
        return self._with("WHEN MATCHED", "UPDATE SET *", condition)

    def when_matched_update(self, columns: Sequence[str], condition: str | None = None) -> Merge:
        """Each of ``columns`` set to the source's value."""
        return self.when_matched_set({c: f"s.{quoted(c)}" for c in columns}, condition)

    def when_matched_set(self, assignments: Mapping[str, str], condition: str | None = None) -> Merge:
        """Each column of ``assignments`` set to its SQL expression (over ``t`` and ``s``)."""
        sets = ", ".join(f"t.{quoted(c)} = {expression}" for c, expression in assignments.items())
        return self._with("WHEN MATCHED", f"UPDATE SET {sets}", condition)

    def when_matched_delete(self, condition: str | None = None) -> Merge:
        return self._with("WHEN MATCHED", "DELETE", condition)

    def when_not_matched_insert_all(self, condition: str | None = None) -> Merge:
        return self._with("WHEN NOT MATCHED", "INSERT *", condition)

    def when_not_matched_insert(self, columns: Sequence[str], condition: str | None = None) -> Merge:
        names = ", ".join(quoted(c) for c in columns)
        values = ", ".join(f"s.{quoted(c)}" for c in columns)
        return self._with("WHEN NOT MATCHED", f"INSERT ({names}) VALUES ({values})", condition)

    def when_not_matched_by_source_delete(self, condition: str | None = None) -> Merge:
        return self._with("WHEN NOT MATCHED BY SOURCE", "DELETE", condition)

    def with_schema_evolution(self) -> Merge:
        return replace(self, schema_evolution=True)

    def sql(self, view: str) -> str:
        """The statement, with the source as the view named ``view``."""
        if not self.clauses:
            raise ValueError(f"MERGE into {self.path} has no WHEN clause")
        return f"MERGE INTO {delta_identifier(self.path)} t USING {quoted(view)} s ON {self.on} " + " ".join(self.clauses)

    def execute(self, spark: SparkSession) -> None:
        """Run the MERGE. Schema evolution is the session setting for the statement: Delta 4.0 parses
        ``MERGE WITH SCHEMA EVOLUTION`` but adds no column for it."""
        view = f"cdi_merge_source_{uuid.uuid4().hex}"
        self.source.createOrReplaceTempView(view)
        evolution = {SCHEMA_AUTO_MERGE: "true"} if self.schema_evolution else {}
        try:
            with session_conf(spark, evolution):
                spark.sql(self.sql(view))
        finally:
            spark.catalog.dropTempView(view)


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


def replace_where(df: DataFrame, path: str, predicate: str, merge_schema: bool = False) -> None:
    """Atomically replace the rows matching ``predicate`` with ``df`` (one commit); with ``merge_schema``
    a column ``df`` has and the table lacks is added to it."""
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.save(path)


def sql_string(value: str) -> str:
    """A SQL string literal for ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
