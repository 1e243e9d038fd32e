"""cdi's phone function (jvm/src/cdi/phone) against ``matching.normalize_contact.to_e164``, in the test session.

The jobs use the JVM function when the session has it and the Python one
otherwise; a number must come out the same either way, so that golden
records, the steward app's search (which calls ``to_e164``) and a lake
written by either agree.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from jobs.spark import E164_FUNCTION
from matching.normalize_contact import normalize_phone, to_e164

REGIONS = ["GB", "US", "DE", "FR", "IN", "AU", "BR", "JP", "IR", "IT", "AR", "MX", "ZZ", "XX", "gb", "", None]
# Characters people and systems put in phone fields: digits of several scripts, separators, marks of an
# extension, invisible spaces, letters.
PHONE_CHARACTERS = list("0123456789+-() ./#*x,;") + ["٣", "٠", "۹", "０", "９", "\u00a0", "\u200b", "ext", "tel:", "A"]

phone_like = st.one_of(
    st.lists(st.sampled_from(PHONE_CHARACTERS), max_size=24).map("".join),
    st.from_regex(r"(\+|00)?[0-9]{1,3}[ -]?\(?0?[0-9]{2,4}\)?[ -.]?[0-9]{3,4}[ -.]?[0-9]{2,4}", fullmatch=True),
    st.text(max_size=30),
)

CURATED = [
    ("020 7946 0958", "GB"), ("+44 (0)20 7946 0958", "GB"), ("0044 7700 900123", "GB"), ("07700 900123", "GB"),
    ("(212) 555-0100", "US"), ("212.555.0100", "US"), ("1-800-FLOWERS", "US"), ("+1 212 555 0100 ext. 12", "US"),
    ("02 1234 5678", "AU"), ("0412 345 678", "AU"), ("+61 4 1234 5678", None), ("030 123456", "DE"),
    ("+49 (0)30 1234567", "DE"), ("01 23 45 67 89", "FR"), ("+91 98765 43210", "IN"), ("+980812", "GB"),
    ("0812", "IR"), ("+39 06 1234 5678", "IT"), ("011 15 2345-6789", "AR"), ("tel:+44-20-7946-0958", "GB"),
    ("٠٧٧٠٠ ٩٠٠١٢٣", "GB"), ("０２０ ７９４６ ０９５８", "GB"), ("+", "GB"), ("", "GB"), ("9" * 300, "GB"),
]


def both(spark, rows: list[tuple[str | None, str | None]]) -> list[tuple[str | None, str | None, str | None]]:
    """(Python's, the JVM's) E.164 of each (number, region), the JVM's through the function as the jobs call it."""
    frame = spark.createDataFrame(list(enumerate(rows)), "i int, row struct<v: string, region: string>")
    jvm = normalize_phone(F.col("row.v"), F.col("row.region"), E164_FUNCTION)
    found = {row["i"]: row["e164"] for row in frame.select("i", jvm.alias("e164")).collect()}
    # normalize_phone hands either function the number trimmed of spaces (null when nothing is left) and the
    # region upper-cased, as here.
    expected = [
        to_e164(v.strip(" ") or None if v is not None else None, region.upper() if region is not None else None)
        for v, region in rows
    ]
    return [(f"{v!r} {region!r}", want, found[i]) for i, ((v, region), want) in enumerate(zip(rows, expected))]


def test_the_jvm_function_reads_known_formats_as_the_python_one(spark):
    compared = both(spark, CURATED)

    assert [case for case in compared if case[1] != case[2]] == []
    assert sum(want is not None for _, want, _ in compared) >= 15  # most of them are numbers


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(phone_like, st.sampled_from(REGIONS)), min_size=1, max_size=200))
def test_the_jvm_function_reads_any_text_as_the_python_one(spark, rows):
    assert [case for case in both(spark, rows) if case[1] != case[2]] == []
