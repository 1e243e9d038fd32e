"""Households against a household truth: pairwise precision / recall / F1 of "lives with".

A pair of golden customers "lives with" each other when both are members of
one household. Predicted: the members table of ``matching.households`` (golden
id -> household id; a customer in no household lives alone). Truth: golden id
-> true household id, missing (NaN / None) for a customer known to live alone
or whose household is not judged. Both become partitions of the truth's golden
ids, every customer outside a household a singleton, and
``matching.evaluation.pairwise_metrics`` scores them from the contingency
table, so no pair is enumerated. Members the truth does not know are not
scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.evaluation import PairMetrics, pairwise_metrics


def _partition(assignment: pd.Series, index: pd.Index) -> pd.Series:
    """Integer labels over ``index``: one per household of ``assignment``, a fresh one per customer in none."""
    household = assignment.reindex(index)
    codes, _ = pd.factorize(household, use_na_sentinel=True)
    alone = codes < 0
    codes[alone] = codes.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    return pd.Series(codes, index=index)


def lives_with_metrics(members: pd.Series, truth: pd.Series) -> PairMetrics:
    """Pairwise "lives with" figures of the predicted ``members`` (golden id -> household id) against ``truth``."""
    if truth.empty:
        raise ValueError("truth must hold golden ids")
    if truth.index.has_duplicates:
        raise ValueError("truth has duplicate golden ids")
    if members.index.has_duplicates:
        raise ValueError("a golden id is in more than one predicted household")
    return pairwise_metrics(_partition(members, truth.index), _partition(truth, truth.index))
