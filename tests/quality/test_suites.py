"""Suite YAML parsing: every error names the file and the key; run-time resolution."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from config.errors import ConfigError
from quality.suites import RowCountWithinLastRun, SuiteConfig, load_suite
from matching.standardize import EXTRA_COLUMNS
from schemas.canonical import CANONICAL_SCHEMA, MATCH_ONLY_ATTRIBUTES

CONF = Path(__file__).resolve().parents[2] / "conf" / "quality"
SUITE_FILES = [CONF / "canonical.yaml", *sorted((CONF / "sources").glob("*.yaml"))]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_suite_loads():
    names = {load_suite(path).suite for path in SUITE_FILES}
    assert names == {"canonical", "sales_crm", "billing", "support_desk", "webshop"}


def test_canonical_suite_expects_exactly_the_canonical_columns_and_iso_countries():
    suite = load_suite(CONF / "canonical.yaml")
    by_name = {e.expect: e for e in suite.expectations}
    columns = by_name["expect_table_columns_to_match_set"].kwargs["column_set"]
    assert sorted(columns) == sorted([*CANONICAL_SCHEMA.fieldNames(), *MATCH_ONLY_ATTRIBUTES, *EXTRA_COLUMNS])
    countries = by_name["expect_column_values_to_be_in_set"].kwargs["value_set"]
    assert len(countries) == 249 and "NO" in countries and "GB" in countries
    assert all(isinstance(c, str) and len(c) == 2 for c in countries)


def test_unknown_expectation_names_file_index_and_key(tmp_path):
    path = write(tmp_path, "suite: s\nexpectations:\n  - {expect: expect_column_to_be_lovely, severity: batch}\n")
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    expected = f"{path}: expectations[0].expect: unknown expectation 'expect_column_to_be_lovely'"
    assert str(error.value).startswith(expected)


def test_bad_severity_is_named(tmp_path):
    path = write(
        tmp_path,
        "suite: s\nexpectations:\n"
        "  - {expect: expect_column_values_to_not_be_null, kwargs: {column: a}, severity: batch}\n"
        "  - {expect: expect_column_values_to_not_be_null, kwargs: {column: b}, severity: fatal}\n",
    )
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    assert str(error.value) == f"{path}: expectations[1].severity: expected 'row', 'field' or 'batch', got 'fatal'"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{expect: expect_column_values_to_match_regex, kwargs: {regex: x}, severity: row}",
            "kwargs.column: field required",
        ),
        (
            "{expect: expect_column_values_to_not_be_null, kwargs: {column: a, colour: red}, severity: row}",
            "kwargs.colour: extra fields not permitted",
        ),
        (
            "{expect: expect_table_row_count_to_be_between, kwargs: {min_value: 1}, severity: row}",
            "severity: 'row' needs an expectation that judges each row",
        ),
        (
            "{expect: expect_column_values_to_not_be_null, kwargs: {column: a, mostly: 0.9}, severity: row}",
            "kwargs.mostly: not allowed on a row-level expectation",
        ),
        (
            "{expect: expect_column_pair_values_to_be_equal, kwargs: {column_A: a, column_B: b}, severity: field}",
            "severity: 'field' needs an expectation that judges one column's values",
        ),
        (
            "{expect: expect_column_values_to_not_be_null, kwargs: {column: a, mostly: 0.9}, severity: field}",
            "kwargs.mostly: not allowed on a field-level expectation (every failing value is nulled)",
        ),
        (
            "{expect: row_count_within_last_run, kwargs: {min_ratio: 2, max_ratio: 1}, severity: batch}",
            "min_ratio 2.0 is above max_ratio 1.0",
        ),
    ],
)
def test_bad_kwargs_and_combinations_are_named(tmp_path, entry, message):
    path = write(tmp_path, f"suite: s\nexpectations:\n  - {entry}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: expectations\[0\]: ") as error:
        load_suite(path)
    assert message in str(error.value)


def test_aggregate_on_pii_column_is_refused(tmp_path):
    path = write(
        tmp_path,
        "suite: s\npii_columns: [birth_date]\nexpectations:\n"
        "  - expect: expect_column_max_to_be_between\n"
        "    kwargs: {column: birth_date, max_value: '2020-01-01'}\n"
        "    severity: batch\n",
    )
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    expected = f"{path}: expectations[0]: expect: expect_column_max_to_be_between would write values of PII column"
    assert str(error.value).startswith(f"{expected} 'birth_date'")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_suite(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        (None, {"min_value": 1, "max_value": None}),
        (0, {"min_value": 1, "max_value": None}),
        (100, {"min_value": 20, "max_value": 300}),
        (3, {"min_value": 1, "max_value": 9}),
    ],
)
def test_row_count_bounds_follow_the_previous_run(previous, expected):
    assert RowCountWithinLastRun(min_ratio=0.2, max_ratio=3.0).bounds(previous) == expected


def test_run_time_resolution_of_today_and_row_count():
    suite = SuiteConfig.model_validate(
        {
            "suite": "s",
            "expectations": [
                {
                    "expect": "expect_column_values_to_be_between",
                    "severity": "row",
                    "kwargs": {"column": "birth_date", "min_value": "1900-01-01", "max_value": "today"},
                },
                {"expect": "row_count_within_last_run", "severity": "batch", "kwargs": {"min_ratio": 0.5}},
            ],
        }
    )
    between, row_count = suite.to_gx(today=dt.date(2030, 5, 6), previous_row_count=10)
    assert (between.min_value, between.max_value) == (dt.date(1900, 1, 1), dt.date(2030, 5, 6))
    assert row_count.expectation_type == "expect_table_row_count_to_be_between"
    assert (row_count.min_value, row_count.max_value) == (5, None)
    assert [between.meta["cdi_index"], row_count.meta["cdi_index"]] == [0, 1]


def test_a_suite_needs_expectations(tmp_path):
    path = write(tmp_path, "suite: s\nexpectations: []\n")
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    assert str(error.value) == f"{path}: expectations: expected at least one expectation"
