"""``cdi run --dry-run``: check everything a run needs and print its plan, writing nothing.

Checked: every settings file (parsed when the run's context is created, the
matching expressions resolved by Spark, see ``jobs/preflight.py``), every
source (opened with ``read_source``: a JDBC source connects and reports its
columns, a file source is found and its schema read; no rows are read, though a
JDBC source with ``partition_column`` runs its MIN/MAX query and a JSON source
without declared ``columns`` is scanned to infer its schema), and that the lake
root is writable (a probe file is created and removed; on Spark Connect a lake
on a URI is only listed, by the server). A problem raises the error a real run
would raise (``ConfigError``, ``SourceError``).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql.utils import is_remote

from config.pipeline import PipelineConfig, SourceConfig
from config.errors import ConfigError
from config.lake import Lake
from jobs.delta_io import table_folders
from jobs.runs import RunContext
from jobs.sources import CORRUPT_COLUMN, read_source, short_error

RUN_FILES = "validation.json, gx/ (Data Docs), model.json, report.html, summary.json"


def run_dir_path(context: RunContext) -> Path:
    """Where ``jobs.validate.local_run_dir`` puts the run's files, without creating the folder."""
    return Path(context.lake.run_dir(context.run_id)) if context.lake.is_local else Path("runs") / context.run_id


def check_settings(context: RunContext, stages: tuple[str, ...]) -> list[str]:
    """One plan line per settings file the stages read.

    The files were parsed when the context was created and the matching
    expressions resolved when the session started (``jobs/preflight.py``):
    a problem in any of them has already stopped the dry run.
    """
    config = context.config
    files: list[tuple[str, str | Path]] = []
    if "standardize" in stages:
        files.append(("vocabulary", config.vocabulary_dir))
    if "validate" in stages:
        files.append(("canonical suite", config.canonical_suite))
        files += [(f"{source.name} suite", source.suite) for source in config.sources if source.suite]
    if "match" in stages or "publish" in stages:
        files.append(("matching", config.matching))
    if "match" in stages and context.model_path is not None:
        files.append(("model", context.model_path))
    if "publish" in stages:
        files.append(("survivorship", config.survivorship))
    return [f"  {label:<22} {path}  ok" for label, path in files]


def _where(source: SourceConfig) -> str:
    """Where a source lives, without a JDBC URL's query string (it may carry options or credentials)."""
    if source.kind == "jdbc":
        relation = f"table {source.table}" if source.table else "query"
        return f"{(source.url or '').split('?')[0]} {relation}"
    return str(source.path)


def check_sources(spark: SparkSession, config: PipelineConfig) -> list[str]:
    """Open every source and read its schema; one plan line per source."""
    lines = []
    for source in config.sources:
        columns = [c for c in read_source(spark, source).columns if c != CORRUPT_COLUMN]
        lines.append(f"  {source.name:<14} {source.kind:<8} {_where(source)}: {len(columns)} columns")
        lines.append(f"  {'':<14} maps {', '.join(sorted(source.mapping))}")
    return lines


def _probe_local(root: Path) -> str:
    """Create and remove a file in the lake root, or in its nearest existing parent when it is not there yet."""
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"lake {root}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cdi-dry-run-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"lake {root}: cannot write in {existing} ({exc.strerror})") from None
    return f"writable (probe file created and removed in {existing})"


def _probe_hadoop(spark: SparkSession, root: str) -> str:
    """The same through Spark's Hadoop FileSystem, for ``s3a://``, ``hdfs://``, ``file:`` lakes."""
    jvm = spark.sparkContext._jvm
    root_path = jvm.org.apache.hadoop.fs.Path(root)
    probe = jvm.org.apache.hadoop.fs.Path(root_path, f"_cdi_dry_run_{secrets.token_hex(4)}")
    try:
        fs = root_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        existed = fs.exists(root_path)
        fs.create(probe, False).close()
        fs.delete(probe, False)
        if not existed:
            fs.delete(root_path, False)  # only the empty folder the probe made
    except Py4JJavaError as exc:
        raise ConfigError(f"lake {root}: cannot write ({short_error(exc)})") from None
    return "writable (probe file created and removed through Hadoop FileSystem)"


def _probe_listing(spark: SparkSession, root: str) -> str:
    """On Spark Connect, where this process reaches no Hadoop FileSystem: the lake's tables listed by the
    server (which fails when it cannot reach the lake); writing is not probed, nothing being deleted there."""
    try:
        found = sum(len(table_folders(spark, f"{root.rstrip('/')}/{layer}")) for layer in ("bronze", "silver", "gold"))
    except PySparkException as exc:
        raise ConfigError(f"lake {root}: cannot list ({short_error(exc)})") from None
    return f"reachable through the Spark Connect server ({found} tables; writing not probed)"


def check_lake(spark: SparkSession, lake: Lake) -> str:
    if lake.is_local:
        return _probe_local(Path(lake.root))
    return _probe_listing(spark, lake.root) if is_remote() else _probe_hadoop(spark, lake.root)


def tables_written(context: RunContext, stages: tuple[str, ...]) -> dict[str, list[str]]:
    """The lake path of every Delta table each stage writes."""
    from jobs.customer_360 import TABLES as VIEW_TABLES
    from jobs.publish import TABLES
    from jobs.standardize import staged_path

    lake = context.lake
    written = {
        "ingest": [
            *(lake.bronze(s.name) for s in context.config.sources),
            *(lake.bronze_activity(s.name, a.name) for s in context.config.sources for a in s.activities),
            lake.quarantine,
            lake.run_audit,
        ],
        "standardize": [staged_path(context)],
        "validate": [lake.quarantine, lake.customers_std, lake.run_audit],
        "match": [lake.path("silver", "pairs"), lake.path("silver", "clusters")],
        "publish": [lake.gold(name) for name in TABLES],
        "customer_360": [lake.gold(name) for name in VIEW_TABLES] + [lake.run_audit],
    }
    return {stage: written[stage] for stage in stages}


def dry_run(spark: SparkSession, context: RunContext, stages: tuple[str, ...]) -> list[str]:
    """Check what a run of ``stages`` needs and return its plan as lines; raises on the first problem."""
    lines = [
        f"dry run of run {context.run_id} on lake {context.lake.root}: nothing is written",
        f"stages: {' → '.join(stages)}",
        "settings:",
        *(check_settings(context, stages) or ["  (none needed by these stages)"]),
        "sources:",
    ]
    if "ingest" in stages:
        lines += check_sources(spark, context.config)
    else:
        lines.append("  (not read by these stages)")
    lines.append(f"lake: {context.lake.root} {check_lake(spark, context.lake)}")
    lines.append("tables written:")
    lines.append(f"  {'run':<12} {context.lake.run_audit}")
    for stage, paths in tables_written(context, stages).items():
        lines += [f"  {stage if i == 0 else '':<12} {path}" for i, path in enumerate(paths)]
    lines.append(f"run files: {run_dir_path(context)}/ ({RUN_FILES})")
    return lines
