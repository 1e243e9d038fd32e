"""Splink 5 (DuckDB or Spark backend) set up from cdi's own matching settings, for side-by-side benchmarks.

The peer gets the same blocking rules and comparisons as cdi, translated level
by level from ``MatchSettings``, so a difference in accuracy comes from the
model (training, scoring, clustering), not from what either tool looks at.
Training follows Splink's documented workflow: the prior from deterministic
rules, u from random pairs, then m by EM over two blocking rules that each
leave the other rule's attributes free to be estimated.

Custom comparison levels are written in DuckDB SQL and translated by Splink
(sqlglot) for the Spark backend; blocking rules are cdi's Spark SQL keys,
which DuckDB also reads (with ``soundex`` added as a function).

Run alone, it is the Splink step of ``bench/scale.py``, in its own process so
its memory can be measured apart (Java 17 for the Spark backend)::

    .venv/bin/python -m bench.splink_peer --backend spark --lake LAKE --out DIR

It reads ``LAKE``'s ``silver/customers_std`` with delta-rs, trains, predicts
and clusters, and writes ``DIR/clusters.parquet`` (record_id, cluster_id) and
``DIR/result.json`` (seconds of Splink's work). ``--count-pairs`` instead of
``--backend`` only counts, exactly and in DuckDB, the pairs Splink's blocking
would score.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jellyfish
import pandas as pd
import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.backends.spark import SparkAPI, similarity_jar_location
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.database_api import DatabaseAPI

from config.lake import Lake
from jobs.spark import build_session, jar_settings
from matching.blocking import apply_pair_budget
from matching.compare import comparison_columns
from matching.settings import (
    KEY_COLUMNS,
    Comparison,
    DamerauLevenshteinLevel,
    DateAsWrittenLevel,
    DateDayMonthLevel,
    DateDistanceLevel,
    DateTransposedLevel,
    DateTypoLevel,
    ExactLevel,
    InitialLevel,
    JaroLevel,
    JaroWinklerLevel,
    Level,
    LevenshteinLevel,
    MatchSettings,
    NamesSwappedLevel,
    NumericDistanceLevel,
    load_settings,
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Deterministic rules for Splink's prior (probability two random records match) and their assumed recall.
PRIOR_RULES = ("l.given_name = r.given_name AND l.family_name = r.family_name AND l.birth_date = r.birth_date",)
PRIOR_RECALL = 0.7
# When no pair agrees on all three (a file whose every duplicate has one error, as RLdata), each pair of them.
FALLBACK_PRIOR_RULES = (
    "l.given_name = r.given_name AND l.family_name = r.family_name",
    "l.given_name = r.given_name AND l.birth_date = r.birth_date",
    "l.family_name = r.family_name AND l.birth_date = r.birth_date",
)
# EM sessions: each fixes the attributes it blocks on and estimates m for the rest.
EM_RULES = (("given_name", "family_name"), ("birth_date",))
BACKENDS = ("duckdb", "spark")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SplinkResult:
    clusters: pd.Series  # record id -> cluster id
    seconds: float
    # every scored pair (record_id_l, record_id_r, match_probability) when asked for with keep_pairs
    pairs: pd.DataFrame | None = None
    # EM sessions (their blocking columns joined by "+") Splink could not train, which a user would drop
    failed_sessions: tuple[str, ...] = ()


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


def _custom(condition: str) -> ComparisonLevelCreator:
    """A level written in DuckDB SQL; Splink translates it for other backends."""
    return cll.CustomLevel(condition, base_dialect_str="duckdb")


class _SwappedJaroWinkler(ComparisonLevelCreator):
    """Both crossings of two name columns (``col`` left against ``other`` right, and back) at least ``threshold``
    Jaro-Winkler similar, with each backend's own function (DuckDB's built-in, the UDF Splink's jar registers
    in Spark): a ``CustomLevel`` written in DuckDB SQL is translated to a Spark function that does not exist."""

    def __init__(self, col: str, other: str, threshold: float) -> None:
        self.col, self.other, self.threshold = col, other, threshold

    def create_sql(self, sql_dialect) -> str:
        function = sql_dialect.jaro_winkler_function_name
        return (
            f"{function}({self.col}_l, {self.other}_r) >= {self.threshold} "
            f"AND {function}({self.other}_l, {self.col}_r) >= {self.threshold}"
        )

    def create_label_for_charts(self) -> str:
        return f"{self.col} and {self.other} swapped, Jaro-Winkler >= {self.threshold}"


def _null_level(comparison: Comparison) -> ComparisonLevelCreator:
    """cdi's missing: no level can be judged, each level's columns null on either side."""
    unjudged = [
        "(" + " OR ".join(f"{c}_{side} IS NULL" for c in comparison.level_columns(level) for side in "lr") + ")"
        for level in comparison.levels
    ]
    return _custom(" AND ".join(dict.fromkeys(unjudged))).configure(is_null_level=True)


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
            return _custom(f"{function}({col}_l, {col}_r) <= {level.max_distance}")
        # recordlinkage's normalized similarity: 1 - distance / longer length.
        similarity = f"1 - {function}({col}_l, {col}_r) / greatest(length({col}_l), length({col}_r))"
        return _custom(f"{similarity} >= {level.threshold}")
    if isinstance(level, DateTransposedLevel):
        return _custom(
            f"{col}_l = {col}_r OR (year({col}_l) = year({col}_r) "
            f"AND month({col}_l) = day({col}_r) AND day({col}_l) = month({col}_r))"
        )
    if isinstance(level, DateTypoLevel):
        # Both written as YYYY-MM-DD: one substitution, or two neighbouring digits swapped, is distance 1.
        return _custom(
            f"{col}_l <> {col}_r AND damerau_levenshtein(strftime({col}_l, '%Y-%m-%d'), "
            f"strftime({col}_r, '%Y-%m-%d')) = 1"
        )
    if isinstance(level, DateAsWrittenLevel):
        # Text as written (YYYY-MM-DD): equal, one substitution or neighbouring swap apart, or day and month swapped.
        return _custom(
            f"damerau_levenshtein({col}_l, {col}_r) <= 1 OR (substr({col}_l, 1, 4) = substr({col}_r, 1, 4) "
            f"AND substr({col}_l, 6, 2) = substr({col}_r, 9, 2) AND substr({col}_l, 9, 2) = substr({col}_r, 6, 2))"
        )
    if isinstance(level, DateDayMonthLevel):
        return _custom(f"month({col}_l) = month({col}_r) AND day({col}_l) = day({col}_r)")
    if isinstance(level, DateDistanceLevel):
        return _custom(f"abs(date_diff('day', {col}_l, {col}_r)) <= {level.max_days}")
    if isinstance(level, NumericDistanceLevel):
        return _custom(
            f"abs(try_cast({col}_l AS DOUBLE) - try_cast({col}_r AS DOUBLE)) <= {level.max_abs}"
        )
    if isinstance(level, InitialLevel):
        return _custom(f"{col}_l <> '' AND substr({col}_l, 1, 1) = substr({col}_r, 1, 1)")
    if isinstance(level, NamesSwappedLevel) and level.threshold is not None:
        return _SwappedJaroWinkler(col, level.other, level.threshold)
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


def _duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the ``soundex`` cdi's blocking rules use.

    Spark's soundex has no DuckDB built-in; jellyfish implements the same American Soundex.
    """
    connection = duckdb.connect()
    connection.create_function("soundex", lambda text: jellyfish.soundex(text) if text else None, [str], str)
    return connection


def duckdb_api() -> DuckDBAPI:
    """An in-memory DuckDB for Splink, with ``soundex``."""
    return DuckDBAPI(connection=_duckdb())


def budgeted_settings(records: pd.DataFrame, settings: MatchSettings) -> MatchSettings:
    """The settings with cdi's pair budget applied to the blocking rules, counted in DuckDB.

    Block sizes are counted as cdi counts them in Spark (``matching.blocking.refine_rules``),
    so Splink blocks with the rules cdi used on the same records.
    """
    connection = _duckdb()
    connection.register("records", _linkage_table(records, settings))
    level_pairs: dict[tuple[int, int], int] = {}
    for index, rule in enumerate(settings.blocking_rules):
        for level in range(len(rule.refine) + 1 if rule.refine else 0):
            keys = [f"({key})" for key in rule.refined(level).keys]
            not_null = " AND ".join(f"{key} IS NOT NULL" for key in keys)
            query = (
                f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM "
                f"(SELECT count(*) AS n FROM records WHERE {not_null} GROUP BY {', '.join(keys)})"
            )
            level_pairs[(index, level)] = int(connection.execute(query).fetchone()[0])
    return apply_pair_budget(settings, level_pairs, len(records))[0]


def spark_session(checkpoint_dir: Path) -> SparkSession:
    """cdi's own session settings plus Splink's similarity UDF jar and a checkpoint folder."""
    jars = [jar for jar in jar_settings().get("spark.jars", "").split(",") if jar]
    spark = build_session({"spark.app.name": "splink", "spark.jars": ",".join([*jars, similarity_jar_location()])})
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark


def _linkage_table(records: pd.DataFrame, settings: MatchSettings) -> pa.Table:
    """``record_id`` plus the attributes the comparisons and blocking keys read, as Arrow.

    An attribute missing from every record (pandas: all None) is typed as a string:
    Spark cannot store a column of Arrow's null type.
    """
    columns = ["record_id", *[c for c in comparison_columns(settings) if c in records.columns]]
    columns = list(dict.fromkeys(columns + [c for c in KEY_COLUMNS if c in records.columns]))
    table = pa.Table.from_pandas(records[columns], preserve_index=False)
    schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema])
    return table.cast(schema)


def candidate_pairs(records: pd.DataFrame, settings: MatchSettings) -> int:
    """Exact number of pairs Splink scores with cdi's blocking rules (each pair once), counted in DuckDB."""
    api = duckdb_api()
    counts = count_comparisons_from_blocking_rules(
        api.register(_linkage_table(records, settings)),
        blocking_rules=blocking_rules(settings),
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        record_sample_proportion=1.0,
    )
    return int(counts[-1]["cumulative_comparison_count"]) if counts else 0


def run_splink(
    records: pd.DataFrame,
    settings: MatchSettings,
    threshold: float,
    seed: int,
    api: DatabaseAPI | None = None,
    keep_pairs: bool = False,
) -> SplinkResult:
    """Train, predict and cluster ``records`` (``record_id``, ``source_system`` and canonical attributes) with Splink.

    ``api`` is the backend (default: a new in-memory DuckDB); the time runs from
    handing Splink the records to the clusters in pandas. ``keep_pairs``: predict
    every blocked pair (not only those above the review threshold) and return
    them too, for blocking recall and calibration; they are copied to pandas
    after the clock stops.
    """
    started = time.perf_counter()
    backend = api if api is not None else duckdb_api()
    creator = SettingsCreator(
        link_type=settings.link_type,
        unique_id_column_name="record_id",
        comparisons=comparisons(settings),
        blocking_rules_to_generate_predictions=blocking_rules(settings),
        retain_intermediate_calculation_columns=False,
    )
    if settings.link_type == "dedupe_only":
        tables = backend.register(_linkage_table(records, settings))
    else:
        # One input table per source: Splink links across them (and, for link_and_dedupe, within them too).
        tables = [backend.register(_linkage_table(group, settings)) for _, group in records.groupby("source_system")]
    linker = Linker(tables, creator, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(list(PRIOR_RULES), recall=PRIOR_RECALL)
    if not linker._settings_obj._probability_two_random_records_match > 0:  # a prior of 0 fails in log2
        linker.training.estimate_probability_two_random_records_match(list(FALLBACK_PRIOR_RULES), recall=PRIOR_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=settings.model.u_random_pairs, seed=seed)
    failed = []
    for rule in EM_RULES:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
        except (ValueError, ZeroDivisionError):  # a session whose pairs are all matches: prior 1, log of 0
            failed.append("+".join(rule))
    predictions = linker.inference.predict(
        threshold_match_probability=None if keep_pairs else settings.thresholds.review
    )
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    ).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    pairs = None
    if keep_pairs:
        pairs = predictions.as_pandas_dataframe()[["record_id_l", "record_id_r", "match_probability"]]
    return SplinkResult(
        clusters=pd.Series(clustered["cluster_id"].astype(str).to_numpy(), index=clustered["record_id"].to_numpy()),
        seconds=seconds,
        pairs=pairs,
        failed_sessions=tuple(failed),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Splink on a cdi lake's standardized records.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--backend", choices=BACKENDS, help="train, predict and cluster with this backend")
    mode.add_argument("--count-pairs", action="store_true", help="only count the candidate pairs (DuckDB)")
    parser.add_argument("--lake", required=True, help="a cdi lake after its standardize stage")
    parser.add_argument("--out", required=True, type=Path, help="folder for result.json (and clusters.parquet)")
    parser.add_argument("--settings", type=Path, default=ROOT / "conf" / "matching.yaml")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = DeltaTable(Lake.at(args.lake).customers_std).to_pandas()
    settings = budgeted_settings(records, load_settings(args.settings))
    if args.count_pairs:
        pairs = candidate_pairs(records, settings)
        (args.out / "result.json").write_text(json.dumps({"records": len(records), "candidate_pairs": pairs}) + "\n")
        print(f"Splink blocking: {len(records)} records, {pairs} candidate pairs")
        return 0
    spark = spark_session(args.out / "checkpoints") if args.backend == "spark" else None
    api = SparkAPI(spark_session=spark) if spark is not None else duckdb_api()
    result = run_splink(records, settings, settings.thresholds.match, settings.model.seed, api)
    if spark is not None:
        spark.stop()
    clusters = pd.DataFrame({"record_id": result.clusters.index, "cluster_id": result.clusters.to_numpy()})
    clusters.to_parquet(args.out / "clusters.parquet", index=False)
    (args.out / "result.json").write_text(
        json.dumps({"backend": args.backend, "records": len(records), "seconds": result.seconds}) + "\n"
    )
    print(f"Splink {args.backend}: {len(records)} records, {result.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
