"""Supervised model: learns that agreement means match; scores in bits like Fellegi-Sunter."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from matching.supervised import (
    ComparisonCoefficients,
    SupervisedModel,
    score_supervised,
    train_supervised,
)

COMPARISONS = {"name": 2, "dob": 1}


@pytest.fixture(scope="module")
def labelled() -> tuple[pd.DataFrame, pd.Series]:
    """Matches mostly agree, non-matches mostly disagree; 10% missing on each side."""
    rng = np.random.default_rng(7)
    n = 2_000
    truth = rng.random(n) < 0.3
    name = np.where(
        truth, rng.choice(3, n, p=[0.05, 0.15, 0.8]), rng.choice(3, n, p=[0.85, 0.1, 0.05])
    )
    dob = np.where(truth, rng.choice(2, n, p=[0.1, 0.9]), rng.choice(2, n, p=[0.95, 0.05]))
    name[rng.random(n) < 0.1] = -1
    dob[rng.random(n) < 0.1] = -1
    index = pd.RangeIndex(100, 100 + n)
    pairs = pd.DataFrame({"gamma_name": name, "gamma_dob": dob}, index=index)
    return pairs, pd.Series(truth, index=index)


def test_agreement_raises_match_probability(labelled) -> None:
    pairs, labels = labelled
    model = train_supervised(pairs, labels, COMPARISONS)
    probes = pd.DataFrame({"gamma_name": [2, 1, 0], "gamma_dob": [1, 1, 0]})
    probability = score_supervised(model, probes)["match_probability"]

    assert probability.iloc[0] > 0.95
    assert probability.iloc[2] < 0.05
    assert probability.is_monotonic_decreasing
    for name, k in COMPARISONS.items():
        coefficients = model.comparison(name).coefficients
        assert coefficients[k] > coefficients[0]


def test_training_accuracy_is_high(labelled) -> None:
    pairs, labels = labelled
    model = train_supervised(pairs, labels, COMPARISONS)
    predicted = score_supervised(model, pairs)["match_probability"] > 0.5
    assert (predicted == labels).mean() > 0.9


def test_missing_contributes_zero_weight(labelled) -> None:
    pairs, labels = labelled
    model = train_supervised(pairs, labels, COMPARISONS)
    scores = score_supervised(model, pd.DataFrame({"gamma_name": [-1, 2], "gamma_dob": [1, -1]}))
    assert scores["mw_name"].iloc[0] == 0.0
    assert scores["mw_dob"].iloc[1] == 0.0


def test_scoring_converts_log_odds_to_bits() -> None:
    ln2 = math.log(2.0)
    model = SupervisedModel(
        comparisons=(
            ComparisonCoefficients("a", 1, (-2 * ln2, 3 * ln2)),
            ComparisonCoefficients("b", 2, (-1 * ln2, 0.0, 2 * ln2)),
        ),
        intercept=-1 * ln2,
    )
    pairs = pd.DataFrame({"gamma_a": [1, 0, -1], "gamma_b": [2, -1, 0]}, index=["p", "q", "r"])
    expected = pd.DataFrame(
        {
            "mw_a": [3.0, -2.0, 0.0],
            "mw_b": [2.0, 0.0, -1.0],
            "match_weight": [4.0, -3.0, -2.0],
            "match_probability": [16 / 17, 1 / 9, 1 / 5],
        },
        index=["p", "q", "r"],
    )
    pd.testing.assert_frame_equal(score_supervised(model, pairs), expected, rtol=1e-12)


@pytest.mark.parametrize(("value", "present"), [(True, "matches"), (False, "non-matches")])
def test_one_class_is_rejected(labelled, value, present) -> None:
    pairs, labels = labelled
    with pytest.raises(ValueError, match=f"only {present}"):
        train_supervised(pairs, pd.Series(value, index=labels.index), COMPARISONS)


@pytest.mark.parametrize(
    ("make_labels", "message"),
    [
        (lambda labels: labels.reset_index(drop=True), "same index"),
        (lambda labels: labels.astype(object).where(labels.index != 100, None), "nulls"),
    ],
)
def test_misaligned_or_null_labels_are_rejected(labelled, make_labels, message) -> None:
    pairs, labels = labelled
    with pytest.raises(ValueError, match=message):
        train_supervised(pairs, make_labels(labels), COMPARISONS)


def test_json_round_trip_gives_identical_scores(labelled) -> None:
    pairs, labels = labelled
    model = train_supervised(pairs, labels, COMPARISONS)
    restored = SupervisedModel.from_json(model.to_json())

    assert restored == model
    pd.testing.assert_frame_equal(
        score_supervised(restored, pairs), score_supervised(model, pairs), check_exact=True
    )


def test_from_json_rejects_a_fellegi_sunter_document() -> None:
    with pytest.raises(ValueError, match="model_type"):
        SupervisedModel.from_json({"format_version": 1, "model_type": "fellegi_sunter"})
