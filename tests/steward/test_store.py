from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from config.lake import Lake
from schemas.golden import STEWARD_DECISIONS_SCHEMA
from steward.decisions import merge_decision, pair_decision, split_decision
from steward.store import Store

# Spark SQL type -> the Arrow type delta-rs reads back for it.
SPARK_TO_ARROW = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "array<string>": pa.list_(pa.string())}


def test_decisions_table_matches_the_spark_schema(lake_root: Path) -> None:
    store = Store(Lake.at(lake_root))
    store.append_decision(pair_decision("alice", "match", "webshop:W-c41d0e77", "sales_crm:501", "same person"))
    table = DeltaTable(Lake.at(lake_root).gold("steward_decisions"))
    arrow = pa.schema(table.schema().to_arrow())
    expected = [(f.name, SPARK_TO_ARROW[f.dataType.simpleString()], f.nullable) for f in STEWARD_DECISIONS_SCHEMA.fields]
    actual = [(f.name, pa.string() if pa.types.is_string_view(f.type) else f.type, f.nullable) for f in arrow]
    assert actual == expected
    row = table.to_pyarrow_table().to_pylist()[0]
    assert (row["record_id_l"], row["record_id_r"], row["action"], row["steward"]) == (
        "sales_crm:501", "webshop:W-c41d0e77", "match", "alice"
    )
    assert row["decided_at"].tzinfo is not None and len(row["decision_id"]) == 36


def test_split_and_merge_rows(lake_root: Path) -> None:
    store = Store(Lake.at(lake_root))
    store.append_decision(split_decision("alice", "G3f2a9c4e1b7d0a53", ["support_desk:SUP-000311"],
                                         ["sales_crm:412", "support_desk:SUP-000311"], "different birth date"))
    store.append_decision(merge_decision("alice", "G8d4417fa0c2b9e35", "G71c0e2d94ab3f618", "same email history"))
    rows = sorted(store.decisions(), key=lambda r: r["action"])
    assert [(r["action"], r["record_id_l"], r["golden_id"], r["golden_id_other"], r["comment"]) for r in rows] == [
        ("merge", None, "G71c0e2d94ab3f618", "G8d4417fa0c2b9e35", "same email history"),
        ("split", "support_desk:SUP-000311", "G3f2a9c4e1b7d0a53", None, "different birth date"),
    ]


def test_concurrent_appends_are_all_recorded(lake_root: Path) -> None:
    """Threads racing to create the table and to append: every decision ends up in it."""
    store = Store(Lake.at(lake_root))
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def decide(steward: str) -> None:
        try:
            start.wait()
            for n in range(3):
                store.append_decision(pair_decision(steward, "no_match", f"a:{n}", f"b:{n}", None))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=decide, args=(f"steward{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = store.decisions()
    assert len(rows) == 12
    assert sorted({r["steward"] for r in rows}) == ["steward0", "steward1", "steward2", "steward3"]


def test_search_is_case_insensitive_over_names_emails_phones_and_keys(lake_root: Path) -> None:
    store = Store(Lake.at(lake_root))

    def ids(query: str) -> list[str]:
        return [r["golden_id"] for r in store.search(query)]

    assert ids("NATARAJAN") == ["G71c0e2d94ab3f618", "G8d4417fa0c2b9e35"]
    assert ids("Vernonc@BTinternet") == ["Gc53f949e01944f00"]
    assert ids("7700 955-310") == ["G3f2a9c4e1b7d0a53"]  # a source record's phone, typed with spaces
    assert ids("sup-000420") == ["Ga1f6b8e2c0d39574"]
    assert store.search("M.ONEIL91")[0]["matched_on"] == ["support_desk:SUP-000311"]
    assert ids("nobody-by-this-name") == []


def test_retired_ids_resolve_to_their_survivor(lake_root: Path) -> None:
    store = Store(Lake.at(lake_root))
    row, chain = store.resolve("G04e1d8b2c7f9a316")
    assert row["golden_id"] == "G3f2a9c4e1b7d0a53" and chain == ["G04e1d8b2c7f9a316", "G3f2a9c4e1b7d0a53"]
    assert store.resolve("G-unknown") == (None, ["G-unknown"])


def test_an_xref_written_before_valid_to_reads_it_as_null(lake_root: Path) -> None:
    """Lakes of an older cdi have no ``customer_xref.valid_to``: every row reads as current."""
    path = Lake.at(lake_root).gold("customer_xref")
    xref = DeltaTable(path).to_pyarrow_table()
    older = xref.filter(pc.field("valid_to").is_null()).drop_columns(["valid_to"])
    shutil.rmtree(path)
    write_deltalake(path, older)
    store = Store(Lake.at(lake_root))
    rows = store.xref_of_golden("Gc53f949e01944f00")
    assert [(r["record_id"], r["valid_to"]) for r in rows] == [
        ("support_desk:SUP-000074", None), ("webshop:W-1a2b3c4d", None)
    ]
    assert store.read("customer_xref", columns=["record_id", "valid_to"]).column_names == ["record_id", "valid_to"]
    assert store.xref("billing", "100871") is None


def test_latest_model(lake_root: Path) -> None:
    store = Store(Lake.at(lake_root))
    assert store.latest_run_id() == "r1" and store.latest_model() is not None


def test_warm_builds_every_index_before_the_first_request(lake_root: Path) -> None:
    store = Store(Lake.at(lake_root))
    store.warm()
    built = {name: set(store.snapshot(name)._derived) for name in ("golden_customers", "customer_xref", "customers_std")}
    assert built["golden_customers"] >= {"index:golden_id:False", "search"}
    assert built["customer_xref"] >= {"index:golden_id:True", "index:record_id:False",
                                      "index:source_system,source_key:False"}
    assert built["customers_std"] >= {"index:record_id:False", "search"}
