"""Reading configured departmental sources with Spark.

Each reader returns the source's original columns (names made Delta-safe)
and never silently nulls a value: CSV and JSON rows that do not fit the
declared schema keep their raw text in ``_corrupt_record`` so ingest can
reject them with a reason.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.errors import AnalysisException, ParseException, PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StructField, StructType, StringType
from py4j.protocol import Py4JJavaError

from config.pipeline import MappingExpression, ReadSettings, SourceConfig
from config.errors import ConfigError, SourceError

CORRUPT_COLUMN = "_corrupt_record"
# ``holds_rows`` looks for rows swallowed by an open quote only in files whose rows hold this many delimiters.
RUNAWAY_MIN_DELIMITERS = 3
DRIVERS = {"jdbc:sqlite:": "org.sqlite.JDBC", "jdbc:postgresql:": "org.postgresql.Driver"}
# Delta without column mapping (which delta-rs readers lack) refuses " ,;{}()\n\t="; Spark takes a dot
# in a column reference for a struct field and a backtick for quoting.
_UNSAFE = re.compile(r"[ ,;{}()\n\t=.`]+")


def safe_column_name(name: str) -> str:
    """A column name Delta accepts without column mapping, and that ``F.col`` reads as itself."""
    return _UNSAFE.sub("_", name.strip()).strip("_") or "column"


def safe_column_names(names: Iterable[str]) -> list[str]:
    """``safe_column_name`` of each name; a name that is then taken already (Spark compares names
    without case: ``First Name`` and ``first_name``) is numbered ``_2``, ``_3`` ..."""
    taken: set[str] = set()
    safe = []
    for name in names:
        base = candidate = safe_column_name(name)
        number = 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{base}_{number}"
        taken.add(candidate.casefold())
        safe.append(candidate)
    return safe


def short_error(exc: BaseException) -> str:
    """The first meaningful line of a Spark / JVM error, for a one-line message."""
    text = str(exc.java_exception) if isinstance(exc, Py4JJavaError) else str(exc)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "JVM stacktrace", "Caused by: java.lang.reflect")):
            return line[:300]
    return type(exc).__name__


def _credentials(source: ReadSettings) -> dict[str, str]:
    found: dict[str, str] = {}
    for option, variable in (("user", source.user_env), ("password", source.password_env)):
        if variable:
            if variable not in os.environ:
                raise ConfigError(
                    f"source {source.name!r}: environment variable {variable} ({option}_env) is not set"
                )
            found[option] = os.environ[variable]
    return found


def _jdbc_reader(spark: SparkSession, source: ReadSettings):
    assert source.url is not None
    driver = source.driver or next((d for prefix, d in DRIVERS.items() if source.url.startswith(prefix)), None)
    url = source.url
    if url.startswith("jdbc:sqlite:"):
        database, question, params = url.removeprefix("jdbc:sqlite:").partition("?")
        if database and database != ":memory:":
            if not Path(database).exists():
                raise SourceError(f"source {source.name!r}: SQLite database file {database} not found")
            # Executors on a cluster open the file from their own working directory.
            url = f"jdbc:sqlite:{Path(database).resolve()}{question}{params}"
    reader = spark.read.format("jdbc").option("url", url)
    if driver:
        reader = reader.option("driver", driver)
    for option, value in _credentials(source).items():
        reader = reader.option(option, value)
    if source.custom_schema:
        reader = reader.option("customSchema", source.custom_schema)
    return reader


def _jdbc_relation(source: ReadSettings) -> str:
    return source.table if source.table else f"({source.query}) cdi_source"


def _partition_bounds(spark: SparkSession, source: ReadSettings) -> tuple[int, int] | None:
    column = source.partition_column
    bounds = (
        _jdbc_reader(spark, source)
        .option("query", f"SELECT MIN({column}) AS lo, MAX({column}) AS hi FROM {_jdbc_relation(source)}")
        .option("customSchema", "lo LONG, hi LONG")
        .load()
        .first()
    )
    if bounds is None or bounds["lo"] is None:
        return None
    return int(bounds["lo"]), int(bounds["hi"])


def read_jdbc(spark: SparkSession, source: ReadSettings) -> DataFrame:
    reader = _jdbc_reader(spark, source).option("dbtable", _jdbc_relation(source))
    if source.partition_column:
        bounds = _partition_bounds(spark, source)
        if bounds is not None and bounds[1] > bounds[0]:
            reader = (
                reader.option("partitionColumn", source.partition_column)
                .option("lowerBound", bounds[0])
                .option("upperBound", bounds[1] + 1)
                .option("numPartitions", source.num_partitions)
            )
    return reader.load()


def _declared_schema(source: ReadSettings) -> StructType | None:
    if not source.columns:
        return None
    ddl = ", ".join(f"`{name}` {kind}" for name, kind in source.columns.items())
    try:
        return StructType.fromDDL(ddl)
    except Exception as exc:  # a bad type name in conf
        raise ConfigError(f"source {source.name!r}: columns: not a valid schema ({short_error(exc)})") from None


def _with_corrupt_column(schema: StructType) -> StructType:
    return StructType([*schema.fields, StructField(CORRUPT_COLUMN, StringType(), True)])


def _csv_reader(spark: SparkSession, source: ReadSettings):
    return (
        spark.read.format("csv")
        .option("header", "true")
        .option("encoding", source.encoding)
        .option("sep", source.delimiter)
        .option("escape", source.escape)
        .option("multiLine", str(source.multiline).lower())
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
        .option("enforceSchema", "false")
    )


def read_csv(spark: SparkSession, source: ReadSettings) -> DataFrame:
    """CSV with an explicit schema: the declared one, else every header column as a string."""
    schema = _declared_schema(source)
    if schema is None:
        header = (
            spark.read.option("header", "true")
            .option("encoding", source.encoding)
            .option("sep", source.delimiter)
            .option("escape", source.escape)
            .option("multiLine", str(source.multiline).lower())  # a quoted header name may hold a line break
            .csv(source.path)
        )
        schema = StructType([StructField(name, StringType(), True) for name in header.columns])
    reader = _csv_reader(spark, source)
    if not source.columns and renamed_by_spark(schema.fieldNames()):
        reader = reader.option("enforceSchema", "true")  # Spark's header check would compare '' with _c0: every row fails
    df = reader.schema(_with_corrupt_column(schema)).load(source.path)
    strings = [f.name for f in schema.fields if isinstance(f.dataType, StringType)]
    if not source.multiline or len(schema.fields) - 1 < RUNAWAY_MIN_DELIMITERS or not strings:
        return df
    runaway = holds_rows(strings, source.delimiter, len(schema.fields) - 1)
    raw = F.to_json(F.struct(*[column_named(f.name) for f in schema.fields]))
    return df.withColumn(CORRUPT_COLUMN, F.when(F.col(CORRUPT_COLUMN).isNull() & runaway, raw).otherwise(F.col(CORRUPT_COLUMN)))


def holds_rows(columns: list[str], delimiter: str, delimiters: int) -> Column:
    """Whether a value of ``columns`` has a line holding ``delimiters`` delimiters or more: a row of the file.

    Read with quoted values over line breaks (``multiLine``), a quote that is
    opened and never closed runs on over the rows after it: they become part
    of one value, and the row still has the right number of fields, so Spark
    reads it as well formed and the rows it swallowed vanish. ``read_csv``
    marks such a row malformed (its values as JSON), and ingest quarantines it
    with the rows it holds. Only in files of four columns or more
    (``RUNAWAY_MIN_DELIMITERS``): a value of a narrower file may hold a line
    with as many delimiters as its rows have, an address over two lines say.
    """
    def has_row(line: Column) -> Column:
        return F.length(line) - F.length(F.replace(line, F.lit(delimiter), F.lit(""))) >= delimiters * len(delimiter)

    flags = [
        F.coalesce(column_named(c).rlike("[\\r\\n]") & F.exists(F.split(column_named(c), "\\r\\n|\\r|\\n"), has_row), F.lit(False))
        for c in columns
    ]
    return any_of(flags)


def any_of(flags: list[Column]) -> Column:
    """The flags or-ed as a balanced tree: a file of hundreds of columns chained one after the other nests
    the expression so deep that Spark's conversion of it overflows the JVM's stack."""
    if len(flags) == 1:
        return flags[0]
    middle = len(flags) // 2
    return any_of(flags[:middle]) | any_of(flags[middle:])


def column_named(name: str) -> Column:
    """The top-level column ``name``, whatever it holds (a dot, a backtick)."""
    return F.col("`" + name.replace("`", "``") + "`")


def renamed_by_spark(names: list[str]) -> bool:
    """Whether Spark had to name header columns itself: a blank name is ``_c<index>``, and each copy of a
    name the header repeats gets its index appended (``id0``, ``id3``). A file whose own names look
    the same (``addr1``, ``addr2`` in columns 1 and 2) counts too: its read then goes without the
    header check, nothing else changes."""
    bases: dict[str, int] = {}
    for index, name in enumerate(names):
        if name == f"_c{index}":
            return True
        if name.endswith(str(index)) and len(name) > len(str(index)):
            base = name[: -len(str(index))].casefold()
            bases[base] = bases.get(base, 0) + 1
    return any(count > 1 for count in bases.values())


def read_json(spark: SparkSession, source: ReadSettings) -> DataFrame:
    reader = (
        spark.read.format("json")
        .option("encoding", source.encoding)
        .option("multiLine", str(source.multiline).lower())
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
    )
    if not source.multiline and source.encoding.replace("-", "").upper() != "UTF8":
        # Spark reads JSON lines in another encoding only with an explicit line separator.
        reader = reader.option("lineSep", "\n")
    schema = _declared_schema(source)
    if schema is not None:
        reader = reader.schema(_with_corrupt_column(schema))
    return reader.load(source.path)


def nanosecond_timestamp_columns(path: str) -> list[str]:
    """Top-level columns a local Parquet file or folder holds as nanosecond timestamps (pandas' default).

    Spark reads them as longs (``spark.sql.legacy.parquet.nanosAsLong`` in
    ``jobs.spark.DEFAULTS``). Files behind a URI are not looked into: their
    columns stay longs.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    if "://" in path and not path.startswith("file://"):
        return []
    try:
        schema = ds.dataset(path.removeprefix("file://"), format="parquet").schema
    except (OSError, ValueError, pa.ArrowException):
        return []
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


def read_parquet(spark: SparkSession, source: ReadSettings) -> DataFrame:
    df = spark.read.parquet(source.path)
    nanos = [c for c in nanosecond_timestamp_columns(source.path) if c in df.columns]
    micros = {c: F.timestamp_micros(F.floor(F.col(c).cast("decimal(20,0)") / 1000).cast("long")) for c in nanos}
    return df.withColumns(micros) if micros else df


READERS = {"jdbc": read_jdbc, "csv": read_csv, "json": read_json, "parquet": read_parquet}


def column_exists(df: DataFrame, path: str) -> bool:
    head, *rest = path.split(".")
    fields = {f.name: f for f in df.schema.fields}
    if head not in fields:
        return False
    data_type = fields[head].dataType
    for part in rest:
        if not isinstance(data_type, StructType) or part not in data_type.fieldNames():
            return False
        data_type = data_type[part].dataType
    return True


def check_columns(df: DataFrame, source: SourceConfig) -> None:
    """Fail with a one-line message when the key or a mapped column is not in the source."""
    available = [c for c in df.columns if c != CORRUPT_COLUMN]
    for key in source.primary_key:
        if not column_exists(df, safe_column_name(key)):
            raise SourceError(
                f"source {source.name!r}: primary_key column {key!r} is not in the source; "
                f"it has: {', '.join(available)}"
            )
    for attribute, column in source.mapping.items():
        if isinstance(column, MappingExpression):
            check_expression(df, source, attribute, column.expr)
        elif not column_exists(df, safe_path(column)):
            raise SourceError(
                f"source {source.name!r}: mapping.{attribute} names column {column!r}, which the source lacks; "
                f"it has: {', '.join(available)}"
            )
    if source.watermark and not column_exists(df, safe_column_name(source.watermark)):
        raise SourceError(f"source {source.name!r}: watermark column {source.watermark!r} is not in the source")
    if source.deletes.column and not column_exists(df, safe_column_name(source.deletes.column)):
        raise SourceError(
            f"source {source.name!r}: deletes.column {source.deletes.column!r} is not in the source; "
            f"it has: {', '.join(available)}"
        )


@contextmanager
def _quiet_query_context_log() -> Iterator[None]:
    """pyspark logs every AnalysisException with its JVM stack trace; an expected one needs only our line."""
    from pyspark.logger import PySparkLogger

    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def check_expression(df: DataFrame, source: SourceConfig, attribute: str, expression: str) -> None:
    """Resolve a mapping expression against the source's columns, or fail naming source, key and expression."""
    where = f"source {source.name!r}: mapping.{attribute}.expr {expression!r}"
    try:
        with _quiet_query_context_log():
            resolved = df.selectExpr(expression)
    except ParseException as exc:
        raise ConfigError(f"{where} is not a valid Spark SQL expression: {short_error(exc)}") from None
    except AnalysisException as exc:
        available = [c for c in df.columns if c != CORRUPT_COLUMN]
        raise SourceError(
            f"{where} does not resolve against the source's columns ({short_error(exc)}); "
            f"it has: {', '.join(available)}"
        ) from None
    data_type = resolved.schema[0].dataType
    if isinstance(data_type, (StructType, ArrayType, MapType)):
        raise ConfigError(f"{where} gives {data_type.simpleString()}, expected a single value")


def safe_path(column: str) -> str:
    """A mapped column path with its top-level name made Delta-safe."""
    head, _, rest = column.partition(".")
    return safe_column_name(head) + (f".{rest}" if rest else "")


# Bytes a customer or activity row takes in a CSV, JSON or SQLite file, at least: a source's bytes
# divided by this over-estimate its rows, so a file too big for small-data settings is never taken for a small one.
BYTES_PER_ROW = 100


def local_files(settings: ReadSettings) -> list[Path] | None:
    """The local files a table is read from (a SQLite database for ``jdbc:sqlite:``); None when it is not
    read from local files (a database server, a remote URI)."""
    if settings.kind == "jdbc":
        url = settings.url or ""
        return [Path(url[len("jdbc:sqlite:"):])] if url.startswith("jdbc:sqlite:") else None
    if not settings.path or "://" in settings.path:
        return None
    found: list[Path] = []
    for match in sorted(glob.glob(settings.path)):
        path = Path(match)
        found += sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    return found


def estimated_rows(tables: Iterable[ReadSettings]) -> int | None:
    """An upper estimate of the rows ``tables`` hold, from the bytes of their local files (each file once);
    None when one of them is not read from local files or a file cannot be looked at (the read says why)."""
    files: set[Path] = set()
    try:
        for settings in tables:
            found = local_files(settings)
            if found is None:
                return None
            files.update(f.resolve() for f in found)
        return sum(f.stat().st_size for f in files if f.exists()) // BYTES_PER_ROW
    except OSError:
        return None


def open_table(spark: SparkSession, settings: ReadSettings, what: str) -> DataFrame:
    """Open a table as configured, columns renamed Delta-safe; ``what`` names it in the one-line SourceError."""
    if settings.kind != "jdbc" and settings.path and "://" not in settings.path and not Path(settings.path).exists():
        raise SourceError(f"{what}: file {settings.path} not found")
    try:
        df = READERS[settings.kind](spark, settings)
    except (PySparkException, Py4JJavaError) as exc:
        raise SourceError(f"{what}: cannot read: {short_error(exc)}") from None
    safe = iter(safe_column_names(c for c in df.columns if c != CORRUPT_COLUMN))
    return df.toDF(*[c if c == CORRUPT_COLUMN else next(safe) for c in df.columns])


def with_row_numbers(df: DataFrame, source: SourceConfig) -> DataFrame:
    """``df`` with ``source.row_number_column``: each row's number in the file, 1 for the first.

    Spark numbers a file's rows in order: its partitions are consecutive byte
    ranges of the file, in order, and rows keep their order within each.
    """
    name = safe_column_name(source.row_number_column)
    if name.casefold() in {c.casefold() for c in df.columns}:
        raise SourceError(
            f"source {source.name!r}: row_number_column {source.row_number_column!r} is a column of the file already"
        )
    return df.withColumn(name, F.row_number().over(Window.orderBy(F.monotonically_increasing_id())))


def read_source(spark: SparkSession, source: SourceConfig) -> DataFrame:
    """Open a source and check it against its config; raises SourceError with one line."""
    df = open_table(spark, source, f"source {source.name!r}")
    if source.row_number_column is not None:
        df = with_row_numbers(df, source)
    check_columns(df, source)
    if CORRUPT_COLUMN not in df.columns:
        df = df.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
    return df
