"""Activity ingest and the customer_360 stage on a tiny lake (real Spark and Delta, read back with delta-rs).

The gold tables the stage reads (golden customers, the cross-reference) are
written here directly, as a publish would leave them: a merge, a split and a
steward's split are then each one new cross-reference, and the activity must
follow its source record to the customer that record belongs to now.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from config.errors import SourceError
from config.pipeline import PipelineConfig
from config.yaml_files import parse_model
from jobs.activities import ingest_activities
from jobs.customer_360 import run_customer_360
from jobs.runs import RunContext
from schemas.golden import CUSTOMER_XREF_SCHEMA, GOLDEN_CUSTOMERS_SCHEMA

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
CUSTOMERS = "id,name\nc1,ann\nc2,bob\nc3,cat\n"
ORDERS = (
    "order_id,customer,at,total,cur\n"
    "o1,c1,2026-02-20 10:00,10.50,GBP\n"
    "o2,c1,2025-01-05 09:00,5,GBP\n"
    "o3,c2,2026-01-10 12:00,£7.25,gbp\n"
    "o4,c9,2026-02-01 08:00,1,GBP\n"  # no such customer: an orphan
    "o5,,2026-02-01 08:00,1,GBP\n"  # no customer key: quarantined
    "o6,c3,2026-02-02 08:00,abc,GBP\n"  # an unusable amount: nulled with a reason
    "o6,c3,2026-02-03 08:00,3,GBP\n"  # the key again: both quarantined
)
TICKETS = "ticket_id,account,opened,state\nt1,a1,2026-02-25T08:00:00Z,open\nt2,a2,2025-12-01T08:00:00Z,closed\n"
ACCOUNTS = "id,name\na1,ann\na2,bob\n"


def _config(tmp_path: Path) -> PipelineConfig:
    for name, text in {"crm.csv": CUSTOMERS, "orders.csv": ORDERS, "desk.csv": ACCOUNTS, "tickets.csv": TICKETS}.items():
        (tmp_path / name).write_text(text)
    sources = [
        {
            "name": "crm", "kind": "csv", "path": str(tmp_path / "crm.csv"), "primary_key": ["id"],
            "mapping": {"full_name": "name"},
            "activities": [{
                "name": "orders", "kind": "csv", "path": str(tmp_path / "orders.csv"), "primary_key": ["order_id"],
                "customer_key": ["customer"], "timestamp": "at", "type": {"expr": "'order'"}, "amount": "total",
                "currency": "cur",
            }],
        },
        {
            "name": "desk", "kind": "csv", "path": str(tmp_path / "desk.csv"), "primary_key": ["id"],
            "mapping": {"full_name": "name"},
            "activities": [{
                "name": "tickets", "kind": "csv", "path": str(tmp_path / "tickets.csv"), "primary_key": ["ticket_id"],
                "customer_key": ["account"], "timestamp": "opened", "type": {"expr": "'ticket'"}, "status": "state",
            }],
        },
    ]
    return parse_model(
        PipelineConfig,
        {"lake": str(tmp_path / "lake"), "sources": sources, "customer_360": {"as_of": "2026-03-01"}},
        "cdi.yaml",
    )


def _publish(spark, context: RunContext, links: dict[str, str], linked_by: str = "model") -> None:
    """Gold tables as a publish leaves them: ``links`` maps record id -> golden id; every golden id is active."""
    golden_ids = sorted(set(links.values()))
    names = {"G1": "ann", "G2": "bob", "G3": "cat", "G4": "ann"}
    golden_rows = [
        {"golden_id": g, "status": "active", "full_name": names.get(g), "num_records": 1, "first_seen": T0,
         "last_updated": T0, "content_hash": g, "run_id": context.run_id}
        for g in golden_ids
    ]
    golden = spark.createDataFrame([tuple(r.get(f) for f in GOLDEN_CUSTOMERS_SCHEMA.fieldNames()) for r in golden_rows], GOLDEN_CUSTOMERS_SCHEMA)
    golden.write.format("delta").mode("overwrite").save(context.lake.gold("golden_customers"))
    xref_rows = [
        (record.split(":")[0], record.split(":")[1], record, g, 0.99, linked_by, context.run_id, None)
        for record, g in sorted(links.items())
    ]
    xref = spark.createDataFrame(xref_rows, CUSTOMER_XREF_SCHEMA)
    xref.write.format("delta").mode("overwrite").save(context.lake.gold("customer_xref"))


def _per_customer(context: RunContext) -> dict[str, list[str]]:
    activity = DeltaTable(context.lake.gold("customer_activity")).to_pandas()
    linked = activity[activity["link_status"] == "linked"]
    return {g: sorted(keys) for g, keys in linked.groupby("golden_id")["activity_key"]}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("c360")
    context = RunContext.create(_config(tmp_path), "run-1", started_at=T0)
    counts = {c.source: c for c in ingest_activities(spark, context)}
    _publish(spark, context, {"crm:c1": "G1", "crm:c2": "G2", "crm:c3": "G3", "desk:a1": "G1", "desk:a2": "G2"})
    first = run_customer_360(spark, context)
    return tmp_path, context, counts, first


def test_activity_lands_with_lineage_and_every_row_is_accounted_for(lake):
    _, context, counts, first = lake
    orders, tickets = counts["crm/orders"], counts["desk/tickets"]
    assert (orders.read, orders.landed, orders.rejected, orders.reasons) == (
        7, 4, 3, {"customer_key_not_null": 1, "primary_key_unique": 2}
    )
    assert orders.reconciles and (tickets.read, tickets.landed) == (2, 2)
    bronze = DeltaTable(context.lake.bronze_activity("crm", "orders")).to_pandas()
    assert sorted(zip(bronze["source_key"], bronze["customer_key"])) == [("o1", "c1"), ("o2", "c1"), ("o3", "c2"), ("o4", "c9")]
    assert set(bronze["source_system"]) == {"crm"} and set(bronze["activity"]) == {"orders"}
    quarantine = DeltaTable(context.lake.quarantine).to_pandas()
    assert sorted(zip(quarantine["source_system"], quarantine["check"])) == [
        ("crm/orders", "customer_key_not_null"), ("crm/orders", "primary_key_unique"), ("crm/orders", "primary_key_unique")
    ]
    assert (first.activity_rows, first.linked, first.orphans) == (6, 5, {"crm/orders": {"unknown_customer": 1}})


def test_the_360_row_sums_each_department(lake):
    _, context, _, _ = lake
    view = DeltaTable(context.lake.gold("customer_360")).to_pandas().set_index("golden_id")

    ann = view.loc["G1"]
    assert list(ann["departments"]) == ["crm", "desk"]
    assert [(d["source_system"], d["interactions"]) for d in ann["per_department"]] == [("crm", 2), ("desk", 1)]
    assert (ann["open_tickets"], ann["segment"], ann["recency_days"]) == (1, "active", 3)
    assert {k: str(v) for k, v in ann["monetary"]} == {"GBP": "15.5000"}
    assert view.loc["G3", "segment"] == "none" and list(view.loc["G3", "departments"]) == ["crm"]


def test_activity_follows_its_records_through_a_merge_a_split_and_a_stewards_split(spark, lake):
    _, context, _, _ = lake
    assert _per_customer(context) == {"G1": ["o1", "o2", "t1"], "G2": ["o3", "t2"]}

    _publish(spark, context, {"crm:c1": "G1", "crm:c2": "G1", "crm:c3": "G3", "desk:a1": "G1", "desk:a2": "G1"})
    merged = run_customer_360(spark, context)
    assert _per_customer(context) == {"G1": ["o1", "o2", "o3", "t1", "t2"]}
    assert sorted(DeltaTable(context.lake.gold("customer_360")).to_pandas()["golden_id"]) == ["G1", "G3"]
    assert merged.changed_rows["customer_activity"] == 2 and merged.changed_rows["customer_360"] == 2

    _publish(spark, context, {"crm:c1": "G1", "crm:c2": "G2", "crm:c3": "G3", "desk:a1": "G1", "desk:a2": "G2"})
    run_customer_360(spark, context)
    assert _per_customer(context) == {"G1": ["o1", "o2", "t1"], "G2": ["o3", "t2"]}

    steward = {"crm:c1": "G1", "crm:c2": "G2", "crm:c3": "G3", "desk:a1": "G4", "desk:a2": "G2"}
    _publish(spark, context, steward, linked_by="steward")
    run_customer_360(spark, context)
    assert _per_customer(context) == {"G1": ["o1", "o2"], "G2": ["o3", "t2"], "G4": ["t1"]}
    feed = pa.table(DeltaTable(context.lake.gold("customer_360")).load_cdf(starting_version=0)).to_pandas()
    assert {"insert", "update_postimage", "delete"} <= set(feed["_change_type"])


def test_a_rerun_with_nothing_changed_commits_nothing(spark, lake):
    _, context, _, _ = lake
    versions = {t: DeltaTable(context.lake.gold(t)).version() for t in ("customer_activity", "customer_360", "households")}

    outcome = run_customer_360(spark, context)

    assert outcome.changed_rows == {"customer_activity": 0, "customer_360": 0, "households": 0}
    assert {t: DeltaTable(context.lake.gold(t)).version() for t in versions} == versions


def test_a_configured_column_the_table_lacks_stops_before_anything_is_written(spark, tmp_path):
    config = _config(tmp_path)
    source = config.sources[0]
    broken = source.activities[0].model_copy(update={"timestamp": "ordered_at"})
    config = config.model_copy(update={"sources": (source.model_copy(update={"activities": (broken,)}), config.sources[1])})
    context = RunContext.create(config, "run-1", started_at=T0)

    with pytest.raises(SourceError, match="activity 'crm/orders': timestamp names column 'ordered_at'"):
        ingest_activities(spark, context)
    assert not Path(context.lake.root).exists()


ROW_SUITE = """suite: crm_orders
expectations:
  - expect: expect_column_values_to_match_regex
    kwargs: {column: total, regex: '^[0-9.]+$'}
    severity: row
    reason: total is not a plain number
"""
BATCH_SUITE = """suite: crm_orders
expectations:
  - expect: expect_table_row_count_to_be_between
    kwargs: {max_value: 2}
    severity: batch
"""


def _with_orders_suite(tmp_path: Path, text: str, **activity: object) -> PipelineConfig:
    config = _config(tmp_path)
    (tmp_path / "orders_suite.yaml").write_text(text)
    crm = config.sources[0]
    orders = crm.activities[0].model_copy(update={"suite": str(tmp_path / "orders_suite.yaml"), **activity})
    return config.model_copy(update={"sources": (crm.model_copy(update={"activities": (orders,)}), config.sources[1])})


def test_a_row_failing_the_activity_suite_is_quarantined_and_a_batch_failure_lands_nothing(spark, tmp_path):
    from config.errors import ValidationStopped

    (tmp_path / "row").mkdir()
    rows = RunContext.create(_with_orders_suite(tmp_path / "row", ROW_SUITE), "run-1", started_at=T0)
    counts = {c.source: c for c in ingest_activities(spark, rows)}

    assert (counts["crm/orders"].landed, counts["crm/orders"].reasons.get("suite")) == (3, 1)
    assert counts["crm/orders"].reconciles
    landed = set(DeltaTable(rows.lake.bronze_activity("crm", "orders")).to_pandas()["source_key"])
    assert landed == {"o1", "o2", "o4"}
    quarantine = DeltaTable(rows.lake.quarantine).to_pandas()
    failed = quarantine[quarantine["stage"] == "validate"]
    assert list(zip(failed["source_system"], failed["source_key"], failed["reason"])) == [
        ("crm/orders", "o3", "total is not a plain number")
    ]

    (tmp_path / "batch").mkdir()
    batch = RunContext.create(_with_orders_suite(tmp_path / "batch", BATCH_SUITE), "run-1", started_at=T0)
    with pytest.raises(ValidationStopped, match="crm/orders"):
        ingest_activities(spark, batch)
    assert not Path(batch.lake.bronze_activity("crm", "orders")).exists() or DeltaTable(
        batch.lake.bronze_activity("crm", "orders")
    ).to_pandas().empty


def test_an_incremental_ingest_reads_from_the_stored_watermark(spark, tmp_path):
    config = _with_orders_suite(tmp_path, ROW_SUITE.replace("'^[0-9.]+$'", "'.*'"), watermark="at")
    first = RunContext.create(config, "run-1", started_at=T0)
    ingest_activities(spark, first)
    with (tmp_path / "orders.csv").open("a") as orders:
        orders.write("o7,c2,2026-02-28 09:00,4,GBP\n")

    later = RunContext.create(config, "run-2", started_at=T0, incremental=True)
    counts = {c.source: c for c in ingest_activities(spark, later)}

    # From the watermark (2026-02-20 10:00, o1's) on: o1 again (unchanged) and the new o7.
    assert (counts["crm/orders"].read, counts["crm/orders"].landed, counts["crm/orders"].unchanged) == (2, 1, 1)
