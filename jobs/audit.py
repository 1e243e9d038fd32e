"""``run_audit``: one row per stage (and source) per run, with counts and timings."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import SparkSession

from jobs.delta_io import append
from config.lake import Lake
from schemas.tables import RUN_AUDIT_SCHEMA


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
            self.started_at,
            float(self.seconds),
        )


class Stopwatch:
    def __init__(self) -> None:
        self.started_at = datetime.now(timezone.utc)
        self._start = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self._start, 3)


def record_audit(spark: SparkSession, lake: Lake, rows: list[AuditRow]) -> None:
    if rows:
        append(spark.createDataFrame([r.as_tuple() for r in rows], RUN_AUDIT_SCHEMA), lake.run_audit)
