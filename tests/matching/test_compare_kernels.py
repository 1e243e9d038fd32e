"""The rapidfuzz-backed string features give exactly what recordlinkage's jellyfish-backed ones gave.

The references are the code these features replaced: recordlinkage's
``String`` feature (jellyfish pair by pair) for similarities, a jellyfish
distance per pair for "within k edits", and recordlinkage's ``Exact`` for
exact agreement. Equality is exact, NaN for NaN: a
last-bit difference can move a pair across a level's threshold.
"""

from __future__ import annotations

import itertools

import jellyfish
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st
from recordlinkage.compare import Exact, Numeric, String

from matching.compare import EditSimilarity, ExactAgreement, JaroSimilarity, WithinDistance, WithinEdits

# Level kind -> recordlinkage's String method.
SIMILARITIES = {
    "jaro_winkler": (JaroSimilarity, "jarowinkler"),
    "jaro": (JaroSimilarity, "jaro"),
    "levenshtein": (EditSimilarity, "levenshtein"),
    "damerau_levenshtein": (EditSimilarity, "damerau_levenshtein"),
}
DISTANCES = {
    "levenshtein": jellyfish.levenshtein_distance,
    "damerau_levenshtein": jellyfish.damerau_levenshtein_distance,
}

# Pieces that make grapheme clusters of several code points (combining accent, CR LF, emoji
# ZWJ sequence, flag) next to plain letters, so texts share characters and clusters.
CLUSTER_PIECES = ["a", "b", "e", "é", "\u0301", "\r", "\n", "👩", "\u200d", "🇬", "🇧", " ", "ǅ"]
texts = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="abcde", max_size=12),
    st.lists(st.sampled_from(CLUSTER_PIECES), max_size=10).map("".join),
)
pairs = st.one_of(
    st.tuples(st.none() | texts, st.none() | texts),
    texts.map(lambda text: (text, text[::-1])),
    texts.map(lambda text: (text, text[1:] + text[:1])),
)


def _columns(values: list[tuple[str | None, str | None]]) -> tuple[pd.Series, pd.Series]:
    left = pd.Series([a for a, _ in values], dtype=object)
    right = pd.Series([b for _, b in values], dtype=object)
    return left, right


def _string_reference(method: str, left: pd.Series, right: pd.Series) -> np.ndarray:
    """recordlinkage's own String feature, as ``matching.compare`` registered it before rapidfuzz."""
    with np.errstate(invalid="ignore"):  # its 0 / 0 for two empty strings
        result = String("x", "x", method=method, missing_value=np.nan)._compute_vectorized(left, right)
    return np.asarray(result, dtype=float)


def _within_reference(kind: str, max_distance: int, left: pd.Series, right: pd.Series) -> np.ndarray:
    """The per-pair jellyfish loop ``matching.compare`` ran before rapidfuzz."""
    distance = DISTANCES[kind]
    return np.array(
        [np.nan if a is None or b is None else float(distance(a, b) <= max_distance) for a, b in zip(left, right)]
    )


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(pairs, max_size=8), st.sampled_from(sorted(SIMILARITIES)))
def test_similarities_equal_recordlinkage_string(values, kind):
    left, right = _columns(values)
    feature, method = SIMILARITIES[kind]

    actual = feature("x", "x", kind)._compute_vectorized(left, right)

    np.testing.assert_array_equal(actual, _string_reference(method, left, right))


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(pairs, max_size=8), st.sampled_from(sorted(DISTANCES)), st.integers(min_value=1, max_value=3))
def test_within_edits_equal_jellyfish(values, kind, max_distance):
    left, right = _columns(values)

    actual = WithinEdits("x", "x", kind, max_distance)._compute_vectorized(left, right)

    np.testing.assert_array_equal(actual, _within_reference(kind, max_distance, left, right))


NAMES = ["martha", "marhta", "dwayne", "duane", "dixon", "dicksonx", "jones", "johnson", "smith", "smyth",
         "catherine", "kathryn", "o'brien", "obrien", "zoë", "zoe", "mohammed", "muhammad", "li", "lee", "", "a"]


@pytest.mark.parametrize(("kind", "reference"), [
    ("jaro_winkler", jellyfish.jaro_winkler_similarity), ("jaro", jellyfish.jaro_similarity),
])
def test_jaro_winkler_and_jaro_equal_jellyfish_on_names(kind, reference):
    """Every ordered pair of the names: prefix weight 0.1 over at most 4 characters, boost above 0.7, in both."""
    left, right = _columns(list(itertools.product(NAMES, NAMES)))

    actual = JaroSimilarity("x", "x", kind)._compute_vectorized(left, right)

    assert actual.tolist() == [reference(a, b) for a, b in zip(left, right)]


def test_empty_missing_and_multi_code_point_characters():
    """Today's results, where rapidfuzz alone would differ: empty strings, and clusters of several code points."""
    values = [
        ("", ""),  # rapidfuzz: Jaro-Winkler 1.0; jellyfish 0.0. Normalized Levenshtein 0 / 0
        ("", "ab"),
        ("e\u0301", "é"),  # decomposed vs composed: one edit between two one-character strings to jellyfish
        ("👩\u200d👩\u200d👧", "👩"),  # one emoji ZWJ sequence (5 code points) vs one emoji
        ("martha", "marhta"),
        (None, "martha"),
    ]
    left, right = _columns(values)
    nan = np.nan

    jaro_winkler = JaroSimilarity("x", "x", "jaro_winkler")._compute_vectorized(left, right)
    levenshtein = EditSimilarity("x", "x", "levenshtein")._compute_vectorized(left, right)
    within_one = WithinEdits("x", "x", "levenshtein", 1)._compute_vectorized(left, right)

    np.testing.assert_array_equal(jaro_winkler, [0.0, 0.0, 0.0, 0.0, jellyfish.jaro_winkler_similarity("martha", "marhta"), nan])
    # 1 - distance (in clusters) / longer length (in code points), as recordlinkage computes it
    np.testing.assert_array_equal(levenshtein, [nan, 0.0, 1 - 1 / 2, 1 - 1 / 5, 1 - 2 / 6, nan])
    np.testing.assert_array_equal(within_one, [1.0, 0.0, 1.0, 1.0, 0.0, nan])


# What a side frame's column can hold: text (names), or floats (a date's day number), missing as None or NaN.
exact_values = st.one_of(st.none(), st.just(np.nan), texts, st.floats(allow_nan=False), st.integers(-3, 3).map(float))


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(exact_values, exact_values), max_size=8), st.booleans())
def test_exact_agreement_equals_recordlinkage_exact(values, numbers_only):
    if numbers_only:  # a column of day numbers: float dtype, not object
        values = [tuple(v if isinstance(v, float) else np.nan for v in pair) for pair in values]
    left, right = _columns(values)
    if numbers_only:
        left, right = left.astype(float), right.astype(float)

    actual = ExactAgreement("x", "x")._compute_vectorized(left, right)

    expected = Exact("x", "x", missing_value=np.nan)._compute_vectorized(left, right)
    np.testing.assert_array_equal(actual, np.asarray(expected, dtype=float))


numbers = st.one_of(st.just(np.nan), st.floats(allow_nan=False, allow_infinity=True), st.integers(-40, 40).map(float))


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(numbers, numbers), max_size=8),
    st.sampled_from([0.5, 1, 2, 31, 366]),
    st.booleans(),
)
def test_within_distance_equals_recordlinkage_numeric_step(values, offset, integers):
    """Day numbers and parsed numbers (floats with NaN for missing, or whole numbers as int64)."""
    left, right = (pd.Series([pair[i] for pair in values], dtype=float) for i in (0, 1))
    if integers:
        left, right = (side.fillna(0).clip(-1e15, 1e15).round().astype(np.int64) for side in (left, right))

    actual = WithinDistance("x", "x", offset)._compute_vectorized(left, right)

    expected = Numeric("x", "x", method="step", offset=offset, missing_value=np.nan)._compute_vectorized(left, right)
    np.testing.assert_array_equal(actual, np.asarray(expected, dtype=float))


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(pairs, max_size=8))
def test_features_given_side_frame_masks_equal_features_that_check_values(values):
    """``side_frame``'s ``<col>__absent`` columns stand in for checking each value, with the same result."""
    left, right = _columns(values)
    masked = (left, left.isna(), right, right.isna())
    features = [
        ExactAgreement("x", "x"), JaroSimilarity("x", "x", "jaro_winkler"), EditSimilarity("x", "x", "levenshtein"),
        WithinEdits("x", "x", "damerau_levenshtein", 1),
    ]
    for feature in features:
        np.testing.assert_array_equal(feature._compute_vectorized(*masked), feature._compute_vectorized(left, right))
