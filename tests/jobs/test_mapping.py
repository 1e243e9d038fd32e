"""Mapping expressions end to end on a tiny CSV source: opened as ingest opens it, then standardized."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from config.pipeline import PipelineConfig
from config.yaml_files import parse_model
from config.errors import ConfigError, SourceError
from jobs.ingest import with_lineage
from jobs.sources import read_source
from jobs.standardize import standardize_source
from matching.standardize import Vocabulary

CSV = """rec_id,First Name,middle_name,surname,street_number,street_name,dob
r1,Anna,Maria,Smith,12,High Street,19900403
r2,Bob,,Jones,,Station Road,
"""
VOCABULARY = Vocabulary(
    nicknames={"bob": "robert"},
    honorifics=frozenset(),
    suffixes={},
    address_tokens={"street": "st", "road": "rd"},
    countries={},
)


def csv_source(tmp_path: Path, mapping: dict) -> PipelineConfig:
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    source = {
        "name": "people", "kind": "csv", "path": str(path), "primary_key": ["rec_id"], "mapping": mapping,
        "standardize": {"date_formats": ["yyyyMMdd"]},
    }
    return parse_model(PipelineConfig, {"sources": [source]}, "cdi.yaml").sources[0]


def test_expressions_over_csv_columns_reach_the_canonical_record(spark, tmp_path):
    source = csv_source(tmp_path, {
        # Bronze names: the header's "First Name" lands as First_Name.
        "given_name": {"expr": "concat_ws(' ', First_Name, middle_name)"},
        "family_name": "surname",
        "address_line1": {"expr": "concat_ws(' ', street_number, street_name)"},
        "birth_date": "dob",
    })
    bronze = with_lineage(read_source(spark, source), source, "run-1", dt.datetime(2025, 1, 2))
    rows = standardize_source(bronze, source, VOCABULARY).orderBy("source_key").collect()
    assert [
        (r.source_key, r.given_name, r.middle_name, r.family_name, r.address_line1, r.birth_date) for r in rows
    ] == [
        ("r1", "anna", "maria", "smith", "12 high st", dt.date(1990, 4, 3)),
        ("r2", "robert", None, "jones", "station rd", None),
    ]


def test_an_expression_over_a_column_the_source_lacks_stops_ingest(spark, tmp_path):
    source = csv_source(tmp_path, {"address_line1": {"expr": "concat_ws(' ', house_no, street_name)"}})
    with pytest.raises(SourceError) as error:
        read_source(spark, source)
    message = str(error.value)
    assert message.startswith(
        "source 'people': mapping.address_line1.expr \"concat_ws(' ', house_no, street_name)\" "
        "does not resolve against the source's columns ([UNRESOLVED_COLUMN"
    )
    assert message.endswith("it has: rec_id, First_Name, middle_name, surname, street_number, street_name, dob")


def test_an_expression_spark_cannot_parse_is_a_config_error_at_ingest(spark, tmp_path, monkeypatch):
    # Loaded with no session running (as `cdi run` does), the expression is checked when the source opens.
    monkeypatch.setattr("config.pipeline.sql_parse_error", lambda expression: None)
    source = csv_source(tmp_path, {"address_line1": {"expr": "concat_ws(' ', street_number street_name"}})
    with pytest.raises(ConfigError, match=r"^source 'people': mapping.address_line1.expr .* is not a valid Spark SQL "
                                          r"expression: \[PARSE_SYNTAX_ERROR\]"):
        read_source(spark, source)


def test_standardize_reports_an_expression_bronze_cannot_resolve_as_a_config_error(spark, tmp_path):
    source = csv_source(tmp_path, {"address_line1": {"expr": "concat_ws(' ', street_number, street_name)"}})
    bronze = with_lineage(read_source(spark, source), source, "run-1", dt.datetime(2025, 1, 2)).drop("street_name")
    with pytest.raises(ConfigError, match=r"^source 'people': mapping 'address_line1': expression "
                                          r"\"concat_ws\(' ', street_number, street_name\)\" does not resolve"):
        standardize_source(bronze, source, VOCABULARY)
