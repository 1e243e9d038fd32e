"""Exact change capture at ingest: versions against the current one, typed and pushed-down watermarks,
deletions as tombstones (snapshot and flag), the mass-deletion guard, and the suppression list."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from config.errors import ValidationStopped
from config.lake import Lake
from jobs.ingest import ingest, past_watermark
from jobs.sources import read_source
from jobs.suppressions import SUPPRESSIONS_SCHEMA, key_hash, lake_salt, suppressions_path
from tests.jobs.test_ingest import config_for, pg_source

T0 = datetime(2026, 1, 1, 12, 0, 0)


def crm(db: Path, rows: list[tuple], *, version_type: str = "INTEGER") -> None:
    """Replace the table's content with ``rows`` (id, name, version, deleted)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY, name TEXT, version {version_type}, deleted INTEGER)"
        )
        conn.execute("DELETE FROM contacts")
        conn.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?)", rows)


def source(db: Path, **extra) -> dict:
    return {
        "name": "crm",
        "kind": "jdbc",
        "url": f"jdbc:sqlite:{db}",
        "table": "contacts",
        "primary_key": ["id"],
        "mapping": {"full_name": "name"},
        **extra,
    }


def versions(spark, lake: Path) -> list[tuple]:
    rows = spark.read.format("delta").load(Lake.at(lake).bronze("crm")).orderBy("id", "run_id").collect()
    return [(r.id, r.name, r.run_id, r.cdi_tombstone) for r in rows]


def run(spark, lake: Path, config, run_id: str, **options):
    [counts] = ingest(spark, config, Lake.at(lake), run_id, T0, **options)
    return counts


def test_a_record_that_goes_back_to_an_earlier_value_lands_every_version(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db))
    for run_id, name in (("r1", "Ann"), ("r2", "Anne"), ("r3", "Ann"), ("r4", "Ann")):
        crm(db, [(1, name, 1, 0)])
        run(spark, lake, config, run_id)

    assert versions(spark, lake) == [(1, "Ann", "r1", False), (1, "Anne", "r2", False), (1, "Ann", "r3", False)]


def test_a_numeric_watermark_is_compared_as_a_number_and_the_boundary_is_not_skipped(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db, watermark="version"))
    crm(db, [(1, "Ann", 9, 0), (2, "Bob", 9, 0)])
    run(spark, lake, config, "r1")

    # As text "10" < "9": a string comparison would skip row 3. Row 4 shares the stored watermark.
    crm(db, [(1, "Ann", 9, 0), (2, "Bob", 9, 0), (3, "Cy", 10, 0), (4, "Di", 9, 0)])
    counts = run(spark, lake, config, "r2", incremental=True)

    assert (counts.read, counts.landed, counts.unchanged) == (4, 2, 2)
    assert {(i, run_id) for i, _, run_id, _ in versions(spark, lake)} == {(1, "r1"), (2, "r1"), (3, "r2"), (4, "r2")}


def test_the_watermark_filter_is_pushed_down_to_postgresql(spark, tmp_path, postgres, monkeypatch):
    import psycopg

    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS contacts CASCADE")  # and views other tests made over it
        conn.execute("CREATE TABLE contacts (id integer primary key, first text, born date, changed timestamp)")
        conn.execute(
            "INSERT INTO contacts SELECT i, 'name' || i, date '1980-01-01' + i, timestamp '2026-01-01' + i * interval '1 hour' "
            "FROM generate_series(1, 20) AS i"
        )
    monkeypatch.setenv("CDI_TEST_PG_USER", postgres.user)
    monkeypatch.setenv("CDI_TEST_PG_PASSWORD", postgres.password)
    lake = tmp_path / "lake"
    config = config_for(lake, pg_source(postgres, watermark="changed"))
    run(spark, lake, config, "r1")
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("UPDATE contacts SET first = 'renamed', changed = timestamp '2026-02-01' WHERE id = 3")

    raw = read_source(spark, config.sources[0])
    plan = past_watermark(raw, config.sources[0], datetime(2026, 1, 1, 20))._jdf.queryExecution().executedPlan().toString()
    counts = run(spark, lake, config, "r2", incremental=True)

    pushed = next(line for line in plan.splitlines() if "PushedFilters" in line)
    assert "GreaterThanOrEqual(changed,2026-01-01 20:00:00.0)" in pushed, pushed
    # Row 20 sits at the stored watermark (read again, unchanged); row 3 moved past it.
    assert (counts.read, counts.landed, counts.unchanged) == (2, 1, 1)


def test_snapshot_deletions_land_tombstones_and_a_deleted_key_can_come_back(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db, deletes={"mode": "snapshot", "max_share": 0.5}))
    crm(db, [(1, "Ann", 1, 0), (2, "Bob", 1, 0), (3, "Cy", 1, 0)])
    run(spark, lake, config, "r1")

    crm(db, [(1, "Ann", 1, 0), (3, "Cy", 1, 0)])
    gone = run(spark, lake, config, "r2")
    again = run(spark, lake, config, "r3")
    crm(db, [(1, "Ann", 1, 0), (2, "Bob", 2, 0), (3, "Cy", 1, 0)])
    back = run(spark, lake, config, "r4")

    assert (gone.read, gone.landed, gone.unchanged, gone.deleted) == (2, 0, 2, 1)
    assert (again.landed, again.deleted) == (0, 0)
    assert (back.landed, back.deleted) == (1, 0)
    key_2 = spark.read.format("delta").load(Lake.at(lake).bronze("crm")).where("source_key = '2'").orderBy("run_id")
    assert [(r.id, r.name, r.run_id, r.cdi_tombstone) for r in key_2.collect()] == [
        (2, "Bob", "r1", False),
        (None, None, "r2", True),
        (2, "Bob", "r4", False),
    ]


def test_a_snapshot_that_loses_too_many_keys_stops_before_writing(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db, deletes="snapshot"))
    crm(db, [(i, f"name{i}", 1, 0) for i in range(1, 21)])
    run(spark, lake, config, "r1")
    before = spark.read.format("delta").load(Lake.at(lake).bronze("crm")).count()

    crm(db, [(i, f"name{i}", 1, 0) for i in range(1, 18)])  # 3 of 20 gone: 15% > the default 10%
    with pytest.raises(ValidationStopped, match=r"no longer holds 3 of 20 records \(15%"):
        run(spark, lake, config, "r2")

    assert spark.read.format("delta").load(Lake.at(lake).bronze("crm")).count() == before
    crm(db, [(i, f"name{i}", 1, 0) for i in range(1, 20)])  # 1 of 20: within the share
    assert run(spark, lake, config, "r3").deleted == 1


def test_an_incremental_read_cut_by_a_watermark_deletes_nothing(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db, watermark="version", deletes="snapshot"))
    crm(db, [(1, "Ann", 1, 0), (2, "Bob", 2, 0)])
    run(spark, lake, config, "r1")

    assert run(spark, lake, config, "r2", incremental=True).deleted == 0
    assert run(spark, lake, config, "r3").deleted == 0


def test_flagged_rows_land_as_tombstones(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db, deletes={"mode": "flag", "column": "deleted", "value": 1}))
    crm(db, [(1, "Ann", 1, 0), (2, "Bob", 1, 0)])
    run(spark, lake, config, "r1")

    crm(db, [(1, "Ann", 1, 0), (2, "Bob", 1, 1)])
    counts = run(spark, lake, config, "r2")
    again = run(spark, lake, config, "r3")

    assert (counts.landed, counts.deleted, again.landed, again.deleted) == (1, 1, 0, 0)
    assert versions(spark, lake)[-1] == (2, "Bob", "r2", True)


def test_a_first_landing_counts_its_flagged_rows_as_deletions(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db, deletes={"mode": "flag", "column": "deleted", "value": 1}))
    crm(db, [(1, "Ann", 1, 0), (2, "Bob", 1, 1), (3, "Cy", 1, 1)])

    counts = run(spark, lake, config, "r1")

    assert (counts.read, counts.landed, counts.deleted, counts.unchanged) == (3, 3, 2, 0)
    assert [v[3] for v in versions(spark, lake)] == [False, True, True]


def test_suppressed_keys_are_counted_and_never_land_or_reach_quarantine(spark, tmp_path):
    db, lake = tmp_path / "crm.db", tmp_path / "lake"
    config = config_for(lake, source(db))
    salt = lake_salt(spark, Lake.at(lake), create=True)
    suppression = (
        "crm", key_hash(salt, "crm", "2"), "e1", datetime(2026, 1, 1), None, None
    )
    spark.createDataFrame([suppression], SUPPRESSIONS_SCHEMA).write.format("delta").save(suppressions_path(Lake.at(lake)))
    crm(db, [(1, "Ann", 1, 0), (2, "Zebulonia", 1, 0), (3, None, 1, 0)])

    counts = run(spark, lake, config, "r1")

    assert (counts.read, counts.landed, counts.suppressed, counts.rejected) == (3, 2, 1, 0)
    assert [v[0] for v in versions(spark, lake)] == [1, 3]
    audit = spark.read.format("delta").load(Lake.at(lake).run_audit).where("stage = 'ingest'").first()
    assert '"suppressed": 1' in audit.detail
