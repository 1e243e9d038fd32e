"""``run_audit``: one row per stage (and source) per run, with counts and timings.

On a local lake rows are appended with delta-rs rather than Spark: a run
records eight or more of them, and a Spark append of a one-row frame (plan,
job, commit) took about 1.5 s each on 1,000 records, a tenth of a small run.
delta-rs writes the same Delta table in milliseconds; the table is only
written under the lake's lock, so writers never race. It is read back the same
way (``read_audit``): the run's start, validate and the report each read it,
and a Spark query of a table this small costs about half a second of planning
and jobs. A lake on a Hadoop URI (``hdfs://``, ``s3a://``) is written and read
by Spark, which knows how to reach it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake
from deltalake.exceptions import DeltaError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from config.lake import Lake
from jobs.delta_io import append, read_table, table_exists
from schemas.arrow import arrow_schema, local_frame
from schemas.tables import RUN_AUDIT_SCHEMA

RUN_AUDIT_ARROW_SCHEMA = arrow_schema(RUN_AUDIT_SCHEMA)


@dataclass
class AuditRow:
    run_id: str
    stage: str
    source_system: str | None
    status: str
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None
    rows_unchanged: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    seconds: float = 0.0

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.run_id,
            self.stage,
            self.source_system,
            self.status,
            self.rows_in,
            self.rows_out,
            self.rows_rejected,
            self.rows_unchanged,
            json.dumps(self.detail, sort_keys=True, default=str),
            _utc(self.started_at),
            float(self.seconds),
        )


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC, as Spark's session time zone does here)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class Stopwatch:
    def __init__(self) -> None:
        self.started_at = datetime.now(timezone.utc)
        self._start = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self._start, 3)


def record_audit(spark: SparkSession, lake: Lake, rows: list[AuditRow]) -> None:
    """Append ``rows`` to ``run_audit`` in one commit: with delta-rs on a local lake, with Spark on a Hadoop URI."""
    if not rows:
        return
    if not lake.is_local:
        append(local_frame(spark, [r.as_tuple() for r in rows], RUN_AUDIT_SCHEMA), lake.run_audit)
        return
    columns = list(zip(*(r.as_tuple() for r in rows)))
    table = pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, RUN_AUDIT_ARROW_SCHEMA)],
                                 schema=RUN_AUDIT_ARROW_SCHEMA)
    # No per-column statistics in the log, like every table Spark creates here (jobs/spark.py).
    write_deltalake(lake.run_audit, table, mode="append", schema_mode="merge",
                    configuration={"delta.dataSkippingNumIndexedCols": "0"})


def read_audit(
    spark: SparkSession, lake: Lake, *, run_id: str | None = None, stages: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """``run_audit`` rows, of ``run_id`` and of ``stages`` when given, as dicts; none when there is no table.

    ``started_at`` is a naive UTC datetime, as Spark collects it here. Read
    with delta-rs on a local lake, with Spark on a Hadoop URI or when delta-rs
    cannot read the table.
    """
    if lake.is_local:
        if not (Path(lake.run_audit) / "_delta_log").is_dir():
            return []
        try:
            return _read_audit_local(lake.run_audit, run_id, stages)
        except DeltaError:
            pass
    if not table_exists(spark, lake.run_audit):
        return []
    table = read_table(spark, lake.run_audit)
    if run_id is not None:
        table = table.where(F.col("run_id") == run_id)
    if stages is not None:
        table = table.where(F.col("stage").isin(list(stages)))
    return [row.asDict() for row in table.collect()]


def _read_audit_local(path: str, run_id: str | None, stages: Collection[str] | None) -> list[dict[str, Any]]:
    table = deltalake.DeltaTable(path).to_pyarrow_table()
    if run_id is not None:
        table = table.filter(pc.equal(table["run_id"], run_id))
    if stages is not None:
        table = table.filter(pc.is_in(table["stage"], value_set=pa.array(list(stages), pa.string())))
    rows = table.to_pylist()
    for row in rows:
        moment = row.get("started_at")
        if isinstance(moment, datetime) and moment.tzinfo is not None:
            row["started_at"] = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return rows
