"""``cdi export``: segments of golden customers to Parquet or CSV, on a small lake written with delta-rs."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import write_deltalake

from config.lake import Lake
from jobs.cli import main
from jobs.export import spreadsheet_safe
from matching.customer_360 import CUSTOMER_360_SCHEMA
from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.golden import GOLDEN_CUSTOMERS_SCHEMA, PUBLICATIONS_SCHEMA
from schemas.arrow import arrow_schema

AT = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
# golden id -> (status at the published version, given name, family name, segment, monetary)
CUSTOMERS = {
    "G01": ("active", "ann", "lee", "lapsing", {"GBP": Decimal("1234.5600"), "EUR": Decimal("0.0100")}),
    "G02": ("active", "bob", "o'hara, jr", "lost", {}),
    "G03": ("active", "cy", "moss", "active", {"GBP": Decimal("5.0000")}),
    "G04": ("retired", "dee", "lee", "lapsing", {}),  # in customer_360 from before it was retired
}


def _golden(golden_id: str, status: str, given: str, family: str) -> dict:
    values = {a: None for a in CANONICAL_ATTRIBUTES} | dict(given_name=given, family_name=family,
                                                             full_name=f"{given} {family}", email=f"{given}@example.com",
                                                             postcode="LS61QT", country="GB")
    return dict(golden_id=golden_id, status=status, survivor_id="G01" if status == "retired" else None, **values,
                lineage=[], num_records=1, first_seen=AT, last_updated=AT, content_hash=f"c-{golden_id}", run_id="r1")


def _view(golden_id: str, segment: str, monetary: dict[str, Decimal]) -> dict:
    return dict(golden_id=golden_id, departments=["billing"], department_count=1, per_department=[],
                first_contact=AT, last_contact=AT, recency_days=200 if segment == "lapsing" else 400, frequency_365d=3,
                monetary=list(monetary.items()), monetary_365d=[], open_tickets=0, preferred_channel=None,
                segment=segment, content_hash="h", as_of=AT)


def _append(path: str, rows: list[dict], schema) -> None:
    write_deltalake(path, pa.Table.from_pylist(rows, schema=arrow_schema(schema)), mode="append")


def build_lake(root: Path, with_view: bool = True) -> Lake:
    """Version 0 of golden_customers is published; version 1 (a run that has not published yet) renames ann and
    adds G05, lapsing: the export must show neither."""
    lake = Lake.at(root)
    golden = lake.gold("golden_customers")
    _append(golden, [_golden(g, status, given, family) for g, (status, given, family, _, _) in CUSTOMERS.items()],
            GOLDEN_CUSTOMERS_SCHEMA)
    _append(lake.gold("_publications"), [dict(run_id="r1", published_at=AT, golden_customers_version=0,
                                              customer_xref_version=0)], PUBLICATIONS_SCHEMA)
    _append(golden, [_golden("G01", "active", "anne", "lee"), _golden("G05", "active", "eve", "new")],
            GOLDEN_CUSTOMERS_SCHEMA)
    if with_view:
        views = [_view(g, segment, monetary) for g, (_, _, _, segment, monetary) in CUSTOMERS.items()]
        _append(lake.gold("customer_360"), views + [_view("G05", "lapsing", {})], CUSTOMER_360_SCHEMA)
    return lake


def write_config(tmp_path: Path, lake: Lake) -> str:
    config = tmp_path / "cdi.yaml"
    source = {"name": "crm", "kind": "csv", "path": str(tmp_path / "crm.csv"), "primary_key": ["id"],
              "mapping": {"given_name": "first"}}
    config.write_text(yaml.safe_dump({"lake": lake.root, "sources": [source]}))
    return str(config)


@pytest.fixture
def config(tmp_path: Path) -> str:
    return write_config(tmp_path, build_lake(tmp_path / "lake"))


def test_parquet_has_the_published_customers_of_the_segment(config: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "lapsing.parquet"
    assert main(["export", "--config", config, "--segment", "lapsing", "--to", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"1 customers written to {out} (lapsing 1)"
    rows = pq.read_table(out).to_pylist()
    assert [(r["golden_id"], r["full_name"], r["email"], r["segment"], r["recency_days"]) for r in rows] == [
        ("G01", "ann lee", "ann@example.com", "lapsing", 200)  # not anne (unpublished), not G04 (retired) nor G05
    ]
    assert dict(rows[0]["monetary"]) == {"EUR": Decimal("0.0100"), "GBP": Decimal("1234.5600")}
    assert "national_id" not in rows[0] and "birth_date" not in rows[0]
    assert list(out.parent.iterdir()) == [out]  # nothing left beside it


def test_csv_takes_repeated_and_comma_segments_and_writes_monetary_as_json(config: str, tmp_path: Path,
                                                                           capsys) -> None:
    out = tmp_path / "out.csv"
    code = main(["export", "--config", config, "--segment", "lost,lapsing", "--segment", "active", "--to", str(out)])
    assert code == 0
    assert capsys.readouterr().out.strip() == f"3 customers written to {out} (active 1, lapsing 1, lost 1)"
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["golden_id"], r["family_name"], r["segment"]) for r in rows] == [
        ("G01", "lee", "lapsing"), ("G02", "o'hara, jr", "lost"), ("G03", "moss", "active")
    ]
    assert json.loads(rows[0]["monetary"]) == {"EUR": "0.0100", "GBP": "1234.5600"} and rows[1]["monetary"] == "{}"
    assert rows[0]["frequency_365d"] == "3" and rows[0]["middle_name"] == ""


@pytest.mark.parametrize("arguments, message", [
    (["--segment", "lapsing,dormant"], "unknown segment(s): dormant; choose from new, active, lapsing, lost, none, undated"),
    (["--segment", " , "], "unknown segment(s): (none given)"),
])
def test_an_unknown_segment_is_exit_2(config: str, tmp_path: Path, capsys, arguments: list[str], message: str) -> None:
    out = tmp_path / "out.csv"
    assert main(["export", "--config", config, *arguments, "--to", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_an_existing_file_is_kept_unless_overwrite(config: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.csv"
    out.write_text("keep me")
    assert main(["export", "--config", config, "--segment", "lost", "--to", str(out)]) == 2
    assert f"--to {out} exists; give --overwrite to replace it" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["export", "--config", config, "--segment", "lost", "--to", str(out), "--overwrite"]) == 0
    assert "G02" in out.read_text()


def test_an_unknown_format_or_a_lake_without_the_view_is_exit_2(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, build_lake(tmp_path / "lake", with_view=False))
    assert main(["export", "--config", config, "--segment", "lost", "--to", str(tmp_path / "out.xlsx")]) == 2
    assert "name a .parquet or .csv file" in capsys.readouterr().err
    assert main(["export", "--config", config, "--segment", "lost", "--to", str(tmp_path / "out.csv")]) == 2
    assert "no customer_360 table" in capsys.readouterr().err and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    "value, written",
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("-12.50", "-12.50"),
        ("o'hara", "o'hara"),
        (None, None),
    ],
)
def test_a_csv_cell_a_spreadsheet_would_run_is_quoted(value, written):
    assert spreadsheet_safe(value) == written
