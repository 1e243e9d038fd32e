"""A CSV file's encoding and delimiter, guessed from its first bytes."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.csv_dialect import SAMPLE_BYTES, CsvDialect, sniff

ROWS = [
    ["id", "first name", "surname", "city"],
    ["1", "José", "Müller", "Köln"],
    ["2", "Anna, Maria", "O'Neil", "Saint-Étienne"],
    ["3", "", "Smith; Jones", "London"],
]


def written(rows, delimiter: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8"), ("utf-16", "UTF-16"), ("utf-32", "UTF-32"),
     ("cp1252", "windows-1252")],
)
def test_the_delimiter_and_encoding_a_file_was_written_with_are_found(delimiter, encoding, expected):
    assert sniff(written(ROWS, delimiter, encoding)) == CsvDialect(expected, delimiter)


@pytest.mark.parametrize(("encoding", "expected"), [("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE")])
def test_utf_16_without_a_byte_order_mark_is_found_by_its_zero_bytes(encoding, expected):
    assert sniff(written(ROWS, ";", encoding)) == CsvDialect(expected, ";")


def test_bytes_windows_1252_leaves_undefined_are_read_as_iso_8859_1():
    assert sniff(b"id,name\n1,\x81\x8d\n").encoding == "ISO-8859-1"


def test_a_utf_8_character_cut_by_the_sample_end_is_still_utf_8():
    assert sniff("id,name\n1,Zoë".encode()[:-1]).encoding == "UTF-8"


def test_one_column_files_and_empty_files_are_read_with_commas():
    assert sniff(b"name\nAnna\nBob\n") == CsvDialect("UTF-8", ",")
    assert sniff(b"") == CsvDialect("UTF-8", ",")


def test_a_delimiter_the_rows_disagree_with_is_not_taken():
    """The header splits on ';' too, but only ',' gives the rows as many fields as the header."""
    sample = b"id,name;alias,city\n1,Anna,London\n2,Bob,Leeds\n3,Cy,York\n"
    assert sniff(sample).delimiter == ","


def test_a_sample_that_ends_inside_a_row_is_judged_on_its_whole_rows():
    rows = [["id", "name", "city"]] + [[str(i), "x" * 50, "y"] for i in range(SAMPLE_BYTES // 50)]
    sample = written(rows, ";", "utf-8")[:SAMPLE_BYTES]
    assert sniff(sample) == CsvDialect("UTF-8", ";")


@given(st.binary(max_size=2000))
def test_any_bytes_give_a_dialect_that_reads_them(sample):
    """Single-byte encodings read every byte; UTF-8 is chosen only for text that is UTF-8 up to a cut last character."""
    dialect = sniff(sample)
    assert dialect.delimiter in {",", ";", "\t", "|"}
    if dialect.encoding in ("windows-1252", "ISO-8859-1"):
        sample.decode(dialect.python_encoding)
    elif dialect.encoding == "UTF-8":
        try:
            sample.decode(dialect.python_encoding)
        except UnicodeDecodeError as exc:
            assert exc.reason == "unexpected end of data"
    else:
        assert dialect.encoding in ("UTF-16", "UTF-32", "UTF-16LE", "UTF-16BE")


@given(
    st.sampled_from([",", ";", "\t", "|"]),
    st.lists(st.lists(st.text(max_size=8), min_size=3, max_size=3), min_size=1, max_size=20),
)
def test_a_written_table_of_three_columns_is_read_back_with_its_delimiter(delimiter, body):
    rows = [["a", "b", "c"], *body]
    assert sniff(written(rows, delimiter, "utf-8")).delimiter == delimiter
