"""Column names as bronze gives them (``jobs.sources.safe_column_names``): pure logic, no Spark."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

import pytest

from jobs.sources import renamed_by_spark, safe_column_names


def test_unsafe_characters_become_underscores_and_names_that_coincide_are_numbered():
    names = ["id", "First Name", "first_name", "first.name", "`x`", "a,b", "  ", "FIRST NAME"]
    assert safe_column_names(names) == [
        "id", "First_Name", "first_name_2", "first_name_3", "x", "a_b", "column", "FIRST_NAME_4",
    ]


@given(st.lists(st.text(max_size=12), max_size=30))
def test_any_names_give_distinct_safe_names_one_each(names):
    safe = safe_column_names(names)
    assert len(safe) == len(names)
    assert len({s.casefold() for s in safe}) == len(safe)
    assert all(s and not re.search(r"[ ,;{}()\n\t=.`]", s) for s in safe)


@pytest.mark.parametrize(
    "names, renamed",
    [
        (["_c0", "fname", "lname"], True),  # a blank first name
        (["id", "name2", "name3", "city"], False),  # numbered by the file itself, not by position
        # Numbered by the file exactly as Spark numbers copies: taken as renamed, which only turns
        # Spark's header check off for the read.
        (["id", "name1", "name2", "city"], True),
        (["id", "name1", "city", "name3"], True),  # "name" twice, each copy numbered by its index
        (["ID0", "id1"], True),  # repeated without regard to case
        (["a", "b", "_c5"], False),
    ],
)
def test_names_spark_made_up_for_a_blank_or_repeated_header_are_told(names, renamed):
    assert renamed_by_spark(names) is renamed
