"""Evaluation metrics: hand-computed small cases, edge cases, cross-checks with scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

from matching.evaluation import PairMetrics, adjusted_rand_index, bcubed, pairwise_metrics


def clusters(*groups: str, prefix: str = "c") -> pd.Series:
    """``clusters("abc", "d")`` -> records a, b, c in one cluster, d in another."""
    return pd.Series(
        {record: f"{prefix}{i}" for i, group in enumerate(groups) for record in group}
    )


# (predicted, truth, tp, fp, fn, precision, recall, f1, bcubed (P, R, F1), ARI)
HAND_COMPUTED = [
    pytest.param(
        clusters("ab", "cd"), clusters("abc", "d"),
        1, 1, 2, 1 / 2, 1 / 3, 0.4, (3 / 4, 2 / 3, 12 / 17), 0.0,
        id="split-and-wrong-merge",
    ),
    pytest.param(
        clusters("ab", "cde"), clusters("abc", "de"),
        2, 2, 2, 1 / 2, 1 / 2, 1 / 2, (11 / 15, 11 / 15, 11 / 15), 1 / 6,
        id="boundary-shifted",
    ),
    pytest.param(
        clusters("abc", "de", prefix="p"), clusters("abc", "de", prefix="t"),
        4, 0, 0, 1.0, 1.0, 1.0, (1.0, 1.0, 1.0), 1.0,
        id="perfect-with-other-ids",
    ),
    pytest.param(
        clusters("a", "b", "c", "d"), clusters("abc", "d"),
        0, 0, 3, 1.0, 0.0, 0.0, (1.0, 1 / 2, 2 / 3), 0.0,
        id="all-singletons-predicted",
    ),
    pytest.param(
        clusters("a", "b", "c"), clusters("a", "b", "c"),
        0, 0, 0, 1.0, 1.0, 1.0, (1.0, 1.0, 1.0), 1.0,
        id="all-singletons-both",
    ),
    pytest.param(
        clusters("abcd"), clusters("abcd"),
        6, 0, 0, 1.0, 1.0, 1.0, (1.0, 1.0, 1.0), 1.0,
        id="one-cluster-both",
    ),
    pytest.param(
        clusters("abcd"), clusters("a", "b", "c", "d"),
        0, 6, 0, 0.0, 1.0, 0.0, (1 / 4, 1.0, 2 / 5), 0.0,
        id="everything-merged",
    ),
]


@pytest.mark.parametrize(
    ("predicted", "truth", "tp", "fp", "fn", "precision", "recall", "f1", "b3", "ari"),
    HAND_COMPUTED,
)
def test_pairwise_metrics_hand_computed(
    predicted, truth, tp, fp, fn, precision, recall, f1, b3, ari
) -> None:
    metrics = pairwise_metrics(predicted, truth)
    assert (metrics.tp, metrics.fp, metrics.fn) == (tp, fp, fn)
    assert metrics.precision == pytest.approx(precision)
    assert metrics.recall == pytest.approx(recall)
    assert metrics.f1 == pytest.approx(f1)
    assert metrics.records == len(truth)


@pytest.mark.parametrize(
    ("predicted", "truth", "tp", "fp", "fn", "precision", "recall", "f1", "b3", "ari"),
    HAND_COMPUTED,
)
def test_bcubed_hand_computed(predicted, truth, tp, fp, fn, precision, recall, f1, b3, ari) -> None:
    assert bcubed(predicted, truth) == pytest.approx(b3)


@pytest.mark.parametrize(
    ("predicted", "truth", "tp", "fp", "fn", "precision", "recall", "f1", "b3", "ari"),
    HAND_COMPUTED,
)
def test_adjusted_rand_index_hand_computed(
    predicted, truth, tp, fp, fn, precision, recall, f1, b3, ari
) -> None:
    assert adjusted_rand_index(predicted, truth) == pytest.approx(ari)
    assert adjusted_rand_index(predicted, truth) == pytest.approx(
        adjusted_rand_score(truth.loc[predicted.index], predicted)
    )


def test_only_records_in_both_are_scored_and_the_rest_counted() -> None:
    predicted = clusters("ab", "cdz")
    truth = clusters("abc", "dxy")
    assert pairwise_metrics(predicted, truth) == PairMetrics(
        precision=1 / 2, recall=1 / 3, f1=0.4, tp=1, fp=1, fn=2,
        records=4, only_in_predicted=1, only_in_truth=2,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metrics_agree_with_scikit_learn_on_random_partitions(seed) -> None:
    rng = np.random.default_rng(seed)
    n = 3_000
    index = pd.Index([f"r{i}" for i in range(n)])
    truth = pd.Series(rng.integers(0, 800, n), index=index)
    predicted = pd.Series(rng.integers(0, 600, n), index=index[::-1])

    aligned = predicted.loc[truth.index]
    confusion = pair_confusion_matrix(truth, aligned)  # ordered pairs: twice the counts
    metrics = pairwise_metrics(predicted, truth)
    assert (metrics.tp, metrics.fp, metrics.fn) == (
        confusion[1, 1] // 2, confusion[0, 1] // 2, confusion[1, 0] // 2
    )
    expected_ari = adjusted_rand_score(truth, aligned)
    assert adjusted_rand_index(predicted, truth) == pytest.approx(expected_ari)


@pytest.mark.parametrize("metric", [pairwise_metrics, bcubed, adjusted_rand_index])
@pytest.mark.parametrize(
    ("predicted", "truth", "message"),
    [
        (pd.Series(dtype=object), clusters("ab"), "both hold records"),
        (clusters("ab"), pd.Series(dtype=object), "both hold records"),
        (clusters("ab"), clusters("cd"), "share no record ids"),
        (pd.Series(["c1", "c1"], index=["a", "a"]), clusters("ab"), "predicted has duplicate"),
        (clusters("ab"), pd.Series(["c1", None], index=["a", "b"]), "truth has 1 records without"),
    ],
)
def test_bad_input_raises(metric, predicted, truth, message) -> None:
    with pytest.raises(ValueError, match=message):
        metric(predicted, truth)
