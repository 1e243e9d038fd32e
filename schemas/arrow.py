"""Spark SQL schemas as the Arrow schemas delta-rs reads and writes, and small frames handed to Spark as Arrow.

Tables written by Spark and by delta-rs (the steward's decisions, ``run_audit``)
share one definition: the Spark ``StructType`` in this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema


def arrow_type(spark_type: T.DataType) -> pa.DataType:
    """The Arrow type delta-rs reads and writes for a Spark SQL type."""
    simple: dict[type, pa.DataType] = {
        T.StringType: pa.string(),
        T.DateType: pa.date32(),
        T.DoubleType: pa.float64(),
        T.IntegerType: pa.int32(),
        T.LongType: pa.int64(),
        T.BooleanType: pa.bool_(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
    }
    if type(spark_type) in simple:
        return simple[type(spark_type)]
    if isinstance(spark_type, T.DecimalType):
        return pa.decimal128(spark_type.precision, spark_type.scale)
    if isinstance(spark_type, T.MapType):
        return pa.map_(arrow_type(spark_type.keyType), arrow_type(spark_type.valueType))
    if isinstance(spark_type, T.ArrayType):
        return pa.list_(arrow_type(spark_type.elementType))
    if isinstance(spark_type, T.StructType):
        return pa.struct([pa.field(f.name, arrow_type(f.dataType), f.nullable) for f in spark_type.fields])
    raise TypeError(f"no Arrow type for {spark_type!r}")


def arrow_schema(schema: T.StructType) -> pa.Schema:
    return pa.schema([pa.field(f.name, arrow_type(f.dataType), f.nullable) for f in schema.fields])


def local_frame(spark: SparkSession, rows: Iterable[Sequence[Any]], schema: T.StructType | str) -> DataFrame:
    """``rows`` (values in ``schema``'s column order; a ``StructType`` or DDL) as a DataFrame, handed to Spark as
    an Arrow table.

    ``spark.createDataFrame`` of a Python list builds an RDD of pickled rows, so
    every query over it runs tasks in Python worker processes (0.1-0.9 s a
    stage on a small machine, 18 such stages in ``cdi dedupe`` of 1,000
    records). The JVM reads an Arrow table itself; Spark Connect sends it as a
    local relation. A naive datetime is taken as UTC.
    """
    if isinstance(schema, str):
        schema = T.StructType.fromDDL(schema)
    names = schema.fieldNames()
    table = pa.Table.from_pylist([dict(zip(names, row)) for row in rows], schema=to_arrow_schema(schema))
    return spark.createDataFrame(table, schema)
