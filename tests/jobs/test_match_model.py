"""u's random-pair patterns drawn on a background thread (``jobs.match_model.RandomPairPatterns``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from pyspark.errors import AnalysisException

from jobs.match_model import RandomPairPatterns, comparison_vectors, random_pair_patterns, train_model
from matching.settings import load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "conf" / "matching.yaml")
COLUMNS = (
    "record_id string, source_system string, given_name string, family_name string, birth_date date, "
    "email string, phone string, address_line1 string, address_line2 string, postcode string, "
    "city string, gender string, national_id string"
)
ROWS = [
    ("r01", "crm", "anna", "smith", dt.date(1980, 3, 4), "anna@x.org", "0711", "1 high st", None, "ab1 2cd", "leeds", "f", None),
    ("r02", "crm", "ana", "smith", dt.date(1980, 4, 3), None, "0711", "1 high street", None, "ab1 2cd", "leeds", "f", None),
    ("r03", "web", "bob", "smyth", None, "bob@x.org", None, "2 low rd", "flat 3", "ab1 2ce", "york", "m", "12345"),
    ("r04", "web", "zoë", "ñúñez", dt.date(1, 1, 1), "", "", "", "", "", "", "", ""),
    ("r05", "bill", "robert", "smith", dt.date(9999, 12, 31), "BOB@X.ORG", "0712", "2 low rd", None, "ab1 2ce", "york", None, "12345"),
    ("r06", "bill", None, None, None, None, None, None, None, None, None, None, None),
]
FREQUENCIES = {column: {"smith": 0.4, "anna": 0.2} for column in dict.fromkeys(c.column for c in SETTINGS.tf_comparisons)}


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
