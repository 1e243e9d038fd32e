"""Splink 5 (DuckDB backend) set up from cdi's own matching settings, for side-by-side benchmarks.

The peer gets the same blocking rules and comparisons as cdi, translated level
by level from ``MatchSettings``, so a difference in accuracy comes from the
model (training, scoring, clustering), not from what either tool looks at.
Training follows Splink's documented workflow: the prior from deterministic
rules, u from random pairs, then m by EM over two blocking rules that each
leave the other rule's attributes free to be estimated.
"""

from __future__ import annotations

import logging
import time
import re
from dataclasses import dataclass

import duckdb
import jellyfish
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator

from matching.compare import comparison_columns
from matching.settings import (
    KEY_COLUMNS,
    Comparison,
    DamerauLevenshteinLevel,
    DateDistanceLevel,
    DateTransposedLevel,
    ExactLevel,
    JaroLevel,
    JaroWinklerLevel,
    Level,
    LevenshteinLevel,
    MatchSettings,
    NamesSwappedLevel,
    NumericDistanceLevel,
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Deterministic rules for Splink's prior (probability two random records match) and their assumed recall.
PRIOR_RULES = ("l.given_name = r.given_name AND l.family_name = r.family_name AND l.birth_date = r.birth_date",)
PRIOR_RECALL = 0.7
# EM sessions: each fixes the attributes it blocks on and estimates m for the rest.
EM_RULES = (("given_name", "family_name"), ("birth_date",))


@dataclass(frozen=True)
class SplinkResult:
    clusters: pd.Series  # record id -> cluster id
    seconds: float


def _sided(expression: str, side: str) -> str:
    """A cdi key expression with every attribute read from table alias ``side``."""

    def qualify(match: re.Match[str]) -> str:
        word = match.group(0)
        follows = expression[match.end():].lstrip()
        return f"{side}.{word}" if word in KEY_COLUMNS and not follows.startswith("(") else word

    return _IDENTIFIER.sub(qualify, expression)


def blocking_rules(settings: MatchSettings) -> list[str]:
    """cdi's blocking rules as Splink SQL: every key expression equal on both sides."""
    return [
        " AND ".join(f"{_sided(key, 'l')} = {_sided(key, 'r')}" for key in rule.keys)
        for rule in settings.blocking_rules
    ]


def _null_level(comparison: Comparison) -> ComparisonLevelCreator:
    """cdi's missing: no level can be judged, each level's columns null on either side."""
    unjudged = [
        "(" + " OR ".join(f"{c}_{side} IS NULL" for c in comparison.level_columns(level) for side in "lr") + ")"
        for level in comparison.levels
    ]
    return cll.CustomLevel(" AND ".join(dict.fromkeys(unjudged))).configure(is_null_level=True)


def _level(comparison: Comparison, level: Level) -> ComparisonLevelCreator:
    col = comparison.level_column(level)
    if isinstance(level, ExactLevel):
        tf = comparison.term_frequency and col == comparison.column
        return cll.ExactMatchLevel(col, term_frequency_adjustments=tf)
    if isinstance(level, JaroWinklerLevel):
        return cll.JaroWinklerLevel(col, level.threshold)
    if isinstance(level, JaroLevel):
        return cll.JaroLevel(col, level.threshold)
    if isinstance(level, (LevenshteinLevel, DamerauLevenshteinLevel)):
        function = "levenshtein" if isinstance(level, LevenshteinLevel) else "damerau_levenshtein"
        if level.max_distance is not None:
            return cll.CustomLevel(f"{function}({col}_l, {col}_r) <= {level.max_distance}")
        # recordlinkage's normalized similarity: 1 - distance / longer length.
        similarity = f"1 - {function}({col}_l, {col}_r) / greatest(length({col}_l), length({col}_r))"
        return cll.CustomLevel(f"{similarity} >= {level.threshold}")
    if isinstance(level, DateTransposedLevel):
        return cll.CustomLevel(
            f"{col}_l = {col}_r OR (year({col}_l) = year({col}_r) "
            f"AND month({col}_l) = day({col}_r) AND day({col}_l) = month({col}_r))"
        )
    if isinstance(level, DateDistanceLevel):
        return cll.CustomLevel(f"abs(date_diff('day', {col}_l, {col}_r)) <= {level.max_days}")
    if isinstance(level, NumericDistanceLevel):
        return cll.CustomLevel(
            f"abs(try_cast({col}_l AS DOUBLE) - try_cast({col}_r AS DOUBLE)) <= {level.max_abs}"
        )
    if isinstance(level, NamesSwappedLevel):
        return cll.ColumnsReversedLevel(col, level.other, symmetrical=True)
    raise TypeError(f"no Splink level for {level!r}")


def comparisons(settings: MatchSettings) -> list[ComparisonCreator]:
    """cdi's comparisons as Splink ones: null level, cdi's levels in order, else level."""
    return [
        cl.CustomComparison(
            [_null_level(c), *[_level(c, level) for level in c.levels], cll.ElseLevel()],
            output_column_name=c.name,
        )
        for c in settings.comparisons
    ]


def run_splink(records: pd.DataFrame, settings: MatchSettings, threshold: float, seed: int) -> SplinkResult:
    """Train, predict and cluster ``records`` (``record_id`` plus canonical attributes) with Splink."""

    started = time.perf_counter()
    columns = ["record_id", *[c for c in comparison_columns(settings) if c in records.columns]]
    data = records[list(dict.fromkeys(columns + [c for c in KEY_COLUMNS if c in records.columns]))]
    connection = duckdb.connect()
    # Spark's soundex has no DuckDB built-in; jellyfish implements the same American Soundex.
    connection.create_function("soundex", lambda text: jellyfish.soundex(text) if text else None, [str], str)
    api = DuckDBAPI(connection=connection)
    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=comparisons(settings),
        blocking_rules_to_generate_predictions=blocking_rules(settings),
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(api.register(data), creator, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(list(PRIOR_RULES), recall=PRIOR_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=settings.model.u_random_pairs, seed=seed)
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    predictions = linker.inference.predict(threshold_match_probability=settings.thresholds.review)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    ).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    connection.close()
    return SplinkResult(
        clusters=pd.Series(clustered["cluster_id"].astype(str).to_numpy(), index=clustered["record_id"].to_numpy()),
        seconds=seconds,
    )
