"""``cdi run --dry-run``: check everything a run needs and print its plan, writing nothing.

Checked, for the stages asked for: the settings files those stages load
(vocabulary, quality suites, matching settings and model, survivorship), every
source (opened with ``read_source``: a JDBC source connects and reports its
columns, a file source is found and its schema read; no rows are read, though a
JDBC source with ``partition_column`` runs its MIN/MAX query and a JSON source
without declared ``columns`` is scanned to infer its schema), and that the lake
root is writable (a probe file is created and removed). A problem raises the
error a real run would raise (``ConfigError``, ``SourceError``).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Callable

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from config.pipeline import PipelineConfig, SourceConfig
from config.errors import ConfigError
from config.lake import Lake
from jobs.runs import RunContext
from jobs.sources import CORRUPT_COLUMN, read_source, short_error

RUN_FILES = "validation.json, gx/ (Data Docs), model.json, report.html, summary.json"


def run_dir_path(context: RunContext) -> Path:
    """Where ``jobs.validate.local_run_dir`` puts the run's files, without creating the folder."""
    return Path(context.lake.run_dir(context.run_id)) if context.lake.is_local else Path("runs") / context.run_id


def _load_quietly(path: str | Path, load: Callable[[], object]) -> None:
    """Run a settings loader; loaders that raise ValueError or OSError become ConfigError."""
    try:
        load()
    except ConfigError:
        raise
    except (ValueError, OSError) as exc:
        message = str(exc)
        raise ConfigError(message if str(path) in message else f"{path}: {message}") from None


def check_settings(context: RunContext, stages: tuple[str, ...]) -> list[str]:
    """Load every settings file the stages read; one plan line per file."""
    from jobs.match import load_model_file
    from matching.settings import load_settings
    from matching.standardize import load_vocabulary
    from matching.survivorship import load_survivorship
    from quality.suites import load_suite

    config = context.config
    checks: list[tuple[str, str | Path, Callable[[], object]]] = []
    if "standardize" in stages:
        checks.append(("vocabulary", config.vocabulary_dir, lambda: load_vocabulary(Path(config.vocabulary_dir))))
    if "validate" in stages:
        checks.append(("canonical suite", config.canonical_suite, lambda: load_suite(config.canonical_suite)))
        for source in config.sources:
            if source.suite:
                checks.append((f"{source.name} suite", source.suite, lambda s=source.suite: load_suite(s)))
    if "match" in stages or "publish" in stages:
        checks.append(("matching", config.matching, lambda: load_settings(Path(config.matching))))
    if "match" in stages and context.model_path is not None:
        model = context.model_path
        checks.append(("model", model, lambda: load_model_file(model, load_settings(Path(config.matching)))))
    if "publish" in stages:
        checks.append(("survivorship", config.survivorship, lambda: load_survivorship(config.survivorship)))
    for _, path, load in checks:
        _load_quietly(path, load)
    return [f"  {label:<22} {path}  ok" for label, path, _ in checks]


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


def check_lake(spark: SparkSession, lake: Lake) -> str:
    return _probe_local(Path(lake.root)) if lake.is_local else _probe_hadoop(spark, lake.root)


def tables_written(context: RunContext, stages: tuple[str, ...]) -> dict[str, list[str]]:
    """The lake path of every Delta table each stage writes."""
    from jobs.publish import TABLES
    from jobs.standardize import staged_path

    lake = context.lake
    written = {
        "ingest": [*(lake.bronze(s.name) for s in context.config.sources), lake.quarantine, lake.run_audit],
        "standardize": [staged_path(context)],
        "validate": [lake.quarantine, lake.customers_std, lake.run_audit],
        "match": [lake.path("silver", "pairs"), lake.path("silver", "clusters")],
        "publish": [lake.gold(name) for name in TABLES],
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
