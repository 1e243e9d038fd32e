"""Clustering accuracy against ground truth: pairwise P/R/F1, B-cubed, adjusted Rand index.

Inputs are two Series mapping record id (the index) to a cluster / entity id.
Only records present in both are scored; ``PairMetrics`` reports how many
were only in one. Every metric comes from the contingency table of
(predicted cluster, true entity) counts, so no record pair is enumerated and
1M records take a groupby, not 5 * 10^11 pairs.

Conventions for empty denominators: with no predicted pairs precision is 1.0
(no wrong links were made); with no true pairs recall is 1.0 (none were
missed); F1 is 0.0 when precision + recall is 0. All singletons on both sides
therefore score 1.0 everywhere, and all-singleton predictions against a truth
with pairs score precision 1.0, recall 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PairMetrics:
    """Pairwise figures over all within-cluster record pairs."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    records: int
    only_in_predicted: int
    only_in_truth: int


@dataclass(frozen=True)
class _Contingency:
    """Non-empty (predicted cluster, true entity) cells of the records in both inputs."""

    cells: np.ndarray  # records per cell
    cell_predicted_size: np.ndarray  # size of each cell's predicted cluster
    cell_true_size: np.ndarray  # size of each cell's true entity
    predicted_sizes: np.ndarray  # records per predicted cluster
    true_sizes: np.ndarray  # records per true entity
    only_in_predicted: int
    only_in_truth: int

    @property
    def records(self) -> int:
        return int(self.cells.sum())


def _pairs(sizes: np.ndarray) -> int:
    """Sum of C(n, 2) over the sizes."""
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _check(series: pd.Series, label: str) -> None:
    if series.index.has_duplicates:
        raise ValueError(f"{label} has duplicate record ids")
    if series.isna().any():
        raise ValueError(f"{label} has {int(series.isna().sum())} records without a cluster id")


def _contingency(predicted: pd.Series, truth: pd.Series) -> _Contingency:
    if predicted.empty or truth.empty:
        raise ValueError("predicted and truth must both hold records")
    _check(predicted, "predicted")
    _check(truth, "truth")
    common = predicted.index.intersection(truth.index)
    if common.empty:
        raise ValueError("predicted and truth share no record ids")
    frame = pd.DataFrame(
        {"predicted": predicted.loc[common].to_numpy(), "truth": truth.loc[common].to_numpy()}
    )
    cells = frame.groupby(["predicted", "truth"], sort=False).size().rename("n").reset_index()
    predicted_sizes = cells.groupby("predicted", sort=False)["n"].sum()
    true_sizes = cells.groupby("truth", sort=False)["n"].sum()
    return _Contingency(
        cells=cells["n"].to_numpy(),
        cell_predicted_size=cells["predicted"].map(predicted_sizes).to_numpy(),
        cell_true_size=cells["truth"].map(true_sizes).to_numpy(),
        predicted_sizes=predicted_sizes.to_numpy(),
        true_sizes=true_sizes.to_numpy(),
        only_in_predicted=len(predicted) - len(common),
        only_in_truth=len(truth) - len(common),
    )


def _f1(precision: float, recall: float) -> float:
    total = precision + recall
    return 2.0 * precision * recall / total if total > 0 else 0.0


def pairwise_metrics(predicted: pd.Series, truth: pd.Series) -> PairMetrics:
    """Pairwise precision, recall, F1 and tp / fp / fn over records present in both."""
    table = _contingency(predicted, truth)
    tp = _pairs(table.cells)
    predicted_pairs = _pairs(table.predicted_sizes)
    true_pairs = _pairs(table.true_sizes)
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    return PairMetrics(
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        tp=tp,
        fp=predicted_pairs - tp,
        fn=true_pairs - tp,
        records=table.records,
        only_in_predicted=table.only_in_predicted,
        only_in_truth=table.only_in_truth,
    )


def bcubed(predicted: pd.Series, truth: pd.Series) -> tuple[float, float, float]:
    """B-cubed (precision, recall, F1): per-record overlap shares, averaged over records.

    Per record, precision = |its predicted cluster ∩ its entity| / |its
    predicted cluster|; summed over the records of a cell of size n that is
    n^2 / cluster size.
    """
    table = _contingency(predicted, truth)
    squares = table.cells.astype(np.float64) ** 2
    precision = float((squares / table.cell_predicted_size).sum() / table.records)
    recall = float((squares / table.cell_true_size).sum() / table.records)
    return precision, recall, _f1(precision, recall)


def adjusted_rand_index(predicted: pd.Series, truth: pd.Series) -> float:
    """Adjusted Rand index (Hubert and Arabie), 1.0 for identical partitions.

    When the expected index equals its maximum (both partitions all singletons
    or both one cluster, or a single record) the partitions agree perfectly
    and 1.0 is returned, as scikit-learn does.
    """
    table = _contingency(predicted, truth)
    index = _pairs(table.cells)
    predicted_pairs = _pairs(table.predicted_sizes)
    true_pairs = _pairs(table.true_sizes)
    all_pairs = table.records * (table.records - 1) // 2
    # (index - expected) / (maximum - expected) with expected = P*T/A and
    # maximum = (P+T)/2 (A = all pairs), multiplied by 2A to stay in exact integers.
    numerator = 2 * all_pairs * index - 2 * predicted_pairs * true_pairs
    denominator = all_pairs * (predicted_pairs + true_pairs) - 2 * predicted_pairs * true_pairs
    if denominator == 0:
        return 1.0
    return numerator / denominator
