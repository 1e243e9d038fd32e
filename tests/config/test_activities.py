"""Activity tables of a source and the customer 360 settings in the pipeline config."""

from datetime import date
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.pipeline import (
    ActivityConfig,
    MappingExpression,
    ReadSettings,
    load_pipeline_config,
)

SOURCE = """
sources:
  - name: billing
    kind: jdbc
    url: jdbc:sqlite:billing.db
    table: billing_accounts
    primary_key: [acct_no]
    mapping: {email: email_addr}
    activities:
      - name: invoices
        kind: jdbc
        url: jdbc:sqlite:billing.db
        table: invoices
        primary_key: [invoice_no]
        customer_key: [acct_no]
        timestamp: issued_at
        type: {expr: "'invoice'"}
        amount: total
        currency: currency
        status: status
        watermark: issued_at
        deletes: snapshot
      - name: payments
        kind: csv
        path: payments.csv
        primary_key: [payment_id]
        customer_key: [acct_no]
        timestamp: {expr: "to_timestamp(paid_at, 'dd/MM/yyyy HH:mm')"}
        type: {expr: "'payment'"}
        channel: method
        day_first: true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdi.yaml"
    path.write_text(text)
    return path


def test_activities_parse_into_typed_objects(tmp_path: Path) -> None:
    config = load_pipeline_config(write(tmp_path, SOURCE))
    invoices, payments = config.source("billing").activities
    assert isinstance(invoices, ReadSettings) and isinstance(config.source("billing"), ReadSettings)
    assert (invoices.name, invoices.kind, invoices.table, invoices.primary_key, invoices.customer_key) == (
        "invoices", "jdbc", "invoices", ("invoice_no",), ("acct_no",)
    )
    assert (invoices.timestamp, invoices.type, invoices.amount, invoices.currency, invoices.status) == (
        "issued_at", MappingExpression(expr="'invoice'"), "total", "currency", "status"
    )
    assert (invoices.channel, invoices.deletes.mode, invoices.day_first) == (None, "snapshot", False)
    assert payments.timestamp == MappingExpression(expr="to_timestamp(paid_at, 'dd/MM/yyyy HH:mm')")
    assert (payments.path, payments.channel, payments.day_first, payments.deletes.mode) == (
        "payments.csv", "method", True, "none"
    )


def test_a_source_without_activities_has_none(tmp_path: Path) -> None:
    text = SOURCE[: SOURCE.index("    activities:")]
    assert load_pipeline_config(write(tmp_path, text)).source("billing").activities == ()


def test_customer_360_defaults(tmp_path: Path) -> None:
    settings = load_pipeline_config(write(tmp_path, SOURCE)).customer_360
    assert (settings.as_of, settings.new_days, settings.active_days, settings.lapsing_days) == ("run", 90, 180, 365)


@pytest.mark.parametrize(("as_of", "expected"), [("2026-01-01", date(2026, 1, 1)), ("'2026-01-01'", date(2026, 1, 1)),
                                                 ("run", "run")])
def test_customer_360_as_of_is_run_or_a_date(tmp_path: Path, as_of: str, expected: object) -> None:
    config = load_pipeline_config(write(tmp_path, SOURCE + f"customer_360: {{as_of: {as_of}}}\n"))
    assert config.customer_360.as_of == expected


def activity_without(key: str) -> str:
    """SOURCE with ``key`` removed from the invoices activity."""
    lines = SOURCE.splitlines(keepends=True)
    start = lines.index("      - name: invoices\n")
    index = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{key}:"))
    return "".join(lines[:index] + lines[index + 1 :])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (activity_without("timestamp"), "sources[0].activities[0].timestamp: Field required"),
        (activity_without("type"), "sources[0].activities[0].type: Field required"),
        (activity_without("customer_key"), "sources[0].activities[0].customer_key: Field required"),
        (activity_without("primary_key"), "sources[0].activities[0].primary_key: Field required"),
        (SOURCE.replace("customer_key: [acct_no]\n        timestamp: issued_at",
                        "customer_key: [acct_no, region]\n        timestamp: issued_at"),
         "sources[0]: activities[0].customer_key: expected 1 column(s), one per primary_key column (acct_no)"),
        (SOURCE.replace("- name: payments", "- name: invoices"),
         "sources[0].activities: activity name 'invoices' appears more than once"),
        (SOURCE.replace("- name: payments", "- name: Payments"), "sources[0].activities[1].name: expected lower-case"),
        (SOURCE.replace("customer_key: [acct_no]\n        timestamp: issued_at",
                        "customer_key: []\n        timestamp: issued_at"),
         "sources[0].activities[0].customer_key: Tuple should have at least 1 item"),
        (SOURCE.replace("type: {expr: \"'payment'\"}", "type: {expr: ''}"),
         "sources[0].activities[1].type: expr: expected a Spark SQL expression as a non-empty string"),
        (SOURCE.replace("        path: payments.csv\n", ""),
         "sources[0].activities[1]: path: required for a csv source"),
        (SOURCE.replace("        deletes: snapshot\n", "        deletes: {mode: flag, column: gone, value: 1}\n"),
         "sources[0].activities[0].deletes: an activity's deletes is 'none' or 'snapshot', not 'flag'"),
        (SOURCE.replace("        day_first: true\n", "        password: hunter2\n"),
         "sources[0].activities[1]: 'password' must not be written in YAML"),
        (SOURCE.replace("        day_first: true\n", "        colour: blue\n"),
         "sources[0].activities[1].colour: Extra inputs are not permitted"),
        (SOURCE + "customer_360: {active_days: 400}\n",
         "customer_360: lapsing_days: expected more than active_days (400), got 365"),
        (SOURCE + "customer_360: {active_days: 200, lapsing_days: 200}\n",
         "customer_360: lapsing_days: expected more than active_days (200), got 200"),
        (SOURCE + "customer_360: {active_days: 0}\n", "customer_360.active_days: Input should be greater than 0"),
        (SOURCE + "customer_360: {new_days: 0}\n", "customer_360.new_days: Input should be greater than 0"),
        (SOURCE + "customer_360: {as_of: yesterday}\n",
         "customer_360.as_of: expected 'run' or a date like 2026-01-01, got 'yesterday'"),
        (SOURCE + "customer_360: {as_of: 2026-01-01 12:00:00}\n", "customer_360.as_of: expected 'run' or a date"),
    ],
)
def test_activity_and_customer_360_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(path)
    assert str(error.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(error.value)


def test_activity_config_is_a_read_settings_with_its_own_fields() -> None:
    """The readers in jobs/sources.py take ReadSettings; an activity must stay one."""
    assert issubclass(ActivityConfig, ReadSettings)
    assert {"customer_key", "timestamp", "type"} <= set(ActivityConfig.model_fields)
    assert "mapping" not in ActivityConfig.model_fields
