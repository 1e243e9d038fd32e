"""``cdi dedupe``: the mapping proposed from a header, ``--map`` overrides, the guessed ``--id``, one real run."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.pipeline import MappingExpression
from jobs.dedupe import (
    DateOrder,
    DedupePlan,
    MappedColumn,
    apply_overrides,
    date_order,
    dedupe_config,
    format_plan,
    guess_id_column,
    normalize_name,
    parse_overrides,
    plan_dedupe,
    propose_mapping,
)
from config.errors import ConfigError, SourceError
from jobs.csv_dialect import CsvDialect

# Every attribute the proposal knows, national_id included whether or not schemas/canonical.py has it yet.
ATTRIBUTES = frozenset({
    "given_name", "middle_name", "family_name", "full_name", "birth_date", "gender", "email", "phone",
    "address_line1", "address_line2", "city", "postcode", "region", "country", "national_id",
})


def proposed(columns, **kwargs) -> dict[str, str]:
    return {m.attribute: m.describe() for m in propose_mapping(columns, attributes=ATTRIBUTES, **kwargs)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("First Name", "firstname"), ("first-name", "firstname"), ("FIRST_NAME", "firstname"),
     (" e_mail ", "email"), ("Address 1", "address1"), ("Zip.Code", "zipcode")],
)
def test_names_are_compared_without_case_spaces_dashes_or_underscores(name, expected):
    assert normalize_name(name) == expected


@pytest.mark.parametrize(
    ("attribute", "names"),
    [
        ("given_name", ["first_name", "FirstName", "Forename", "given", "Given Name", "fname"]),
        ("middle_name", ["middle_name", "Middle Initial", "middlename"]),
        ("family_name", ["surname", "Last Name", "lastname", "family-name", "LNAME"]),
        ("full_name", ["name", "Full Name", "fullname"]),
        ("birth_date", ["DOB", "date_of_birth", "Birth Date", "birthdate", "birthday"]),
        ("gender", ["sex", "Gender"]),
        ("email", ["email", "E-Mail", "email_address"]),
        ("phone", ["phone", "Telephone", "phone_number", "mobile", "tel"]),
        ("address_line1", ["address", "address_1", "Address1", "street", "Street Address", "address_line1"]),
        ("address_line2", ["address_2", "address2", "Address Line 2"]),
        ("city", ["city", "Town", "suburb"]),
        ("postcode", ["zip", "ZipCode", "zip_code", "postcode", "Postal Code"]),
        ("region", ["state", "County", "region", "province"]),
        ("country", ["Country"]),
        ("national_id", ["SSN", "soc_sec_id", "social_security_number", "National ID", "nino", "tax_id"]),
    ],
)
def test_common_column_names_map_to_their_attribute(attribute, names):
    for name in names:
        assert proposed(["rec_id", name, "notes"]) == {attribute: name}, name


def test_a_typical_header_is_mapped_column_by_column_and_the_first_column_wins():
    header = ["id", "Forename", "Surname", "DOB", "Sex", "Email", "Email Address", "Mobile", "Town", "Postcode", "x"]
    assert proposed(header, exclude={"id"}) == {
        "given_name": "Forename", "family_name": "Surname", "birth_date": "DOB", "gender": "Sex",
        "email": "Email", "phone": "Mobile", "city": "Town", "postcode": "Postcode",
    }


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["rec_id", "postcode_fake", "home_phone", "fname_c1", "fname_c2", "state_cd"],
         {"postcode": "postcode_fake", "phone": "home_phone", "given_name": "fname_c1", "region": "state_cd"}),
        (["rec_id", "resCityDesc", "res_street_address", "full_phone_number", "gender_code"],
         {"city": "resCityDesc", "address_line1": "res_street_address", "phone": "full_phone_number",
          "gender": "gender_code"}),
        (["rec_id", "address_city", "address_zip"], {"city": "address_city", "postcode": "address_zip"}),
        (["rec_id", "zip", "zip_fake", "city"], {"postcode": "zip", "city": "city"}),
        (["rec_id", "company_name", "email_verified", "phone_type", "dob_year", "birth_age"], {}),
    ],
    ids=["qualified", "words inside", "the last word wins", "an exact name wins", "names that do not hold the value"],
)
def test_a_name_that_contains_an_alias_maps_to_an_attribute_no_column_names_exactly(header, expected):
    assert proposed(header) == expected


@pytest.mark.parametrize(
    ("header", "parts"),
    [(["rec_id", "fname_c1", "lname_c1", "by", "bm", "bd"], ("by", "bm", "bd")),
     (["id", "surname", "Birth Year", "Birth Month", "Birth Day"], ("Birth Year", "Birth Month", "Birth Day"))],
)
def test_a_birth_date_in_year_month_and_day_columns_is_joined(header, parts):
    [birth] = [m for m in propose_mapping(header, attributes=ATTRIBUTES) if m.attribute == "birth_date"]
    assert birth.columns == parts
    assert birth.expression.startswith("concat_ws('-', lpad(nullif(regexp_extract(cast(`")


def test_a_date_column_wins_over_date_parts():
    assert proposed(["id", "dob", "by", "bm", "bd"])["birth_date"] == "dob"
    assert "birth_date" not in proposed(["id", "by", "bm"])  # two parts are not a date


def test_date_parts_join_into_dates_spark_reads(spark):
    mapping = propose_mapping(["by", "bm", "bd"], attributes=ATTRIBUTES)
    rows = [("1949", "3", "7"), ("1949.0", "12", "31"), ("NA", "1", "2"), (None, "1", "2"), (" 2001", "02", "29")]
    df = spark.createDataFrame(rows, "by string, bm string, bd string")
    joined = [r[0] for r in df.selectExpr(mapping[0].expression).collect()]
    assert joined == ["1949-03-07", "1949-12-31", "01-02", "01-02", "2001-02-29"]


@pytest.mark.parametrize(
    ("values", "given", "expected"),
    [
        (["12/31/1990", "01/02/1980", "11/13/1975", "31/01/1990", None, "1990-12-31"], None,
         DateOrder(False, "month first: 2 of the 3 birth dates that show the order are written like 12/31/1990")),
        (["31.12.1990", "13-01-1980", "03/04/1990"], None,
         DateOrder(True, "day first: 2 of the 2 birth dates that show the order are written like 31/12/1990")),
        (["12/31/1990", "31/12/1990"], None,
         DateOrder(True, "day first: 1 of the 2 birth dates that show the order are written like 31/12/1990")),
        (["03/04/1990", "1990-12-31", "", "n/a", 19900101], None,
         DateOrder(True, "day first: no birth date shows the order (--month-first reads 03/04/1990 as 4 March)")),
        (["12/31/1990"], True, DateOrder(True, "--day-first")),
        (["31/12/1990"], False, DateOrder(False, "--month-first")),
    ],
    ids=["month first", "day first", "a tie", "none tells", "--day-first", "--month-first"],
)
def test_the_date_order_is_what_most_dates_that_show_it_say(values, given, expected):
    assert date_order(values, given) == expected


@given(st.lists(st.one_of(st.none(), st.text(), st.integers(), st.floats())))
def test_any_values_give_a_date_order(values):
    assert isinstance(date_order(values).day_first, bool)


def test_the_plan_reads_the_date_order_from_the_birth_date_column(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("uid,surname,dob\nu1,Lee,12/31/1990\nu2,Ray,11/14/1980\nu3,Orr,03/04/1990\n")
    plan = plan_dedupe(path, None, [])
    assert plan.dates == DateOrder(False, "month first: 2 of the 2 birth dates that show the order are written like "
                                   "12/31/1990")
    assert dedupe_config(plan, tmp_path / "out", "US").sources[0].standardize.day_first is False
    assert plan_dedupe(path, "uid", []).dates.day_first is False  # read with --id too
    assert plan_dedupe(path, None, [], day_first=True).dates == DateOrder(True, "--day-first")


def test_street_number_joins_the_street_name_through_an_expression():
    mapping = propose_mapping(["rec_id", "street_number", "Street Name", "city"], attributes=ATTRIBUTES)
    assert mapping == [
        MappedColumn("address_line1", ("street_number", "Street Name"),
                     "concat_ws(' ', `street_number`, `Street_Name`)"),
        MappedColumn("city", ("city",)),
    ]
    assert mapping[0].source == MappingExpression(expr="concat_ws(' ', `street_number`, `Street_Name`)")


def test_febrl_header_joins_street_number_with_the_address_column():
    header = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode",
              "state", "date_of_birth", "soc_sec_id"]
    assert proposed(header, exclude={"rec_id"}) == {
        "given_name": "given_name", "family_name": "surname", "birth_date": "date_of_birth",
        "address_line1": "concat_ws(' ', `street_number`, `address_1`)", "address_line2": "address_2",
        "city": "suburb", "postcode": "postcode", "region": "state", "national_id": "soc_sec_id",
    }


def test_the_id_column_and_unknown_attributes_are_not_proposed():
    assert proposed(["ssn", "name"], exclude={"ssn"}) == {"full_name": "name"}
    without_national_id = propose_mapping(["ssn", "name"], attributes=ATTRIBUTES - {"national_id"})
    assert [m.attribute for m in without_national_id] == ["full_name"]


def test_map_overrides_replace_add_and_drop_parts_of_the_proposal():
    columns = ["id", "first", "surname", "dob", "street_number", "street_name", "notes"]
    proposal = propose_mapping(columns, exclude={"id"}, attributes=ATTRIBUTES)
    overrides = parse_overrides(["first=given_name", "dob=none", "street_name=address_line1", "surname=full_name"])
    mapping = apply_overrides(proposal, overrides, columns, attributes=ATTRIBUTES)
    assert mapping == [
        MappedColumn("given_name", ("first",), origin="--map"),
        MappedColumn("full_name", ("surname",), origin="--map"),
        MappedColumn("address_line1", ("street_name",), origin="--map"),
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["first"], "--map 'first': expected SOURCE_COLUMN=canonical_attribute"),
        (["=given_name"], "--map '=given_name': expected SOURCE_COLUMN=canonical_attribute"),
        (["a=email", "b=email"], "--map: attribute 'email' is mapped twice ('a', 'b')"),
        (["missing=email"], "--map missing=email: the file has no column 'missing'; it has: id, first, notes"),
        (["notes=nickname"], "--map notes=nickname: 'nickname' is not a canonical attribute"),
    ],
)
def test_bad_map_arguments_are_config_errors(items, message):
    with pytest.raises(ConfigError) as error:
        apply_overrides([], parse_overrides(items), ["id", "first", "notes"], attributes=ATTRIBUTES)
    assert str(error.value).startswith(message)


def test_the_id_is_a_column_named_like_one_when_its_values_are_unique():
    columns = ["key", "record_id", "name", "batch"]
    mapping = [MappedColumn("full_name", ("name",))]
    values = {"key": ["a", "a", "b"], "record_id": ["1", "2", "3"], "batch": ["x", "y", "z"]}
    assert guess_id_column(columns, mapping, values) == ("record_id", "named like a record id")


def test_otherwise_the_id_is_the_first_uncompared_column_with_unique_values():
    columns = ["email", "batch", "ref", "token"]
    mapping = [MappedColumn("email", ("email",))]
    values = {"batch": ["x", "x", "y"], "ref": ["r1", None, "r3"], "token": ["7", "8", "9"]}
    assert guess_id_column(columns, mapping, values) == ("token", "its values are all present and unique")


def test_without_a_possible_id_rows_are_numbered():
    assert guess_id_column(["id", "name"], [MappedColumn("full_name", ("name",))], {"id": ["1", "1"]}) == (
        None, "id has blank or repeated values: each record is numbered by its row in the file, 1 for the first; "
        "--id COLUMN names one",
    )
    assert guess_id_column(["name"], [MappedColumn("full_name", ("name",))], {})[0] is None


def test_a_file_without_a_key_column_is_planned_with_row_numbers(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Row Number,given,surname,city\n1,Ann,Lee,Leeds\n1,Ann,Lee,Leeds\n2,Bob,Cole,York\n")
    plan = plan_dedupe(path, None, [])
    assert (plan.id_column, plan.numbered, plan.not_compared) == ("row_number_2", True, ["Row Number"])
    assert format_plan(plan).splitlines()[1] == (
        "  record id    row_number_2 (no column holds unique values: each record is numbered by its row in the "
        "file, 1 for the first; --id COLUMN names one)"
    )
    source = dedupe_config(plan, tmp_path / "out", "GB").sources[0]
    assert (source.primary_key, source.row_number_column) == (("row_number_2",), "row_number_2")
    named = plan_dedupe(path, "Row Number", [])
    assert (named.id_column, named.numbered) == ("Row Number", False)
    assert dedupe_config(named, tmp_path / "out", "GB").sources[0].row_number_column is None


def test_the_plan_prints_one_attribute_a_line_and_the_columns_left_out():
    plan = DedupePlan(
        path=Path("people.csv"),
        columns=("uid", "first", "surname", "street_number", "street_name", "notes", "batch"),
        id_column="uid",
        id_reason="its values are all present and unique",
        mapping=(
            MappedColumn("given_name", ("first",), origin="--map"),
            MappedColumn("family_name", ("surname",)),
            MappedColumn("address_line1", ("street_number", "street_name"),
                         "concat_ws(' ', `street_number`, `street_name`)"),
        ),
    )
    assert format_plan(plan) == (
        "people.csv: 7 columns\n"
        "  record id      uid (its values are all present and unique)\n"
        "  given_name     ← first  (--map)\n"
        "  family_name    ← surname\n"
        "  address_line1  ← concat_ws(' ', `street_number`, `street_name`)\n"
        "  not compared: notes, batch\n"
        "Change a line with --map COLUMN=ATTRIBUTE, leave a column out with --map COLUMN=none."
    )


def test_plan_reads_only_the_file_and_guesses_the_id_from_unique_values(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("batch,uid,First Name,Last Name,Post Code\nb1,u1,Anna,Smith,SW1A 1AA\nb1,u2,Bob,Jones,\n")
    plan = plan_dedupe(path, None, ["Post Code=none"])
    assert (plan.id_column, plan.config_mapping, plan.not_compared) == (
        "uid", {"given_name": "First_Name", "family_name": "Last_Name"}, ["batch", "Post Code"],
    )


def test_plan_reads_a_file_whose_row_is_longer_than_a_read_block(tmp_path):
    # pyarrow reads 1 MiB blocks: a 5 MB value once stopped the plan with "straddling object".
    path = tmp_path / "people.csv"
    path.write_text("batch,uid,First Name,notes\nb1,u1,Anna," + "x" * 5_000_000 + "\nb1,u2,Bob,\n")
    plan = plan_dedupe(path, None, [])
    assert (plan.id_column, plan.config_mapping, plan.not_compared) == ("uid", {"given_name": "First_Name"}, ["batch", "notes"])


def test_a_file_whose_first_line_is_a_record_is_a_config_error(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("r1,Anna,Smith,1990-02-01,anna@example.com\nr2,Bob,Jones,1985-07-12,bob@example.com\n")
    with pytest.raises(ConfigError, match=r"first line looks like a record.*'1990-02-01', 'anna@example.com'"):
        plan_dedupe(path, None, [])


def test_a_header_with_one_name_that_looks_like_a_value_is_a_header(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("uid,first_name,2024\nu1,Anna,x\nu2,Bob,y\n")
    assert plan_dedupe(path, None, []).config_mapping == {"given_name": "first_name"}


def test_a_blank_header_name_is_planned_as_spark_names_it(tmp_path):
    """R's write.csv heads its row names with "": Spark calls that column _c0, and so does the plan."""
    path = tmp_path / "RLdata.csv"
    path.write_text('"","fname_c1","lname_c1","by","bm","bd"\n"1","CARSTEN","MEIER",1949,7,22\n"2","GERD","BAUER",1968,7,27\n')
    plan = plan_dedupe(path, None, [])
    assert (plan.columns[0], plan.id_column, plan.numbered) == ("_c0", "_c0", False)
    assert plan.config_mapping["given_name"] == "fname_c1"


def test_plan_reads_a_windows_1252_file_with_semicolons_as_it_was_written(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes("uid;Vorname;surname;Ort\nu1;Jürgen;Groß;Köln\nu2;Zoë;Brontë;Paris\n".encode("cp1252"))
    plan = plan_dedupe(path, None, ["Vorname=given_name", "Ort=city"])
    assert (plan.dialect, plan.id_column, plan.config_mapping) == (
        CsvDialect("windows-1252", ";"), "uid", {"given_name": "Vorname", "family_name": "surname", "city": "Ort"},
    )
    assert format_plan(plan).startswith(f"{path}: 4 columns (read as windows-1252, fields separated by semicolons)\n")
    config = dedupe_config(plan, tmp_path / "out", "GB")
    assert (config.sources[0].encoding, config.sources[0].delimiter) == ("windows-1252", ";")
    assert config.spark == {"spark.sql.legacy.javaCharsets": "true"}  # Spark 4 reads windows-1252 only with it


def test_plan_reads_a_gzipped_tab_separated_file(tmp_path):
    path = tmp_path / "people.tsv.gz"
    path.write_bytes(gzip.compress("uid\tsurname\nu1\tSmith\nu2\tJones\n".encode()))
    plan = plan_dedupe(path, None, [])
    assert (plan.dialect, plan.id_column, plan.config_mapping) == (CsvDialect("UTF-8", "\t"), "uid", {"family_name": "surname"})



@pytest.mark.parametrize("name", ["people", "people.dat", "people.v2.data", "people.dat.gz"])
def test_a_file_named_otherwise_is_read_as_delimited_text(tmp_path, name):
    path = tmp_path / name
    text = "uid|surname|first name\nu1|Smith|Anna\nu2|Jones|Bob\n".encode()
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    plan = plan_dedupe(path, None, [])
    assert (plan.dialect, plan.id_column, plan.config_mapping) == (
        CsvDialect("UTF-8", "|"), "uid", {"given_name": "first_name", "family_name": "surname"},
    )
    assert dedupe_config(plan, tmp_path / "out", "GB").sources[0].kind == "csv"


def test_a_parquet_file_without_its_suffix_is_known_by_its_first_bytes(tmp_path):
    path = tmp_path / "people_export"
    pq.write_table(pa.table({"uid": ["u1", "u2"], "surname": ["Smith", "Jones"]}), str(path))
    plan = plan_dedupe(path, None, [])
    assert (plan.dialect, plan.id_column, plan.config_mapping) == (None, "uid", {"family_name": "surname"})
    assert dedupe_config(plan, tmp_path / "out", "GB").sources[0].kind == "parquet"

@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("people.csv.gz", b"not gzip", SourceError, r"people.csv.gz: cannot read \(Not a gzipped file"),
        ("people.xlsx", b"PK", ConfigError, r"people.xlsx: expected a CSV file \(.csv, .tsv, .txt, or one of them .gz\)"),
        ("people.json", b'{"id": 1}', ConfigError, r"people.json: expected a CSV file"),
        ("people.dat", b"PK\x03\x04rest", ConfigError, r"people.dat: a compressed file or a spreadsheet by its first bytes"),
        ("people", b"\x1f\x8b\x08\x00", ConfigError, r"people: a compressed file or a spreadsheet by its first bytes"),
        ("people.csv", b"sep=;\r\nid;surname\r\n1;Lee\r\n", ConfigError,
         r"people.csv: the first line \('sep='…\) is Excel's delimiter hint, not the header; .*delete that line"),
    ],
)
def test_files_cdi_dedupe_cannot_read_are_one_line_errors(tmp_path, name, content, error, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        plan_dedupe(path, None, [])


def test_the_mapping_names_columns_as_bronze_does_and_names_that_land_alike_are_told(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("id,first.name,`surname`,e mail,E_Mail\n1,Ann,Lee,a@x.org,b@x.org\n")
    with pytest.raises(ConfigError, match=r"'e mail', 'E_Mail' \(columns 4, 5\) land under one name"):
        plan_dedupe(path, None, [])
    plan = plan_dedupe(path, None, ["e mail=none", "E_Mail=none"])
    assert plan.config_mapping == {"given_name": "first_name", "family_name": "surname"}


def test_plan_skips_rows_with_the_wrong_number_of_fields_when_guessing_the_id(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("uid,name\nu1,Anna Smith\nu2,Bob,Jones,extra\nu3\nu4,Cy Young\n")
    assert plan_dedupe(path, None, []).id_column == "uid"


def test_a_used_column_the_header_names_twice_is_a_config_error(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("uid,name,notes,Name\nu1,Anna,a,Smith\n")
    with pytest.raises(ConfigError, match=r"'name' cannot be told apart from another column: 'name', 'Name' \(columns 2, 4\)"):
        plan_dedupe(path, None, [])
    unused = tmp_path / "notes.csv"
    unused.write_text("notes,uid,surname,Notes\na,u1,Smith,b\na,u2,Jones,b\n")
    assert plan_dedupe(unused, None, []).id_column == "uid"


def test_plan_with_an_unknown_id_column_is_a_config_error(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("uid,name\nu1,Anna Smith\n")
    with pytest.raises(ConfigError, match=r"^--id person: the file has no column 'person'; it has: uid, name$"):
        plan_dedupe(path, "person", [])


PEOPLE = """customer_id,First Name,surname,dob,e-mail,street_number,street_name,zip,notes
c1,Anna,Smith,1990-04-03,anna.smith@example.org,12,High Street,SW1A 1AA,first visit
c2,Ana,Smith,03/04/1990,anna.smith@example.org,12,High St,SW1A1AA,
c3,Robert,Jones,1975-11-20,bob.jones@example.com,7,Station Road,CF10 1AA,
c4,Bob,Jones,20/11/1975,bob.jones@example.com,7,Station Rd,CF101AA,call back
c5,Maria,Garcia,1982-06-15,maria.g@example.net,3,Mill Lane,LS1 4AP,
c6,Peter,Brown,1968-01-30,pbrown@example.com,45,Church Road,M1 2AB,
"""


# Values no run may die of: every year from 1 to 9999, impossible and partial dates, 100 KB
# values, control characters and NUL, every script, emoji, numbers for names, empty rows.
HOSTILE = [
    ["h1", "José", "Ñúñez", "0001-01-01", "not an email", "", "", "", ""],
    ["h2", "李", "小龍", "9999-12-31", "a@b", "1", "路", "北京", ""],
    ["h3", "x" * 100_000, "y" * 100_000, "1028-05-12", "z" * 100_000 + "@x.com", "9" * 50, "s" * 100_000, "0" * 100_000, ""],
    ["h4", "\x00\x07", "\t \n", "31/02/1990", "@@", "-1", "NULL", "00000", ""],
    ["h5", "12345", "3.14", "9185-13-45", "", "", "", "", "🙂"],
    ["h6", "👩‍👩‍👧‍👦", "مرحبا", "00/00/0000", "", "", "", "", ""],
    ["h7", "", "", "", "", "", "", "", ""],
    ["h8", "Anna", "Smith", "1500-02-29", "", "", "", "", ""],  # not a leap year in Spark's calendar
]

RAGGED = ["r1", "Only", "three"]  # three fields of eight: the row goes to rejected.csv


def test_cdi_dedupe_without_map_or_id_proposes_a_mapping_and_finds_the_duplicates(spark, tmp_path, capsys):
    """One real run on a header cdi has to map itself, with no id column and hostile rows that must not stop it."""
    from jobs.cli import main

    path = tmp_path / "people.csv"
    text = io.StringIO()  # as Excel saves "Unicode text": UTF-16 with tabs
    rows = [row[1:] for row in [*csv.reader(io.StringIO(PEOPLE)), *HOSTILE, RAGGED]]  # no id: rows are numbered
    csv.writer(text, delimiter="\t").writerows(rows)
    path.write_bytes(text.getvalue().encode("utf-16"))
    out = tmp_path / "out"
    assert main(["dedupe", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        f"{path}: 8 columns (read as UTF-16, fields separated by tabs)\n"
        "  record id      row_number (no column holds unique values: each record is numbered by its row in the "
        "file, 1 for the first; --id COLUMN names one)\n"
        "  given_name     ← First Name\n"
        "  family_name    ← surname\n"
        "  birth_date     ← dob\n"
        "  email          ← e-mail\n"
        "  address_line1  ← concat_ws(' ', `street_number`, `street_name`)\n"
        "  postcode       ← zip\n"
        "  dates: day first: 2 of the 2 birth dates that show the order are written like 31/12/1990\n"
        "  not compared: notes\n"
    )
    with (out / "clusters.csv").open() as handle:
        golden = [(int(row["record_id"]), row["golden_id"]) for row in csv.DictReader(handle)]
    assert [number for number, _ in golden] == list(range(1, 6 + len(HOSTILE) + 1))  # in row order
    customer = dict(golden)
    assert customer[1] == customer[2]
    assert customer[3] == customer[4]
    assert len({customer[1], customer[3], customer[5], customer[6]}) == 4
    assert len({customer[number] for number in range(7, 7 + len(HOSTILE))}) == len(HOSTILE)
    with (out / "rejected.csv").open() as handle:
        rejected = [(row["record_id"], row["stage"], row["check"]) for row in csv.DictReader(handle)]
    assert rejected == [(str(7 + len(HOSTILE)), "ingest", "malformed_row")]
    assert printed.endswith(f"1 row rejected, each with its reason: {out / 'rejected.csv'}\n")


@given(st.lists(st.text(max_size=30), max_size=12, unique=True))
def test_any_header_gives_a_mapping_that_uses_each_column_and_attribute_once(header):
    mapping = propose_mapping(header, attributes=ATTRIBUTES)
    attributes = [m.attribute for m in mapping]
    columns = [c for m in mapping for c in m.columns]
    assert len(set(attributes)) == len(attributes) and set(attributes) <= ATTRIBUTES
    assert len(set(columns)) == len(columns) and set(columns) <= set(header)


def test_a_person_whose_row_is_repeated_hundreds_of_times_is_one_customer(tmp_path):
    """600 copies of one row among 300 other people: every rule's block of the copies is over max_block_size
    (500) and skipped, and the copies' values are held by most records. Still one customer: the skipped
    blocks' identical records are paired, and u and term frequencies count identical records once."""
    import random

    from demo.names import FEMALE_GIVEN_NAMES, MALE_GIVEN_NAMES, SURNAMES
    from jobs.cli import main

    rng = random.Random(5)
    people = [
        [rng.choice(MALE_GIVEN_NAMES + FEMALE_GIVEN_NAMES), rng.choice(SURNAMES),
         f"{rng.randint(1930, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", f"p{i}@example.org"]
        for i in range(300)
    ]
    repeated = ["Ada", "Lovelace", "1815-12-10", "ada@example.org"]
    path = tmp_path / "people.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "dob", "email"])
        writer.writerows([f"p{i}", *row] for i, row in enumerate(people))
        writer.writerows([f"r{i}", *repeated] for i in range(600))
    out = tmp_path / "out"

    assert main(["dedupe", str(path), "--out", str(out)]) == 0

    with (out / "clusters.csv").open() as handle:
        customer = {row["record_id"]: row["golden_id"] for row in csv.DictReader(handle)}
    assert len({customer[f"r{i}"] for i in range(600)}) == 1
    assert len({customer[f"p{i}"] for i in range(300)} - {customer["r0"]}) == 300


def test_a_duplicate_whose_birth_date_is_not_a_date_still_joins_its_twin(tmp_path):
    """Names and birth dates only, from small name pools: many people share both names, so the birth
    date decides. Duplicates whose month and day are swapped into a month no calendar has (1997-25-12
    for 1997-12-25), or whose day's digits are (1997-12-52), have no usable date; as written it is still
    their twin's, transposed or a typo apart."""
    import random

    from demo.names import FEMALE_GIVEN_NAMES, MALE_GIVEN_NAMES, SURNAMES
    from jobs.cli import main

    rng = random.Random(11)
    given_names, family_names = (MALE_GIVEN_NAMES + FEMALE_GIVEN_NAMES)[:20], SURNAMES[:30]
    people = [
        [rng.choice(given_names), rng.choice(family_names), rng.randint(1930, 2005), rng.randint(1, 12),
         rng.choice([14, 15, 16, 17, 18, 19, 23, 24, 25, 26, 27, 28])]  # each a day backwards too: 41, 51 ... 82
        for _ in range(1000)
    ]
    rows = [[f"p{i}", given, family, f"{y}-{m:02d}-{d:02d}"] for i, (given, family, y, m, d) in enumerate(people)]
    rows += [[f"t{i}", given, family, f"{y}-{d:02d}-{m:02d}"] for i, (given, family, y, m, d) in enumerate(people[:30])]
    rows += [
        [f"t{i}", given, family, f"{y}-{m:02d}-{str(d)[::-1]}"]
        for i, (given, family, y, m, d) in enumerate(people[30:60], start=30)
    ]
    rows += [[f"c{i}", given, family, f"{y}-{m:02d}-{d:02d}"] for i, (given, family, y, m, d) in enumerate(people[60:160])]
    path = tmp_path / "people.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "dob"])
        writer.writerows(rows)
    out = tmp_path / "out"

    assert main(["dedupe", str(path), "--out", str(out)]) == 0

    with (out / "clusters.csv").open() as handle:
        customer = {row["record_id"]: row["golden_id"] for row in csv.DictReader(handle)}
    twins_joined = sum(customer[f"t{i}"] == customer[f"p{i}"] for i in range(60))
    namesakes = [(i, j) for i in range(1000) for j in range(i) if people[i][:2] == people[j][:2]]
    namesakes_joined = sum(customer[f"p{i}"] == customer[f"p{j}"] for i, j in namesakes)
    assert twins_joined >= 57
    assert namesakes_joined == 0
