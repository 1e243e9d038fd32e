from pathlib import Path

import pytest

from config.pipeline import MappingExpression, load_pipeline_config
from config.yaml_files import expand_env
from config.errors import ConfigError

VALID_SOURCE = """
  - name: crm
    kind: csv
    path: crm.csv
    primary_key: [id]
    mapping: {given_name: first, family_name: last}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdi.yaml"
    path.write_text(text)
    return path


def test_valid_config_parses_into_typed_objects(tmp_path):
    config = load_pipeline_config(write(tmp_path, "lake: /tmp/lake\nsources:" + VALID_SOURCE))
    source = config.source("crm")
    assert (config.lake, source.kind, source.primary_key, source.mapping) == (
        "/tmp/lake",
        "csv",
        ("id",),
        {"given_name": "first", "family_name": "last"},
    )
    assert source.standardize.default_region == "GB"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sources:\n  - name: crm\n    kind: ftp\n    path: x\n    primary_key: [id]\n    mapping: {email: e}\n",
         "sources[0].kind: Input should be 'jdbc', 'csv', 'json' or 'parquet'"),
        ("sources:\n  - name: crm\n    kind: csv\n    path: x\n    primary_key: [id]\n    mapping: {surname: s}\n",
         "sources[0].mapping: unknown canonical attribute 'surname'"),
        ("sources:\n  - name: crm\n    kind: jdbc\n    table: t\n    primary_key: [id]\n    mapping: {email: e}\n",
         "sources[0]: url: required for a jdbc source"),
        ("sources:\n  - name: crm\n    kind: jdbc\n    url: jdbc:sqlite:x\n    primary_key: [id]\n    mapping: {email: e}\n",
         "sources[0]: table / query: give exactly one"),
        ("sources:\n  - name: crm\n    kind: jdbc\n    url: jdbc:x\n    table: t\n    password: hunter2\n"
         "    primary_key: [id]\n    mapping: {email: e}\n",
         "sources[0]: 'password' must not be written in YAML"),
        ("sources:\n  - name: crm\n    kind: csv\n    path: x\n    primary_key: []\n    mapping: {email: e}\n",
         "sources[0].primary_key: Tuple should have at least 1 item"),
        ("sources:\n  - name: Bad Name\n    kind: csv\n    path: x\n    primary_key: [id]\n    mapping: {email: e}\n",
         "sources[0].name: expected lower-case letters"),
        ("sources:" + VALID_SOURCE + VALID_SOURCE, "sources: source name 'crm' appears more than once"),
        ("lake: x\nsources:" + VALID_SOURCE + "colour: blue\n", "colour: Extra inputs are not permitted"),
        ("sources:" + VALID_SOURCE + "retention: {vacuum_hours: -1}\n",
         "retention.vacuum_hours: Input should be greater than or equal to 0"),
        ("sources:" + VALID_SOURCE + "retention: {run_folder_days: 0}\n",
         "retention.run_folder_days: Input should be greater than or equal to 1"),
        ("sources:\n  - name: crm\n    kind: jdbc\n    url: jdbc:sqlite:x\n    table: t\n    primary_key: [n]\n"
         "    row_number_column: n\n    mapping: {email: e}\n",
         "sources[0]: row_number_column: a database query has no row order to number"),
        ("sources: [\n", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a mapping at the top level"),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cdi.yaml: config file not found"):
        load_pipeline_config(tmp_path / "cdi.yaml")


def test_environment_references_are_expanded():
    environ = {"DATA": "/srv/data"}
    assert expand_env({"a": ["${DATA}/x.csv", "${MISSING:-dflt}"], "n": 3}, environ) == {
        "a": ["/srv/data/x.csv", "dflt"],
        "n": 3,
    }


def test_unset_environment_reference_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("CDI_NOT_SET", raising=False)
    path = write(tmp_path, "lake: ${CDI_NOT_SET}\nsources:" + VALID_SOURCE)
    with pytest.raises(ConfigError, match="environment variable CDI_NOT_SET is referenced but not set"):
        load_pipeline_config(path)


def test_the_shipped_demo_config_is_valid():
    config = load_pipeline_config(Path(__file__).resolve().parents[2] / "conf" / "cdi.yaml")
    assert [s.name for s in config.sources] == ["sales_crm", "billing", "support_desk", "webshop"]


EXPRESSION_SOURCE = """
  - name: febrl
    kind: csv
    path: febrl.csv
    primary_key: [rec_id]
    mapping:
      given_name: given_name
      address_line1: {expr: "concat_ws(' ', street_number, address_1)"}
"""


def test_a_mapping_entry_may_be_a_spark_sql_expression(tmp_path):
    source = load_pipeline_config(write(tmp_path, "sources:" + EXPRESSION_SOURCE)).source("febrl")
    assert source.mapping == {
        "given_name": "given_name",
        "address_line1": MappingExpression(expr="concat_ws(' ', street_number, address_1)"),
    }


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('""', "sources[0].mapping.address_line1: expected a source column name, got an empty string"),
        ('{expr: ""}', "sources[0].mapping.address_line1: expr: expected a Spark SQL expression as a non-empty string"),
        ("{expr: 3}", "sources[0].mapping.address_line1: expr: expected a Spark SQL expression as a non-empty string"),
        ("{exp: street}", "sources[0].mapping.address_line1: expected a source column name or {expr: "),
        ("{expr: a, column: b}", "sources[0].mapping.address_line1: expected a source column name or {expr: "),
        ("[street_number, street_name]", "sources[0].mapping.address_line1: expected a source column name or {expr: "),
    ],
)
def test_bad_mapping_entries_name_the_file_and_the_key(tmp_path, entry, expected):
    text = "sources:\n  - name: crm\n    kind: csv\n    path: x\n    primary_key: [id]\n"
    path = write(tmp_path, text + f"    mapping:\n      address_line1: {entry}\n")
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(path)
    assert str(error.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(error.value)


def test_with_a_session_running_the_expression_is_parsed_at_load(spark, tmp_path):
    path = write(tmp_path, "sources:" + EXPRESSION_SOURCE.replace("address_1)", "address_1"))
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(path)
    assert str(error.value).startswith(
        f"{path}: sources[0].mapping.address_line1: expr: \"concat_ws(' ', street_number, address_1\" "
        "is not a valid Spark SQL expression: [PARSE_SYNTAX_ERROR]"
    )
