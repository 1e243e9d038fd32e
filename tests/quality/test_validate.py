"""Validation on Spark: quarantine split, batch stops, PII kept out of results and Data Docs.

Each Great Expectations validation costs seconds on 2 cores, so the canonical
run is made once per module and checked by several tests.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql.types import StringType, StructField, StructType

from matching.standardize import EXTRA_COLUMNS
from quality.suites import SuiteConfig, load_suite
from quality.validate import ValidationResult, build_data_docs, read_row_count, validate, write_summary
from schemas.canonical import CANONICAL_SCHEMA, MATCH_ONLY_ATTRIBUTES
from schemas.tables import QUARANTINE_SCHEMA

CONF = Path(__file__).resolve().parents[2] / "conf" / "quality"
STD_SCHEMA = StructType(
    [*CANONICAL_SCHEMA.fields, *(StructField(c, StringType(), True) for c in (*MATCH_ONLY_ATTRIBUTES, *EXTRA_COLUMNS))]
)
PLANTED_EMAIL = "planted.pii.value@@x"
BILLING_COLUMNS = (
    "acct_no title forename surname birth_dt email_addr tel addr_1 addr_2 town post_code country_code last_modified "
    "source_system source_key run_id ingested_at record_hash"
).split()


def std_row(record_id: str, **values):
    source_system, source_key = record_id.split(":")
    row = {
        "record_id": record_id,
        "source_system": source_system,
        "source_key": source_key,
        "family_name": "smith",
        "email": "ann.smith@example.com",
        "phone": "+447700900123",
        "birth_date": dt.date(1980, 1, 2),
        "birth_date_written": "1980-01-02",
        "country": "GB",
        **values,
    }
    return tuple(row.get(name) for name in STD_SCHEMA.fieldNames())


def billing_frame(spark, rows: list[tuple], columns=BILLING_COLUMNS):
    return spark.createDataFrame(rows, StructType([StructField(c, StringType(), True) for c in columns]))


def billing_row(acct_no: str) -> tuple:
    values = dict.fromkeys(BILLING_COLUMNS, "x")
    values.update(acct_no=acct_no, source_system="billing", source_key=acct_no)
    values.update(birth_dt="02/01/1980", email_addr="a@b.co")
    return tuple(values[c] for c in BILLING_COLUMNS)


@pytest.fixture(scope="module")
def std_frame(spark):
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    return spark.createDataFrame(
        [
            std_row("billing:1"),
            std_row("billing:2", email=PLANTED_EMAIL),
            std_row("billing:3", phone="0770", country="XX"),
            std_row("billing:4", family_name=None, full_name=None),
            std_row("billing:5", family_name=None, full_name="ann smith"),
            std_row("sales_crm:7", birth_date=tomorrow, std_issues="birth_date: unparseable"),
            std_row("sales_crm:8", email=None, phone=None, country=None),
        ],
        STD_SCHEMA,
    )


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality_docs")


@pytest.fixture(scope="module")
def canonical_result(std_frame, docs_dir) -> ValidationResult:
    return validate(
        std_frame,
        load_suite(CONF / "canonical.yaml"),
        source_system="customers_std",
        key_column="record_id",
        run_id="run-1",
        docs_dir=docs_dir,
        previous_row_count=6,
    )


def test_only_records_without_name_or_identifier_are_quarantined(canonical_result):
    assert not canonical_result.stopped, canonical_result.batch_failures
    rows = {json.loads(r.record)["record_id"]: r for r in canonical_result.quarantined.collect()}
    assert sorted(rows) == ["sales_crm:8"]
    assert rows["sales_crm:8"].check == "expect_column_values_to_not_be_null(full_name)"
    assert rows["sales_crm:8"].reason == "no name and no identifier (email, phone, national id)"
    assert (rows["sales_crm:8"].source_system, rows["sales_crm:8"].source_key) == ("sales_crm", "8")
    assert {(r.run_id, r.stage) for r in rows.values()} == {("run-1", "validate")}


def test_unusable_values_are_nulled_with_their_reasons_and_the_records_go_on(canonical_result):
    rows = {
        r.record_id: (r.email, r.phone, r.country, r.birth_date, r.std_issues)
        for r in canonical_result.passed.collect()
    }
    assert rows == {
        "billing:1": ("ann.smith@example.com", "+447700900123", "GB", dt.date(1980, 1, 2), None),
        "billing:2": (None, "+447700900123", "GB", dt.date(1980, 1, 2), "email: not an address"),
        "billing:3": (
            "ann.smith@example.com", None, None, dt.date(1980, 1, 2),
            "phone: not E.164; country: not an ISO 3166-1 alpha-2 code",
        ),
        "billing:4": ("ann.smith@example.com", "+447700900123", "GB", dt.date(1980, 1, 2), None),
        "billing:5": ("ann.smith@example.com", "+447700900123", "GB", dt.date(1980, 1, 2), None),
        "sales_crm:7": (
            "ann.smith@example.com", "+447700900123", "GB", None, "birth_date: unparseable; birth_date: in the future"
        ),
    }


def test_passed_and_quarantined_reconcile(canonical_result, std_frame):
    passed = canonical_result.passed
    assert passed.columns == std_frame.columns
    assert passed.count() + canonical_result.quarantined.count() == std_frame.count()


def test_quarantine_frame_has_the_quarantine_schema(canonical_result):
    actual = [(f.name, f.dataType) for f in canonical_result.quarantined.schema]
    assert actual == [(f.name, f.dataType) for f in QUARANTINE_SCHEMA]


def test_pii_stays_out_of_results_and_data_docs(canonical_result, docs_dir):
    index = build_data_docs(docs_dir)
    assert index is not None and index.is_file()
    assert index.is_relative_to(docs_dir)
    files = [p for p in docs_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" and "validations" in p.parts for p in files)
    assert [p for p in files if PLANTED_EMAIL in p.read_text(encoding="utf-8", errors="replace")] == []
    assert PLANTED_EMAIL not in json.dumps(canonical_result.summary)
    (nulled,) = canonical_result.passed.filter("record_id = 'billing:2'").collect()
    assert (nulled.email, nulled.std_issues) == (None, "email: not an address")


def test_summary_is_written_and_gives_the_next_runs_row_count(canonical_result, tmp_path):
    path = tmp_path / "run-1" / "validate_customers_std.json"
    write_summary(canonical_result, path)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == canonical_result.summary
    assert (written["row_count"], written["failing_keys"], written["stopped"]) == (7, 4, False)
    regex = [e for e in written["expectations"] if e["columns"] == ["phone"]]
    assert (regex[0]["severity"], regex[0]["success"], regex[0]["unexpected_count"]) == ("field", False, 1)
    assert read_row_count(path) == 7
    assert read_row_count(tmp_path / "absent.json") is None


def test_suddenly_empty_source_stops_the_batch(spark):
    result = validate(
        billing_frame(spark, []),
        load_suite(CONF / "sources" / "billing.yaml"),
        source_system="billing",
        key_column="source_key",
        run_id="run-2",
        docs_dir=None,
        previous_row_count=500,
    )
    assert result.stopped
    assert result.batch_failures == [
        "source 'billing': row_count_within_last_run failed: observed 0, expected min_value=100, max_value=1500"
    ]


def test_renamed_source_column_stops_the_batch(spark):
    columns = [("family_name" if c == "surname" else c) for c in BILLING_COLUMNS]
    frame = billing_frame(spark, [billing_row("1"), billing_row("2")], columns)
    result = validate(
        frame,
        load_suite(CONF / "sources" / "billing.yaml"),
        source_system="billing",
        key_column="source_key",
        run_id="run-3",
        docs_dir=None,
    )
    assert result.stopped
    assert result.batch_failures == [
        "source 'billing': expect_table_columns_to_match_set failed: missing columns ['surname']; "
        "unexpected columns ['family_name']"
    ]
    assert result.quarantined.count() == 0 and result.passed.count() == 2


def test_retyped_and_vanished_columns_stop_the_batch(spark):
    suite = SuiteConfig.model_validate(
        {
            "suite": "drift",
            "expectations": [
                {
                    "expect": "expect_column_values_to_be_of_type",
                    "kwargs": {"column": "birth_date", "type_": "DateType"},
                    "severity": "batch",
                },
                {
                    "expect": "expect_column_values_to_match_regex",
                    "kwargs": {"column": "email", "regex": "@"},
                    "severity": "row",
                },
            ],
        }
    )
    frame = spark.createDataFrame(
        [("k1", "1980-01-02", "a@b.co")], "record_id string, birth_date string, email_address string"
    )
    result = validate(frame, suite, source_system="webshop", key_column="record_id", run_id="run-4", docs_dir=None)
    assert len(result.batch_failures) == 2
    retyped, vanished = result.batch_failures
    assert retyped == "source 'webshop': expect_column_values_to_be_of_type(birth_date) failed: observed StringType"
    assert vanished.startswith("source 'webshop': expect_column_values_to_match_regex(email) failed: could not run:")
    assert result.summary["stopped"] is True


def test_key_column_must_exist_and_not_be_pii(spark, std_frame):
    suite = load_suite(CONF / "canonical.yaml")
    with pytest.raises(ValueError, match="key column 'id' is not a column"):
        validate(std_frame, suite, source_system="s", key_column="id", run_id="r", docs_dir=None)
    with pytest.raises(ValueError, match="key column 'email' is a PII column"):
        validate(std_frame, suite, source_system="s", key_column="email", run_id="r", docs_dir=None)
