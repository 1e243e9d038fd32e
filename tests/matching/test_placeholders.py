"""Placeholder values: found from the data's own value counts, masked for matching, never logged."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from chispa import assert_df_equality

from hypothesis import given
from hypothesis import strategies as st

from matching.placeholders import (
    Agreement,
    Placeholder,
    ValueCounts,
    attribute_value_counts,
    describe,
    describe_one_person,
    find_placeholders,
    held_by_one_person,
    holder_agreements,
    mask_placeholders,
)
from matching.settings import PlaceholderSettings

SETTINGS = PlaceholderSettings(attributes=["birth_date", "family_name", "postcode"], ratio=10, min_records=10, max_share=0.5)


def picture(counts: dict[str, int]) -> ValueCounts:
    series = pd.Series(counts, dtype="int64").sort_values(ascending=False)
    return ValueCounts(series.head(21), int(series.sum()))


def test_a_value_far_commoner_than_the_rest_is_a_placeholder() -> None:
    dates = {f"1980-01-{d:02d}": 2 for d in range(1, 29)} | {f"1981-02-{d:02d}": 3 for d in range(1, 29)}
    dates["1900-01-01"] = 60
    found = find_placeholders({"birth_date": picture(dates)}, SETTINGS)
    assert found == [Placeholder("birth_date", "1900-01-01", 60, 60 / (60 + 28 * 2 + 28 * 3))]


def test_heavy_tailed_names_are_not_placeholders() -> None:
    # Zipf-like family names: the commonest is a few times the next ones, never ten times.
    names = {f"name{i}": int(1000 / (i + 1)) + 1 for i in range(2000)}
    assert find_placeholders({"family_name": picture(names)}, SETTINGS) == []


def test_one_value_held_by_most_records_is_a_placeholder_even_alone() -> None:
    found = find_placeholders({"postcode": picture({"00000": 900, "12345": 3, "23456": 2})}, SETTINGS)
    assert [(p.value, p.records) for p in found] == [("00000", 900)]


def test_several_placeholders_before_one_gap() -> None:
    values = {"unknown": 50, "n/a": 40} | {f"v{i}": 3 for i in range(100)}
    found = find_placeholders({"family_name": picture(values)}, SETTINGS)
    assert [p.value for p in found] == ["unknown", "n/a"]


def test_an_attribute_of_few_even_values_keeps_them_all() -> None:
    """Three cities of 500 customers each: no gap after the last value, none holds half."""
    assert find_placeholders({"postcode": picture({"A": 500, "B": 480, "C": 450})}, SETTINGS) == []


def test_rare_values_never_are_placeholders_in_small_data() -> None:
    assert find_placeholders({"postcode": picture({"A": 6, "B": 1, "C": 1})}, SETTINGS) == []


def test_the_log_line_names_attribute_and_share_never_the_value() -> None:
    line = describe(Placeholder("email", "test@test.com", 120, 0.04))
    assert "test@test.com" not in line
    assert line == "email: one value is held by 120 records (4.0% of those with a email); treated as missing"


def test_counts_on_spark_and_masking_keep_everything_else(spark) -> None:
    rows = [(f"r{i}", "00000" if i < 30 else f"P{i}", dt.date(1900, 1, 1) if i < 12 else dt.date(1950, 1, 1 + i % 28))
            for i in range(40)]
    records = spark.createDataFrame(rows, "record_id string, postcode string, birth_date date")

    counts = attribute_value_counts(records, ["postcode", "birth_date", "absent"])
    assert sorted(counts) == ["birth_date", "postcode"]
    assert counts["postcode"].top.head(2).to_dict() == {"00000": 30, "P30": 1}
    assert (len(counts["postcode"].top), counts["postcode"].total) == (11, 40)
    assert counts["birth_date"].top.iloc[0] == 12 and counts["birth_date"].top.index[0] == "1900-01-01"

    found = find_placeholders(counts, SETTINGS)
    assert sorted((p.attribute, p.value) for p in found) == [("birth_date", "1900-01-01"), ("postcode", "00000")]
    expected = spark.createDataFrame(
        [(r, None if p == "00000" else p, None if d == dt.date(1900, 1, 1) else d) for r, p, d in rows],
        records.schema,
    )
    assert_df_equality(mask_placeholders(records, found), expected, ignore_row_order=True)


def floored(counts: dict[str, int], floor: int) -> ValueCounts:
    """What ``attribute_value_counts`` gives with a floor: the values held by at least ``floor`` records
    ranked, of the rest only the commonest one's count."""
    series = pd.Series(counts, dtype="int64")
    ranked = series.sort_index().sort_values(ascending=False, kind="stable")
    kept = ranked[ranked >= floor].head(21)
    below = ranked[ranked < floor]
    next_count = int(below.iloc[0]) if len(kept) <= 20 and len(below) else None
    return ValueCounts(kept, int(series.sum()), next_count)


@given(
    st.dictionaries(st.text("abc", min_size=1, max_size=4), st.integers(1, 80), min_size=1, max_size=40),
    st.integers(2, 30),
)
def test_ranking_only_values_over_min_records_finds_the_same_placeholders(counts, min_records) -> None:
    settings = PlaceholderSettings(attributes=["postcode"], ratio=3, min_records=min_records, max_share=0.5)
    full = ValueCounts(
        pd.Series(counts, dtype="int64").sort_index().sort_values(ascending=False, kind="stable").head(21),
        sum(counts.values()),
    )

    assert find_placeholders({"postcode": floored(counts, min_records)}, settings) == find_placeholders(
        {"postcode": full}, settings
    )


def test_counts_with_a_floor_rank_only_the_common_values(spark) -> None:
    rows = [("00000",)] * 30 + [("11111",)] * 4 + [("22222",)] * 3 + [(f"P{i}",) for i in range(6)] + [(None,)] * 2
    records = spark.createDataFrame(rows, "postcode string")

    counts = attribute_value_counts(records, ["postcode"], floor=10)["postcode"]

    assert (counts.top.to_dict(), counts.total, counts.next_count) == ({"00000": 30}, 43, 4)
    assert find_placeholders({"postcode": counts}, SETTINGS) == find_placeholders(
        attribute_value_counts(records, ["postcode"]), SETTINGS
    )


def test_copies_of_one_person_agree_on_everything_and_keep_their_values() -> None:
    everywhere = {a: Agreement(800, 800) for a in ("given_name", "family_name", "email", "postcode")}
    assert held_by_one_person(800, everywhere)


def test_strangers_sharing_a_value_differ_in_name() -> None:
    """A placeholder birth date of 60 people: their names differ, their postcodes happen to agree."""
    agreements = {"given_name": Agreement(4, 60), "family_name": Agreement(3, 58), "postcode": Agreement(60, 60)}
    assert not held_by_one_person(60, agreements)


def test_one_name_among_strangers_is_not_enough() -> None:
    """'Unknown Unknown' for anonymous customers: the names agree, their birth dates do not."""
    agreements = {"family_name": Agreement(50, 50), "birth_date": Agreement(2, 40)}
    assert not held_by_one_person(50, agreements)


def test_one_person_with_typos_and_missing_values() -> None:
    """Most copies spell the name one way; an attribute few copies have is not asked."""
    agreements = {"given_name": Agreement(20, 30), "family_name": Agreement(25, 30), "phone": Agreement(1, 4)}
    assert held_by_one_person(30, agreements)


def test_without_a_name_the_holders_are_not_known_to_be_one_person() -> None:
    assert not held_by_one_person(12, {"postcode": Agreement(12, 12)})
    assert not held_by_one_person(12, {"given_name": Agreement(5, 5), "postcode": Agreement(12, 12)})
    assert not held_by_one_person(12, {})


@given(
    holders=st.integers(min_value=1, max_value=10_000),
    agreements=st.dictionaries(
        st.sampled_from(["given_name", "family_name", "full_name", "birth_date", "email", "postcode"]),
        st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000)),
    ),
)
def test_disagreement_on_any_attribute_most_holders_have_keeps_a_placeholder(holders, agreements) -> None:
    shaped = {a: Agreement(min(c, p), p) for a, (c, p) in agreements.items()}
    asked = {a: g for a, g in shaped.items() if g.present and 2 * g.present >= holders}
    one = held_by_one_person(holders, shaped)
    if one:
        assert any(a in ("given_name", "family_name", "full_name") for a in asked)
        assert all(2 * g.commonest >= g.present for g in asked.values())
    disagreeing = {**shaped, "postcode": Agreement(0, holders)}
    assert not held_by_one_person(holders, disagreeing)


def test_the_one_person_log_line_never_names_the_value() -> None:
    line = describe_one_person(Placeholder("email", "ann@example.com", 800, 1.0))
    assert "ann@example.com" not in line and line.startswith("email: one value is held by 800 records (100.0%")


def test_holder_agreements_on_spark(spark) -> None:
    """Copies of one person beside a placeholder birth date held by strangers."""
    copies = [(f"c{i}", "ann", "lee", "ann@example.com", dt.date(1970, 5, 6)) for i in range(30)]
    strangers = [(f"s{i}", f"g{i % 7}", f"f{i}", None if i % 3 else f"s{i}@example.com", dt.date(1900, 1, 1))
                 for i in range(20)]
    records = spark.createDataFrame(
        copies + strangers, "record_id string, given_name string, family_name string, email string, birth_date date"
    )
    candidates = [
        Placeholder("email", "ann@example.com", 30, 30 / 37),
        Placeholder("birth_date", "1900-01-01", 20, 0.4),
    ]
    attributes = ["given_name", "family_name", "email", "birth_date", "absent", "given_name"]  # named twice: once
    found = holder_agreements(records, candidates, attributes)
    assert found == [
        {"given_name": Agreement(30, 30), "family_name": Agreement(30, 30), "birth_date": Agreement(30, 30)},
        {"given_name": Agreement(3, 20), "family_name": Agreement(1, 20), "email": Agreement(1, 7)},
    ]
    assert [held_by_one_person(c.records, a) for c, a in zip(candidates, found)] == [True, False]
    assert holder_agreements(records, [], ["given_name"]) == []
