from pyspark.sql import functions as F
from pyspark.sql import types as T

from schemas.arrow import local_frame
from schemas.columns import cast_to

TYPES = [
    T.StringType(), T.DateType(), T.TimestampType(), T.TimestampNTZType(), T.IntegerType(), T.LongType(),
    T.DoubleType(), T.BooleanType(), T.BinaryType(), T.DecimalType(12, 3),
    T.ArrayType(T.StringType(), False), T.MapType(T.StringType(), T.StringType()),
    T.StructType([T.StructField("a b", T.StringType())]),
]


def test_cast_to_gives_the_type_cast_gives(spark):
    frame = local_frame(spark, [("1",)], "v string")
    ours = frame.select(*[cast_to(F.lit(None), t).alias(f"c{i}") for i, t in enumerate(TYPES)])
    theirs = frame.select(*[F.lit(None).cast(t).alias(f"c{i}") for i, t in enumerate(TYPES)])
    assert ours.schema == theirs.schema
    assert [f.dataType for f in ours.schema] == TYPES


def test_cast_to_converts_values_like_cast(spark):
    values = {T.DateType(): "2024-02-29", T.DoubleType(): "12.5", T.IntegerType(): " 7 ", T.DecimalType(5, 1): "3.25"}
    for data_type, value in values.items():
        frame = local_frame(spark, [(value,), (None,)], "v string")
        ours = frame.select(cast_to(F.col("v"), data_type)).collect()
        assert ours == frame.select(F.col("v").cast(data_type)).collect(), data_type
        assert ours[0][0] is not None and ours[1][0] is None
