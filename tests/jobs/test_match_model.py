"""u's random-pair patterns drawn on a background thread (``jobs.match_model.RandomPairPatterns``); scores in Spark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pyspark.errors import AnalysisException, PySparkException

from jobs.match_model import (
    RandomPairPatterns,
    comparison_vectors,
    distinct_people,
    evidence_counts,
    fellegi_sunter_scores,
    random_pair_patterns,
    train_model,
)
from matching.fellegi_sunter import ComparisonParameters, FellegiSunterModel, score
from matching.settings import load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "conf" / "matching.yaml")
COLUMNS = (
    "record_id string, source_system string, given_name string, family_name string, birth_date date, "
    "email string, phone string, address_line1 string, address_line2 string, postcode string, "
    "city string, gender string, national_id string, middle_name string, birth_date_written string"
)
ROWS = [
    ("r01", "crm", "anna", "smith", dt.date(1980, 3, 4), "anna@x.org", "0711", "1 high st", None, "ab1 2cd", "leeds", "f", None, "j", "1980-03-04"),
    ("r02", "crm", "ana", "smith", dt.date(1980, 4, 3), None, "0711", "1 high street", None, "ab1 2cd", "leeds", "f", None, "jane", "1980-04-03"),
    ("r03", "web", "bob", "smyth", None, "bob@x.org", None, "2 low rd", "flat 3", "ab1 2ce", "york", "m", "12345", None, "1980-43-03"),
    ("r04", "web", "zoë", "ñúñez", dt.date(1, 1, 1), "", "", "", "", "", "", "", "", "", "0001-01-01"),
    ("r05", "bill", "robert", "smith", dt.date(9999, 12, 31), "BOB@X.ORG", "0712", "2 low rd", None, "ab1 2ce", "york", None, "12345", "k", "9999-12-31"),
    ("r06", "bill", None, None, None, None, None, None, None, None, None, None, None, None, None),
]
FREQUENCIES = {column: {"smith": 0.4, "anna": 0.2} for column in dict.fromkeys(c.column for c in SETTINGS.tf_comparisons)}


def test_distinct_people_keeps_the_lowest_id_of_records_alike_on_every_compared_attribute(spark):
    copies = [("r07", "web", *ROWS[0][2:]), ("r00", "web", *ROWS[0][2:]), ("r08", "crm", *ROWS[5][2:])]
    other_city = [("r09", "crm", *ROWS[0][2:10], "york", *ROWS[0][11:])]
    records = spark.createDataFrame([*ROWS, *copies, *other_city], COLUMNS)
    columns = ["record_id", "source_system", *distinct_people(records, SETTINGS).columns[2:]]
    kept = [("r00", "web", *ROWS[0][2:]), *ROWS[1:5], ROWS[5], *other_city]
    expected = spark.createDataFrame(kept, COLUMNS).select(*columns)

    actual = distinct_people(records, SETTINGS)

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_patterns_drawn_in_the_background_equal_those_drawn_in_the_caller(spark):
    records = spark.createDataFrame(ROWS, COLUMNS)

    background = RandomPairPatterns(records, SETTINGS, FREQUENCIES, [len(ROWS)]).get()
    caller = random_pair_patterns(records, SETTINGS, FREQUENCIES, [len(ROWS)])

    gammas = [c for c in caller.columns if c.startswith("gamma_")]
    assert background["count"].sum() == len(ROWS) * (len(ROWS) - 1) // 2
    pd.testing.assert_frame_equal(
        background.sort_values(gammas).reset_index(drop=True), caller.sort_values(gammas).reset_index(drop=True)
    )


def test_patterns_drawn_in_spark_are_drawn_in_get_as_in_the_caller(spark):
    records = spark.createDataFrame(ROWS, COLUMNS)
    in_spark = SETTINGS.model_copy(update={"model": SETTINGS.model.model_copy(update={"u_in_memory_records": 0})})

    patterns = RandomPairPatterns(records, in_spark, FREQUENCIES, [len(ROWS)])
    drawn = patterns.get()

    caller = random_pair_patterns(records, in_spark, FREQUENCIES, [len(ROWS)])
    gammas = [c for c in caller.columns if c.startswith("gamma_")]
    assert 0 < drawn["count"].sum() <= len(ROWS) * (len(ROWS) - 1) // 2
    pd.testing.assert_frame_equal(
        drawn.sort_values(gammas).reset_index(drop=True), caller.sort_values(gammas).reset_index(drop=True)
    )


def test_a_failure_of_the_background_draw_is_raised_by_get(spark):
    records = spark.createDataFrame(ROWS, COLUMNS).drop("email")

    patterns = RandomPairPatterns(records, SETTINGS, FREQUENCIES, [len(ROWS)])

    with pytest.raises(AnalysisException):
        patterns.get()


@pytest.mark.parametrize("rows", [ROWS[:1], ROWS[:3]], ids=["one record", "three records"])
def test_with_no_candidate_pair_training_gives_the_untrained_model(spark, rows):
    """No pair to learn from (a file of one person, or of people who share no blocking key): no failure."""
    records = spark.createDataFrame(rows, COLUMNS)
    pairs = spark.createDataFrame([], "record_id_l string, record_id_r string, blocking_rule string")
    vectors = comparison_vectors(pairs, records, SETTINGS, FREQUENCIES)
    labelled = vectors.withColumn("is_match", vectors["record_id_l"].isNull())

    model, report = train_model(vectors, labelled, SETTINGS, RandomPairPatterns(records, SETTINGS, FREQUENCIES, [len(rows)]))

    assert report is None
    assert (model.iterations, model.lambda_) == (0, 1e-12)
    given_name_u = model.comparison("given_name").u
    if len(rows) == 1:
        assert len(set(given_name_u)) == 1  # no random pair either: u is uniform
    else:
        assert given_name_u[0] > given_name_u[-1]  # u from the three random pairs: most disagree


def _model(tf: bool, household: bool) -> FellegiSunterModel:
    return FellegiSunterModel(
        (
            ComparisonParameters("given_name", 2, (0.1, 0.2, 0.7), (0.9, 0.08, 0.02), tf=tf),
            ComparisonParameters(
                "family_name", 1, (0.05, 0.95), (0.99, 0.01), u_household=(0.6, 0.4) if household else None
            ),
            ComparisonParameters(
                "birth_date", 3, (0.2, 0.1, 0.1, 0.6), (0.7, 0.2, 0.09, 0.01), tf=tf,
                u_household=(0.4, 0.3, 0.2, 0.1) if household else None,
            ),
        ),
        lambda_=1e-4,
        household_key="family_name" if household else None,
        # Pairs apart on both names and not of one birth date (a couple) get the household u too.
        household_own=("given_name", "birth_date") if household else (),
    )


VECTOR_COLUMNS = ["record_id_l", "record_id_r", "gamma_given_name", "gamma_family_name", "gamma_birth_date",
                  "tf_given_name", "tf_birth_date"]
VECTORS = (
    "record_id_l string, record_id_r string, gamma_given_name int, gamma_family_name int, gamma_birth_date int, "
    "tf_given_name double, tf_birth_date double"
)
TERM_FREQUENCIES = st.one_of(
    st.none(), st.just(float("nan")), st.just(0.0), st.just(-0.5), st.just(float("inf")),
    st.floats(min_value=1e-300, max_value=1.0),
)


@hypothesis_settings(max_examples=15, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(-1, 2), st.integers(-1, 1), st.integers(-1, 3), TERM_FREQUENCIES, TERM_FREQUENCIES),
        min_size=1, max_size=30,
    ),
    tf=st.booleans(),
    household=st.booleans(),
)
def test_spark_scores_equal_the_pandas_scores(spark, rows, tf, household):
    """Missing levels, household u, and term frequencies null, NaN, zero, negative, infinite or tiny."""
    model = _model(tf, household)
    pairs = [(f"a{i}", f"b{i}", *row) for i, row in enumerate(rows)]
    vectors = spark.createDataFrame(pairs, VECTORS)

    got = vectors.select("*", *fellegi_sunter_scores(model, list(model.comparisons))).toPandas()

    frame = pd.DataFrame(pairs, columns=VECTOR_COLUMNS).astype({"tf_given_name": float, "tf_birth_date": float})
    expected = score(model, frame)
    assert list(got.columns) == [*VECTOR_COLUMNS, *expected.columns]
    for column in expected.columns:
        assert np.allclose(got[column], expected[column], rtol=1e-12, atol=1e-12), column


def test_evidence_counts_are_the_scores_weights_without_the_prior(spark):
    model = _model(tf=True, household=True)
    rows = [(2, 1, 3, 0.01, 0.5), (2, 1, 3, 0.01, 0.5), (0, 0, 0, None, None), (-1, 1, 2, None, float("nan"))]
    pairs = [(f"a{i}", f"b{i}", *row) for i, row in enumerate(rows)]

    got = evidence_counts(spark.createDataFrame(pairs, VECTORS), model).sort_values("evidence", ignore_index=True)

    frame = pd.DataFrame(pairs, columns=VECTOR_COLUMNS).astype({"tf_given_name": float, "tf_birth_date": float})
    weights = (score(model, frame)["match_weight"] - model.prior_weight).round(2)
    expected = weights.value_counts().rename_axis("evidence").reset_index().sort_values("evidence", ignore_index=True)
    assert got["evidence"].tolist() == pytest.approx(expected["evidence"].tolist(), abs=1e-9)
    assert got["count"].tolist() == expected["count"].tolist() == [1, 1, 2]


def test_spark_scores_fail_on_a_level_the_model_lacks(spark):
    model = _model(tf=False, household=False)
    vectors = spark.createDataFrame([("a", "b", 3, 0, 0, None, None)], VECTORS)

    with pytest.raises(PySparkException, match="'gamma_given_name' has level 3 outside -1..2"):
        vectors.select(*fellegi_sunter_scores(model, list(model.comparisons))).collect()


def test_spark_scores_are_never_null(spark):
    """As the pandas scores' schema says: the pairs table's columns do not depend on the model's kind."""
    model = _model(tf=True, household=True)
    vectors = spark.createDataFrame([("a", "b", 2, 1, 3, None, float("nan"))], VECTORS)

    scored = vectors.select(*fellegi_sunter_scores(model, list(model.comparisons)))

    assert [(f.name, f.nullable) for f in scored.schema.fields] == [
        ("mw_given_name", False), ("mw_family_name", False), ("mw_birth_date", False),
        ("match_weight", False), ("match_probability", False),
    ]
