"""Bad input through ingest → standardize → validate with real Spark, Delta and Great Expectations."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from config.pipeline import PipelineConfig
from config.errors import ValidationStopped
from jobs.pipeline import run_pipeline
from jobs.runs import RunContext

UP_TO_VALIDATE = ("ingest", "standardize", "validate")
HEADER = "id,name,born,phone,email\n"
SUITE = """
suite: contacts
expectations:
  - expect: expect_column_values_to_not_be_null
    kwargs: {column: id}
    severity: batch
  - expect: expect_column_values_to_be_of_type
    kwargs: {column: born, type_: StringType}
    severity: batch
  - expect: row_count_within_last_run
    kwargs: {max_ratio: 3.0, min_rows: 1}
    severity: batch
pii_columns: [name, born, phone, email]
"""


def context_for(
    tmp: Path, source_path: Path, run_id: str, kind: str = "csv", leads: Path | None = None
) -> RunContext:
    """One source, ``contacts`` (with the suite above); with ``leads`` a second CSV source of the same shape, no suite."""
    suite = tmp / "suite.yaml"
    suite.write_text(SUITE)
    contacts = {
        "name": "contacts",
        "kind": kind,
        "path": str(source_path),
        "primary_key": ["id"],
        "suite": str(suite),
        "standardize": {"default_region": "GB", "default_country": "GB", "day_first": True},
        "mapping": {"full_name": "name", "birth_date": "born", "phone": "phone", "email": "email"},
    }
    sources = [contacts] + ([{**contacts, "name": "leads", "kind": "csv", "path": str(leads), "suite": None}] if leads else [])
    config = PipelineConfig.model_validate({"lake": str(tmp / "lake"), "sources": sources})
    return RunContext.create(config, run_id, started_at=datetime(2026, 3, 1, tzinfo=timezone.utc))


def people(n: int, start: int = 1) -> str:
    return "".join(f"C{i},Person {i} Smith,01/02/1980,020 7946 0{i % 1000:03d},p{i}@example.com\n" for i in range(start, start + n))


def test_bad_values_are_nulled_with_a_reason_and_only_unmatchable_records_are_quarantined(spark, tmp_path):
    source = tmp_path / "contacts.csv"
    source.write_bytes(
        (
            "\ufeff" + HEADER
            + "C1,Ann Lee,03/04/1990,020 7946 0001,ann@example.com\n"
            + "C2,   ,03/04/1990,020 7946 0002,blank.name@example.com\n"
            + "C3,Bob Ray,31/02/1990,020 7946 0003,bob@example.com\n"
            + "C4,Cy Orr,03/04/1990,CALL-ME-NOW,cy@example.com\n"
            + "C5,Dee Fox,,,\n"
            + "C6,   ,03/04/1990,,\n"
        ).encode("utf-8")
    )
    # A second source whose keys are the same strings: its good C6 is not the contacts' unmatchable C6.
    leads = tmp_path / "leads.csv"
    leads.write_text(HEADER + "C1,Ann Lee,03/04/1990,,\nC6,Eve Day,,,eve@example.com\n")
    context = context_for(tmp_path, source, "run-1", leads=leads)

    run_pipeline(spark, context, UP_TO_VALIDATE)

    everything = DeltaTable(context.lake.customers_std).to_pandas()
    assert sorted(everything.loc[everything["source_system"] == "leads", "source_key"]) == ["C1", "C6"]
    std = everything[everything["source_system"] == "contacts"].set_index("source_key").sort_index()
    assert list(std.index) == ["C1", "C2", "C3", "C4", "C5"]
    assert std.loc["C1", ["given_name", "family_name", "phone"]].tolist() == ["ann", "lee", "+442079460001"]
    assert str(std.loc["C1", "birth_date"]) == "1990-04-03"
    assert std.loc["C5", ["birth_date", "phone", "email"]].isna().all()
    # One unusable value is nulled, the reason stays on the record, and the record goes on to matching.
    assert pd.isna(std.loc["C3", "birth_date"]) and std.loc["C3", "email"] == "bob@example.com"
    assert std.loc["C3", "std_issues"] == "birth_date: unparseable date"
    assert pd.isna(std.loc["C4", "phone"]) and std.loc["C4", "std_issues"] == "phone: not a valid phone number"
    assert std.loc["C2", ["full_name", "email"]].tolist() == [None, "blank.name@example.com"]
    assert std["std_issues"].fillna("").str.contains("31/02/1990|CALL-ME").sum() == 0
    # Only a record with no name and no identifier cannot be matched at all.
    quarantine = DeltaTable(context.lake.quarantine).to_pandas().set_index("source_key").sort_index()
    assert list(quarantine.index) == ["C6"] and quarantine.loc["C6", "source_system"] == "contacts"
    assert (quarantine["stage"] == "validate").all()
    assert quarantine.loc["C6", "reason"] == "no name and no identifier (email, phone, national id)"


@pytest.fixture(scope="module")
def first_run(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first")
    source = tmp / "contacts.csv"
    source.write_text(HEADER + people(10))
    run_pipeline(spark, context_for(tmp, source, "run-1"), UP_TO_VALIDATE)
    return tmp


def rerun_with(spark, first: Path, tmp: Path, write_source) -> tuple[RunContext, int]:
    shutil.copytree(first / "lake", tmp / "lake")
    source = tmp / "contacts.csv"
    write_source(source)
    context = context_for(tmp, source, "run-2")
    return context, DeltaTable(context.lake.customers_std).version()


@pytest.mark.parametrize(
    ("write_source", "message"),
    [
        (lambda p: p.write_text(HEADER), "source 'contacts': the source returned no rows"),
        (lambda p: p.write_text(HEADER + people(10) + people(40, start=100)), "row_count_within_last_run failed"),
    ],
    ids=["suddenly-empty", "ten-times-its-rows"],
)
def test_batch_level_failures_stop_before_anything_downstream(spark, first_run, tmp_path, write_source, message):
    context, std_version = rerun_with(spark, first_run, tmp_path, write_source)
    bronze_path = context.lake.bronze("contacts")
    bronze_before = DeltaTable(bronze_path).to_pandas().sort_values("source_key", ignore_index=True)

    with pytest.raises(ValidationStopped, match=message):
        run_pipeline(spark, context, UP_TO_VALIDATE)

    assert DeltaTable(context.lake.customers_std).version() == std_version
    # The rejected batch is rolled back out of bronze, so a corrected file runs through.
    bronze_after = DeltaTable(bronze_path).to_pandas().sort_values("source_key", ignore_index=True)
    pd.testing.assert_frame_equal(bronze_after, bronze_before)
    (tmp_path / "contacts.csv").write_text(HEADER + people(10) + people(1, start=11))
    run_pipeline(spark, context_for(tmp_path, tmp_path / "contacts.csv", "run-3"), UP_TO_VALIDATE)
    assert len(DeltaTable(context.lake.customers_std).to_pandas()) == 11
    audit = DeltaTable(context.lake.run_audit).to_pandas()
    failed = audit[(audit["run_id"] == "run-2") & (audit["status"] == "failed")]
    assert failed["stage"].tolist() == ["validate"]
    detail = json.loads(failed["detail"].iloc[0])
    assert detail["error"] == "ValidationStopped" and message in detail["message"]
    report = Path(context.lake.run_dir("run-2")) / "report.html"
    assert "failed" in report.read_text(encoding="utf-8")


def test_a_column_retyped_upstream_stops_the_run(spark, tmp_path):
    source = tmp_path / "contacts.parquet"
    frame = pd.DataFrame({"id": ["C1"], "name": ["Ann Lee"], "born": ["03/04/1990"], "phone": [None], "email": [None]})
    frame.to_parquet(source)
    run_pipeline(spark, context_for(tmp_path, source, "run-1", kind="parquet"), UP_TO_VALIDATE)
    frame.assign(id=["C2"], born=[19900403]).to_parquet(source)
    context = context_for(tmp_path, source, "run-2", kind="parquet")

    with pytest.raises(ValidationStopped, match="column .born. changed type from string to bigint"):
        run_pipeline(spark, context, UP_TO_VALIDATE)
