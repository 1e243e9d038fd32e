"""Checks at a run's start that need Spark, made before anything is written.

Every blocking key, refine key and the sub-block key of the matching settings
is parsed and resolved by Spark against the canonical schema (an empty
DataFrame: no job runs). ``matching.settings`` already refuses unknown
attribute names without Spark; this catches what only Spark's parser and
analyzer know: bad syntax, unknown functions, wrong argument types.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pyspark.errors import PySparkException
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from config.errors import ConfigError
from matching.settings import MatchSettings
from schemas.arrow import local_frame
from schemas.canonical import CANONICAL_SCHEMA


def match_expressions(settings: MatchSettings) -> Iterator[tuple[str, str]]:
    """``(key path in the settings file, Spark SQL expression)`` for every expression the match stage evaluates."""
    for i, rule in enumerate(settings.blocking_rules):
        for j, key in enumerate(rule.keys):
            yield f"blocking_rules[{i}].keys[{j}]", key
        for j, key in enumerate(rule.refine):
            yield f"blocking_rules[{i}].refine[{j}]", key
    if settings.sub_block_key is not None:
        yield "sub_block_key", settings.sub_block_key


def check_match_expressions(spark: SparkSession, settings: MatchSettings, path: str | Path) -> None:
    """Raise a ConfigError naming ``path`` and the key of the first expression Spark cannot resolve.

    Every expression is parsed on its own, then all are resolved in one plan;
    only when that fails is each resolved alone, to name the first that fails.
    """
    empty = local_frame(spark, [], CANONICAL_SCHEMA)
    keyed = list(match_expressions(settings))
    columns = [(key, expression, _parsed(path, key, expression)) for key, expression in keyed]
    try:
        empty.select(*[column.alias(f"e{i}") for i, (_, _, column) in enumerate(columns)]).schema  # noqa: B018
        return
    except PySparkException:
        pass
    for key, expression, column in columns:
        try:
            empty.select(column).schema  # noqa: B018 - resolving the plan is the check
        except PySparkException as exc:
            raise _config_error(path, key, expression, exc) from None


def _parsed(path: str | Path, key: str, expression: str) -> Column:
    try:
        return F.expr(expression)
    except PySparkException as exc:
        raise _config_error(path, key, expression, exc) from None


def _config_error(path: str | Path, key: str, expression: str, exc: PySparkException) -> ConfigError:
    reason = (str(exc).strip().splitlines() or ["not a valid Spark SQL expression"])[0]
    return ConfigError(f"{path}: {key}: {expression!r}: {reason}")
