"""Ingest against real files, SQLite and PostgreSQL databases, landing real Delta tables."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from config.pipeline import PipelineConfig
from config.errors import SourceError
from jobs.delta_io import append
from jobs.ingest import current_versions, ingest, one_landing
from config.lake import Lake

T0 = datetime(2026, 1, 1, 12, 0, 0)


def config_for(lake: Path, *sources: dict) -> PipelineConfig:
    return PipelineConfig.model_validate({"lake": str(lake), "sources": list(sources)})


def sqlite_source(db: Path, **extra) -> dict:
    return {
        "name": "crm",
        "kind": "jdbc",
        "url": f"jdbc:sqlite:{db}",
        "table": "contacts",
        "primary_key": ["id"],
        "partition_column": "id",
        "num_partitions": 2,
        "watermark": "updated_at",
        "mapping": {"given_name": "first", "family_name": "last", "updated_at": "updated_at"},
        **extra,
    }


def make_crm(db: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY, first TEXT, last TEXT, updated_at TEXT)")
        conn.executemany("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?)", rows)


def bronze(spark, lake: Path, source: str):
    return spark.read.format("delta").load(Lake.at(lake).bronze(source))


def test_sqlite_source_lands_with_lineage_and_rerun_adds_nothing(spark, tmp_path):
    db = tmp_path / "crm.db"
    make_crm(db, [(1, "Ann", "Lee", "2026-01-01 10:00:00"), (2, "Bob", "Ray", "2026-01-02 10:00:00")])
    lake = tmp_path / "lake"
    config = config_for(lake, sqlite_source(db))

    [first] = ingest(spark, config, Lake.at(lake), "r1", T0)
    [again] = ingest(spark, config, Lake.at(lake), "r1", T0)

    assert (first.read, first.landed, first.unchanged, first.rejected) == (2, 2, 0, 0)
    assert (again.read, again.landed, again.unchanged, again.rejected) == (2, 0, 2, 0)
    rows = bronze(spark, lake, "crm").orderBy("id").collect()
    assert [(r.id, r.first, r.source_system, r.source_key, r.run_id) for r in rows] == [
        (1, "Ann", "crm", "1", "r1"),
        (2, "Bob", "crm", "2", "r1"),
    ]
    assert all(len(r.record_hash) == 64 and r.ingested_at == T0 for r in rows)
    audit = spark.read.format("delta").load(Lake.at(lake).run_audit).where("stage = 'ingest'")
    assert sorted((r.rows_in, r.rows_out, r.rows_unchanged) for r in audit.collect()) == [(2, 0, 2), (2, 2, 0)]


def test_incremental_reads_past_the_watermark_and_picks_up_changed_rows(spark, tmp_path):
    db = tmp_path / "crm.db"
    make_crm(db, [(1, "Ann", "Lee", "2026-01-01 10:00:00"), (2, "Bob", "Ray", "2026-01-02 10:00:00")])
    lake = tmp_path / "lake"
    config = config_for(lake, sqlite_source(db))
    ingest(spark, config, Lake.at(lake), "r1", T0)

    make_crm(db, [(2, "Bob", "Raymond", "2026-02-01 09:00:00"), (3, "Cy", "Orr", "2026-02-02 09:00:00")])
    [counts] = ingest(spark, config, Lake.at(lake), "r2", T0, incremental=True)

    assert (counts.read, counts.landed, counts.unchanged) == (2, 2, 0)
    landed = bronze(spark, lake, "crm").select("id", "last", "run_id").orderBy("run_id", "id").collect()
    assert [tuple(r) for r in landed] == [(1, "Lee", "r1"), (2, "Ray", "r1"), (2, "Raymond", "r2"), (3, "Orr", "r2")]


def test_full_reread_lands_only_changed_rows(spark, tmp_path):
    db = tmp_path / "crm.db"
    make_crm(db, [(1, "Ann", "Lee", "2026-01-01 10:00:00"), (2, "Bob", "Ray", "2026-01-02 10:00:00")])
    lake = tmp_path / "lake"
    config = config_for(lake, sqlite_source(db))
    ingest(spark, config, Lake.at(lake), "r1", T0)
    make_crm(db, [(1, "Anne", "Lee", "2026-01-01 10:00:00")])

    [counts] = ingest(spark, config, Lake.at(lake), "r2", T0)

    assert (counts.read, counts.landed, counts.unchanged) == (2, 1, 1)


def csv_source(path: Path, **extra) -> dict:
    return {
        "name": "support",
        "kind": "csv",
        "path": str(path),
        "primary_key": ["ticket"],
        "columns": {"ticket": "string", "name": "string", "visits": "int"},
        "mapping": {"full_name": "name"},
        **extra,
    }


def test_bad_csv_rows_go_to_quarantine_with_a_reason(spark, tmp_path):
    path = tmp_path / "support.csv"
    path.write_text(
        "ticket,name,visits\n"
        "T1,Ann Lee,3\n"
        "T2,Bob Ray,not-a-number\n"
        "T3,Cy Orr,1\n"
        "T3,Cy Orr Again,2\n"
        ",No Key,1\n"
        "T5,Dee Fox,2\n",
        encoding="utf-8",
    )
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, csv_source(path)), Lake.at(lake), "r1", T0)

    assert (counts.read, counts.landed, counts.rejected) == (6, 2, 4)
    assert counts.reasons == {"malformed_row": 1, "primary_key_unique": 2, "primary_key_not_null": 1}
    quarantined = (
        spark.read.format("delta").load(Lake.at(lake).quarantine)
        .select("stage", "source_system", "source_key", "check").orderBy("check", "source_key").collect()
    )
    assert [tuple(r) for r in quarantined] == [
        ("ingest", "support", "T2", "malformed_row"),
        ("ingest", "support", None, "primary_key_not_null"),
        ("ingest", "support", "T3", "primary_key_unique"),
        ("ingest", "support", "T3", "primary_key_unique"),
    ]
    assert sorted(r.ticket for r in bronze(spark, lake, "support").collect()) == ["T1", "T5"]


def test_a_quote_left_open_sends_its_row_and_the_rows_it_holds_to_quarantine(spark, tmp_path):
    # Read over line breaks, the quote opened in T2 runs on to the one that opens T5's name: T3 and T4
    # become part of T2's name, and T2 still has its four fields. T1's address over two lines stays.
    path = tmp_path / "support.csv"
    path.write_text(
        "ticket,name,address,visits\n"
        'T1,Ann Lee,"1 High St,\nLeeds",3\n'
        'T2,"Bob Ray,Main St,2\n'
        "T3,Cy Orr,Mill Rd,1\n"
        "T4,Di Fox,Elm Rd,5\n"
        'T5,"Ed Lum",Oak Rd,2\n'
        "T6,Flo Kim,Ash Rd,4\n",
        encoding="utf-8",
    )
    source = {**csv_source(path), "multiline": True, "columns": {"ticket": "string", "name": "string", "address": "string", "visits": "int"}}
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, source), Lake.at(lake), "r1", T0)

    assert (counts.read, counts.landed, counts.reasons) == (3, 2, {"malformed_row": 1})
    assert sorted((r.ticket, r.address) for r in bronze(spark, lake, "support").collect()) == [
        ("T1", "1 High St,\nLeeds"), ("T6", "Ash Rd"),
    ]
    [quarantined] = spark.read.format("delta").load(Lake.at(lake).quarantine).collect()
    assert (quarantined.source_key, quarantined.check) == ("T2", "malformed_row")
    assert "quote left open" in quarantined.reason
    assert all(row in quarantined.record for row in ("T3,Cy Orr,Mill Rd,1", "T4,Di Fox,Elm Rd,5"))


def test_latin1_file_rows_are_rejected_not_garbled(spark, tmp_path):
    path = tmp_path / "support.csv"
    path.write_bytes("ticket,name,visits\nT1,Zoë Müller,1\nT2,Ann Lee,2\n".encode("latin-1"))
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, csv_source(path)), Lake.at(lake), "r1", T0)

    assert (counts.landed, counts.rejected, counts.reasons) == (1, 1, {"valid_utf8": 1})


def test_declared_latin1_encoding_reads_the_same_file(spark, tmp_path):
    path = tmp_path / "support.csv"
    path.write_bytes("ticket,name,visits\nT1,Zoë Müller,1\n".encode("latin-1"))
    lake = tmp_path / "lake"

    ingest(spark, config_for(lake, csv_source(path, encoding="ISO-8859-1")), Lake.at(lake), "r1", T0)

    assert [r.name for r in bronze(spark, lake, "support").collect()] == ["Zoë Müller"]


def test_a_csv_header_that_drifted_from_its_declared_columns_is_a_one_line_source_error(spark, tmp_path):
    path = tmp_path / "support.csv"
    path.write_text("ticket,full_name,visit_count\nT1,Ann Lee,1\n")
    lake = tmp_path / "lake"

    with pytest.raises(SourceError) as caught:
        ingest(spark, config_for(lake, csv_source(path)), Lake.at(lake), "r1", T0)

    message = str(caught.value)
    assert message.startswith("source 'support': reading failed: ")
    assert "header" in message.lower() and "\n" not in message
    assert not (lake / "bronze" / "support").exists()


def test_a_bom_does_not_rename_the_first_column(spark, tmp_path):
    path = tmp_path / "support.csv"
    path.write_bytes("\ufeffticket,name,visits\nT1,Ann Lee,1\n".encode("utf-8"))
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, csv_source(path, columns=None)), Lake.at(lake), "r1", T0)

    assert counts.landed == 1
    assert [r.ticket for r in bronze(spark, lake, "support").collect()] == ["T1"]


# What Excel, pandas and Python's csv write (RFC 4180: a quote inside a quoted value is doubled) and
# what some database exports write (a backslash before it), with the values both mean.
DOUBLED = 'ticket,name,visits\nT1,"Ann ""Annie"", Lee",1\nT2,"back\\slash ""q""",2\nT3,"""x""",3\n'
BACKSLASHED = 'ticket,name,visits\nT1,"Ann \\"Annie\\", Lee",1\nT2,"say \\"q\\"",2\nT3,"\\"x\\"",3\n'


@pytest.mark.parametrize(
    ("escape", "text", "names"),
    [
        ('"', DOUBLED, ['Ann "Annie", Lee', 'back\\slash "q"', '"x"']),
        ("\\", BACKSLASHED, ['Ann "Annie", Lee', 'say "q"', '"x"']),
    ],
    ids=["doubled quotes (the default)", "backslash"],
)
def test_quotes_inside_quoted_values_land_as_written(spark, tmp_path, escape, text, names):
    path = tmp_path / "support.csv"
    path.write_text(text)
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, csv_source(path, escape=escape)), Lake.at(lake), "r1", T0)

    rows = bronze(spark, lake, "support").orderBy("ticket").collect()
    assert counts.landed == 3
    assert [(r.name, r.visits) for r in rows] == list(zip(names, [1, 2, 3]))


def test_header_names_spark_would_misread_land_under_safe_distinct_names(spark, tmp_path):
    """A dot reads as a struct field and a backtick as quoting; names that then coincide are numbered."""
    path = tmp_path / "support.csv"
    path.write_text('ticket,`name`,first.name,First Name,first_name,a.b,"two\nlines"\nT1,Ann Lee,Ann,A,An,x,y\n')
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, csv_source(path, columns=None, multiline=True)), Lake.at(lake), "r1", T0)

    row = bronze(spark, lake, "support").first().asDict()
    assert counts.landed == 1
    assert {k: row[k] for k in ("ticket", "name", "first_name", "First_Name_2", "first_name_3", "a_b", "two_lines")} == {
        "ticket": "T1", "name": "Ann Lee", "first_name": "Ann", "First_Name_2": "A", "first_name_3": "An", "a_b": "x",
        "two_lines": "y",
    }


def test_a_blank_or_repeated_header_name_lands_under_the_name_spark_gives_it(spark, tmp_path):
    """Spark's header check compares the file's names with its own (_c0, name0): it must not reject every row."""
    path = tmp_path / "support.csv"
    path.write_text('"",ticket,name,name\n1,T1,Ann,Lee\n2,T2,Bob,Ray\n')
    lake = tmp_path / "lake"

    source = csv_source(path, columns=None, mapping={"full_name": "name2"})
    [counts] = ingest(spark, config_for(lake, source), Lake.at(lake), "r1", T0)

    rows = bronze(spark, lake, "support").orderBy("ticket").collect()
    assert (counts.landed, counts.rejected) == (2, 0)
    assert [(r.c0, r.ticket, r.name2, r.name3) for r in rows] == [("1", "T1", "Ann", "Lee"), ("2", "T2", "Bob", "Ray")]


def test_a_file_without_a_key_is_keyed_by_row_number_across_its_partitions(spark, tmp_path):
    path = tmp_path / "support.csv"
    names = [f"Person {i:03d}" for i in range(1, 121)]
    path.write_text("name,visits\n" + "".join(f"{name},1\n" for name in names[:-1]) + "Person 120,oops\n")
    source = csv_source(path, primary_key=["row"], row_number_column="row", columns={"name": "string", "visits": "int"})
    lake = tmp_path / "lake"
    spark.conf.set("spark.sql.files.maxPartitionBytes", "256")  # a dozen partitions of the one file
    try:
        assert spark.read.csv(str(path), header=True).rdd.getNumPartitions() > 5
        [counts] = ingest(spark, config_for(lake, source), Lake.at(lake), "r1", T0)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")

    rows = bronze(spark, lake, "support").select("source_key", "row", "name").collect()
    assert (counts.read, counts.landed, counts.rejected) == (120, 119, 1)
    assert sorted((int(r.source_key), r.row, r.name) for r in rows) == [(i, i, names[i - 1]) for i in range(1, 120)]
    quarantined = spark.read.format("delta").load(Lake.at(lake).quarantine).select("source_key").collect()
    assert [r.source_key for r in quarantined] == ["120"]


def test_a_row_number_column_the_file_has_already_is_a_one_line_source_error(spark, tmp_path):
    path = tmp_path / "support.csv"
    path.write_text("ticket,name,Row\nT1,Ann,1\n")
    source = csv_source(path, primary_key=["row"], row_number_column="row", columns=None)
    with pytest.raises(SourceError, match="^source 'support': row_number_column 'row' is a column of the file already$"):
        ingest(spark, config_for(tmp_path / "lake", source), Lake.at(tmp_path / "lake"), "r1", T0)


def test_nanosecond_timestamps_pandas_wrote_to_parquet_land_as_timestamps(spark, tmp_path):
    path = tmp_path / "people.parquet"
    born = pd.to_datetime(["1908-02-29 00:00:00", "1999-12-31 23:59:59.123456789"], format="ISO8601")
    pd.DataFrame({"id": ["P1", "P2"], "first": ["Ann", "Bob"], "born": born}).to_parquet(path)
    assert pq.read_schema(path).field("born").type == pa.timestamp("ns")
    source = {"name": "people", "kind": "parquet", "path": str(path), "primary_key": ["id"],
              "mapping": {"given_name": "first", "birth_date": "born"}}
    lake = tmp_path / "lake"

    ingest(spark, config_for(lake, source), Lake.at(lake), "r1", T0)

    rows = bronze(spark, lake, "people").orderBy("id").select("born").collect()
    assert [r.born for r in rows] == [datetime(1908, 2, 29), datetime(1999, 12, 31, 23, 59, 59, 123456)]


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda tmp: csv_source(tmp / "absent.csv"), "source 'support': file .*absent.csv not found"),
        (lambda tmp: sqlite_source(tmp / "absent.db"), "source 'crm': SQLite database file .*absent.db not found"),
        (
            lambda tmp: csv_source(tmp / "ok.csv", mapping={"full_name": "customer"}),
            "source 'support': mapping.full_name names column 'customer', which the source lacks",
        ),
        (
            lambda tmp: csv_source(tmp / "ok.csv", primary_key=["id"]),
            "source 'support': primary_key column 'id' is not in the source",
        ),
    ],
)
def test_unusable_sources_fail_with_one_line_and_write_nothing(spark, tmp_path, make_source, message):
    (tmp_path / "ok.csv").write_text("ticket,name,visits\nT1,Ann,1\n")
    good = csv_source(tmp_path / "ok.csv", name="good")
    lake = tmp_path / "lake"

    with pytest.raises(SourceError, match=message) as error:
        ingest(spark, config_for(lake, good, make_source(tmp_path)), Lake.at(lake), "r1", T0)

    assert "\n" not in str(error.value)
    assert not lake.exists()


def pg_source(server, **extra) -> dict:
    return {
        "name": "pgcrm",
        "kind": "jdbc",
        "url": server.jdbc_url,
        "table": "public.contacts",
        "user_env": "CDI_TEST_PG_USER",
        "password_env": "CDI_TEST_PG_PASSWORD",
        "primary_key": ["id"],
        "partition_column": "id",
        "num_partitions": 3,
        "mapping": {"given_name": "first", "birth_date": "born"},
        **extra,
    }


def test_postgresql_source_over_jdbc_with_partitioned_read(spark, tmp_path, postgres, monkeypatch):
    import psycopg

    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS contacts")
        conn.execute("CREATE TABLE contacts (id integer primary key, first text, born date)")
        conn.execute(
            "INSERT INTO contacts SELECT i, 'name' || i, date '1980-01-01' + i FROM generate_series(1, 50) AS i"
        )
    monkeypatch.setenv("CDI_TEST_PG_USER", postgres.user)
    monkeypatch.setenv("CDI_TEST_PG_PASSWORD", postgres.password)
    lake = tmp_path / "lake"

    [counts] = ingest(spark, config_for(lake, pg_source(postgres)), Lake.at(lake), "r1", T0)

    assert (counts.read, counts.landed) == (50, 50)
    landed = bronze(spark, lake, "pgcrm")
    assert landed.agg(F.min("id"), F.max("id"), F.countDistinct("source_key")).first() == (1, 50, 50)


def test_wrong_postgresql_password_is_a_one_line_source_error(spark, tmp_path, postgres, monkeypatch):
    monkeypatch.setenv("CDI_TEST_PG_USER", postgres.user)
    monkeypatch.setenv("CDI_TEST_PG_PASSWORD", "wrong-password")
    lake = tmp_path / "lake"

    with pytest.raises(SourceError, match="source 'pgcrm': cannot read: .*password authentication failed") as error:
        ingest(spark, config_for(lake, pg_source(postgres)), Lake.at(lake), "r1", T0)

    assert "wrong-password" not in str(error.value)


def test_unreachable_database_is_a_one_line_source_error(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("CDI_TEST_PG_USER", "cdi")
    monkeypatch.setenv("CDI_TEST_PG_PASSWORD", "x")

    class Closed:
        jdbc_url = "jdbc:postgresql://127.0.0.1:9/nowhere"

    with pytest.raises(SourceError, match="source 'pgcrm': cannot read: .*Connection.*refused"):
        ingest(spark, config_for(tmp_path / "lake", pg_source(Closed)), Lake.at(tmp_path / "lake"), "r1", T0)


def test_a_postgresql_error_in_the_middle_of_a_read_is_a_one_line_source_error(spark, tmp_path, postgres, monkeypatch):
    import psycopg

    with psycopg.connect(postgres.dsn) as conn:
        conn.execute("DROP VIEW IF EXISTS failing_contacts")
        conn.execute("DROP TABLE IF EXISTS contacts")
        conn.execute("CREATE TABLE contacts (id integer primary key, first text, born date)")
        conn.execute("INSERT INTO contacts SELECT i, 'name' || i, date '1980-01-01' + i FROM generate_series(1, 50) AS i")
        # The server fails on row 40, after it has sent rows of the same read.
        conn.execute("CREATE VIEW failing_contacts AS SELECT id, first || (1 / (40 - id))::text AS first, born FROM contacts")
    monkeypatch.setenv("CDI_TEST_PG_USER", postgres.user)
    monkeypatch.setenv("CDI_TEST_PG_PASSWORD", postgres.password)
    lake = tmp_path / "lake"
    source = pg_source(postgres, table="public.failing_contacts")

    with pytest.raises(SourceError, match="source 'pgcrm': reading failed: .*division by zero") as error:
        ingest(spark, config_for(lake, source), Lake.at(lake), "r1", T0)

    assert "\n" not in str(error.value)
    assert not (lake / "bronze" / "pgcrm").exists()



BRONZE_COLUMNS = "source_key string, record_hash string, run_id string, ingested_at timestamp, cdi_tombstone boolean"
CURRENT_COLUMNS = "source_key string, record_hash string, cdi_tombstone boolean"


def test_the_newest_row_of_each_key_is_each_row_of_one_landing_and_the_latest_of_several(spark, tmp_path):
    path = str(tmp_path / "bronze")
    append(spark.createDataFrame([("a", "h1", "r1", T0, False), ("b", "h2", "r1", T0, None)], BRONZE_COLUMNS), path, "r1")
    assert one_landing(path)
    assert_df_equality(
        current_versions(spark, path),
        spark.createDataFrame([("a", "h1", False), ("b", "h2", False)], CURRENT_COLUMNS),
        ignore_row_order=True, ignore_nullable=True,
    )
    later = T0.replace(hour=13)
    append(spark.createDataFrame([("a", "h3", "r2", later, False), ("b", "tomb", "r2", later, True)], BRONZE_COLUMNS), path, "r2")
    assert not one_landing(path)
    assert_df_equality(
        current_versions(spark, path),
        spark.createDataFrame([("a", "h3", False), ("b", "tomb", True)], CURRENT_COLUMNS),
        ignore_row_order=True, ignore_nullable=True,
    )


def test_a_table_made_in_one_commit_otherwise_than_by_a_landing_is_not_taken_for_one(spark, tmp_path):
    copy = tmp_path / "copy"  # several landings copied in one write: a key twice
    rows = [("a", "h1", "r1", T0, False), ("a", "h2", "r2", T0.replace(hour=13), False)]
    spark.createDataFrame(rows, BRONZE_COLUMNS).write.format("delta").save(str(copy))
    assert not one_landing(str(copy))
    assert_df_equality(
        current_versions(spark, str(copy)), spark.createDataFrame([("a", "h2", False)], CURRENT_COLUMNS), ignore_nullable=True
    )
    landed = tmp_path / "landed"
    append(spark.createDataFrame(rows[:1], BRONZE_COLUMNS), str(landed), "r1")
    assert one_landing(str(landed))
    assert not one_landing(f"file://{landed}")  # a URI: its log is not read with delta-rs
    assert not one_landing(str(tmp_path / "missing"))
