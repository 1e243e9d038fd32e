"""``cdi evaluate``: accuracy of the last run against a ground-truth file.

The truth file is CSV with an ``entity_id`` column and either
``source_system`` + ``source_key`` or a single ``record_id`` column (the
source's own key, as given to ``cdi dedupe --id``). Only this module reads
ground truth; the pipeline never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from jobs.errors import ConfigError
from matching.evaluation import PairMetrics, adjusted_rand_index, bcubed, pairwise_metrics


@dataclass(frozen=True)
class Evaluation:
    pairwise: PairMetrics
    bcubed: tuple[float, float, float]
    adjusted_rand: float
    predicted_clusters: int
    true_entities: int


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


def evaluate(predicted: pd.Series, truth: pd.Series) -> Evaluation:
    """``predicted``: record id → golden id (or cluster id)."""
    return Evaluation(
        pairwise=pairwise_metrics(predicted, truth),
        bcubed=bcubed(predicted, truth),
        adjusted_rand=adjusted_rand_index(predicted, truth),
        predicted_clusters=predicted.nunique(),
        true_entities=truth.nunique(),
    )


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
        ]
    )


def predicted_assignment(lake_root: str) -> pd.Series:
    """record id → golden id from the published ``customer_xref``, else the last run's clusters."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from jobs.lake import Lake

    lake = Lake.at(lake_root)
    for path, column in ((lake.gold("customer_xref"), "golden_id"), (lake.path("silver", "clusters"), "cluster_id")):
        try:
            table = DeltaTable(path).to_pandas(columns=["record_id", column])
        except TableNotFoundError:
            continue
        return pd.Series(table[column].to_numpy(), index=table["record_id"].to_numpy(), name="golden_id")
    raise ConfigError(f"lake {lake.root}: no customer_xref or clusters table yet: run `cdi run` first")
