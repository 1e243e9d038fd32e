"""Accuracy against ground truth: pairwise P/R/F1, B-cubed, adjusted Rand index; blocking; calibration.

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

Blocking and calibration read the scored candidate pairs (``record_id_l``,
``record_id_r`` and, for calibration, ``match_probability``; as in
``silver/pairs``) beside the truth. A pair with a record the truth does not
know cannot be judged: it counts as a candidate pair but neither as a true
nor as a false match.
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


@dataclass(frozen=True)
class BlockingMetrics:
    """How many pairs blocking produced, and how many of the true duplicate pairs are among them."""

    candidate_pairs: int  # distinct unordered candidate pairs
    records: int  # records of the run
    pairs_per_record: float
    true_pairs: int  # pairs of run records that share an entity by the truth
    true_pairs_found: int  # of those, how many are candidate pairs
    recall: float  # true_pairs_found / true_pairs (1.0 with no true pairs)
    unjudged_pairs: int  # candidate pairs with a record the truth does not know


def _unordered(pairs: pd.DataFrame) -> pd.DataFrame:
    """Distinct ``record_id_l < record_id_r`` pairs (a pair given both ways, or twice, counts once)."""
    left = pairs["record_id_l"].astype(str).to_numpy()
    right = pairs["record_id_r"].astype(str).to_numpy()
    frame = pd.DataFrame({"record_id_l": np.minimum(left, right), "record_id_r": np.maximum(left, right)})
    for column in pairs.columns.difference(["record_id_l", "record_id_r"]):
        frame[column] = pairs[column].to_numpy()
    frame = frame[frame["record_id_l"] != frame["record_id_r"]]
    return frame.drop_duplicates(["record_id_l", "record_id_r"]).reset_index(drop=True)


def _pair_entities(pairs: pd.DataFrame, truth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(judged, same entity) per pair: judged when the truth knows both records."""
    left = pairs["record_id_l"].map(truth)
    right = pairs["record_id_r"].map(truth)
    judged = (left.notna() & right.notna()).to_numpy()
    return judged, (judged & (left.to_numpy() == right.to_numpy()))


def blocking_metrics(pairs: pd.DataFrame, truth: pd.Series, records: pd.Index | None = None) -> BlockingMetrics:
    """Blocking recall and pairs per record of the candidate pairs ``pairs`` (``record_id_l``, ``record_id_r``).

    ``truth``: record id -> entity id. ``records``: the record ids of the run
    (default: the truth's); the true pairs are those between records of the
    run that the truth knows, and pairs per record divides by their number.
    """
    if truth.empty:
        raise ValueError("truth must hold records")
    _check(truth, "truth")
    universe = truth.index if records is None else pd.Index(records).unique()
    known = truth[truth.index.isin(universe)]
    candidates = _unordered(pairs[["record_id_l", "record_id_r"]])
    judged, same = _pair_entities(candidates, known)
    true_pairs = _pairs(known.value_counts().to_numpy())
    found = int(same.sum())
    return BlockingMetrics(
        candidate_pairs=len(candidates),
        records=len(universe),
        pairs_per_record=len(candidates) / len(universe) if len(universe) else 0.0,
        true_pairs=true_pairs,
        true_pairs_found=found,
        recall=found / true_pairs if true_pairs else 1.0,
        unjudged_pairs=int((~judged).sum()),
    )


CALIBRATION_EDGES: tuple[float, ...] = (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)


def calibration_table(
    pairs: pd.DataFrame, truth: pd.Series, edges: tuple[float, ...] = CALIBRATION_EDGES
) -> pd.DataFrame:
    """Reliability of ``match_probability``: scored pairs by predicted probability against the truth.

    One row per bucket ``[lo, hi)`` of ``edges`` (the last one closed,
    ``[lo, hi]``): ``bucket``, ``pairs`` (scored pairs in it), ``judged`` (pairs
    whose two records the truth knows), ``mean_probability`` (mean predicted
    over the judged pairs), ``true_matches`` and ``observed`` (true matches /
    judged; NaN when none is judged). A well calibrated model has ``observed``
    close to ``mean_probability`` in every bucket.
    """
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError("edges must hold at least two increasing values")
    _check(truth, "truth")
    scored = _unordered(pairs[["record_id_l", "record_id_r", "match_probability"]])
    judged, same = _pair_entities(scored, truth)
    probability = scored["match_probability"].to_numpy(dtype=np.float64)
    bucket = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for index, (low, high) in enumerate(zip(edges, edges[1:])):
        mine = bucket == index
        mine_judged = mine & judged
        count = int(mine_judged.sum())
        closing = "]" if index == len(edges) - 2 else ")"
        rows.append(
            {
                "bucket": f"[{low:g}, {high:g}{closing}",
                "pairs": int(mine.sum()),
                "judged": count,
                "mean_probability": float(probability[mine_judged].mean()) if count else float("nan"),
                "true_matches": int((mine & same).sum()),
                "observed": float((mine & same).sum() / count) if count else float("nan"),
            }
        )
    return pd.DataFrame(rows)
