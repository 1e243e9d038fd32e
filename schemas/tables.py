"""Schemas of the operational tables every stage shares.

``quarantine``: one row per source record held back, with the stage that held
it and why. Rows are appended; ``(run_id, source_system, source_key, stage)``
identifies one.

``run_audit``: one row per stage, source and run with counts and timings.
"""

from __future__ import annotations

from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

QUARANTINE_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("stage", StringType(), False),  # ingest | validate
        StructField("source_system", StringType(), False),
        StructField("source_key", StringType(), True),  # null when the row had no readable key
        StructField("check", StringType(), False),  # the rule or expectation that failed
        StructField("reason", StringType(), False),  # human-readable, never the raw PII value
        StructField("record", StringType(), True),  # the row as JSON, for a steward to inspect
        StructField("quarantined_at", TimestampType(), False),
    ]
)

RUN_AUDIT_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("stage", StringType(), False),
        StructField("source_system", StringType(), True),  # null for whole-run rows
        StructField("status", StringType(), False),  # ok | failed | skipped
        StructField("rows_in", LongType(), True),
        StructField("rows_out", LongType(), True),
        StructField("rows_rejected", LongType(), True),
        StructField("rows_unchanged", LongType(), True),
        StructField("detail", StringType(), True),  # JSON with stage-specific figures
        StructField("started_at", TimestampType(), False),
        StructField("seconds", DoubleType(), False),
    ]
)
