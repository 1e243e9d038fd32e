"""Column helpers that keep the driver's round trips to the JVM down.

Each PySpark call on a ``Column`` is at least one py4j round trip; building
the standardize and match expressions of a small run makes tens of thousands
of them, each a wait of the driver on the JVM.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import types as T


def cast_to(column: Column, data_type: T.DataType) -> Column:
    """``column.cast(data_type)``; an atomic type is passed by name, one round trip instead of about ten
    (``cast`` of a ``DataType`` first looks up the active session and parses the type's JSON in the JVM)."""
    return column.cast(data_type.simpleString() if isinstance(data_type, T.AtomicType) else data_type)
