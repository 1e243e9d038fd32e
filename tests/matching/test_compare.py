"""Comparison levels (pure pandas through ``score_batch``) and the Spark plumbing around them."""

from __future__ import annotations

import datetime as dt

import jellyfish
import pandas as pd
import pytest
from chispa import assert_df_equality
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from matching.compare import (
    date_parts,
    attach_attributes,
    attach_for_settings,
    compare_pairs,
    comparison_levels,
    comparison_schema,
    frequency_frame,
    score_batch,
    term_frequencies,
    tf_comparisons,
)
from matching.settings import Comparison, MatchSettings

KEEP = ["record_id_l", "record_id_r"]


def _comparison(column: str, *levels: dict, tf: bool = False) -> Comparison:
    return Comparison.model_validate({"name": column, "column": column, "levels": list(levels), "term_frequency": tf})


def _batch(values: dict[str, list[tuple]]) -> pd.DataFrame:
    """A batch of attached pairs from ``{column: [(left, right), ...]}``."""
    n = len(next(iter(values.values())))
    batch = pd.DataFrame({"record_id_l": [f"l{i}" for i in range(n)], "record_id_r": [f"r{i}" for i in range(n)]})
    for column, pairs in values.items():
        batch[f"{column}_l"] = pd.Series([left for left, _ in pairs], dtype=object)
        batch[f"{column}_r"] = pd.Series([right for _, right in pairs], dtype=object)
    return batch


def _gammas(comparison: Comparison, values: dict[str, list[tuple]]) -> list[int]:
    return score_batch(_batch(values), [comparison], KEEP)[f"gamma_{comparison.name}"].tolist()


def test_string_levels_strongest_first_with_missing_apart_from_disagreement():
    names = _comparison(
        "given_name",
        {"kind": "exact"},
        {"kind": "jaro_winkler", "threshold": 0.92},
        {"kind": "jaro_winkler", "threshold": 0.8},
    )
    pairs = [
        ("martha", "martha"),  # exact -> 3
        ("martha", "marhta"),  # jw 0.961 -> 2
        ("dwayne", "duane"),  # jw 0.84 -> 1
        ("martha", "zoe"),  # far -> 0
        ("martha", None),  # one side missing -> -1
        (None, None),  # both missing -> -1, never agreement
    ]

    assert _gammas(names, {"given_name": pairs}) == [3, 2, 1, 0, -1, -1]


def test_edit_distance_levels_absolute_and_normalized():
    phone = _comparison("phone", {"kind": "exact"}, {"kind": "damerau_levenshtein", "max_distance": 1})
    email = _comparison("email", {"kind": "levenshtein", "max_distance": 2})
    postcode = _comparison("postcode", {"kind": "levenshtein", "threshold": 0.8})

    assert _gammas(phone, {"phone": [("+4412", "+4412"), ("+4412", "+4421"), ("+4412", "+4499"), (None, "+1")]}) == [
        2, 1, 0, -1,
    ]
    assert _gammas(email, {"email": [("ab@x.com", "ba@x.com"), ("ab@x.com", "abc@x.co"), ("a@x", "bcd@y")]}) == [
        1, 1, 0,
    ]
    # levenshtein similarity = 1 - distance / longer length: 1 - 1/6 = 0.83 passes, 1 - 2/6 does not.
    assert _gammas(postcode, {"postcode": [("AB12CD", "AB12CE"), ("AB12CD", "AB12EF")]}) == [1, 0]


def test_date_levels_exact_transposed_near_far_missing():
    birth = _comparison(
        "birth_date",
        {"kind": "exact"},
        {"kind": "date_transposed"},
        {"kind": "date_distance", "max_days": 31},
    )
    pairs = [
        (dt.date(1980, 3, 4), dt.date(1980, 3, 4)),  # exact -> 3
        (dt.date(1980, 3, 4), dt.date(1980, 4, 3)),  # day and month swapped -> 2
        (dt.date(1980, 3, 4), dt.date(1980, 3, 24)),  # 20 days -> 1
        (dt.date(1980, 3, 4), dt.date(1981, 3, 4)),  # a year apart -> 0
        (dt.date(1980, 3, 4), dt.date(1981, 4, 3)),  # swapped but another year -> 0
        (None, dt.date(1980, 3, 4)),  # missing -> -1
    ]

    assert _gammas(birth, {"birth_date": pairs}) == [3, 2, 1, 0, 0, -1]


def test_date_typo_level_holds_for_one_typed_digit_or_two_neighbours_swapped():
    birth = _comparison("birth_date", {"kind": "exact"}, {"kind": "date_typo"}, {"kind": "date_distance", "max_days": 31})
    pairs = [
        (dt.date(1961, 5, 3), dt.date(1961, 5, 3)),  # exact -> 3
        (dt.date(1961, 5, 3), dt.date(1991, 5, 3)),  # one digit of the year, 30 years apart -> 2
        (dt.date(1961, 5, 3), dt.date(1916, 5, 3)),  # two neighbouring digits swapped -> 2
        (dt.date(1961, 5, 12), dt.date(1961, 5, 21)),  # the day's digits swapped -> 2
        (dt.date(5, 1, 1), dt.date(1005, 1, 1)),  # year 0005 / 1005: one digit -> 2
        (dt.date(1961, 5, 3), dt.date(1961, 5, 24)),  # two digits, 21 days -> 1
        (dt.date(1961, 5, 3), dt.date(1962, 6, 3)),  # two parts differ -> 0
        (dt.date(1961, 5, 3), None),  # missing -> -1
    ]

    assert _gammas(birth, {"birth_date": pairs}) == [3, 2, 2, 2, 2, 1, 0, -1]


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.dates(), st.dates()), min_size=1, max_size=20))
def test_date_typo_is_one_edit_between_the_written_dates(pairs):
    """Any dates from year 1 to 9999: the level holds exactly when YYYY-MM-DD differ by one edit."""
    typo = _comparison("birth_date", {"kind": "date_typo"})

    expected = [1 if OSA.distance(a.isoformat(), b.isoformat()) == 1 else 0 for a, b in pairs]

    assert _gammas(typo, {"birth_date": pairs}) == expected


def test_day_month_level_holds_for_another_year_after_the_closer_levels():
    birth = _comparison(
        "birth_date", {"kind": "exact"}, {"kind": "date_distance", "max_days": 366}, {"kind": "date_day_month"}
    )
    pairs = [
        (dt.date(1951, 11, 3), dt.date(1951, 11, 3)),  # exact -> 3
        (dt.date(1951, 11, 3), dt.date(1952, 11, 3)),  # a year apart: the closer level -> 2
        (dt.date(1951, 11, 3), dt.date(1992, 11, 3)),  # the year replaced -> 1
        (dt.date(1925, 1, 10), dt.date(2025, 1, 10)),  # the wrong century -> 1
        (dt.date(1, 2, 28), dt.date(9999, 2, 28)),  # years 1 and 9999 -> 1
        (dt.date(1904, 2, 29), dt.date(2000, 2, 29)),  # 29 February of two leap years -> 1
        (dt.date(1951, 11, 3), dt.date(1992, 3, 11)),  # day and month swapped, another year -> 0
        (dt.date(1951, 11, 3), None),  # missing -> -1
    ]

    assert _gammas(birth, {"birth_date": pairs}) == [3, 2, 1, 1, 1, 1, 0, -1]


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.dates(), st.dates()), min_size=1, max_size=20))
def test_day_month_level_is_the_same_day_and_month(pairs):
    """Any dates from year 1 to 9999, as dates or as ISO text."""
    day_month = _comparison("birth_date", {"kind": "date_day_month"})

    expected = [1 if (a.month, a.day) == (b.month, b.day) else 0 for a, b in pairs]

    assert _gammas(day_month, {"birth_date": pairs}) == expected
    as_text = [(a.isoformat(), b.isoformat()) for a, b in pairs]
    assert _gammas(day_month, {"birth_date": as_text}) == expected


def test_a_date_as_written_is_judged_where_a_side_has_no_usable_date():
    birth = Comparison.model_validate({
        "name": "birth_date",
        "column": "birth_date",
        "levels": [
            {"kind": "exact"},
            {"kind": "date_typo"},
            {"kind": "date_as_written", "column": "birth_date_written"},
        ],
    })
    values = {
        "birth_date": [
            (dt.date(1997, 12, 25), dt.date(1997, 12, 25)),  # exact -> 3
            (dt.date(1997, 12, 25), None),  # 1997-21-25 was not a date: month's digits swapped -> 1
            (dt.date(1964, 11, 17), None),  # 1964-11-71: day's digits swapped -> 1
            (None, None),  # the same impossible date on both sides -> 1
            (dt.date(1997, 12, 25), None),  # 1997-25-12: day and month swapped -> 1
            (dt.date(1997, 12, 25), None),  # 1961-31-02: no typo apart -> 0
            (dt.date(1997, 12, 25), None),  # nothing written -> -1
            (dt.date(1997, 12, 25), dt.date(1961, 5, 3)),  # usable and far apart: as written too -> 0
            (dt.date(1961, 5, 3), dt.date(1991, 5, 3)),  # usable, one digit: date_typo first -> 2
            (dt.date(1990, 12, 31), None),  # usable, written month first: the date itself, a typo away -> 1
            (dt.date(1990, 4, 3), None),  # usable, written in words (no written form): the date itself -> 1
        ],
        "birth_date_written": [
            ("1997-12-25", "1997-12-25"),
            ("1997-12-25", "1997-21-25"),
            ("1964-11-17", "1964-11-71"),
            ("2001-13-40", "2001-13-40"),
            ("1997-12-25", "1997-25-12"),
            ("1997-12-25", "1961-31-02"),
            ("1997-12-25", None),
            ("1997-12-25", "1961-05-03"),
            ("1961-05-03", "1991-05-03"),
            ("1990-31-12", "1990-12-13"),
            (None, "1990-04-30"),
        ],
    }

    assert _gammas(birth, values) == [3, 1, 1, 1, 1, 0, -1, 0, 2, 1, 1]


# Dates as written, many of them close to each other, and any text.
_WRITTEN = (
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True)
    | st.from_regex(r"19[0-9]{2}-[12][0-9]-[12][0-9]", fullmatch=True)
    | st.text(max_size=12)
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_WRITTEN, _WRITTEN), min_size=1, max_size=20))
def test_date_as_written_is_one_edit_apart_or_transposed_when_both_are_written_yyyy_mm_dd(pairs):
    """Any text: judged only where both sides are four, two and two ASCII digits; then one edit at most,
    or day and month swapped. (``isdigit`` alone would also take other scripts' digits.)"""
    written = Comparison.model_validate({
        "name": "birth_date", "column": "birth_date",
        "levels": [{"kind": "date_as_written", "column": "birth_date_written"}],
    })

    def shaped(text: str) -> bool:
        digits = text[:4] + text[5:7] + text[8:]
        return len(text) == 10 and text[4] == text[7] == "-" and digits.isascii() and digits.isdigit()

    def transposed(a: str, b: str) -> bool:
        return a[:4] == b[:4] and a[5:7] == b[8:] and a[8:] == b[5:7]

    expected = [
        (1 if OSA.distance(a, b) <= 1 or transposed(a, b) else 0) if shaped(a) and shaped(b) else -1
        for a, b in pairs
    ]
    values = {"birth_date": [(None, None)] * len(pairs), "birth_date_written": pairs}

    assert _gammas(written, values) == expected


def test_numeric_distance_level_parses_values():
    house = _comparison("address_line2", {"kind": "exact"}, {"kind": "numeric_distance", "max_abs": 2})

    assert _gammas(house, {"address_line2": [("10", "10"), ("10", "12"), ("10", "13"), ("10", "flat a")]}) == [
        2, 1, 0, 0,
    ]


def test_names_swapped_level_reads_the_other_column():
    given = _comparison(
        "given_name",
        {"kind": "exact"},
        {"kind": "names_swapped", "other": "family_name"},
        {"kind": "jaro_winkler", "threshold": 0.9},
    )
    values = {
        "given_name": [("john", "smith"), ("john", "smith"), ("john", "jon"), ("john", None)],
        "family_name": [("smith", "john"), ("smith", "jones"), ("smith", "smith"), (None, "john")],
    }

    assert _gammas(given, values) == [2, 0, 1, -1]


def test_names_swapped_with_a_threshold_holds_for_a_swap_with_typos():
    given = _comparison(
        "given_name",
        {"kind": "exact"},
        {"kind": "names_swapped", "other": "family_name", "threshold": 0.92},
        {"kind": "jaro_winkler", "threshold": 0.9},
    )
    values = {
        "given_name": [("zarran", "bradshaw"), ("john", "smith"), ("john", "smiht"), ("john", "jones"),
                       ("john", "smith"), ("john", None), ("e\u0301lise", "durand")],
        "family_name": [("bradshaw", "zarrna"), ("smith", "john"), ("smith", "jon"), ("smith", "john"),
                        ("smith", ""), (None, "john"), ("durand", "e\u0301lise")],
    }

    # A swap with a typo in one or both names -> 2; exactly swapped -> 2; one crossing far apart -> 0;
    # an empty name is no name -> 0; missing -> -1; a name with a combining accent (compared as jellyfish does) -> 2.
    assert _gammas(given, values) == [2, 2, 2, 0, 0, -1, 2]


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.text(alphabet="abcé", max_size=6)] * 4), min_size=1, max_size=20))
def test_names_swapped_with_a_threshold_is_both_crossings_as_similar(rows):
    swapped = _comparison("given_name", {"kind": "names_swapped", "other": "family_name", "threshold": 0.85})
    values = {"given_name": [(a, b) for a, _, b, _ in rows], "family_name": [(a, b) for _, a, _, b in rows]}

    def jaro_winkler(x: str, y: str) -> float:
        return 0.0 if not x or not y else jellyfish.jaro_winkler_similarity(x, y)

    expected = [1 if min(jaro_winkler(g1, f2), jaro_winkler(f1, g2)) >= 0.85 else 0 for g1, f1, g2, f2 in rows]

    assert _gammas(swapped, values) == expected


def test_initial_level_holds_for_one_first_character():
    middle = _comparison("middle_name", {"kind": "exact"}, {"kind": "initial"})
    pairs = [
        ("james", "james"),  # exact -> 2
        ("j", "james"),  # an initial against the whole name -> 1
        ("john", "james"),  # two names of one initial -> 1
        ("j", "k"),  # -> 0
        ("", "j"),  # an empty value has no initial -> 0
        ("j", None),  # missing -> -1
        ("élise", "é"),  # any script -> 1
    ]

    assert _gammas(middle, {"middle_name": pairs}) == [2, 1, 1, 0, 0, -1, 1]


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), min_size=1, max_size=20))
def test_initial_level_is_the_first_character(pairs):
    initial = _comparison("middle_name", {"kind": "initial"})

    expected = [1 if a and b and a[0] == b[0] else 0 for a, b in pairs]

    assert _gammas(initial, {"middle_name": pairs}) == expected


def test_rows_are_compared_pairwise_whatever_the_batch_index():
    city = _comparison("city", {"kind": "exact"}, tf=True)
    batch = _batch({"city": [("leeds", "leeds"), ("york", "leeds"), ("bath", "bath"), ("hull", None)]})
    batch["tf_city"] = [0.25, None, 0.5, None]
    batch.index = [17, 3, 99, 42]  # Arrow batches start at 0; a sliced frame would not

    scored = score_batch(batch, [city], KEEP)

    expected = pd.DataFrame(
        {
            "record_id_l": ["l0", "l1", "l2", "l3"],
            "record_id_r": ["r0", "r1", "r2", "r3"],
            "gamma_city": pd.Series([1, 0, 1, -1], dtype="int32"),
            "tf_city": [0.25, float("nan"), 0.5, float("nan")],
        }
    )
    pd.testing.assert_frame_equal(scored, expected)


SETTINGS = MatchSettings.model_validate(
    {
        "blocking_rules": [{"name": "family", "keys": ["family_name"]}],
        "comparisons": [
            {"name": "family", "column": "family_name", "term_frequency": True,
             "levels": [{"kind": "exact"}, {"kind": "jaro_winkler", "threshold": 0.88}]},
            {"name": "dob", "column": "birth_date", "levels": [{"kind": "exact"}, {"kind": "date_transposed"}]},
        ],
    }
)


def test_levels_and_tf_names_for_the_model():
    assert comparison_levels(SETTINGS) == {"family": 2, "dob": 2}
    assert tf_comparisons(SETTINGS) == ["family"]


@pytest.fixture(scope="module")
def records(spark):
    return spark.createDataFrame(
        [
            ("a", "smith", dt.date(1980, 3, 4)),
            ("b", "smith", dt.date(1980, 4, 3)),
            ("c", "smyth", None),
            ("d", "jones", dt.date(1990, 1, 1)),
        ],
        "record_id string, family_name string, birth_date date",
    )


def test_term_frequencies_are_shares_of_non_null_values(spark, records):
    expected = spark.createDataFrame(
        [("smith", 0.5), ("smyth", 0.25), ("jones", 0.25)], "family_name string, tf_family_name double"
    )

    assert_df_equality(
        term_frequencies(records, "family_name"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_attach_attributes_adds_both_sides_and_tf_only_on_agreement(spark, records):
    pairs = spark.createDataFrame([("a", "b"), ("a", "c")], "record_id_l string, record_id_r string")
    expected = spark.createDataFrame(
        [("a", "b", "smith", "smith", 0.5), ("a", "c", "smith", "smyth", None)],
        "record_id_l string, record_id_r string, family_name_l string, family_name_r string, tf_family_name double",
    )

    attached = attach_attributes(pairs, records, ["family_name"], {"family_name": term_frequencies(records, "family_name")})

    assert_df_equality(attached, expected, ignore_row_order=True, ignore_nullable=True)


def test_frozen_shares_apply_as_saved_and_an_unseen_value_counts_as_the_rarest(spark):
    records = spark.createDataFrame(
        [("a", "smith"), ("b", "smith"), ("c", "zbig"), ("d", "zbig")], "record_id string, family_name string"
    )
    pairs = spark.createDataFrame([("a", "b"), ("c", "d")], "record_id_l string, record_id_r string")
    frozen = frequency_frame(spark, "family_name", {"smith": 0.4, "jones": 0.1})
    expected = spark.createDataFrame(
        [("a", "b", "smith", "smith", 0.4), ("c", "d", "zbig", "zbig", 0.1)],
        "record_id_l string, record_id_r string, family_name_l string, family_name_r string, tf_family_name double",
    )

    attached = attach_attributes(pairs, records, ["family_name"], {"family_name": frozen})

    assert_df_equality(attached, expected, ignore_row_order=True, ignore_nullable=True)


def test_compare_pairs_in_spark_keeps_rule_and_converts_dates(spark, records):
    pairs = spark.createDataFrame(
        [("a", "b", "family"), ("a", "c", "family"), ("a", "d", "other"), ("b", "c", "family")],
        "record_id_l string, record_id_r string, blocking_rule string",
    )
    expected = spark.createDataFrame(
        [
            ("a", "b", "family", 2, 1, 0.5),  # same name, day and month swapped
            ("a", "c", "family", 1, -1, None),  # smith / smyth jw 0.89; c has no birth date
            ("a", "d", "other", 0, 0, None),
            ("b", "c", "family", 1, -1, None),
        ],
        comparison_schema(SETTINGS),
    )

    shares = {"family_name": {"smith": 0.5, "smyth": 0.25, "jones": 0.25}}

    actual = compare_pairs(attach_for_settings(pairs, records, SETTINGS, shares), SETTINGS)

    assert_df_equality(actual, expected, ignore_row_order=True)


def test_levels_on_other_columns_share_one_comparison_and_missing_needs_all_unjudged():
    address = Comparison.model_validate(
        {
            "name": "address",
            "column": "address_line1",
            "levels": [{"kind": "exact"}, {"kind": "exact", "column": "postcode"}, {"kind": "exact", "column": "city"}],
        }
    )
    values = {
        "address_line1": [("1 high st", "1 high st"), ("1 high st", "9 low rd"), (None, "9 low rd"), (None, None), ("1 high st", None)],
        "postcode": [("AB1", "AB1"), ("AB1", "AB1"), ("AB1", "CD2"), (None, "AB1"), (None, None)],
        "city": [("leeds", "york"), ("leeds", "leeds"), ("leeds", "leeds"), ("leeds", None), (None, "york")],
    }

    # street agrees -> 3; street differs but postcode agrees -> 2; no street, postcode differs,
    # city agrees -> 1; nothing present on both sides -> -1 (twice)
    assert _gammas(address, values) == [3, 2, 1, -1, -1]


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.dates(),
            st.datetimes(),
            st.dates().map(lambda d: d.isoformat()),
            st.integers(-1000, 100_000),
            st.just(pd.NaT),
        ),
        max_size=30,
    )
)
def test_date_parts_in_bulk_are_the_parts_one_by_one(values):
    """Dates and datetimes go through Arrow in bulk, anything else one by one; the parts are the same
    (a number is no date, not days since 1970; NaT is missing)."""
    series = pd.Series(values, dtype=object)
    expected = {
        name: [float("nan")] * len(values) for name in ("days", "year", "month", "day")
    }
    for position, value in enumerate(values):
        if isinstance(value, str):
            value = dt.date.fromisoformat(value)
        if isinstance(value, dt.date) and value is not pd.NaT:
            for name, number in zip(
                ("days", "year", "month", "day"), (value.toordinal(), value.year, value.month, value.day)
            ):
                expected[name][position] = float(number)

    actual = date_parts(series)

    for name, numbers in expected.items():
        assert actual[name].tolist() == pytest.approx(numbers, nan_ok=True), name
