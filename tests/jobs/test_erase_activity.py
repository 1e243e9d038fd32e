"""``cdi erase`` takes a person's activity too, on a tiny lake written directly (no pipeline run).

Four golden customers of one source ``crm`` with an ``orders`` activity table:
Ada (erased) and Cy share a household, Bob and Dee another. Ada has two
orders (one with two versions, one deleted at the source: a tombstone), Bob
two (one tombstoned), Cy one, and one order belongs to a customer the lake
does not know. The gold activity tables are built by the ``customer_360``
stage itself, then Ada is erased. Every table is read right after the
erasure; the last test then ingests the orders again to see that the
suppression list keeps Ada's activity out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from config.pipeline import PipelineConfig
from jobs.activities import ingest_activities
from jobs.customer_360 import run_customer_360
from jobs.erase import ErasureRequest, erase
from jobs.runs import RunContext
from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.golden import CUSTOMER_XREF_SCHEMA, GOLDEN_CUSTOMERS_SCHEMA
from schemas.tables import QUARANTINE_SCHEMA

AT = datetime(2026, 3, 1, tzinfo=timezone.utc)
ACTIVITY_TABLES = (
    "bronze/crm.orders", "gold/customer_activity", "gold/customer_360", "gold/households", "silver/quarantine"
)
ADA_NEEDLES = ("g-ada", "ada-1", "ord-ada")
PEOPLE = {  # golden id -> crm key, family name, address, postcode
    "G-ADA": ("ada-1", "lovelace", "12 high st", "qx7 3zw"),
    "G-CY": ("cy-3", "lovelace", "12 high st", "qx7 3zw"),
    "G-BOB": ("bob-2", "brown", "4 mill lane", "ab1 2cd"),
    "G-DEE": ("dee-4", "brown", "4 mill lane", "ab1 2cd"),
}
ORDERS = "order_id string, customer_id string, ordered_at string, total string"
LINEAGE = (
    "source_system string, activity string, source_key string, customer_key string, run_id string, "
    "ingested_at timestamp, record_hash string, cdi_tombstone boolean"
)


def config(lake: Path, orders_csv: Path) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "lake": str(lake),
            "sources": [
                {
                    "name": "crm", "kind": "csv", "path": str(lake.parent / "crm.csv"), "primary_key": ["id"],
                    "mapping": {"family_name": "surname", "address_line1": "street", "postcode": "postcode"},
                    "activities": [
                        {
                            "name": "orders", "kind": "csv", "path": str(orders_csv), "primary_key": ["order_id"],
                            "customer_key": ["customer_id"], "timestamp": "ordered_at", "type": {"expr": "'order'"},
                            "amount": "total",
                        }
                    ],
                }
            ],
        }
    )


def order(order_id: str, customer: str | None, day: int, total: str | None, tombstone: bool = False) -> tuple:
    ingested = datetime(2026, 2, day, tzinfo=timezone.utc)
    values = (None, None, None, None) if tombstone else (order_id, customer, f"2026-01-{day:02d} 10:00:00", total)
    hash_ = "tombstone" if tombstone else f"h-{order_id}-{day}"
    return (*values, "crm", "orders", order_id, customer, f"r{day}", ingested, hash_, tombstone)


def write_lake(spark, lake: Path) -> None:
    def save(rows: list[tuple], schema, *parts: str) -> None:
        spark.createDataFrame(rows, schema).write.format("delta").save(str(lake.joinpath(*parts)))

    save(
        [(key, name, street, postcode, "crm", key, "r1", AT, f"h-{key}", False)
         for key, name, street, postcode in PEOPLE.values()],
        "id string, surname string, street string, postcode string, source_system string, source_key string, "
        "run_id string, ingested_at timestamp, record_hash string, cdi_tombstone boolean",
        "bronze", "crm",
    )
    save(
        [
            order("ORD-ADA-1", "ada-1", 1, "10.00"),
            order("ORD-ADA-1", "ada-1", 2, "12.50"),
            order("ORD-ADA-3", "ada-1", 1, "99.00"),
            order("ORD-ADA-3", None, 3, None, tombstone=True),
            order("ORD-BOB-1", "bob-2", 1, "20.00"),
            order("ORD-BOB-2", "bob-2", 1, "30.00"),
            order("ORD-BOB-2", None, 3, None, tombstone=True),
            order("ORD-CY-1", "cy-3", 2, "40.00"),
            order("ORD-ZED-1", "zed-9", 2, "50.00"),
        ],
        f"{ORDERS}, {LINEAGE}",
        "bronze", "crm.orders",
    )
    golden = []
    for golden_id, (key, name, street, postcode) in PEOPLE.items():
        attributes = dict.fromkeys(CANONICAL_ATTRIBUTES) | {
            "family_name": name, "address_line1": street, "postcode": postcode
        }
        golden.append(
            (golden_id, "active", None, *attributes.values(), {"family_name": f"crm:{key}"}, 1, AT, AT,
             f"c-{golden_id}", "r1")
        )
    save(golden, GOLDEN_CUSTOMERS_SCHEMA, "gold", "golden_customers")
    save(
        [("crm", key, f"crm:{key}", golden_id, None, "singleton", "r1", None)
         for golden_id, (key, *_) in PEOPLE.items()],
        CUSTOMER_XREF_SCHEMA,
        "gold", "customer_xref",
    )
    save(
        [
            ("r1", "ingest", "crm/orders", "ORD-ADA-7", "primary_key_unique", "primary key appears 2 times",
             '{"order_id":"ORD-ADA-7","customer_id":"ada-1","ordered_at":"2026-01-07","total":"1.00"}', AT),
            ("r1", "ingest", "crm/orders", "ORD-BOB-7", "primary_key_unique", "primary key appears 2 times",
             '{"order_id":"ORD-BOB-7","customer_id":"bob-2","ordered_at":"2026-01-07","total":"2.00"}', AT),
        ],
        QUARANTINE_SCHEMA,
        "silver", "quarantine",
    )
    run_dir = lake / "_runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "notes.json").write_text('{"orders": ["ORD-ADA-1", "ORD-BOB-1"]}\n')


def read(lake: Path, table: str) -> pd.DataFrame:
    return DeltaTable(str(lake / table)).to_pandas()


def parquet_text(lake: Path, table: str) -> str:
    """Every row of every Parquet file under the table's folder (change data included), as lower-case text."""
    return " ".join(str(pq.read_table(path).to_pylist()) for path in (lake / table).rglob("*.parquet")).lower()


@dataclass
class Erased:
    lake: Path
    context: RunContext
    orders_csv: Path
    before: dict[str, pd.DataFrame]
    after: dict[str, pd.DataFrame]
    dry_counts: dict[str, int]
    counts: dict[str, int]
    files: dict[str, str]  # table -> text of its Parquet files right after the erasure
    notes: str


@pytest.fixture(scope="module")
def erased(spark, tmp_path_factory) -> Erased:
    root = tmp_path_factory.mktemp("erase_activity")
    lake, orders_csv = root / "lake", root / "orders.csv"
    write_lake(spark, lake)
    context = RunContext.create(config(lake, orders_csv), "r1", started_at=AT)
    run_customer_360(spark, context)
    before = {table: read(lake, table) for table in ACTIVITY_TABLES}
    request = ErasureRequest(reason="DSR-1", requested_by="test", golden_ids=("G-ADA",))
    erasure = RunContext.create(context.config, "erase-1", started_at=AT)
    dry = erase(spark, erasure, request, dry_run=True)
    outcome = erase(spark, erasure, request)
    return Erased(
        lake, context, orders_csv, before,
        after={table: read(lake, table) for table in ACTIVITY_TABLES},
        dry_counts=dry.counts, counts=outcome.counts,
        files={table: parquet_text(lake, table) for table in ACTIVITY_TABLES},
        notes=(lake / "_runs" / "r1" / "notes.json").read_text(),
    )


def test_the_lake_held_ada_s_activity_before(erased):
    before = erased.before
    assert (before["bronze/crm.orders"]["customer_key"] == "ada-1").sum() == 3
    assert set(before["gold/customer_activity"]["activity_key"]) == {"ORD-ADA-1", "ORD-BOB-1", "ORD-CY-1", "ORD-ZED-1"}
    assert set(before["gold/customer_360"]["golden_id"]) == set(PEOPLE)
    assert sorted(sorted(ids) for ids in before["gold/households"]["golden_ids"]) == [
        ["G-ADA", "G-CY"], ["G-BOB", "G-DEE"]
    ]


def test_her_bronze_activity_goes_every_version_and_her_tombstones_with_it(erased):
    before, after = erased.before["bronze/crm.orders"], erased.after["bronze/crm.orders"]
    assert not after["source_key"].str.startswith("ORD-ADA").any()
    assert not (after["customer_key"] == "ada-1").any()
    others = before[~before["source_key"].str.startswith("ORD-ADA")]
    assert len(others) == 5  # Bob's two orders and his tombstone, Cy's, the unknown customer's
    key = ["source_key", "record_hash"]
    pd.testing.assert_frame_equal(
        after.sort_values(key).reset_index(drop=True), others.sort_values(key).reset_index(drop=True)
    )
    assert erased.counts["bronze/crm.orders"] == erased.dry_counts["bronze/crm.orders"] == 4


def test_her_gold_activity_360_row_and_household_go(erased):
    after = erased.after
    assert set(after["gold/customer_activity"]["activity_key"]) == {"ORD-BOB-1", "ORD-CY-1", "ORD-ZED-1"}
    assert set(after["gold/customer_360"]["golden_id"]) == {"G-BOB", "G-CY", "G-DEE"}
    households, before = after["gold/households"], erased.before["gold/households"]
    assert [sorted(ids) for ids in households["golden_ids"]] == [["G-BOB", "G-DEE"]]
    kept = before[before["golden_ids"].map(lambda ids: "G-BOB" in ids)]
    assert list(households["household_id"]) == list(kept["household_id"])
    for table, rows in (("gold/customer_activity", 1), ("gold/customer_360", 1), ("gold/households", 1)):
        assert erased.counts[table] == erased.dry_counts[table] == rows, table


def test_her_quarantined_activity_goes_and_others_stay(erased):
    assert sorted(erased.before["silver/quarantine"]["source_key"]) == ["ORD-ADA-7", "ORD-BOB-7"]
    assert list(erased.after["silver/quarantine"]["source_key"]) == ["ORD-BOB-7"]
    assert erased.counts["silver/quarantine (activity)"] == erased.dry_counts["silver/quarantine (activity)"] == 1


def test_other_customers_rows_are_untouched(erased):
    for table, column, ada in (
        ("gold/customer_activity", "activity_key", "ORD-ADA-1"),
        ("gold/customer_360", "golden_id", "G-ADA"),
    ):
        before, after = erased.before[table], erased.after[table]
        kept = before[before[column] != ada].sort_values(column).reset_index(drop=True)
        pd.testing.assert_frame_equal(after.sort_values(column).reset_index(drop=True), kept, check_like=True)


def test_no_file_of_the_activity_tables_holds_her_any_more(erased):
    for table, text in erased.files.items():
        assert text, table
        assert not [needle for needle in ADA_NEEDLES if needle in text], table
    assert "ord-bob-1" in erased.files["bronze/crm.orders"]
    feed = DeltaTable(str(erased.lake / "gold" / "customer_360")).metadata().configuration
    assert feed.get("delta.enableChangeDataFeed") == "true"  # the erasing delete wrote change data: vacuumed too


def test_her_order_keys_are_redacted_from_the_run_folders(erased):
    assert "ORD-ADA-1" not in erased.notes and "ORD-BOB-1" in erased.notes


def test_a_later_ingest_drops_her_activity_by_customer_key(spark, erased):
    erased.orders_csv.write_text(
        "order_id,customer_id,ordered_at,total\n"
        "ORD-ADA-1,ada-1,2026-01-02 10:00:00,12.50\n"
        "ORD-ADA-9,ada-1,2026-01-09 10:00:00,7.00\n"
        "ORD-BOB-9,bob-2,2026-01-09 10:00:00,8.00\n"
    )
    later = RunContext.create(erased.context.config, "r2", started_at=datetime(2026, 3, 2, tzinfo=timezone.utc))
    (counts,) = ingest_activities(spark, later)
    assert (counts.read, counts.suppressed, counts.landed) == (3, 2, 1)
    bronze = read(erased.lake, "bronze/crm.orders")
    assert not (bronze["customer_key"] == "ada-1").any()
    assert "ORD-BOB-9" in set(bronze["source_key"])
