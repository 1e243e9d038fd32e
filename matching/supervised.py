"""Supervised match model: logistic regression on one-hot comparison levels.

Used when labelled pairs exist (steward decisions or a labels file). Each
comparison level 0..K_c gets an indicator column; a missing level (-1) sets
none of them, so missing contributes nothing, as in Fellegi-Sunter.
Coefficients are stored in natural log-odds (scikit-learn's units) and scored
in bits, so ``score_supervised`` returns the same columns as
``fellegi_sunter.score`` and downstream code treats both models alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from matching.fellegi_sunter import assemble_scores, level_array

FORMAT_VERSION = 1
MODEL_TYPE = "supervised_logistic"
_LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class ComparisonCoefficients:
    """Log-odds coefficient (natural log) per level 0..levels of one comparison."""

    name: str
    levels: int
    coefficients: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.coefficients) != self.levels + 1:
            raise ValueError(
                f"comparison {self.name!r}: needs {self.levels + 1} coefficients "
                f"(levels 0..{self.levels}), got {len(self.coefficients)}"
            )


@dataclass(frozen=True)
class SupervisedModel:
    """A trained logistic-regression match model; ``intercept`` in natural log-odds."""

    comparisons: tuple[ComparisonCoefficients, ...]
    intercept: float

    def comparison(self, name: str) -> ComparisonCoefficients:
        for coefficients in self.comparisons:
            if coefficients.name == name:
                return coefficients
        raise KeyError(f"model has no comparison {name!r}")

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "model_type": MODEL_TYPE,
                "intercept": self.intercept,
                "comparisons": [
                    {"name": c.name, "levels": c.levels, "coefficients": list(c.coefficients)}
                    for c in self.comparisons
                ],
            }
        )

    @classmethod
    def from_json(cls, source: str | Mapping[str, Any]) -> SupervisedModel:
        data = json.loads(source) if isinstance(source, str) else source
        if data.get("model_type") != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {data.get('model_type')!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"format_version must be {FORMAT_VERSION}, got {data.get('format_version')!r}"
            )
        try:
            return cls(
                comparisons=tuple(
                    ComparisonCoefficients(
                        name=c["name"],
                        levels=int(c["levels"]),
                        coefficients=tuple(float(v) for v in c["coefficients"]),
                    )
                    for c in data["comparisons"]
                ),
                intercept=float(data["intercept"]),
            )
        except KeyError as error:
            raise ValueError(f"supervised model JSON lacks key {error}") from None


def _one_hot(pairs: pd.DataFrame, comparisons: Mapping[str, int]) -> np.ndarray:
    """Indicator per (comparison, level 0..K); a missing level leaves its block all zero."""
    blocks = []
    for name, k in comparisons.items():
        levels = level_array(pairs, name, k)
        blocks.append((levels[:, None] == np.arange(k + 1)[None, :]).astype(np.float64))
    return np.hstack(blocks)


def _validated_labels(pairs: pd.DataFrame, labels: pd.Series) -> np.ndarray:
    if not labels.index.equals(pairs.index):
        raise ValueError("labels must have the same index as pairs")
    if labels.isna().any():
        raise ValueError(f"labels hold {int(labels.isna().sum())} nulls; every pair needs a label")
    values = labels.to_numpy(dtype=bool)
    if values.all() or not values.any():
        present = "matches" if values.any() else "non-matches"
        raise ValueError(
            f"labels hold only {present} ({len(values)} pairs); training needs both classes"
        )
    return values


def train_supervised(
    pairs: pd.DataFrame,
    labels: pd.Series,
    comparisons: Mapping[str, int],
    regularization: float = 1.0,
) -> SupervisedModel:
    """Fit a logistic regression on one-hot gamma levels.

    ``labels`` (True = match) must share ``pairs``' index. ``regularization``
    is scikit-learn's ``C`` (inverse L2 strength): with few labels, the
    penalty keeps a level seen only among matches from an infinite weight.
    """
    if not comparisons:
        raise ValueError("at least one comparison is needed")
    target = _validated_labels(pairs, labels)
    features = _one_hot(pairs, comparisons)
    classifier = LogisticRegression(C=regularization, max_iter=1000)
    classifier.fit(features, target)

    coefficients = classifier.coef_[0]
    parts = []
    start = 0
    for name, k in comparisons.items():
        block = coefficients[start : start + k + 1]
        parts.append(ComparisonCoefficients(name, k, tuple(float(v) for v in block)))
        start += k + 1
    return SupervisedModel(comparisons=tuple(parts), intercept=float(classifier.intercept_[0]))


def score_supervised(model: SupervisedModel, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair: ``mw_<c>`` (bits, 0 when missing), ``match_weight``, ``match_probability``."""
    contributions = np.empty((len(pairs), len(model.comparisons)), dtype=np.float64)
    for j, part in enumerate(model.comparisons):
        levels = level_array(pairs, part.name, part.levels)
        # Index -1 (missing) picks the appended 0.
        per_level = np.append(np.asarray(part.coefficients) / _LN2, 0.0)
        contributions[:, j] = per_level[levels]
    return assemble_scores(
        pairs.index, [c.name for c in model.comparisons], contributions, model.intercept / _LN2
    )

