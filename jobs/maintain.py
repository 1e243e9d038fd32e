"""``cdi maintain``: compact and vacuum every table of a lake, and drop old run folders.

Every Delta table under ``bronze/``, ``silver/``, ``gold/`` and ``ops/`` is
compacted (OPTIMIZE) and vacuumed. VACUUM keeps the files of every version
written in the last ``retention.vacuum_hours``, and never fewer hours than the
versions later runs still read need:

- publish reads ``gold/golden_customers`` and ``gold/customer_xref`` at the
  versions of the latest ``gold/_publications`` marker;
- the incremental match checks ``silver/pairs`` and ``silver/clusters``
  against the versions ``silver/match_model`` records.

A recorded version stays readable while its files do. Files it reads are
removed from the table by later commits only, so keeping every file removed
since the commit right after it (its age in hours, rounded up, plus one for
clock skew) keeps that version whole.

Tables whose current version ``silver/match_model`` records are neither
compacted nor given VACUUM's log commits: a new version there would make the
next incremental match score everything again.

Run folders (``<lake>/_runs/<run id>``, ``runs/<run id>`` for a lake on a URI)
older than ``retention.run_folder_days`` are deleted, never the latest one. A
run's age is its newest ``ops/run_audit`` row, else the newest file in its
folder.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from config.lake import Lake
from config.pipeline import PipelineConfig, RetentionSettings
from jobs.audit import AuditRow, Stopwatch, record_audit
from jobs.delta_io import (
    delta_identifier, detail, history, last_commit, optimize, read_table, table_exists, table_folders,
)
from jobs.delta_io import vacuum as delta_vacuum
from jobs.lock import lake_lock
from jobs.progress import progress
from jobs.spark import listing_parallelism, session_conf

LAYERS = ("bronze", "silver", "gold", "ops")
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
VACUUM_LOGGING = "spark.databricks.delta.vacuum.logging.enabled"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
MATCH_STATE = "silver/match_model"
PUBLICATIONS = "gold/_publications"


@dataclass(frozen=True)
class Retention:
    hours: int
    reason: str


@dataclass(frozen=True)
class RecordedVersion:
    """A table version a later run reads (or checks), and the table that records it."""

    version: int
    recorded_by: str


@dataclass(frozen=True)
class TableOutcome:
    name: str  # e.g. "gold/golden_customers"
    files_before: int
    files_after: int  # in the current version, after OPTIMIZE (equal to before when not compacted)
    compacted: str  # "yes", "would", or why not
    retention: Retention
    files_removed: int  # by VACUUM (in a dry run: that it would remove now)


@dataclass(frozen=True)
class RunFolder:
    run_id: str
    path: Path
    last_active: float  # epoch seconds


@dataclass(frozen=True)
class MaintainOutcome:
    run_id: str
    dry_run: bool
    tables: list[TableOutcome]
    dropped: list[RunFolder]
    kept: list[RunFolder]
    run_folder_days: int


def maintenance_run_id(now: datetime | None = None) -> str:
    return f"maintain-{(now or datetime.now(timezone.utc)):%Y%m%dT%H%M%SZ}"


def discover_tables(spark: SparkSession, lake: Lake) -> list[str]:
    """``layer/name`` of every Delta table in the lake's layers, sorted."""
    found: list[str] = []
    for layer in LAYERS:
        found += [f"{layer}/{name}" for name in table_folders(spark, lake.path(layer))]
    return found


def recorded_versions(spark: SparkSession, lake: Lake) -> dict[str, RecordedVersion]:
    """Table name -> the version the next publish or incremental match reads or checks."""
    found: dict[str, RecordedVersion] = {}
    if table_exists(spark, lake.path(PUBLICATIONS)):
        # The same marker publish's previous_state reads.
        marker = (
            read_table(spark, lake.path(PUBLICATIONS))
            .orderBy(F.col("published_at").desc(), F.col("run_id").desc())
            .first()
        )
        if marker is not None:
            found["gold/golden_customers"] = RecordedVersion(marker["golden_customers_version"], PUBLICATIONS)
            found["gold/customer_xref"] = RecordedVersion(marker["customer_xref_version"], PUBLICATIONS)
    if table_exists(spark, lake.path(MATCH_STATE)):
        state = read_table(spark, lake.path(MATCH_STATE)).first()
        recorded = state.asDict() if state is not None else {}
        for table, column in (("silver/pairs", "pairs_version"), ("silver/clusters", "clusters_version")):
            if recorded.get(column) is not None:
                found[table] = RecordedVersion(recorded[column], MATCH_STATE)
    return found


def _commits(spark: SparkSession, path: str) -> list[tuple[int, float]]:
    """(version, commit time in epoch seconds) of every commit in the table's history, oldest first."""
    rows = history(spark, path).select("version", F.col("timestamp").cast("double")).collect()
    return sorted((row[0], row[1]) for row in rows)


def hours_needed(commits: list[tuple[int, float]], version: int, now: float) -> int | None:
    """Hours VACUUM must keep for ``version`` to stay readable; None when no commit came after it."""
    later = [at for v, at in commits if v > version]
    if not later:
        return None
    return max(0, math.ceil((now - min(later)) / 3600)) + 1


def retention_for(
    configured: int, recorded: RecordedVersion | None, commits: list[tuple[int, float]], now: float
) -> Retention:
    """The configured hours, raised to what the recorded version needs; the reason names the winner."""
    needed = hours_needed(commits, recorded.version, now) if recorded else None
    if recorded is None or needed is None:
        return Retention(configured, "configured")
    need = f"{recorded.recorded_by} reads version {recorded.version}: {needed} h"
    if needed > configured:
        return Retention(needed, need)
    return Retention(configured, f"configured; {need}")


def _file_count(spark: SparkSession, path: str) -> int:
    return detail(spark, path)["numFiles"]


def vacuum(spark: SparkSession, path: str, hours: int, dry_run: bool, log_commits: bool) -> int:
    """Files VACUUM removes (in a dry run: would remove) keeping ``hours`` of history.

    Delta refuses less than its own 168 h unless its check is off; the hours
    here are already the safe ones, so the check is off for this call only.
    VACUUM lists files in as many tasks as the listing parallelism (10,000 by
    default): cdi's tables are not partitioned, so a few tasks are plenty
    (``listing_parallelism``), where 10,000 take minutes on a small machine.
    """
    settings = {
        RETENTION_CHECK: "false",
        VACUUM_LOGGING: "true" if log_commits else "false",
        LISTING_PARALLELISM: str(listing_parallelism(spark)),
    }
    with session_conf(spark, settings):
        unreferenced = spark.sql(f"VACUUM {delta_identifier(path)} RETAIN {hours} HOURS DRY RUN").count()
        if not dry_run and unreferenced:
            delta_vacuum(spark, path, hours)
    return unreferenced


def maintain_table(
    spark: SparkSession,
    lake: Lake,
    name: str,
    retention: RetentionSettings,
    recorded: RecordedVersion | None,
    dry_run: bool,
) -> TableOutcome:
    path = lake.path(name)
    # A version the match state records must stay the current one (see the module's docstring).
    pinned = recorded is not None and recorded.recorded_by == MATCH_STATE and recorded.version == last_commit(spark, path)["version"]
    before = _file_count(spark, path)
    if pinned:
        compacted = f"not compacted: {MATCH_STATE} records its current version"
    elif not retention.optimize:
        compacted = "not compacted: retention.optimize is off"
    elif dry_run:
        compacted = "would"
    else:
        optimize(spark, path)
        compacted = "yes"
    after = before if dry_run or compacted != "yes" else _file_count(spark, path)
    # After OPTIMIZE: when it is the first commit after a recorded version, the files it replaced are needed.
    kept = retention_for(retention.vacuum_hours, recorded, _commits(spark, path), time.time())
    removed = vacuum(spark, path, kept.hours, dry_run, log_commits=not pinned)
    return TableOutcome(name, before, after, compacted, kept, removed)


def run_folders_root(lake: Lake) -> Path:
    """Where runs keep their files (``jobs.validate.local_run_dir``): on the driver."""
    return Path(lake.path("_runs")) if lake.is_local else Path("runs")


def _newest_mtime(folder: Path) -> float:
    """The newest file's modification time; the folder's own when it holds none."""
    times = [os.stat(os.path.join(parent, f)).st_mtime for parent, _, files in os.walk(folder) for f in files]
    return max(times, default=folder.stat().st_mtime)


def audit_last_active(spark: SparkSession, lake: Lake) -> dict[str, float]:
    """Run id -> its newest ``run_audit`` row's start, in epoch seconds."""
    if not table_exists(spark, lake.run_audit):
        return {}
    rows = (
        read_table(spark, lake.run_audit)
        .groupBy("run_id")
        .agg(F.max("started_at").cast("double").alias("at"))
        .collect()
    )
    return {row["run_id"]: row["at"] for row in rows}


def run_folders(root: Path, audited: dict[str, float]) -> list[RunFolder]:
    """Every run folder under ``root``, oldest first."""
    if not root.is_dir():
        return []
    folders = [
        RunFolder(p.name, p, audited.get(p.name) or _newest_mtime(p)) for p in root.iterdir() if p.is_dir()
    ]
    return sorted(folders, key=lambda f: (f.last_active, f.run_id))


def expired(folders: list[RunFolder], days: int, now: float) -> list[RunFolder]:
    """Folders older than ``days``, never the latest run's (``folders`` is oldest first)."""
    cutoff = now - days * 86400
    return [f for f in folders[:-1] if f.last_active < cutoff]


def maintain(spark: SparkSession, config: PipelineConfig, run_id: str, dry_run: bool = False) -> MaintainOutcome:
    """Compact, vacuum and drop old run folders, holding the lake's lock (a dry run takes none and changes nothing)."""
    lake = Lake.at(config.lake)
    if dry_run:
        return _maintain(spark, lake, config.retention, run_id, True)
    with lake_lock(lake, run_id):
        watch = Stopwatch()
        outcome = _maintain(spark, lake, config.retention, run_id, False)
        record_audit(spark, lake, [_audit_row(outcome, watch)])
    return outcome


def _maintain(
    spark: SparkSession, lake: Lake, retention: RetentionSettings, run_id: str, dry_run: bool
) -> MaintainOutcome:
    names = discover_tables(spark, lake)
    recorded = recorded_versions(spark, lake)
    tables: list[TableOutcome] = []
    for done, name in enumerate(names):
        progress.show("maintain", "compacting and vacuuming tables", done=done, total=len(names))
        tables.append(maintain_table(spark, lake, name, retention, recorded.get(name), dry_run))
    progress.clear()
    folders = run_folders(run_folders_root(lake), audit_last_active(spark, lake))
    dropped = expired(folders, retention.run_folder_days, time.time())
    if not dry_run:
        for folder in dropped:
            shutil.rmtree(folder.path)
    kept = [f for f in folders if f not in dropped]
    return MaintainOutcome(run_id, dry_run, tables, dropped, kept, retention.run_folder_days)


def _audit_row(outcome: MaintainOutcome, watch: Stopwatch) -> AuditRow:
    return AuditRow(
        run_id=outcome.run_id,
        stage="maintain",
        source_system=None,
        status="ok",
        detail={
            "tables": len(outcome.tables),
            "files_before": sum(t.files_before for t in outcome.tables),
            "files_after": sum(t.files_after for t in outcome.tables),
            "files_removed": sum(t.files_removed for t in outcome.tables),
            "run_folders_dropped": len(outcome.dropped),
            "run_folders_kept": len(outcome.kept),
        },
        started_at=watch.started_at,
        seconds=watch.seconds,
    )


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _table_line(table: TableOutcome, dry_run: bool) -> str:
    removed = "would remove" if dry_run else "removed"
    if table.compacted == "would":
        files = f"{_files(table.files_before)}, would compact"
    elif table.compacted == "yes":
        files = f"{table.files_before} → {_files(table.files_after)}"
    else:
        files = f"{_files(table.files_before)}, {table.compacted}"
    vacuumed = f"vacuum {table.retention.hours} h ({table.retention.reason}): {removed} {_files(table.files_removed)}"
    return f"  {table.name}: {files}; {vacuumed}"


def format_maintain(outcome: MaintainOutcome) -> str:
    """Per table and run folder what was done (or would be), then a summary line."""
    verb = "would drop" if outcome.dry_run else "dropped"
    lines = [f"{'dry run: nothing changed' if outcome.dry_run else 'maintain'} ({outcome.run_id})"]
    lines += [_table_line(t, outcome.dry_run) for t in outcome.tables]
    lines += [f"  run folder {f.path}: {verb} (older than {outcome.run_folder_days} days)" for f in outcome.dropped]
    before = sum(t.files_before for t in outcome.tables)
    after = sum(t.files_after for t in outcome.tables)
    removed = _files(sum(t.files_removed for t in outcome.tables))
    files = f"{_files(before)}; {removed} to remove now" if outcome.dry_run else f"{before} → {_files(after)}; {removed} removed"
    lines.append(
        f"{len(outcome.tables)} tables, {files}; run folders: {len(outcome.dropped)} {verb}, {len(outcome.kept)} kept"
    )
    return "\n".join(lines)
