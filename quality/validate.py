"""Run a suite on a Spark DataFrame with Great Expectations and split the outcome.

- The suite runs once with counts only (``result_format`` SUMMARY: about a
  quarter of the Spark jobs of COMPLETE). Only the row- and field-level
  expectations that failed run again, with COMPLETE and
  ``unexpected_index_column_names``, for the key of each failing row; the
  keys are joined back to the DataFrame in Spark. Every row lands in exactly one of
  ``passed`` and ``quarantined`` (one quarantine row per record, naming all the
  expectations it failed).
- Field-level failures: the failing rows stay in ``passed`` with the
  expectation's column nulled and its reason added to ``std_issues`` (when
  the DataFrame has that column), so one bad value does not hold back a record.
- Batch-level failures become messages; any one of them stops the run. A
  row-level expectation that could not run (for example its column is gone)
  cannot split rows, so it stops the run too.

PII: results carry keys and counts only (``exclude_unexpected_values``,
``partial_unexpected_count: 0``), so no failing value reaches the stored
results or the Data Docs. The key column must therefore not be a PII column.

Great Expectations reuses the caller's SparkSession (``add_spark`` with no
``spark_config``) and does not cache the DataFrame (``persist=False``): cache
it first if it is expensive to recompute, since each metric reads it again.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import great_expectations as gx
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from quality.suites import ExpectationConfig, SuiteConfig
from schemas.arrow import local_frame
from schemas.tables import QUARANTINE_SCHEMA

STAGE = "validate"
ROW_COUNT_EXPECTATIONS = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
_KEY = "__cdi_failed_key"
ISSUES_COLUMN = "std_issues"


@dataclass(frozen=True)
class ValidationResult:
    passed: DataFrame  # rows that passed every row-level expectation, columns as the input
    quarantined: DataFrame  # QUARANTINE_SCHEMA, one row per failing record
    batch_failures: list[str]  # one message per failed batch-level expectation
    summary: dict[str, Any]  # JSON-able counts and outcomes, no values

    @property
    def stopped(self) -> bool:
        return bool(self.batch_failures)


def validate(
    df: DataFrame,
    suite: SuiteConfig,
    *,
    source_system: str,
    key_column: str,
    run_id: str,
    docs_dir: Path | None,
    previous_row_count: int | None = None,
) -> ValidationResult:
    """Validate ``df`` against ``suite``; keep the results under ``docs_dir`` when given.

    The results kept there are rendered by ``build_data_docs``, once for all
    the suites a run validates (rendering them after each suite costs about a
    second a run for pages that are rewritten by the next one).

    ``source_system`` names the batch in messages and in quarantine rows whose
    DataFrame has no ``source_system`` column; ``source_key`` in quarantine rows
    is the row's ``source_key`` column when there is one, else ``key_column``.
    ``key_column`` should be unique: rows sharing a failing key are all quarantined.
    """
    if key_column not in df.columns:
        raise ValueError(f"key column {key_column!r} is not a column of the DataFrame")
    if key_column in suite.pii_columns:
        raise ValueError(f"key column {key_column!r} is a PII column of suite {suite.suite!r}")

    context = _context(docs_dir)
    expectations = suite.to_gx(today=dt.date.today(), previous_row_count=previous_row_count)
    summary_format = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "exclude_unexpected_values": True}
    results = _run_checkpoint(
        context, df, suite.suite, expectations, source_system=source_system, run_id=run_id,
        result_format=summary_format,
    )
    failed_per_value = {
        r.expectation_config.meta["cdi_index"]
        for r in results
        if not r.success and suite.expectations[r.expectation_config.meta["cdi_index"]].severity in ("row", "field")
    }
    if failed_per_value:
        keys_format = {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [key_column],
            "return_unexpected_index_query": False,
            "exclude_unexpected_values": True,
            "partial_unexpected_count": 0,
        }
        rerun = _run_checkpoint(
            context, df, f"{suite.suite}__failing_keys", [copy.copy(e) for e in expectations if e.meta["cdi_index"] in failed_per_value],
            source_system=source_system, run_id=run_id, result_format=keys_format,
        )
        by_index = {r.expectation_config.meta["cdi_index"]: r for r in [*results, *rerun]}
        results = [by_index[i] for i in sorted(by_index)]
    batch_failures, failed_checks = _classify(suite, results, source_system=source_system, key_column=key_column)
    passed, quarantined = _split(df, failed_checks, key_column=key_column, source_system=source_system, run_id=run_id)
    summary = _summary(suite, results, source_system=source_system, run_id=run_id)
    summary.update(stopped=bool(batch_failures), batch_failures=batch_failures, failing_keys=len(failed_checks))
    return ValidationResult(
        passed=passed,
        quarantined=quarantined,
        batch_failures=batch_failures,
        summary=summary,
    )


def build_data_docs(docs_dir: Path) -> Path | None:
    """Render the Data Docs of every result ``validate`` kept under ``docs_dir``; their index.html."""
    context = _context(docs_dir)
    context.build_data_docs()
    return _docs_index(context)


def write_summary(result: ValidationResult, path: Path) -> None:
    """Write the run's summary as JSON (counts and outcomes only, never values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_row_count(path: Path) -> int | None:
    """The row count a previous run's summary recorded, for ``previous_row_count``."""
    if not path.exists():
        return None
    count = json.loads(path.read_text(encoding="utf-8")).get("row_count")
    return count if isinstance(count, int) else None


def _context(docs_dir: Path | None) -> AbstractDataContext:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if docs_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context


def _run_checkpoint(
    context: AbstractDataContext,
    df: DataFrame,
    suite_name: str,
    expectations: list[Any],
    *,
    source_system: str,
    run_id: str,
    result_format: dict[str, Any],
) -> list[ExpectationValidationResult]:
    """Run ``expectations`` on ``df`` in one checkpoint; results in the order of their ``cdi_index``."""
    name = f"{source_system}__{suite_name}"
    gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=_batch_definition(context, source_system), suite=gx_suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            result_format=result_format,
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": df}, run_id=RunIdentifier(run_name=run_id))
    (run_result,) = outcome.run_results.values()
    return sorted(run_result.results, key=lambda r: r.expectation_config.meta["cdi_index"])


def _batch_definition(context: AbstractDataContext, source_system: str) -> BatchDefinition:
    datasource = context.data_sources.add_or_update_spark(name=f"cdi_{source_system}", persist=False)
    asset = datasource.add_dataframe_asset(name=source_system)
    return asset.add_batch_definition_whole_dataframe(name="whole_dataframe")


def _classify(
    suite: SuiteConfig, results: list[ExpectationValidationResult], *, source_system: str, key_column: str
) -> tuple[list[str], dict[Any, list[ExpectationConfig]]]:
    """Batch failure messages, and the failed row-level checks of each failing key in suite order."""
    batch_failures: list[str] = []
    failed_checks: dict[Any, list[ExpectationConfig]] = {}
    for result in results:
        if result.success:
            continue
        config = suite.expectations[result.expectation_config.meta["cdi_index"]]
        keys = _failing_keys(result, key_column) if config.severity in ("row", "field") else None
        if keys is None:
            batch_failures.append(f"source {source_system!r}: {config.label} failed: {_describe_failure(result)}")
            continue
        for key in keys:
            checks = failed_checks.setdefault(key, [])
            if config not in checks:  # a key listed twice (duplicates under a uniqueness check)
                checks.append(config)
    return batch_failures, failed_checks


def _failing_keys(result: ExpectationValidationResult, key_column: str) -> list[Any] | None:
    """Keys of the rows a row-level expectation rejected; None when it reported none (it could not run)."""
    if _exception_message(result) is not None or "unexpected_index_list" not in result.result:
        return None
    keys: list[Any] = []
    for entry in result.result["unexpected_index_list"]:
        value = entry[key_column]
        keys.extend(value if isinstance(value, list) else [value])
    return keys


def _describe_failure(result: ExpectationValidationResult) -> str:
    """Why a check failed, from counts, column names and bounds only."""
    error = _exception_message(result)
    if error is not None:
        return f"could not run: {error}"
    details = result.result.get("details", {}).get("mismatched")
    if details:
        return "; ".join(f"{kind} columns {sorted(columns)}" for kind, columns in sorted(details.items()))
    if "unexpected_count" in result.result:
        return f"{result.result['unexpected_count']} of {result.result.get('element_count')} rows unexpected"
    kwargs = result.expectation_config.kwargs
    bounds = [f"{k}={kwargs[k]}" for k in ("min_value", "max_value", "value") if k in kwargs]
    observed = result.result.get("observed_value")
    return f"observed {observed}" + (f", expected {', '.join(bounds)}" if bounds else "")


def _exception_message(result: ExpectationValidationResult) -> str | None:
    """The first error Great Expectations caught, as one line.

    ``exception_info`` is either one record or a dict of records keyed by metric.
    """
    info = result.exception_info or {}
    records = [info] if "raised_exception" in info else list(info.values())
    for record in records:
        if isinstance(record, dict) and (record.get("raised_exception") or record.get("exception_message")):
            message = str(record.get("exception_message") or "unknown error").strip()
            return message.splitlines()[0] if message else "unknown error"
    return None


def _split(
    df: DataFrame,
    failed_checks: dict[Any, list[ExpectationConfig]],
    *,
    key_column: str,
    source_system: str,
    run_id: str,
) -> tuple[DataFrame, DataFrame]:
    spark = df.sparkSession
    nulled = {k: [c for c in checks if c.severity == "field"] for k, checks in failed_checks.items()}
    df = _null_fields(df, {k: checks for k, checks in nulled.items() if checks}, key_column)
    failed_checks = {k: [c for c in checks if c.severity == "row"] for k, checks in failed_checks.items()}
    failed_checks = {k: checks for k, checks in failed_checks.items() if checks}
    if not failed_checks:
        return df, local_frame(spark, [], QUARANTINE_SCHEMA)
    keys_schema = StructType(
        [
            StructField(_KEY, df.schema[key_column].dataType, True),
            StructField("check", StringType(), False),
            StructField("reason", StringType(), False),
        ]
    )
    keys = local_frame(
        spark,
        [
            (key, "; ".join(c.label for c in checks), "; ".join(c.reason or f"{c.label} failed" for c in checks))
            for key, checks in failed_checks.items()
        ],
        keys_schema,
    )
    matches = df[key_column].eqNullSafe(keys[_KEY])
    passed = df.join(F.broadcast(keys), matches, "left_anti")
    failed = df.join(F.broadcast(keys), matches, "inner")
    quarantined = failed.select(
        F.lit(run_id).alias("run_id"),
        F.lit(STAGE).alias("stage"),
        _column_or(df, "source_system", F.lit(source_system)).alias("source_system"),
        _column_or(df, "source_key", df[key_column]).cast("string").alias("source_key"),
        keys["check"],
        keys["reason"],
        F.to_json(F.struct(*[df[c] for c in df.columns])).alias("record"),
        F.current_timestamp().alias("quarantined_at"),
    )
    return passed, quarantined


def _null_fields(df: DataFrame, checks: dict[Any, list[ExpectationConfig]], key_column: str) -> DataFrame:
    """``df`` with each field-level check's column nulled on its failing rows and the reasons in ``std_issues``."""
    if not checks:
        return df
    schema = StructType(
        [
            StructField(_KEY, df.schema[key_column].dataType, True),
            StructField("__cdi_nulled", ArrayType(StringType(), False), False),
            StructField("__cdi_reasons", StringType(), False),
        ]
    )
    failing = local_frame(
        df.sparkSession,
        [
            (key, [c.kwargs["column"] for c in failed], "; ".join(c.reason or f"{c.label} failed" for c in failed))
            for key, failed in checks.items()
        ],
        schema,
    )
    joined = df.join(F.broadcast(failing), df[key_column].eqNullSafe(failing[_KEY]), "left")
    columns = {c.kwargs["column"] for failed in checks.values() for c in failed}
    nulled = F.coalesce(F.col("__cdi_nulled"), F.array().cast("array<string>"))
    out = []
    for field in df.schema.fields:
        value = df[field.name]
        if field.name in columns:
            value = F.when(F.array_contains(nulled, field.name), F.lit(None).cast(field.dataType)).otherwise(value)
        elif field.name == ISSUES_COLUMN:
            combined = F.concat_ws("; ", value, F.col("__cdi_reasons"))
            value = F.when(combined == "", F.lit(None).cast("string")).otherwise(combined)
        out.append(value.alias(field.name))
    return joined.select(*out)


def _column_or(df: DataFrame, name: str, fallback: Column) -> Column:
    return F.coalesce(df[name].cast("string"), fallback) if name in df.columns else fallback


def _summary(
    suite: SuiteConfig, results: list[ExpectationValidationResult], *, source_system: str, run_id: str
) -> dict[str, Any]:
    expectations = []
    row_count = None
    for result in results:
        config = suite.expectations[result.expectation_config.meta["cdi_index"]]
        observed = result.result.get("observed_value")
        if result.expectation_config.type in ROW_COUNT_EXPECTATIONS and isinstance(observed, int):
            row_count = observed
        expectations.append(
            {
                "expectation": config.expect,
                "columns": list(config.columns),
                "severity": config.severity,
                "success": bool(result.success),
                "element_count": result.result.get("element_count"),
                "unexpected_count": result.result.get("unexpected_count"),
                "observed_count": observed if isinstance(observed, int) and not isinstance(observed, bool) else None,
                "error": _exception_message(result),
            }
        )
    return {
        "suite": suite.suite,
        "source_system": source_system,
        "run_id": run_id,
        "success": all(e["success"] for e in expectations),
        "row_count": row_count,
        "expectations": expectations,
    }


def _docs_index(context: AbstractDataContext) -> Path | None:
    for site in context.get_docs_sites_urls():
        url = site.get("site_url")
        if url and url.startswith("file://"):
            return Path(unquote(urlparse(url).path))
    return None
