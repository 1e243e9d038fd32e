"""Normalizers, table-driven.

Each table runs through Spark once (a module-scoped fixture applies the
normalizer to every case in one small DataFrame); the parametrized tests then
check one case each, so a failure names its case.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from jobs.spark import E164_FUNCTION
from matching.normalize import (
    clean_text, fold_accents, fold_passes, is_present, normalize_gender, tidy_passes, tidy_text,
)
from matching.normalize_address import clean_postcode, normalize_address_line, normalize_country
from matching.normalize_contact import normalize_email, normalize_phone, to_e164
from matching.normalize_dates import (
    TIMESTAMP_FORMATS, _date_text, _fast_date, _fast_timestamp, date_formats, numeric_timestamp_formats, parse_date,
    parse_timestamp, written_date,
)
from matching.normalize_names import canonical_given_name, combine_name_columns, split_full_name

HONORIFICS = frozenset({"mr", "mrs", "dr", "prof", "sir"})
SUFFIXES = {"jr": "jr", "junior": "jr", "sr": "sr", "iii": "iii"}
PARTICLES = frozenset({"van", "de", "la"})
NICKNAMES = {"bob": "robert", "liz": "elizabeth", "peggy": "margaret"}
ADDRESS_TOKENS = {"street": "st", "road": "rd", "north": "n", "apartment": "flat"}
COUNTRIES = {"united kingdom": "GB", "uk": "GB", "u k": "GB", "england": "GB", "ireland": "IE"}


def apply(spark, values, *outputs):
    """Every output column computed over one column ``v`` holding ``values``: one Spark action."""
    frame = spark.createDataFrame([(index, value) for index, value in enumerate(values)], "i int, v string")
    columns = [output(F.col("v")).alias(f"out{n}") for n, output in enumerate(outputs)]
    rows = frame.select("i", *columns).collect()
    return {row["i"]: tuple(row[1:]) if len(outputs) > 1 else row[1] for row in rows}


def ids(cases):
    return [repr(case[0]) for case in cases]


# clean_text

CLEAN_CASES = [
    ("Robert", "robert"),
    ("  ROBERT   SMITH  ", "robert smith"),
    ("Zoë Müller-Łukasz", "zoe muller-lukasz"),
    ("Ærøskøbing Straße Œuvre", "aeroskobing strasse oeuvre"),
    ("François Ñúñez Čapek Dvořák", "francois nunez capek dvorak"),
    ("Zoe\u0308", "zoe"),
    ("\ufeffRobert", "robert"),
    ("Rob\u200bert", "robert"),
    ("O\u2019Brien", "o'brien"),
    ("Smith - Jones", "smith jones"),
    ("'quoted'", "quoted"),
    ("J.R.R. Tolkien!", "j r r tolkien"),
    ("Влади́мир", "владимир"),
    ("", None),
    ("   ", None),
    ("\t\n", None),
    ("...", None),
    (None, None),
]


@pytest.fixture(scope="module")
def cleaned(spark):
    return apply(spark, [value for value, _ in CLEAN_CASES], clean_text)


@pytest.mark.parametrize("index, expected", [(i, case[1]) for i, case in enumerate(CLEAN_CASES)], ids=ids(CLEAN_CASES))
def test_clean_text(cleaned, index, expected):
    assert cleaned[index] == expected


# Plain words (the fast path) next to what makes a value not plain: a line break at the end (which ``$`` would
# let through), a backtick (folded to an apostrophe), two spaces, an edge space, accents, punctuation, kept marks.
PLAIN_OR_NOT = st.text(alphabet="aZ09 \n\t`'-,.ßéÆ\u200b", max_size=12) | st.from_regex(
    r"[A-Za-z0-9]{1,5}( [A-Za-z0-9]{1,5}){0,2}(\n|`| |-|)", fullmatch=True
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(PLAIN_OR_NOT, min_size=50, max_size=200), st.sampled_from(["'-", "'-,"]))
def test_tidy_text_gives_what_every_pass_gives(spark, values, keep):
    frame = spark.createDataFrame([(v,) for v in [*values, None, "Robert\n", "O`Brien", "plain words"]], "v string")
    differences = frame.where(~tidy_text(F.col("v"), keep).eqNullSafe(tidy_passes(F.col("v"), keep))).collect()
    assert differences == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="aZ09 ,.'`´’\n\u0301\u200bßøéÆŁ\x7f\x80", max_size=10), min_size=50, max_size=200))
def test_fold_accents_gives_what_every_pass_gives(spark, values):
    frame = spark.createDataFrame([(v,) for v in [*values, None, "", "O`Brien", "plain"]], "v string")
    differences = frame.where(~fold_accents(F.col("v")).eqNullSafe(fold_passes(F.col("v")))).collect()
    assert differences == []


def test_fold_accents_takes_numbers_as_their_text(spark):
    row = spark.range(1).select(fold_accents(F.lit(12345)).alias("n"), fold_accents(F.lit(1.5)).alias("x")).first()
    assert tuple(row) == ("12345", "1.5")


# names

SPLIT_CASES = [
    ("robert smith", ("robert", None, "smith", None)),
    ("SMITH, Robert", ("robert", None, "smith", None)),
    ("Smith, Robert James", ("robert", "james", "smith", None)),
    ("robert james smith", ("robert", "james", "smith", None)),
    ("Dr. Robert J. Smith Jr", ("robert", "j", "smith", "jr")),
    ("Mr Robert Smith, Junior", ("robert", None, "smith", "jr")),
    ("Smith Jr., Robert", ("robert", None, "smith", "jr")),
    ("Junior Smith", ("junior", None, "smith", None)),
    ("Zoë Müller-Łukasz", ("zoe", None, "muller-lukasz", None)),
    ("Maria de la Cruz", ("maria", None, "de la cruz", None)),
    ("Ludwig van Beethoven", ("ludwig", None, "van beethoven", None)),
    ("Robert Smith,", ("robert", None, "smith", None)),
    ("Smith", (None, None, "smith", None)),
    ("Mr", (None, None, None, None)),
    ("  ", (None, None, None, None)),
    (None, (None, None, None, None)),
]


@pytest.fixture(scope="module")
def split_names(spark):
    def split(col):
        return split_full_name(col, HONORIFICS, SUFFIXES, PARTICLES)

    return apply(spark, [value for value, _ in SPLIT_CASES], split)


@pytest.mark.parametrize("index, expected", [(i, case[1]) for i, case in enumerate(SPLIT_CASES)], ids=ids(SPLIT_CASES))
def test_split_full_name(split_names, index, expected):
    assert tuple(split_names[index]) == expected


COLUMN_NAME_CASES = [
    # (given, middle, family) -> (given, middle, family, suffix)
    (("Robert", None, "Smith"), ("robert", None, "smith", None)),
    (("Robert James", "Peter", "Smith"), ("robert", "james peter", "smith", None)),
    (("Mr Robert", None, "Smith Jr"), ("robert", None, "smith", "jr")),
    (("Zoë", None, "Müller-Łukasz"), ("zoe", None, "muller-lukasz", None)),
    (("Ana", None, "García López"), ("ana", None, "garcia lopez", None)),
    ((" ", "", None), (None, None, None, None)),
]


def test_combine_name_columns(spark):
    frame = spark.createDataFrame(
        [(i, *names) for i, (names, _) in enumerate(COLUMN_NAME_CASES)], "i int, g string, m string, f string"
    )
    parts = combine_name_columns(F.col("g"), F.col("m"), F.col("f"), HONORIFICS, SUFFIXES)
    actual = {row["i"]: tuple(row["p"]) for row in frame.select("i", parts.alias("p")).collect()}
    assert actual == {i: expected for i, (_, expected) in enumerate(COLUMN_NAME_CASES)}


GIVEN_NAME_CASES = [
    ("Bob", "robert"),
    ("LIZ", "elizabeth"),
    (" peggy ", "margaret"),
    ("Roberta", "roberta"),
    (None, None),
]


def test_canonical_given_name(spark):
    actual = apply(
        spark, [value for value, _ in GIVEN_NAME_CASES], lambda col: canonical_given_name(clean_text(col), NICKNAMES)
    )
    assert actual == {i: expected for i, (_, expected) in enumerate(GIVEN_NAME_CASES)}


# email

EMAIL_CASES = [
    # value, plain, with gmail folding
    ("  Robert.Smith@Example.COM ", "robert.smith@example.com", "robert.smith@example.com"),
    ("r.o.b.smith+news@gmail.com", "r.o.b.smith+news@gmail.com", "robsmith@gmail.com"),
    ("Rob.Smith@GoogleMail.com", "rob.smith@googlemail.com", "robsmith@gmail.com"),
    ("rob+tag@example.com", "rob+tag@example.com", "rob+tag@example.com"),
    ("\ufeffrob@example.co.uk", "rob@example.co.uk", "rob@example.co.uk"),
    ("rob@@example.com", None, None),
    ("rob@example", None, None),
    ("rob.example.com", None, None),
    ("rob smith@example.com", None, None),
    ("rob@example..com", None, None),
    ("   ", None, None),
    (None, None, None),
]


@pytest.fixture(scope="module")
def emails(spark):
    return apply(
        spark,
        [value for value, _, _ in EMAIL_CASES],
        normalize_email,
        lambda col: normalize_email(col, fold_gmail_dots_plus=True),
    )


@pytest.mark.parametrize(
    "index, plain, folded", [(i, c[1], c[2]) for i, c in enumerate(EMAIL_CASES)], ids=ids(EMAIL_CASES)
)
def test_normalize_email(emails, index, plain, folded):
    assert emails[index] == (plain, folded)


# phone

PHONE_CASES = [
    ("020 7946 0958", "+442079460958"),
    ("(020) 7946-0958", "+442079460958"),
    ("+44 (0)20 7946 0958", "+442079460958"),
    ("07700 900123", "+447700900123"),
    ("+44 7700 900123", "+447700900123"),
    ("0044 7700 900123", "+447700900123"),
    ("+1 212 555 0100", "+12125550100"),
    ("0800 FLOWERS", None),
    ("020 7946 095x", None),
    ("12345", None),
    ("n/a", None),
    ("", None),
    (None, None),
]


# The pandas UDF over ``to_e164``, and cdi's JVM function (the jobs' choice when the session has it).
PHONE_FUNCTIONS = pytest.mark.parametrize("jvm_function", [None, E164_FUNCTION], ids=["python", "jvm"])


@pytest.fixture(scope="module", params=[None, E164_FUNCTION], ids=["python", "jvm"])
def phones(request, spark):
    jvm_function = request.param
    return apply(spark, [value for value, _ in PHONE_CASES], lambda col: normalize_phone(col, "GB", jvm_function))


@pytest.mark.parametrize("index, expected", [(i, c[1]) for i, c in enumerate(PHONE_CASES)], ids=ids(PHONE_CASES))
def test_normalize_phone(phones, index, expected):
    assert phones[index] == expected


@PHONE_FUNCTIONS
def test_normalize_phone_reads_national_numbers_with_the_row_region(spark, jvm_function):
    frame = spark.createDataFrame(
        [("(212) 555-0100", "US"), ("020 7946 0958", "gb"), ("+1 212 555 0100", None)], "v string, region string"
    )
    phone = normalize_phone(F.col("v"), F.col("region"), jvm_function)
    actual = [row[0] for row in frame.orderBy("v").select(phone).collect()]
    assert actual == ["+12125550100", "+12125550100", "+442079460958"]


def test_to_e164_without_spark():
    assert (to_e164("020 7946 0958", "GB"), to_e164("0800 FLOWERS", "GB"), to_e164(None, "GB")) == (
        "+442079460958",
        None,
        None,
    )


def test_a_possible_number_shorter_than_seven_digits_is_not_a_phone():
    # phonenumbers finds "+980812" possible (Iran); hypothesis found it in test_standardize_hostile.
    assert (to_e164("+980812", "GB"), to_e164("0812", "IR")) == (None, None)


# dates

DATE_CASES = [
    # value, day_first=True, day_first=False
    ("1990-04-03", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    ("03/04/1990", dt.date(1990, 4, 3), dt.date(1990, 3, 4)),
    ("3/4/1990", dt.date(1990, 4, 3), dt.date(1990, 3, 4)),
    ("31/12/1990", dt.date(1990, 12, 31), dt.date(1990, 12, 31)),
    ("12/31/1990", dt.date(1990, 12, 31), dt.date(1990, 12, 31)),
    ("03-04-1990", dt.date(1990, 4, 3), dt.date(1990, 3, 4)),
    ("03.04.1990", dt.date(1990, 4, 3), dt.date(1990, 3, 4)),
    ("19900403", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    ("3 Apr 1990", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    ("3 APRIL 1990", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    ("April 3, 1990", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    ("1990-04-03T23:30:00+05:00", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    (" 1990-04-03 00:00:00 ", dt.date(1990, 4, 3), dt.date(1990, 4, 3)),
    ("31/02/1990", None, None),
    ("1990-13-01", None, None),
    ("3/4/90", None, None),
    ("n/a", None, None),
    ("", None, None),
    (None, None, None),
]


@pytest.fixture(scope="module")
def dates(spark):
    return apply(
        spark,
        [value for value, _, _ in DATE_CASES],
        lambda col: parse_date(col, day_first=True),
        lambda col: parse_date(col, day_first=False),
    )


@pytest.mark.parametrize(
    "index, day_first, month_first", [(i, c[1], c[2]) for i, c in enumerate(DATE_CASES)], ids=ids(DATE_CASES)
)
def test_parse_date(dates, index, day_first, month_first):
    assert dates[index] == (day_first, month_first)


# value, as written day first, as written month first
WRITTEN_DATE_CASES = [
    ("1990-04-03", "1990-04-03", "1990-04-03"),
    ("1997-21-25", "1997-21-25", "1997-21-25"),  # a month out of range: kept as written
    ("1964-11-71", "1964-11-71", "1964-11-71"),
    ("1990/4/3", "1990-04-03", "1990-04-03"),
    ("19971225", "1997-12-25", "1997-12-25"),
    ("19972125", "1997-21-25", "1997-21-25"),
    ("03/04/1990", "1990-04-03", "1990-03-04"),
    ("31/02/1990", "1990-02-31", "1990-31-02"),
    ("0.0.0000", "0000-00-00", "0000-00-00"),
    (" 1990-04-03T23:30:00+05:00 ", "1990-04-03", "1990-04-03"),
    ("3 Apr 1990", None, None),  # a month in words: only ever usable when parsed
    ("3/4/90", None, None),
    ("1990-04-03-01", None, None),
    ("\u0661\u0669\u0669\u0660-04-03", None, None),  # Arabic-Indic digits: not ASCII
    ("n/a", None, None),
    ("", None, None),
    (None, None, None),
]


@pytest.fixture(scope="module")
def written_dates(spark):
    return apply(
        spark,
        [value for value, _, _ in WRITTEN_DATE_CASES],
        lambda col: written_date(col, day_first=True),
        lambda col: written_date(col, day_first=False),
    )


@pytest.mark.parametrize(
    "index, day_first, month_first",
    [(i, c[1], c[2]) for i, c in enumerate(WRITTEN_DATE_CASES)],
    ids=ids(WRITTEN_DATE_CASES),
)
def test_written_date(written_dates, index, day_first, month_first):
    assert written_dates[index] == (day_first, month_first)


def test_date_formats_try_source_formats_first_then_day_first_order():
    formats = date_formats(day_first=True, extra=("yyyy/dd/MM",))
    assert formats[0] == "yyyy/dd/MM"
    assert formats.index("d/M/yyyy") < formats.index("M/d/yyyy")


TIMESTAMP_CASES = [
    ("2024-05-01 10:11:12", dt.datetime(2024, 5, 1, 10, 11, 12)),
    ("2024-05-01T10:11:12", dt.datetime(2024, 5, 1, 10, 11, 12)),
    ("2024-05-01T10:11:12Z", dt.datetime(2024, 5, 1, 10, 11, 12)),
    ("2024-05-01T10:11:12.5+02:00", dt.datetime(2024, 5, 1, 8, 11, 12, 500000)),
    ("2024-05-01", dt.datetime(2024, 5, 1)),
    ("03/04/2024 9:05", dt.datetime(2024, 4, 3, 9, 5)),  # day first (the default)
    ("13/04/2024 10:05:06", dt.datetime(2024, 4, 13, 10, 5, 6)),
    ("04/13/2024 10:05", dt.datetime(2024, 4, 13, 10, 5)),  # only valid month first
    ("2024-02-30 10:00:00", None),
    ("yesterday", None),
    (None, None),
]


def test_parse_timestamp(spark):
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    actual = apply(spark, [value for value, _ in TIMESTAMP_CASES], parse_timestamp)
    assert actual == {i: expected for i, (_, expected) in enumerate(TIMESTAMP_CASES)}


def _formats_alone(text, formats):
    return F.coalesce(*[F.try_to_timestamp(text, F.lit(fmt)) for fmt in formats])


def _date_and_time_grid() -> list[str]:
    """ISO and numeric dates and times around every edge: year 0 and 1, month and day 0 and out of range,
    hour 24, minute 60, leap seconds, zones, fractions, one-digit parts, mixed separators, New York's
    daylight-saving gaps and overlaps (2024-03-10 02:30, 2024-11-03 01:30)."""
    years = ["0000", "0001", "1582", "1900", "2024", "9999"]
    months = ["00", "01", "02", "03", "11", "12", "13", "1", "3"]
    days = ["00", "01", "03", "10", "29", "30", "31", "32", "1", "9"]
    iso_times = ["", " 00:00", " 01:30", " 02:30", " 23:59:59", " 24:00", " 12:60", " 23:59:60", " 5:30", "T02:30:00",
                 "T12:30Z", "T12:30:00+01:00", "T12:30:00-14:00", " 12:30:00+19:00", "T12:30:00.5", "t12:30", "T12:30:00+0100"]
    numeric_times = ["", " 00:00", " 2:30", " 23:59:59", " 24:00", " 12:60", " 9:05:07", " 09:05:07Z"]
    values = set()
    for year in years:
        for month in months:
            for day in days:
                values.update(f"{year}-{month}-{day}{time}" for time in iso_times)
                for sep in "/-.":
                    values.update(f"{day}{sep}{month}{sep}{year}{time}" for time in numeric_times)
                values.add(f"{day}/{month}-{year}")
    return sorted(values)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_common_shapes_read_by_the_cast_give_what_the_formats_give(spark, zone):
    """Dates and times of the common shapes are read by Spark's cast, the rest by the formats; on every value of
    the grid both orders give what the formats alone give."""
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        frame = spark.createDataFrame([(v,) for v in _date_and_time_grid()], "v string")
        text = F.regexp_replace(F.trim(F.col("v")), r"\s+", " ")
        date_text = _date_text(F.col("v"))
        checks = []
        for day_first in (True, False):
            built_in = (*TIMESTAMP_FORMATS, *numeric_timestamp_formats(day_first), *date_formats(day_first))
            checks += [
                F.sum((~parse_timestamp(F.col("v"), day_first=day_first).eqNullSafe(_formats_alone(text, built_in))).cast("int")),
                F.sum((~parse_date(F.col("v"), day_first=day_first).eqNullSafe(
                    F.to_date(_formats_alone(date_text, date_formats(day_first))))).cast("int")),
            ]
        checks.append(F.count(parse_timestamp(F.col("v"))))
        *differences, parsed = frame.agg(*checks).first()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert differences == [0, 0, 0, 0]
    assert parsed > 5_000  # a third of the grid are dates and times that exist


def test_common_shapes_are_read_by_the_cast(spark):
    """The shapes the cast reads (a value here that no longer reaches it still parses, only slower)."""
    values = ["2024-06-12 02:21:34", "2020-11-27T04:02:04", "2023-04-30T22:27:16Z", "21/06/2025 20:34", "2024-06-12",
              "16/02/1994"]
    text = F.col("v")
    row = spark.createDataFrame([(v,) for v in values], "v string").agg(
        F.count(_fast_timestamp(text, day_first=True)), F.count(_fast_date(text, day_first=True))
    ).first()
    assert tuple(row) == (6, 2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="0123456789-/.:TtZ+ ", max_size=26), min_size=50, max_size=200))
def test_any_text_parses_as_the_formats_alone_parse_it(spark, values):
    text = F.regexp_replace(F.trim(F.col("v")), r"\s+", " ")
    built_in = (*TIMESTAMP_FORMATS, *numeric_timestamp_formats(True), *date_formats(True))
    differences = spark.createDataFrame([(v,) for v in values], "v string").where(
        ~parse_timestamp(F.col("v")).eqNullSafe(_formats_alone(text, built_in))
    ).collect()
    assert differences == []


# address

ADDRESS_CASES = [
    # value -> (address line, postcode, country)
    ("12 High Street", ("12 high st", "12HIGHSTREET", None)),
    ("12 High St.", ("12 high st", "12HIGHST", None)),
    ("Flat 3, 1 North Road", ("flat 3 1 n rd", "FLAT31NORTHROAD", None)),
    ("Apartment 3", ("flat 3", "APARTMENT3", None)),
    ("Streetly Avenue", ("streetly avenue", "STREETLYAVENUE", None)),
    (" sw1a 1aa ", ("sw1a 1aa", "SW1A1AA", None)),
    ("SW1A-1AA", ("sw1a-1aa", "SW1A1AA", None)),
    ("United Kingdom", ("united kingdom", "UNITEDKINGDOM", "GB")),
    ("U.K.", ("u k", "UK", "GB")),
    ("gb", ("gb", "GB", "GB")),
    ("fr", ("fr", "FR", "FR")),
    ("Ireland", ("ireland", "IRELAND", "IE")),
    ("Atlantis", ("atlantis", "ATLANTIS", None)),
    ("zz", ("zz", "ZZ", None)),
    ("  ", (None, None, None)),
    (None, (None, None, None)),
]


@pytest.fixture(scope="module")
def addresses(spark):
    return apply(
        spark,
        [value for value, _ in ADDRESS_CASES],
        lambda col: normalize_address_line(col, ADDRESS_TOKENS),
        clean_postcode,
        lambda col: normalize_country(col, COUNTRIES),
    )


@pytest.mark.parametrize("index, expected", [(i, c[1]) for i, c in enumerate(ADDRESS_CASES)], ids=ids(ADDRESS_CASES))
def test_address_normalizers(addresses, index, expected):
    assert addresses[index] == expected


# gender and presence

GENDER_CASES = [
    # value -> (gender, is_present)
    ("M", ("m", True)),
    ("Male", ("m", True)),
    (" female ", ("f", True)),
    ("W", (None, True)),
    ("woman", ("f", True)),
    ("unknown", (None, False)),
    ("N/A", (None, False)),
    ("  ", (None, False)),
    (None, (None, False)),
]


def test_normalize_gender_and_is_present(spark):
    actual = apply(spark, [value for value, _ in GENDER_CASES], normalize_gender, is_present)
    assert actual == {i: expected for i, (_, expected) in enumerate(GENDER_CASES)}
