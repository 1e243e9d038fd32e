"""Any value a source can hold goes through compare and score without an error (property-based).

Values arrive in the match stage as Spark gives them to pandas: text or None
for string attributes, ``datetime.date`` (any year 1-9999) or None for dates.
Hostile text: every Unicode script and emoji, control characters, NUL, empty
and whitespace-only strings, digits where names are expected, 100 KB values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from matching.compare import comparison_columns, comparison_levels, score_batch, tf_comparisons
from matching.fellegi_sunter import ComparisonParameters, FellegiSunterModel, score
from matching.settings import DATE_ATTRIBUTES, load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "conf" / "matching.yaml")
KEEP = ["record_id_l", "record_id_r"]

hostile_text = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "\t\n", "\x00", "\u200b", "0", "12345", "1e308", "NaN", "null", "👩‍👩‍👧‍👦", "مرحبا", "李小龍", "ǅ"]),
    st.integers(min_value=1_000, max_value=100_000).map(lambda n: "x" * n),
    st.integers(),
    st.floats(allow_nan=False),
)
hostile_date = st.one_of(st.none(), st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))


def _value(column: str) -> st.SearchStrategy:
    return hostile_date if column in DATE_ATTRIBUTES else hostile_text


@st.composite
def batches(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=6))
    frame = pd.DataFrame({"record_id_l": [f"l{i}" for i in range(n)], "record_id_r": [f"r{i}" for i in range(n)]})
    for column in comparison_columns(SETTINGS):
        for side in ("l", "r"):
            frame[f"{column}_{side}"] = pd.Series([draw(_value(column)) for _ in range(n)], dtype=object)
    for name in tf_comparisons(SETTINGS):
        column = next(c.column for c in SETTINGS.comparisons if c.name == name)
        frame[f"tf_{column}"] = [draw(st.one_of(st.none(), st.floats(min_value=0, max_value=1))) for _ in range(n)]
    return frame


def _model() -> FellegiSunterModel:
    comparisons = []
    for name, k in comparison_levels(SETTINGS).items():
        m = np.geomspace(1, 10, k + 1)
        u = m[::-1]
        comparisons.append(
            ComparisonParameters(name, k, tuple(m / m.sum()), tuple(u / u.sum()), tf=name in tf_comparisons(SETTINGS))
        )
    return FellegiSunterModel(tuple(comparisons), lambda_=1e-4)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches())
def test_any_values_compare_and_score(batch: pd.DataFrame) -> None:
    vectors = score_batch(batch, SETTINGS.comparisons, KEEP)

    assert len(vectors) == len(batch)
    for name, k in comparison_levels(SETTINGS).items():
        gammas = vectors[f"gamma_{name}"].to_numpy()
        assert ((gammas >= -1) & (gammas <= k)).all()
    scores = score(_model(), vectors)
    assert np.isfinite(scores["match_weight"]).all()
    assert ((scores["match_probability"] >= 0) & (scores["match_probability"] <= 1)).all()


def test_dates_outside_the_nanosecond_range_compare_as_dates() -> None:
    """1028 against 1028, 9185 against 9185, a typo from 1928 to 1028, days apart in year 1, one day and month
    in years 2 and 9998: the date levels hold."""
    pairs = [
        (dt.date(1028, 3, 4), dt.date(1028, 3, 4)),
        (dt.date(9185, 12, 1), dt.date(9185, 1, 12)),
        (dt.date(1, 1, 2), dt.date(1, 1, 25)),
        (dt.date(1500, 6, 1), dt.date(1500, 12, 31)),
        (dt.date(1928, 1, 1), dt.date(1028, 1, 1)),
        (dt.date(2, 2, 28), dt.date(9998, 2, 28)),
        (dt.date(9999, 12, 31), None),
    ]
    batch = pd.DataFrame({"record_id_l": ["a"] * len(pairs), "record_id_r": ["b"] * len(pairs)})
    batch["birth_date_l"] = pd.Series([left for left, _ in pairs], dtype=object)
    batch["birth_date_r"] = pd.Series([right for _, right in pairs], dtype=object)
    for side, index in (("l", 0), ("r", 1)):
        written = [pair[index].isoformat() if pair[index] else None for pair in pairs]
        batch[f"birth_date_written_{side}"] = pd.Series(written, dtype=object)
    batch["tf_birth_date"] = 1e-4
    (birth,) = [c for c in SETTINGS.comparisons if c.name == "birth_date"]
    gammas = score_batch(batch, [birth], KEEP)["gamma_birth_date"].tolist()
    # Levels: 7 exact, 6 day and month swapped, 5 one typed digit, 4 within 31 days, 3 within 366 days,
    # 2 the same day and month in another year, 1 as written alike (a usable date never gets there),
    # 0 else, -1 missing.
    assert gammas == [7, 6, 4, 3, 5, 2, -1]
