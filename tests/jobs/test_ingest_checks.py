"""Ingest's text repairs (mojibake, control characters) and the null-drift check, on DataFrames and real files."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from config.errors import ValidationStopped
from config.lake import Lake
from config.pipeline import SourceConfig
from jobs.ingest import ingest
from jobs.ingest_checks import null_drift_of, repair_text
from tests.jobs.test_ingest import T0, bronze, config_for, csv_source


def source_config(**extra) -> SourceConfig:
    return SourceConfig.model_validate({**csv_source(Path("unused.csv")), **extra})


def ingest_audit(spark, lake: Path) -> list[dict]:
    audit = spark.read.format("delta").load(Lake.at(lake).run_audit).where("stage = 'ingest'").orderBy("started_at")
    return [json.loads(r.detail) for r in audit.collect()]


def test_utf8_read_as_latin1_is_repaired_and_genuine_latin1_stays(spark, tmp_path, caplog):
    path = tmp_path / "support.csv"
    path.write_bytes(
        b"ticket,name,visits\n"
        + "T1,José Muñoz,1\n".encode("utf-8")
        + "T2,José Müller,2\n".encode("latin-1")
        + "T3,Zoë,3\n".encode("utf-8")
    )
    lake = tmp_path / "lake"
    config = config_for(lake, csv_source(path, encoding="ISO-8859-1"))

    with caplog.at_level(logging.WARNING, logger="cdi.ingest"):
        [counts] = ingest(spark, config, Lake.at(lake), "r1", T0)

    assert {r.ticket: r.name for r in bronze(spark, lake, "support").collect()} == {
        "T1": "José Muñoz", "T2": "José Müller", "T3": "Zoë",
    }
    assert (counts.landed, counts.rejected, counts.repaired_encoding, counts.repaired_control_characters) == (3, 0, 2, 0)
    assert ingest_audit(spark, lake)[0]["repaired_encoding"] == 2
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "source support: column name: 2 value(s) were UTF-8 text read as ISO-8859-1" in warning
    assert "Jos" not in warning


def test_a_repaired_row_hashes_like_the_same_row_read_right(spark, tmp_path):
    path = tmp_path / "support.csv"
    lake = tmp_path / "lake"
    config = config_for(lake, csv_source(path, encoding="ISO-8859-1"))
    path.write_bytes("ticket,name,visits\nT1,José,1\n".encode("utf-8"))
    ingest(spark, config, Lake.at(lake), "r1", T0)
    path.write_bytes("ticket,name,visits\nT1,José,1\n".encode("latin-1"))

    [counts] = ingest(spark, config, Lake.at(lake), "r2", T0)

    assert (counts.landed, counts.unchanged, counts.repaired_encoding) == (0, 1, 0)
    assert [r.name for r in bronze(spark, lake, "support").collect()] == ["José"]


def test_windows_1252_mojibake_is_repaired_through_its_own_characters(spark):
    # As Java's windows-1252 decoder gives them: "€" is E2 82 AC, and 0x82 reads as "‚".
    rows = [("T1", "â‚¬ 5 and Å¡"), ("T2", "JosÃ©"), ("T3", "Café – “quoted” €"), ("T4", None)]
    df = spark.createDataFrame(rows, "ticket string, name string")

    repairs = repair_text(df, source_config(encoding="windows-1252"))

    assert [r.name for r in repairs.repaired.orderBy("ticket").collect()] == ["€ 5 and š", "José", "Café – “quoted” €", None]
    assert repairs.totals("support") == {"repaired_encoding": 2, "repaired_control_characters": 0}


def test_control_characters_are_counted_in_a_row_of_a_thousand_columns(spark):
    # Or-ed one after the other, a thousand flags nest too deep for Spark's expression conversion.
    names = [f"c{i}" for i in range(1000)]
    df = spark.createDataFrame([tuple(["x"] * 999 + ["y\x00"]), tuple(["x"] * 1000)], ", ".join(f"{n} string" for n in names))

    repairs = repair_text(df, source_config())

    assert repairs.totals("wide") == {"repaired_encoding": 0, "repaired_control_characters": 1}
    assert repairs.repaired.where("c999 = 'y'").count() == 1


def test_mojibake_inside_a_json_struct_is_repaired_and_a_null_struct_stays_null(spark, tmp_path):
    path = tmp_path / "people.json"
    path.write_bytes(
        '[{"id": "1", "address": {"city": "Málaga", "zip": "29001"}}, {"id": "2", "address": null}]'.encode("utf-8")
    )
    people = {"name": "people", "kind": "json", "path": str(path), "multiline": True, "encoding": "ISO-8859-1",
              "primary_key": ["id"], "mapping": {"city": "address.city"}}
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, people), Lake.at(lake), "r1", T0)

    landed = {r.id: r.address for r in bronze(spark, lake, "people").collect()}
    assert (landed["1"].city, landed["1"].zip, landed["2"]) == ("Málaga", "29001", None)
    assert counts.repaired_encoding == 1


def test_json_lines_declared_latin1_are_read_line_by_line(spark, tmp_path):
    path = tmp_path / "people.jsonl"
    path.write_bytes('{"id": "1", "name": "José"}\n'.encode("latin-1") + '{"id": "2", "name": "Zoë"}\n'.encode("utf-8"))
    people = {"name": "people", "kind": "json", "path": str(path), "encoding": "ISO-8859-1",
              "primary_key": ["id"], "mapping": {"full_name": "name"}}
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, people), Lake.at(lake), "r1", T0)

    assert {r.id: r.name for r in bronze(spark, lake, "people").collect()} == {"1": "José", "2": "Zoë"}
    assert (counts.read, counts.landed, counts.repaired_encoding) == (2, 2, 1)


def test_control_characters_in_csv_and_json_values_are_removed_and_counted(spark, tmp_path):
    csv_path = tmp_path / "support.csv"
    csv_path.write_bytes(b"ticket,name,visits\nT1,A\x00nn\x00,1\nT2,B\x07ob\tLee,2\nT3,Cy,3\n")
    json_path = tmp_path / "people.json"
    # An escaped NUL is valid JSON; a raw control byte in a string is not, and the reader rejects that row.
    json_path.write_bytes(b'{"id": "1", "name": "Di\\u0000 Fox"}\n{"id": "2", "name": "Ed\x00 Orr"}\n')
    people = {"name": "people", "kind": "json", "path": str(json_path), "primary_key": ["id"],
              "columns": {"id": "string", "name": "string"}, "mapping": {"full_name": "name"}}
    lake = tmp_path / "lake"

    support, json_counts = ingest(spark, config_for(lake, csv_source(csv_path), people), Lake.at(lake), "r1", T0)

    assert {r.ticket: r.name for r in bronze(spark, lake, "support").collect()} == {
        "T1": "Ann", "T2": "Bob\tLee", "T3": "Cy",
    }
    assert (support.repaired_control_characters, support.repaired_encoding) == (2, 0)
    assert [r.name for r in bronze(spark, lake, "people").collect()] == ["Di Fox"]
    assert (json_counts.repaired_control_characters, json_counts.reasons) == (1, {"malformed_row": 1})
    assert [d["repaired_control_characters"] for d in ingest_audit(spark, lake)] == [2, 1]


def contacts(db: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
        conn.execute("DELETE FROM contacts")
        conn.executemany("INSERT INTO contacts VALUES (?, ?, ?)", rows)


def crm(db: Path, **extra) -> dict:
    return {"name": "crm", "kind": "jdbc", "url": f"jdbc:sqlite:{db}", "table": "contacts", "primary_key": ["id"],
            "mapping": {"full_name": "name", "email": "email"}, **extra}


def bronze_versions(spark, lake: Path) -> int:
    return spark.sql(f"DESCRIBE HISTORY delta.`{Lake.at(lake).bronze('crm')}`").agg(F.max("version")).first()[0]


def test_a_mapped_column_emptied_upstream_stops_the_run_before_anything_is_written(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    contacts(db, [(i, f"name {i}", f"p{i}@example.com") for i in range(25)])
    ingest(spark, config_for(lake, crm(db)), Lake.at(lake), "r1", T0)
    before = bronze_versions(spark, lake)
    contacts(db, [(i, f"name {i}", None) for i in range(25)])

    with pytest.raises(ValidationStopped) as stopped:
        ingest(spark, config_for(lake, crm(db)), Lake.at(lake), "r2", T0)

    message = str(stopped.value)
    assert "source 'crm'" in message and "'email' filled in 0% of the rows read, 100% of the live records" in message
    assert "null_drift: warn" in message
    assert bronze_versions(spark, lake) == before
    assert bronze(spark, lake, "crm").count() == 25

    [counts] = ingest(spark, config_for(lake, crm(db, null_drift="warn")), Lake.at(lake), "r3", T0)

    assert (counts.landed, counts.null_drift) == (25, {"email": {"before": 1.0, "now": 0.0}})
    assert ingest_audit(spark, lake)[-1]["null_drift"] == {"email": {"before": 1.0, "now": 0.0}}


def test_null_drift_needs_a_column_that_was_mostly_filled_and_enough_rows(spark):
    def frame(emails: list[str | None]):
        return spark.createDataFrame([(str(i), "n", e) for i, e in enumerate(emails)], "id string, name string, email string")

    source = SourceConfig.model_validate(crm(Path("crm.db")))
    mostly_filled = frame(["a@b.c"] * 18 + [None, " "])

    assert null_drift_of(source, frame([None] * 20), mostly_filled) == {"email": {"before": 0.9, "now": 0.0}}
    assert null_drift_of(source, frame(["a@b.c"] * 9 + [None] * 11), mostly_filled) == {}
    assert null_drift_of(source, frame([None] * 19), mostly_filled) == {}
    assert null_drift_of(source, frame([None] * 20), frame(["a@b.c"] * 9 + [None] * 11)) == {}
    assert null_drift_of(source.model_copy(update={"null_drift": "off"}), frame([None] * 20), mostly_filled) == {}
