"""Random record pairs drawn and compared in memory, for u estimation on small data.

On data that fits in the driver's memory easily, drawing random pairs with
Spark costs far more than comparing them: each sample of ``random_pairs`` is
a dozen Spark jobs (windows, joins, a sort) and an Arrow round trip for every
pair, where the comparisons themselves take about 15 µs a pair in
``score_sides``. Here the records are one pandas frame, sorted by
``record_id`` so that a seed draws the same pairs whatever the file layout
the records came from, and pairs are index pairs into it.

Pure numpy / pandas: no Spark, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from matching.blocking import possible_pairs
from matching.compare import score_sides, side_frame
from matching.settings import Comparison

# Pairs compared per call of ``score_sides``: bounds the memory of one batch.
BATCH_PAIRS = 50_000


def draw_pairs(sources: np.ndarray, n: int, seed: int, link_only: bool = False) -> np.ndarray:
    """Up to ``n`` distinct random pairs ``(i, j)``, ``i < j``, of positions in a record array; shape (m, 2).

    ``sources`` holds each record's source (compared for ``link_only``, which
    keeps only pairs from two different sources). Never more pairs than the
    records allow. When ``n`` is at least half of the allowed pairs, they are
    all listed and ``n`` of them chosen; otherwise pairs are drawn at random
    and duplicates dropped until ``n`` remain.
    """
    sources = np.asarray(sources)
    total = len(sources)
    sizes = pd.Series(sources).value_counts(dropna=False).tolist() if link_only else [total]
    allowed = possible_pairs(sizes, "link_only" if link_only else "dedupe_only")
    n = min(n, allowed)
    rng = np.random.default_rng(seed)
    if n < 1:
        return np.empty((0, 2), dtype=np.int64)
    if 2 * n >= allowed:
        every = _every_pair(sources, link_only)
        return every[np.sort(rng.choice(len(every), size=n, replace=False))]
    found = np.empty((0, 2), dtype=np.int64)
    share = allowed / (total * (total - 1) / 2)
    while len(found) < n:
        draws = math.ceil(1.2 * (n - len(found)) / share) + 16
        i, j = rng.integers(0, total, size=draws), rng.integers(0, total, size=draws)
        keep = i != j
        if link_only:
            keep &= sources[i] != sources[j]
        fresh = np.column_stack([np.minimum(i, j)[keep], np.maximum(i, j)[keep]])
        combined = np.concatenate([found, fresh])
        # One integer per pair: a 1-D unique is several times quicker than np.unique(axis=0), same result.
        _, first = np.unique(combined[:, 0] * total + combined[:, 1], return_index=True)
        found = combined[np.sort(first)]
    return found[:n]


def _every_pair(sources: np.ndarray, link_only: bool) -> np.ndarray:
    """Every allowed pair ``(i, i < j)``, ordered; only called when they are few (at most twice ``n``)."""
    if not link_only:
        left, right = np.triu_indices(len(sources), k=1)
        return np.column_stack([left, right]).astype(np.int64)
    groups = [np.flatnonzero(sources == value) for value in pd.unique(sources)]
    blocks = []
    for a, first in enumerate(groups):
        for second in groups[a + 1:]:
            left, right = np.repeat(first, len(second)), np.tile(second, len(first))
            blocks.append(np.column_stack([np.minimum(left, right), np.maximum(left, right)]))
    every = np.concatenate(blocks) if blocks else np.empty((0, 2), dtype=np.int64)
    return every[np.lexsort((every[:, 1], every[:, 0]))].astype(np.int64)


def tf_shares(
    records: pd.DataFrame, pairs: np.ndarray, frequencies: Mapping[str, Mapping[str, float]]
) -> dict[str, np.ndarray]:
    """Per column of ``frequencies``, one share per pair: the left value's share (keyed by its text) where
    both sides hold the same value, the smallest known share for a value the shares lack, NaN elsewhere."""
    found = {}
    for column, shares in frequencies.items():
        values = records[column].to_numpy(dtype=object)
        values_l, values_r = values[pairs[:, 0]], values[pairs[:, 1]]
        same = pd.notna(values_l) & pd.notna(values_r) & (values_l == values_r)
        rarest = min(shares.values()) if shares else np.nan
        share = np.full(len(pairs), np.nan)
        share[same] = [shares.get(str(value), rarest) for value in values_l[same]]
        found[column] = share
    return found


def pattern_counts(
    records: pd.DataFrame,
    pairs: np.ndarray,
    comparisons: Sequence[Comparison],
    frequencies: Mapping[str, Mapping[str, float]],
) -> pd.DataFrame:
    """Distinct comparison patterns (``gamma_<comparison>`` columns) of ``pairs`` with their ``count``.

    Each record's compared values are prepared once (``side_frame``), not once per pair it is in.
    """
    gammas = [f"gamma_{c.name}" for c in comparisons]
    sides = side_frame(records, comparisons)
    parts = []
    for start in range(0, max(len(pairs), 1), BATCH_PAIRS):
        batch = pairs[start:start + BATCH_PAIRS]
        left = sides.take(batch[:, 0]).reset_index(drop=True)
        right = sides.take(batch[:, 1]).reset_index(drop=True)
        out = pd.DataFrame(index=pd.RangeIndex(len(batch)))
        parts.append(score_sides(out, left, right, tf_shares(records, batch, frequencies), comparisons)[gammas])
    compared = pd.concat(parts, ignore_index=True)
    counts = compared.groupby(gammas, as_index=False).size().rename(columns={"size": "count"})
    return counts.astype({g: np.int32 for g in gammas} | {"count": np.int64})
