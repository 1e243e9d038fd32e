"""Random pairs drawn and compared in memory (``matching.local_pairs``), and their parity with the Spark path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from jobs.match_model import comparison_vectors, pattern_counts as spark_pattern_counts
from matching.blocking import possible_pairs
from matching.local_pairs import draw_pairs, pattern_counts, tf_shares
from matching.settings import load_settings
from tests.jobs.test_match_model import COLUMNS, ROWS

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "conf" / "matching.yaml")


def _check(pairs: np.ndarray, sources: np.ndarray, n: int, link_only: bool) -> None:
    sizes = pd.Series(sources).value_counts().tolist() if link_only else [len(sources)]
    assert len(pairs) == min(n, possible_pairs(sizes, "link_only" if link_only else "dedupe_only"))
    assert len({tuple(p) for p in pairs}) == len(pairs)
    assert np.all(pairs[:, 0] < pairs[:, 1]) and np.all(pairs >= 0) and np.all(pairs < len(sources))
    if link_only:
        assert np.all(sources[pairs[:, 0]] != sources[pairs[:, 1]])


@given(
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=60),
    st.integers(0, 3000),
    st.integers(0, 2**31),
    st.booleans(),
)
@hsettings(max_examples=150, deadline=None)
def test_draws_distinct_ordered_allowed_pairs_never_more_than_exist(sources, n, seed, link_only):
    sources = np.array(sources, dtype=object)

    _check(draw_pairs(sources, n, seed, link_only), sources, n, link_only)


def test_a_seed_gives_the_same_pairs_and_another_seed_others():
    sources = np.array(["a"] * 2000 + ["b"] * 500, dtype=object)

    first = draw_pairs(sources, 10_000, seed=7)

    _check(first, sources, 10_000, link_only=False)
    assert np.array_equal(draw_pairs(sources, 10_000, seed=7), first)
    assert not np.array_equal(draw_pairs(sources, 10_000, seed=8), first)


def test_when_most_pairs_are_wanted_they_are_chosen_from_all_of_them():
    sources = np.array(["a"] * 30 + ["b"] * 20, dtype=object)

    every = draw_pairs(sources, 10_000, seed=1)
    cross = draw_pairs(sources, 10_000, seed=1, link_only=True)
    most = draw_pairs(sources, 1000, seed=1)

    assert {tuple(p) for p in every} == {(i, j) for i in range(50) for j in range(i + 1, 50)}
    assert {tuple(p) for p in cross} == {(i, j) for i in range(30) for j in range(30, 50)}
    _check(most, sources, 1000, link_only=False)


def test_tf_shares_are_the_left_values_share_only_where_the_values_agree():
    records = pd.DataFrame(
        {"record_id": ["a", "b", "c", "d"], "family_name": ["smith", "smith", "zbig", None]}
    )
    pairs = np.array([[0, 1], [0, 2], [2, 2], [3, 3]])

    shares = tf_shares(records, pairs, {"family_name": {"smith": 0.4, "jones": 0.1}})

    assert shares.keys() == {"family_name"}
    # An unknown value counts as the rarest known; no share where the values differ or are missing.
    np.testing.assert_array_equal(shares["family_name"], [0.4, np.nan, 0.1, np.nan])


def test_patterns_in_memory_equal_spark_patterns_for_the_same_pairs(spark):
    rows = [*ROWS, ("r07", *ROWS[0][1:])]  # r07 repeats r01: two identical records
    records = spark.createDataFrame(rows, COLUMNS)
    held = records.orderBy("record_id").toPandas()
    pairs = np.array([(i, j) for i in range(len(rows)) for j in range(i + 1, len(rows))])
    frequencies = {
        column: {"smith": 0.3, "anna": 0.2, "leeds": 0.5}
        for column in dict.fromkeys(c.column for c in SETTINGS.tf_comparisons)
    }
    spark_pairs = spark.createDataFrame(
        [(held["record_id"][i], held["record_id"][j]) for i, j in pairs], "record_id_l string, record_id_r string"
    )

    in_memory = pattern_counts(held, pairs, list(SETTINGS.comparisons), frequencies)
    in_spark = spark_pattern_counts(comparison_vectors(spark_pairs, records, SETTINGS, frequencies), SETTINGS)

    gammas = [c for c in in_memory.columns if c.startswith("gamma_")]
    assert len(gammas) == len(SETTINGS.comparisons) and in_memory["count"].sum() == len(pairs)
    pd.testing.assert_frame_equal(
        in_memory.sort_values(gammas).reset_index(drop=True),
        in_spark[in_memory.columns].sort_values(gammas).reset_index(drop=True),
        check_dtype=False,
    )
