"""The whole pipeline on a small demo data set: real Spark, real Delta, read back with delta-rs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from config.lake import Lake
from jobs.evaluate import evaluate, predicted_assignment, read_truth
from jobs.pipeline import STAGES, run_pipeline
from jobs.stages import MATCH_STAGES
from jobs.validate import CANONICAL_BATCH
from jobs.publish import run_publish
from matching.fellegi_sunter import FellegiSunterModel
from matching.model_io import SavedModel, saved_model_from_json
from matching.settings import load_settings
from tests.demo_run import DemoRun, data_dir

GOLD_TABLES = (
    "golden_customers", "customer_xref", "match_candidates", "golden_id_history", "_publications",
    "customer_activity", "customer_360", "households",
)
SILVER_TABLES = ("customers_std", "quarantine", "pairs", "clusters")


@pytest.fixture(scope="module")
def demo_lake(demo_run, tmp_path_factory) -> DemoRun:
    """The shared demo run on a lake of this module's own: its last tests run the pipeline again."""
    return demo_run.copy(tmp_path_factory.mktemp("pipeline"))


def versions(lake: Lake) -> dict[str, int]:
    return {name: DeltaTable(lake.gold(name)).version() for name in GOLD_TABLES}


def silver_counts(lake: Lake) -> dict[str, int]:
    return {name: len(DeltaTable(lake.path("silver", name)).to_pyarrow_dataset().to_table(columns=[]))
            for name in SILVER_TABLES}


def test_every_bronze_record_is_standardized_or_quarantined(spark, demo_lake):
    context = demo_lake.context()
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
    context = demo_lake.context()
    run_dir = Path(context.lake.run_dir(context.run_id))
    [index] = (run_dir / "gx").rglob("index.html")
    linked = set(re.findall(r"validations/[^\"'\s]+\.html", index.read_text()))
    for source in context.config.sources:
        assert any(link.startswith(f"validations/{source.name}/{context.run_id}/") for link in linked), source.name
    assert all((index.parent / link).is_file() for link in linked)
    summary = json.loads((run_dir / "validation.json").read_text())
    assert set(summary) == {s.name for s in context.config.sources} | {CANONICAL_BATCH}
    assert [r["suite"] for r in summary[CANONICAL_BATCH]] == ["canonical"]
    assert any(link.startswith(f"validations/canonical/{context.run_id}/") for link in linked)
    std = DeltaTable(context.lake.customers_std).to_pandas(columns=["email"]).dropna()
    docs_text = "".join(p.read_text(errors="ignore") for p in (run_dir / "gx").rglob("*.html"))
    assert not [e for e in std["email"].head(50) if e in docs_text]


def assert_same_model(parsed: SavedModel, trained: SavedModel) -> None:
    assert isinstance(parsed.model, FellegiSunterModel) and isinstance(trained.model, FellegiSunterModel)
    got, want = parsed.model, trained.model
    assert (got.lambda_, got.iterations, got.converged, got.household_key) == (
        want.lambda_, want.iterations, want.converged, want.household_key
    )
    assert [(c.name, c.levels, c.tf) for c in got.comparisons] == [(c.name, c.levels, c.tf) for c in want.comparisons]
    for ours, theirs in zip(got.comparisons, want.comparisons):
        np.testing.assert_array_equal(ours.m, theirs.m, err_msg=ours.name)
        np.testing.assert_array_equal(ours.u, theirs.u, err_msg=ours.name)
        assert (ours.u_household is None) == (theirs.u_household is None), ours.name
        if ours.u_household is not None:
            np.testing.assert_array_equal(ours.u_household, theirs.u_household, err_msg=ours.name)
    assert parsed.term_frequencies == trained.term_frequencies


def test_the_trained_model_survives_json_and_is_the_one_saved_with_the_run(demo_lake):
    [trained] = demo_lake.trained
    assert trained.term_frequencies, "the demo settings have term-frequency comparisons"
    assert_same_model(saved_model_from_json(trained.to_json()), trained)
    run_dir = Path(demo_lake.context().lake.run_dir(demo_lake.run_id))
    assert_same_model(saved_model_from_json((run_dir / "model.json").read_text()), trained)


def test_matching_finds_the_duplicates_of_the_demo_data(demo_lake):
    data, context = demo_lake.data, demo_lake.context()
    result = evaluate(predicted_assignment(context.lake.root), read_truth(data / "truth.csv", None))
    assert result.pairwise.records == len(DeltaTable(context.lake.customers_std).to_pandas(columns=["record_id"]))
    assert result.pairwise.recall > 0.9
    assert result.pairwise.precision > 0.75


def test_every_xref_points_at_an_existing_golden_record(demo_lake):
    context = demo_lake.context()
    xref = DeltaTable(context.lake.gold("customer_xref")).to_pandas()
    golden = DeltaTable(context.lake.gold("golden_customers")).to_pandas()
    std = DeltaTable(context.lake.customers_std).to_pandas(columns=["record_id"])
    assert sorted(xref["record_id"]) == sorted(std["record_id"])
    assert set(xref["golden_id"]) <= set(golden.loc[golden["status"] == "active", "golden_id"])
    sizes = xref.groupby("golden_id").size()
    assert (golden.set_index("golden_id").loc[sizes.index, "num_records"] == sizes).all()
    assert set(xref["linked_by"]) <= {"model", "steward", "singleton"}


def test_golden_values_come_from_their_lineage_records(demo_lake):
    context = demo_lake.context()
    golden = DeltaTable(context.lake.gold("golden_customers")).to_pandas()
    std = DeltaTable(context.lake.customers_std).to_pandas().set_index("record_id")
    for row in golden.head(40).itertuples():
        for attribute, record_id in dict(row.lineage).items():
            assert getattr(row, attribute) == std.loc[record_id, attribute], (row.golden_id, attribute)


def test_review_queue_holds_pairs_between_the_thresholds_with_both_records(demo_lake):
    context = demo_lake.context()
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
    context = demo_lake.context()
    for name in ("golden_customers", "customer_xref"):
        table = DeltaTable(context.lake.gold(name))
        feed = pa.table(table.load_cdf(starting_version=0)).to_pandas()
        assert {"_change_type", "_commit_version"} <= set(feed.columns)
        assert (feed["_change_type"] == "insert").sum() == len(table.to_pandas())


def test_every_activity_row_is_linked_orphaned_with_a_reason_or_quarantined(demo_lake):
    lake = demo_lake.context().lake
    truth = pd.read_csv(demo_lake.data / "activity_truth.csv", dtype=str, keep_default_na=False)
    activity = DeltaTable(lake.gold("customer_activity")).to_pandas()
    quarantine = DeltaTable(lake.quarantine).to_pandas()
    held = quarantine[quarantine["source_system"].str.contains("/")]
    key = ["source_system", "activity", "activity_key"]

    assert len(activity) + len(held) == len(truth) > 0
    assert not activity.duplicated(key).any()
    orphans = activity[activity["link_status"] != "linked"]
    assert set(orphans["link_status"]) <= {"unknown_customer", "customer_deleted", "customer_erased"}
    assert orphans["golden_id"].isna().all() and activity.loc[activity["link_status"] == "linked", "golden_id"].notna().all()
    truth_orphans = truth[truth["entity_id"] == ""]
    assert set(map(tuple, truth_orphans[key].to_numpy())) <= set(map(tuple, orphans[key].to_numpy()))
    # Any other orphan belongs to a customer record that was quarantined, not lost.
    others = orphans[~orphans.set_index(key).index.isin(truth_orphans.set_index(key).index)]
    quarantined_records = set(quarantine["source_system"] + ":" + quarantine["source_key"])
    assert set(others["record_id"]) <= quarantined_records


def test_customer_360_has_a_row_per_active_customer_counting_its_linked_activity(demo_lake):
    lake = demo_lake.context().lake
    golden = DeltaTable(lake.gold("golden_customers")).to_pandas()
    view = DeltaTable(lake.gold("customer_360")).to_pandas()
    activity = DeltaTable(lake.gold("customer_activity")).to_pandas()
    xref = DeltaTable(lake.gold("customer_xref")).to_pandas()

    assert sorted(view["golden_id"]) == sorted(golden.loc[golden["status"] == "active", "golden_id"])
    counted = {row.golden_id: sum(d["interactions"] for d in row.per_department) for row in view.itertuples()}
    linked = activity[activity["link_status"] == "linked"].groupby("golden_id").size()
    assert {g: n for g, n in counted.items() if n} == linked.to_dict()
    known = xref[xref["valid_to"].isna()].groupby("golden_id")["source_system"].agg(set)
    assert all(known.get(row.golden_id, set()) <= set(row.departments) for row in view.itertuples())
    assert {"new", "active", "lapsing", "lost"} & set(view["segment"])
    assert DeltaTable(lake.gold("customer_360")).metadata().configuration.get("delta.enableChangeDataFeed") == "true"


def test_households_hold_active_customers_once(demo_lake):
    lake = demo_lake.context().lake
    households = DeltaTable(lake.gold("households")).to_pandas()
    active = set(DeltaTable(lake.gold("golden_customers")).to_pandas().query("status == 'active'")["golden_id"])
    members = [g for ids in households["golden_ids"] for g in ids]

    assert len(households) > 0 and households["household_id"].is_unique
    assert len(members) == len(set(members)) and set(members) <= active
    assert (households["size"] == households["golden_ids"].map(len)).all() and (households["size"] >= 2).all()


def test_replaying_a_published_run_adds_nothing(spark, demo_lake):
    data, context = demo_lake.data, demo_lake.context()
    lake = context.lake
    sources = [source.name for source in context.config.sources]
    bronze_before = {name: DeltaTable(lake.bronze(name)).version() for name in sources}
    silver_before, gold_before = silver_counts(lake), versions(lake)
    with data_dir(data):
        # Without publish, run_pipeline does not stop at the published run: every earlier stage runs again.
        run_pipeline(spark, context, MATCH_STAGES[:-1])
        outcome = run_publish(spark, context, context.settings.survivorship, context.settings.matching.thresholds)
        run_pipeline(spark, context)
    assert outcome.already_published
    assert {name: DeltaTable(lake.bronze(name)).version() for name in sources} == bronze_before
    assert silver_counts(lake) == silver_before
    assert versions(lake) == gold_before
    audit = DeltaTable(lake.run_audit).to_pandas()
    ours = audit[audit["run_id"] == context.run_id]
    finished = ours[ours["source_system"].isna()]["stage"].value_counts()
    # The published run's replay runs only what comes after publish again.
    assert {stage: finished.get(stage) for stage in STAGES} == {
        **dict.fromkeys(MATCH_STAGES[:-1], 2), "publish": 1, "customer_360": 2
    }
    ingested = ours[ours["stage"] == "ingest"].sort_values("started_at")
    assert list(ingested["rows_out"].tail(len(sources))) == [0] * len(sources), "the replay lands no row"


def test_a_new_full_run_on_unchanged_data_changes_no_golden_id_or_row(spark, demo_lake):
    data, lake = demo_lake.data, demo_lake.context().lake
    unchanged = ("golden_customers", "customer_xref", "customer_activity", "customer_360", "households")
    before = {name: DeltaTable(lake.gold(name)).version() for name in unchanged}
    with data_dir(data):
        run_pipeline(spark, demo_lake.context("run-2"))

    history = DeltaTable(lake.gold("golden_id_history")).to_pandas()
    assert history[history["run_id"] == "run-2"].empty, "no create, merge, split, retire or delete"
    after = {name: DeltaTable(lake.gold(name)).version() for name in unchanged}
    assert after == before, "no gold row rewritten: the MERGEs found nothing to change"
    published = DeltaTable(lake.gold("_publications")).to_pandas()
    assert set(published["run_id"]) == {"run-1", "run-2"}
