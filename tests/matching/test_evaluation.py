"""Evaluation metrics: hand-computed small cases, edge cases, cross-checks with scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

from matching.evaluation import (
    BlockingMetrics,
    PairMetrics,
    adjusted_rand_index,
    bcubed,
    blocking_metrics,
    calibration_table,
    pairwise_metrics,
)


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


def pairs(*items: str, probabilities: list[float] | None = None) -> pd.DataFrame:
    """``pairs("ab", "bc")`` -> candidate pairs (a, b) and (b, c)."""
    frame = pd.DataFrame({"record_id_l": [i[0] for i in items], "record_id_r": [i[1] for i in items]})
    if probabilities is not None:
        frame["match_probability"] = probabilities
    return frame


def test_blocking_recall_and_pairs_per_record_hand_computed() -> None:
    truth = clusters("abc", "de", "f")  # true pairs: ab ac bc de
    result = blocking_metrics(pairs("ab", "cb", "de", "af", "ba"), truth)
    assert result == BlockingMetrics(
        candidate_pairs=4,  # "ba" is "ab" again
        records=6,
        pairs_per_record=4 / 6,
        true_pairs=4,
        true_pairs_found=3,  # ab bc de; ac was never a candidate
        recall=3 / 4,
        unjudged_pairs=0,
    )


def test_blocking_records_missing_from_the_truth_are_unjudged() -> None:
    truth = clusters("abc", "d")
    run = pd.Index(list("abcdxy"))  # x and y ran but the truth does not know them
    result = blocking_metrics(pairs("ab", "ax", "xy", "cd"), truth, run)
    assert (result.candidate_pairs, result.records, result.unjudged_pairs) == (4, 6, 2)
    assert (result.true_pairs, result.true_pairs_found, result.recall) == (3, 1, pytest.approx(1 / 3))
    assert result.pairs_per_record == pytest.approx(4 / 6)


def test_blocking_true_pairs_only_between_records_of_the_run() -> None:
    truth = clusters("abcz")  # z is in the truth but not in the run (quarantined, say)
    result = blocking_metrics(pairs("ab", "bc", "ac"), truth, pd.Index(list("abc")))
    assert (result.true_pairs, result.true_pairs_found, result.recall, result.records) == (3, 3, 1.0, 3)


def test_blocking_with_no_true_pairs_or_no_candidates() -> None:
    assert blocking_metrics(pairs("ab"), clusters("a", "b")).recall == 1.0
    empty = blocking_metrics(pairs(), clusters("ab"))
    assert (empty.candidate_pairs, empty.pairs_per_record, empty.recall) == (0, 0.0, 0.0)
    with pytest.raises(ValueError, match="truth must hold records"):
        blocking_metrics(pairs("ab"), pd.Series(dtype=object))


def test_calibration_table_buckets_pairs_by_probability() -> None:
    truth = clusters("abc", "de", "f")
    scored = pairs("ab", "bc", "de", "af", "cd", "ax", "ef", probabilities=[1.0, 0.95, 0.95, 0.6, 0.3, 0.99, 0.0])
    table = calibration_table(scored, truth)
    assert table["bucket"].tolist() == ["[0, 0.1)", "[0.1, 0.5)", "[0.5, 0.9)", "[0.9, 0.99)", "[0.99, 1]"]
    assert table["pairs"].tolist() == [1, 1, 1, 2, 2]
    assert table["judged"].tolist() == [1, 1, 1, 2, 1]  # ax: x is not in the truth
    assert table["true_matches"].tolist() == [0, 0, 0, 2, 1]
    assert table["observed"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert table["mean_probability"].tolist() == pytest.approx([0.0, 0.3, 0.6, 0.95, 1.0])


def test_calibration_empty_bucket_is_nan_and_edges_are_checked() -> None:
    table = calibration_table(pairs("ab", probabilities=[0.2]), clusters("ab"), edges=(0.0, 0.5, 1.0))
    assert table["pairs"].tolist() == [1, 0]
    assert np.isnan(table["observed"].iloc[1]) and np.isnan(table["mean_probability"].iloc[1])
    with pytest.raises(ValueError, match="increasing"):
        calibration_table(pairs("ab", probabilities=[0.2]), clusters("ab"), edges=(0.5, 0.5))
