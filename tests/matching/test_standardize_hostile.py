"""standardize() keeps every row whatever its values hold (property-based, on Spark).

Each example is one small bronze frame of hostile values: any Unicode text,
control characters and NUL, empty and whitespace-only strings, 2 KB values,
dates of any year written many ways. Every row comes out, every value is
either a usable canonical value or null, and what could not be used is named
in ``std_issues`` without the value itself.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from matching.standardize import MAX_VALUE_CHARS, StandardizeOptions, load_vocabulary, standardize
from schemas.canonical import CANONICAL_ATTRIBUTES

VOCABULARY = load_vocabulary(Path(__file__).resolve().parents[2] / "conf")
SOURCE_COLUMNS = [a for a in CANONICAL_ATTRIBUTES if a not in ("full_name", "name_suffix")]
LINEAGE = "source_system string, source_key string, run_id string, ingested_at timestamp, record_hash string"

dates_written = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).flatmap(
    lambda d: st.sampled_from([d.isoformat(), d.strftime("%d/%m/%Y") if d.year >= 1000 else d.isoformat(),
                               f"{d.year:04d}{d.month:02d}{d.day:02d}", f"{d.month}/{d.day}/{d.year}"])
)
hostile = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["", "   ", "\x00", "\x07\x1b[31m", "0000-00-00", "31/02/1990", "00/00/0000", "-1", "1e308",
                     "NaN", "NULL", "N/A", "👨‍👩‍👧", "ﷺ", "Ǆungla", "o'brien-smith", "+44 (0)20 7946 0958"]),
    dates_written,
    st.just("y" * (MAX_VALUE_CHARS + 1000)),
)
rows = st.lists(st.tuples(*[hostile for _ in SOURCE_COLUMNS]), min_size=1, max_size=12)


@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows)
def test_every_row_survives_standardization(spark, values) -> None:
    schema = LINEAGE + ", " + ", ".join(f"src_{c} string" for c in SOURCE_COLUMNS)
    bronze = spark.createDataFrame(
        [("crm", str(i), "run-1", dt.datetime(2026, 1, 1), f"h{i}", *row) for i, row in enumerate(values)], schema
    )
    mapping = {c: f"src_{c}" for c in SOURCE_COLUMNS}

    out = standardize(bronze, mapping, StandardizeOptions(), VOCABULARY).collect()

    assert sorted(int(r.source_key) for r in out) == list(range(len(values)))
    for row in out:
        assert row.birth_date is None or 1 <= row.birth_date.year <= 9999
        assert row.phone is None or re.fullmatch(r"\+[1-9]\d{6,14}", row.phone)
        assert row.country is None or re.fullmatch(r"[A-Z]{2}", row.country)
        assert row.gender in (None, "m", "f")
        for attribute in CANONICAL_ATTRIBUTES:
            value = getattr(row, attribute)
            assert value is None or not isinstance(value, str) or (value.strip() and len(value) <= MAX_VALUE_CHARS)
        issues = row.std_issues or ""
        assert "y" * 50 not in issues  # reasons name attributes, never values
    long_rows = [i for i, row in enumerate(values) if any(v is not None and len(v) > MAX_VALUE_CHARS for v in row)]
    for i in long_rows:
        (row,) = [r for r in out if r.source_key == str(i)]
        assert f"longer than {MAX_VALUE_CHARS} characters" in row.std_issues


def test_numbers_and_dates_where_text_is_expected(spark) -> None:
    bronze = spark.createDataFrame(
        [("crm", "1", "run-1", dt.datetime(2026, 1, 1), "h1", 12345, 3.5, dt.date(1, 1, 1), 447700900123)],
        LINEAGE + ", given bigint, family double, born date, tel bigint",
    )
    mapping = {"given_name": "given", "family_name": "family", "birth_date": "born", "phone": "tel"}

    (row,) = standardize(bronze, mapping, StandardizeOptions(), VOCABULARY).collect()

    assert row.birth_date == dt.date(1, 1, 1)
    assert row.phone == "+447700900123"
    assert row.record_id == "crm:1"
