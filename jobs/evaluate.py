"""``cdi evaluate``: accuracy of the last run against a ground-truth file.

The truth file is CSV with an ``entity_id`` column and either
``source_system`` + ``source_key`` or a single ``record_id`` column (the
source's own key, as given to ``cdi dedupe --id``). Only this module reads
ground truth; the pipeline never does.

Besides the clusters, the candidate pairs of the last match stage
(``silver/pairs``) are judged: blocking recall (the share of the true duplicate
pairs that blocking put among the candidates, an upper bound on pairwise
recall) and candidate pairs per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from config.errors import ConfigError
from matching.evaluation import (
    BlockingMetrics,
    PairMetrics,
    adjusted_rand_index,
    bcubed,
    blocking_metrics,
    pairwise_metrics,
)

PAIR_COLUMNS = ("record_id_l", "record_id_r", "match_probability")


@dataclass(frozen=True)
class Evaluation:
    pairwise: PairMetrics
    bcubed: tuple[float, float, float]
    adjusted_rand: float
    predicted_clusters: int
    true_entities: int
    blocking: BlockingMetrics | None = None


def read_truth(path: Path, single_source: str | None) -> pd.Series:
    """record id (``<source_system>:<source_key>``) → entity id."""
    try:
        truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ConfigError(f"--truth {path}: file not found") from None
    if "entity_id" not in truth.columns:
        raise ConfigError(f"--truth {path}: expected an 'entity_id' column, found {', '.join(truth.columns)}")
    if {"source_system", "source_key"} <= set(truth.columns):
        ids = truth["source_system"] + ":" + truth["source_key"]
    elif "record_id" in truth.columns and single_source:
        ids = single_source + ":" + truth["record_id"]
    else:
        raise ConfigError(
            f"--truth {path}: expected 'source_system' and 'source_key' columns"
            + (" (or 'record_id' when the lake has one source)" if not single_source else "")
        )
    return pd.Series(truth["entity_id"].to_numpy(), index=ids.to_numpy(), name="entity_id")


def evaluate(predicted: pd.Series, truth: pd.Series, pairs: pd.DataFrame | None = None) -> Evaluation:
    """``predicted``: record id → golden id (or cluster id); ``pairs``: the scored candidate pairs, if known.

    Blocking figures take the predicted records as the records of the run.
    """
    return Evaluation(
        pairwise=pairwise_metrics(predicted, truth),
        bcubed=bcubed(predicted, truth),
        adjusted_rand=adjusted_rand_index(predicted, truth),
        predicted_clusters=predicted.nunique(),
        true_entities=truth.nunique(),
        blocking=None if pairs is None else blocking_metrics(pairs, truth, predicted.index),
    )


def evaluate_lake(lake_root: str, truth: pd.Series) -> Evaluation:
    """The last run of the lake at ``lake_root`` against ``truth``: clusters and, when written, candidate pairs."""
    return evaluate(predicted_assignment(lake_root), truth, read_pairs(lake_root))


def format_evaluation(result: Evaluation) -> str:
    p = result.pairwise
    b = result.bcubed
    return "\n".join(
        [
            f"records evaluated   {p.records} (only in the run: {p.only_in_predicted}, only in truth: {p.only_in_truth})",
            f"customers           {result.predicted_clusters} predicted, {result.true_entities} true",
            f"pairwise            precision {p.precision:.4f}  recall {p.recall:.4f}  F1 {p.f1:.4f}"
            f"  (tp {p.tp}, fp {p.fp}, fn {p.fn})",
            f"B-cubed             precision {b[0]:.4f}  recall {b[1]:.4f}  F1 {b[2]:.4f}",
            f"adjusted Rand index {result.adjusted_rand:.4f}",
            *_format_blocking(result.blocking),
        ]
    )


def _format_blocking(blocking: BlockingMetrics | None) -> list[str]:
    if blocking is None:
        return ["blocking            no candidate pairs in the lake (silver/pairs)"]
    unjudged = f"; {blocking.unjudged_pairs} with a record not in the truth" if blocking.unjudged_pairs else ""
    return [
        f"blocking recall     {blocking.recall:.4f}  ({blocking.true_pairs_found} of {blocking.true_pairs}"
        " true pairs among the candidates)",
        f"candidate pairs     {blocking.candidate_pairs} ({blocking.pairs_per_record:.2f} per record{unjudged})",
    ]


def format_calibration(table: pd.DataFrame) -> str:
    """A ``matching.evaluation.calibration_table`` as aligned text lines."""
    lines = [f"{'match_probability':<18} {'pairs':>9} {'judged':>9} {'mean p':>8} {'true':>9} {'observed':>8}"]
    for row in table.itertuples(index=False):
        lines.append(
            f"{row.bucket:<18} {row.pairs:>9} {row.judged:>9} {row.mean_probability:>8.4f} "
            f"{row.true_matches:>9} {row.observed:>8.4f}"
        )
    return "\n".join(lines)


def read_pairs(lake_root: str, columns: tuple[str, ...] = PAIR_COLUMNS) -> pd.DataFrame | None:
    """The scored candidate pairs of the last match stage (``silver/pairs``), or None before any."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from config.lake import Lake

    try:
        return DeltaTable(Lake.at(lake_root).path("silver", "pairs")).to_pandas(columns=list(columns))
    except TableNotFoundError:
        return None


def predicted_assignment(lake_root: str) -> pd.Series:
    """record id → golden id from the published ``customer_xref``, else the last run's clusters."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from config.lake import Lake

    lake = Lake.at(lake_root)
    for path, column in ((lake.gold("customer_xref"), "golden_id"), (lake.path("silver", "clusters"), "cluster_id")):
        try:
            table = DeltaTable(path).to_pandas(columns=["record_id", column])
        except TableNotFoundError:
            continue
        return pd.Series(table[column].to_numpy(), index=table["record_id"].to_numpy(), name="golden_id")
    raise ConfigError(f"lake {lake.root}: no customer_xref or clusters table yet: run `cdi run` first")
