"""The whole pipeline on a small demo data set: real Spark, real Delta, read back with delta-rs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from jobs.demo_data import generate
from jobs.evaluate import evaluate, predicted_assignment, read_truth
from jobs.lake import Lake
from jobs.pipeline import run_pipeline
from matching.model_io import model_from_json
from matching.settings import load_settings
from tests.demo_run import demo_context

GOLD_TABLES = ("golden_customers", "customer_xref", "match_candidates", "golden_id_history", "_publications")


@pytest.fixture(scope="module")
def demo_lake(spark, tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    lake = tmp_path_factory.mktemp("lake")
    generate(data, customers=150, seed=11)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        context = demo_context(lake, "run-1")
        run_pipeline(spark, context)
    return data, context


def versions(lake: Lake) -> dict[str, int]:
    return {name: DeltaTable(lake.gold(name)).version() for name in GOLD_TABLES}


def test_every_bronze_record_is_standardized_or_quarantined(spark, demo_lake):
    _, context = demo_lake
    lake = context.lake
    std = DeltaTable(lake.customers_std).to_pandas(columns=["record_id", "source_system"])
    quarantine = DeltaTable(lake.quarantine).to_pandas()
    held = quarantine[quarantine["stage"] == "validate"]
    for source in context.config.sources:
        bronze = DeltaTable(lake.bronze(source.name)).to_pandas(columns=["source_key"])
        in_std = (std["source_system"] == source.name).sum()
        in_quarantine = (held["source_system"] == source.name).sum()
        assert in_std + in_quarantine == len(bronze), source.name
    assert held["reason"].str.len().gt(0).all()
    audit = DeltaTable(lake.run_audit).to_pandas()
    validated = audit[(audit["stage"] == "validate") & audit["source_system"].notna()]
    assert set(validated["source_system"]) == {s.name for s in context.config.sources}
    assert (validated["rows_in"] == validated["rows_out"] + validated["rows_rejected"]).all()


def test_validation_results_and_data_docs_are_written_without_pii(demo_lake):
    _, context = demo_lake
    run_dir = Path(context.lake.run_dir(context.run_id))
    assert (run_dir / "gx").rglob("index.html")
    summary = json.loads((run_dir / "validation.json").read_text())
    assert set(summary) == {s.name for s in context.config.sources}
    std = DeltaTable(context.lake.customers_std).to_pandas(columns=["email"]).dropna()
    docs_text = "".join(p.read_text(errors="ignore") for p in (run_dir / "gx").rglob("*.html"))
    assert not [e for e in std["email"].head(50) if e in docs_text]


def test_model_is_saved_with_the_run_and_loads(demo_lake):
    _, context = demo_lake
    model = model_from_json((Path(context.lake.run_dir(context.run_id)) / "model.json").read_text())
    assert model.to_json() == model_from_json(model.to_json()).to_json()


def test_matching_finds_the_duplicates_of_the_demo_data(demo_lake):
    data, context = demo_lake
    result = evaluate(predicted_assignment(context.lake.root), read_truth(data / "truth.csv", None))
    assert result.pairwise.records == len(DeltaTable(context.lake.customers_std).to_pandas(columns=["record_id"]))
    assert result.pairwise.recall > 0.9
    assert result.pairwise.precision > 0.75


def test_every_xref_points_at_an_existing_golden_record(demo_lake):
    _, context = demo_lake
    xref = DeltaTable(context.lake.gold("customer_xref")).to_pandas()
    golden = DeltaTable(context.lake.gold("golden_customers")).to_pandas()
    std = DeltaTable(context.lake.customers_std).to_pandas(columns=["record_id"])
    assert sorted(xref["record_id"]) == sorted(std["record_id"])
    assert set(xref["golden_id"]) <= set(golden.loc[golden["status"] == "active", "golden_id"])
    sizes = xref.groupby("golden_id").size()
    assert (golden.set_index("golden_id").loc[sizes.index, "num_records"] == sizes).all()
    assert set(xref["linked_by"]) <= {"model", "steward", "singleton"}


def test_golden_values_come_from_their_lineage_records(demo_lake):
    _, context = demo_lake
    golden = DeltaTable(context.lake.gold("golden_customers")).to_pandas()
    std = DeltaTable(context.lake.customers_std).to_pandas().set_index("record_id")
    for row in golden.head(40).itertuples():
        for attribute, record_id in dict(row.lineage).items():
            assert getattr(row, attribute) == std.loc[record_id, attribute], (row.golden_id, attribute)


def test_review_queue_holds_pairs_between_the_thresholds_with_both_records(demo_lake):
    _, context = demo_lake
    thresholds = load_settings(Path(context.config.matching)).thresholds
    queue = DeltaTable(context.lake.gold("match_candidates")).to_pandas()
    between = queue[queue["reason"] == "between thresholds"]
    assert between["match_probability"].between(thresholds.review, thresholds.match, inclusive="left").all()
    apart = queue[queue["reason"] == "linked but kept apart"]
    golden = DeltaTable(context.lake.gold("customer_xref")).to_pandas().set_index("record_id")["golden_id"]
    assert (apart["match_probability"] >= thresholds.match).all()
    assert (apart["record_id_l"].map(golden) != apart["record_id_r"].map(golden)).all()
    assert (queue["record_l"].map(lambda r: r["record_id"]) == queue["record_id_l"]).all()
    assert queue["pair_id"].is_unique


def test_gold_tables_and_change_feed_read_with_delta_rs(demo_lake):
    _, context = demo_lake
    for name in ("golden_customers", "customer_xref"):
        table = DeltaTable(context.lake.gold(name))
        feed = pa.table(table.load_cdf(starting_version=0)).to_pandas()
        assert {"_change_type", "_commit_version"} <= set(feed.columns)
        assert (feed["_change_type"] == "insert").sum() == len(table.to_pandas())


def test_replaying_a_published_run_changes_nothing(spark, demo_lake):
    data, context = demo_lake
    before = versions(context.lake)
    bronze_before = DeltaTable(context.lake.bronze("billing")).version()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        run_pipeline(spark, context)
    assert versions(context.lake) == before
    assert DeltaTable(context.lake.bronze("billing")).version() == bronze_before
