"""standardize() on tiny bronze frames, one per mapping style, compared as whole frames."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import StringType, StructField, StructType

from matching.standardize import (
    EXTRA_COLUMNS,
    MappingError,
    SqlExpression,
    StandardizeOptions,
    Vocabulary,
    VocabularyError,
    load_vocabulary,
    standardize,
)
from schemas.canonical import CANONICAL_SCHEMA, MATCH_ONLY_ATTRIBUTES

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
OUTPUT_SCHEMA = StructType(
    [*CANONICAL_SCHEMA.fields, *(StructField(name, StringType()) for name in (*MATCH_ONLY_ATTRIBUTES, *EXTRA_COLUMNS))]
)
RUN_ID = "run-1"
INGESTED_AT = dt.datetime(2025, 1, 2, 3, 4, 5)
LINEAGE = "source_system string, source_key string, run_id string, ingested_at timestamp, record_hash string"

VOCABULARY = Vocabulary(
    nicknames={"bob": "robert", "liz": "elizabeth"},
    honorifics=frozenset({"mr", "mrs", "dr"}),
    suffixes={"jr": "jr", "junior": "jr"},
    address_tokens={"street": "st", "road": "rd", "apartment": "flat"},
    countries={"united kingdom": "GB", "uk": "GB", "ireland": "IE"},
    particles=frozenset({"van", "de"}),
)


def lineage(source: str, key: str) -> tuple:
    return (source, key, RUN_ID, INGESTED_AT, f"hash-{key}")


def expected_row(source: str, key: str, **values) -> tuple:
    """The row of ``values``; a birth date is also written as itself (ISO order), unless given."""
    if values.get("birth_date") is not None:
        values.setdefault("birth_date_written", values["birth_date"].isoformat())
    row = {
        "record_id": f"{source}:{key}",
        "source_system": source,
        "source_key": key,
        "run_id": RUN_ID,
        "ingested_at": INGESTED_AT,
        "record_hash": f"hash-{key}",
        **values,
    }
    unknown = row.keys() - set(OUTPUT_SCHEMA.fieldNames())
    assert not unknown, unknown
    return tuple(row.get(name) for name in OUTPUT_SCHEMA.fieldNames())


def check(spark, actual, rows):
    expected = spark.createDataFrame(rows, OUTPUT_SCHEMA)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


CRM_MAPPING = {
    "given_name": "first_name",
    "middle_name": "middle_name",
    "family_name": "last_name",
    "birth_date": "date_of_birth",
    "gender": "gender",
    "email": "email",
    "phone": "phone",
    "address_line1": "street",
    "city": "city",
    "postcode": "postcode",
    "country": "country",
    "updated_at": "updated_at",
}
CRM_COLUMNS = (
    "first_name string, middle_name string, last_name string, date_of_birth string, gender string, "
    "email string, phone string, street string, city string, postcode string, country string, updated_at string"
)


def test_split_name_columns_with_unusable_values_reported(spark):
    bronze = spark.createDataFrame(
        [
            (*lineage("crm", "1"), "Bob", "James", "Smith Jr", "1990-04-03", "Male", " Bob.Smith@Example.com ",
             "020 7946 0958", "12 High Street", "LONDON", " sw1a 1aa ", "United Kingdom", "2024-05-01 10:11:12"),
            (*lineage("crm", "2"), "Zoë", None, "Müller-Łukasz", "31/02/1990", "X", "zoe@@example",
             "0800 FLOWERS", "1 Station Road", "Dublin", "D02 X285", "Ireland", "2024-05-01T10:11:12Z"),
            (*lineage("crm", "3"), "  ", "", None, "n/a", "banana", None, None, None, " ", None, "Atlantis", "soon"),
        ],
        f"{LINEAGE}, {CRM_COLUMNS}",
    )
    actual = standardize(bronze, CRM_MAPPING, StandardizeOptions(day_first=False), VOCABULARY)
    check(spark, actual, [
        expected_row(
            "crm", "1", given_name="robert", middle_name="james", family_name="smith",
            full_name="robert james smith", birth_date=dt.date(1990, 4, 3), gender="m",
            email="bob.smith@example.com", phone="+442079460958", address_line1="12 high st", city="london",
            postcode="SW1A1AA", country="GB", updated_at=dt.datetime(2024, 5, 1, 10, 11, 12), name_suffix="jr",
        ),
        expected_row(
            "crm", "2", given_name="zoe", family_name="muller-lukasz", full_name="zoe muller-lukasz",
            birth_date_written="1990-31-02",  # month first, as the source writes: not a date, kept as written
            address_line1="1 station rd", city="dublin", postcode="D02X285", country="IE",
            updated_at=dt.datetime(2024, 5, 1, 10, 11, 12),
            std_issues="birth_date: unparseable date; email: malformed email address; phone: not a valid phone number",
        ),
        expected_row(
            "crm", "3",
            std_issues="gender: unrecognised gender; country: unrecognised country; updated_at: unparseable timestamp",
        ),
    ])


SUPPORT_MAPPING = {"full_name": "customer_name", "birth_date": "dob", "phone": "phone", "updated_at": "last_contact"}


def test_full_name_only_with_default_country_and_month_first_dates(spark):
    bronze = spark.createDataFrame(
        [
            (*lineage("support", "t1"), "SMITH, Robert", "04/03/1990", "(020) 7946-0958", "2024-05-01T10:11:12Z"),
            (*lineage("support", "t2"), "Dr. Robert J. Smith Jr", "12/31/1990", "+44 (0)20 7946 0958", None),
            (*lineage("support", "t3"), "Ludwig van Beethoven", "31/12/1990", "0044 7700 900123", ""),
            (*lineage("support", "t4"), "\ufeffMadonna", None, "12345", None),
        ],
        f"{LINEAGE}, customer_name string, dob string, phone string, last_contact string",
    )
    options = StandardizeOptions(default_region="GB", default_country="GB", day_first=False)
    actual = standardize(bronze, SUPPORT_MAPPING, options, VOCABULARY)
    check(spark, actual, [
        expected_row(
            "support", "t1", given_name="robert", family_name="smith", full_name="robert smith",
            birth_date=dt.date(1990, 4, 3), phone="+442079460958", country="GB",
            updated_at=dt.datetime(2024, 5, 1, 10, 11, 12),
        ),
        expected_row(
            "support", "t2", given_name="robert", middle_name="j", family_name="smith", full_name="robert j smith",
            birth_date=dt.date(1990, 12, 31), phone="+442079460958", country="GB", name_suffix="jr",
        ),
        expected_row(
            "support", "t3", given_name="ludwig", family_name="van beethoven", full_name="ludwig van beethoven",
            birth_date=dt.date(1990, 12, 31), phone="+447700900123", country="GB",
            birth_date_written="1990-31-12",  # in the order the source declares (month first): as written
        ),
        expected_row(
            "support", "t4", family_name="madonna", full_name="madonna", country="GB",
            std_issues="phone: not a valid phone number",
        ),
    ])


WEBSHOP_MAPPING = {
    "given_name": "given_name",
    "family_name": "family_name",
    "full_name": "display_name",
    "birth_date": "birthday",
    "email": "email",
    "phone": "mobile",
    "address_line1": "address.line1",
    "address_line2": "address.line2",
    "city": "address.city",
    "postcode": "address.postcode",
    "country": "address.country",
    "updated_at": "created_at",
}


def test_nested_columns_typed_sources_and_both_name_styles(spark):
    address = "struct<line1: string, line2: string, city: string, postcode: string, country: string>"
    bronze = spark.createDataFrame(
        [
            (*lineage("webshop", "w1"), "Liz", "Taylor", "Elizabeth Rosemond Taylor", dt.date(1932, 2, 27),
             "rob.smith+shop@googlemail.com", "07700 900123",
             ("1 North Road", "Apartment 4", "Cardiff", "cf10 1aa", None),
             dt.datetime(2024, 5, 1, 10, 11, 12)),
            (*lineage("webshop", "w2"), None, None, "de Vries, Anna", None, None, "(212) 555-0100",
             ("5 Main Street", None, "Boston", "02108", "US"), None),
        ],
        f"{LINEAGE}, given_name string, family_name string, display_name string, birthday date, email string, "
        f"mobile string, address {address}, created_at timestamp",
    )
    options = StandardizeOptions(default_region="GB", fold_gmail=True)
    actual = standardize(bronze, WEBSHOP_MAPPING, options, VOCABULARY)
    check(spark, actual, [
        expected_row(
            "webshop", "w1", given_name="elizabeth", family_name="taylor", full_name="elizabeth taylor",
            birth_date=dt.date(1932, 2, 27), email="robsmith@gmail.com", phone="+447700900123",
            address_line1="1 north rd", address_line2="flat 4", city="cardiff", postcode="CF101AA",
            updated_at=dt.datetime(2024, 5, 1, 10, 11, 12),
        ),
        expected_row(
            "webshop", "w2", given_name="anna", family_name="de vries", full_name="anna de vries",
            phone="+12125550100", address_line1="5 main st", city="boston", postcode="02108", country="US",
        ),
    ])


def test_expressions_build_an_attribute_from_several_columns(spark):
    bronze = spark.createDataFrame(
        [
            (*lineage("febrl", "1"), "Anna", "Maria", "Smith", "12", "High Street", "1990", "4", "3"),
            (*lineage("febrl", "2"), "Bob", None, "Jones", None, "Station Road", None, None, None),
        ],
        f"{LINEAGE}, first_name string, middle_name string, surname string, street_number string, "
        "street_name string, yob string, mob string, dob string",
    )
    mapping = {
        "given_name": SqlExpression("concat_ws(' ', first_name, middle_name)"),
        "family_name": "surname",
        "address_line1": SqlExpression("concat_ws(' ', street_number, street_name)"),
        "birth_date": SqlExpression("make_date(int(yob), int(mob), int(dob))"),
    }
    actual = standardize(bronze, mapping, StandardizeOptions(), VOCABULARY)
    check(spark, actual, [
        expected_row(
            "febrl", "1", given_name="anna", middle_name="maria", family_name="smith",
            full_name="anna maria smith", birth_date=dt.date(1990, 4, 3), address_line1="12 high st",
        ),
        expected_row(
            "febrl", "2", given_name="robert", family_name="jones", full_name="robert jones",
            address_line1="station rd",
        ),
    ])


def test_output_columns_follow_the_canonical_schema(spark):
    bronze = spark.createDataFrame([], f"{LINEAGE}, name string")
    actual = standardize(bronze, {"full_name": "name"}, StandardizeOptions(), VOCABULARY)
    assert [(f.name, f.dataType) for f in actual.schema.fields] == [(f.name, f.dataType) for f in OUTPUT_SCHEMA.fields]


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"nickname": "name"}, "mapping 'nickname': not a canonical attribute"),
        ({"full_name": "customer_name"}, "mapping 'full_name': source has no column 'customer_name'"),
        ({"city": "address.town"}, "mapping 'city': source has no column 'address.town'"),
        ({"city": "address"}, "mapping 'city': column 'address' is struct<city:string>, expected a value"),
        ({"full_name": SqlExpression("concat_ws(' ', name")},
         "mapping 'full_name': expression \"concat_ws(' ', name\" does not resolve against the source: "
         "[PARSE_SYNTAX_ERROR]"),
        ({"full_name": SqlExpression("concat_ws(' ', name, surname)")},
         "mapping 'full_name': expression \"concat_ws(' ', name, surname)\" does not resolve against the source: "
         "[UNRESOLVED_COLUMN"),
        ({"city": SqlExpression("address")},
         "mapping 'city': expression \"address\" is struct<city:string>, expected a value"),
    ],
)
def test_bad_mapping_is_refused(spark, mapping, message):
    bronze = spark.createDataFrame([], f"{LINEAGE}, name string, address struct<city: string>")
    with pytest.raises(MappingError, match=re.escape(message)):
        standardize(bronze, mapping, StandardizeOptions(), VOCABULARY)


def test_bronze_without_lineage_is_refused(spark):
    bronze = spark.createDataFrame([], "source_key string, name string")
    with pytest.raises(MappingError, match=r"lacks lineage columns \['source_system', 'run_id'"):
        standardize(bronze, {"full_name": "name"}, StandardizeOptions(), VOCABULARY)


# load_vocabulary


def test_load_vocabulary_reads_the_project_tables():
    vocabulary = load_vocabulary(CONF_DIR)
    assert len(vocabulary.nicknames) >= 300
    assert (vocabulary.nicknames["bob"], vocabulary.nicknames["bill"], vocabulary.nicknames["peggy"]) == (
        "robert", "william", "margaret",
    )
    assert {"mr", "mrs", "dr", "prof", "rev"} <= vocabulary.honorifics
    assert (vocabulary.suffixes["jnr"], vocabulary.suffixes["senior"]) == ("jr", "sr")
    assert {key: vocabulary.address_tokens[key] for key in ("street", "road", "crescent", "north")} == {
        "street": "st", "road": "rd", "crescent": "cres", "north": "n",
    }
    assert {vocabulary.countries[name] for name in ("uk", "united kingdom", "great britain", "england")} == {"GB"}
    assert vocabulary.countries["norway"] == "NO"
    assert "van" in vocabulary.particles


def write_conf(directory: Path, nicknames: str, name_tokens: str, address_tokens: str) -> Path:
    (directory / "nicknames.csv").write_text(nicknames, encoding="utf-8")
    (directory / "name_tokens.yaml").write_text(name_tokens, encoding="utf-8")
    (directory / "address_tokens.yaml").write_text(address_tokens, encoding="utf-8")
    return directory


GOOD_NICKNAMES = "nickname,canonical\nbob,robert\n"
GOOD_NAME_TOKENS = "honorifics: [mr]\nsuffixes: {jr: jr}\nparticles: [van]\n"
GOOD_ADDRESS_TOKENS = "tokens: {street: st}\ncountries: {uk: GB}\n"


@pytest.mark.parametrize(
    "nicknames, name_tokens, address_tokens, message",
    [
        (GOOD_NICKNAMES + "bob,bobby\n", GOOD_NAME_TOKENS, GOOD_ADDRESS_TOKENS, "line 3: nickname 'bob' listed twice"),
        ("name,formal\nbob,robert\n", GOOD_NAME_TOKENS, GOOD_ADDRESS_TOKENS, "expected the header"),
        (GOOD_NICKNAMES, "honorifics: mr\nsuffixes: {jr: jr}\nparticles: []\n", GOOD_ADDRESS_TOKENS,
         "key 'honorifics': expected a list"),
        (GOOD_NICKNAMES, "honorifics: [jr]\nsuffixes: {jr: jr}\nparticles: []\n", GOOD_ADDRESS_TOKENS,
         "both honorific and suffix"),
        (GOOD_NICKNAMES, GOOD_NAME_TOKENS, "tokens: {street: st}\ncountries: {norway: NO}\n",
         r"key 'countries.norway': expected text, got False \(quote it\)"),
        (GOOD_NICKNAMES, GOOD_NAME_TOKENS, "tokens: {street: st}\ncountries: {uk: gbr}\n",
         "key 'countries.uk': expected an ISO2 code"),
    ],
)
def test_load_vocabulary_names_the_file_and_key_on_error(tmp_path, nicknames, name_tokens, address_tokens, message):
    conf = write_conf(tmp_path, nicknames, name_tokens, address_tokens)
    with pytest.raises(VocabularyError, match=message):
        load_vocabulary(conf)
