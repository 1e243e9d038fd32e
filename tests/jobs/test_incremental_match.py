"""An incremental match equals a full match with the same model on the same data.

Run 1 matches the demo data less every eighth web shop signup. Run 2 gets the
held-back signups and one changed support desk contact; its match runs once
incrementally and once in full with run 1's model, on two copies of the lake.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from demo.generator import generate
from config.lake import Lake
from jobs.pipeline import run_pipeline
from tests.demo_run import demo_context

CHANGED_EMAIL = "moved.on@example.org"


def table(lake: Path, *parts: str, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = DeltaTable(Lake.at(lake).path(*parts)).to_pandas().drop(columns=list(drop))
    frame = frame.map(lambda v: repr(sorted(v)) if isinstance(v, list) else repr(v))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def change_one_email(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    target = next(row for row in rows if row["email"])
    target["email"] = CHANGED_EMAIL
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """(incremental lake, full lake) after run 2."""
    data = tmp_path_factory.mktemp("data")
    generate(data, customers=60, seed=11)
    signups = data / "webshop_signups.jsonl"
    lines = signups.read_text(encoding="utf-8").splitlines(keepends=True)
    signups.write_text("".join(line for i, line in enumerate(lines) if i % 8), encoding="utf-8")
    incremental = tmp_path_factory.mktemp("incremental") / "lake"
    full = tmp_path_factory.mktemp("full") / "lake"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        run_pipeline(spark, demo_context(incremental, "run-1"))
        signups.write_text("".join(lines), encoding="utf-8")
        change_one_email(data / "support_desk.csv")
        run_pipeline(spark, demo_context(incremental, "run-2"), ("ingest", "standardize", "validate"))
        shutil.copytree(incremental, full)
        run_pipeline(spark, demo_context(incremental, "run-2", incremental=True), ("match", "publish"))
        model = Path(Lake.at(incremental).run_dir("run-1")) / "model.json"
        run_pipeline(spark, demo_context(full, "run-2", model_path=model), ("match", "publish"))
    return incremental, full


def test_pairs_and_clusters_equal_a_full_match(lakes):
    incremental, full = lakes
    for parts in (("silver", "pairs"), ("silver", "clusters")):
        pd.testing.assert_frame_equal(table(incremental, *parts, drop=("run_id",)), table(full, *parts, drop=("run_id",)))


def test_published_tables_equal_a_full_match(lakes):
    incremental, full = lakes
    for name in ("golden_customers", "customer_xref", "match_candidates", "golden_id_history"):
        pd.testing.assert_frame_equal(table(incremental, "gold", name), table(full, "gold", name))


def test_only_pairs_of_new_or_changed_records_were_scored(lakes):
    incremental, _ = lakes
    records = DeltaTable(Lake.at(incremental).customers_std).to_pandas()
    changed = set(records.loc[records["run_id"] == "run-2", "record_id"])
    pairs = DeltaTable(Lake.at(incremental).path("silver", "pairs")).to_pandas()
    touches = pairs["record_id_l"].isin(changed) | pairs["record_id_r"].isin(changed)
    rescored = pairs["run_id"] == "run-2"

    assert CHANGED_EMAIL in set(records["email"])
    assert rescored.any() and (~rescored).any()
    assert (rescored == touches).all()


def test_new_records_joined_existing_customers(lakes):
    incremental, _ = lakes
    records = DeltaTable(Lake.at(incremental).customers_std).to_pandas(columns=["record_id", "run_id"])
    clusters = DeltaTable(Lake.at(incremental).path("silver", "clusters")).to_pandas(columns=["record_id", "cluster_id"])
    runs = records.merge(clusters, on="record_id").groupby("cluster_id")["run_id"].nunique()

    assert (runs == 2).any()


def test_the_guard_signature_follows_what_the_pair_budget_and_guard_did_not_pair_counts():
    from jobs.match_state import guard_signature
    from matching.blocking import GuardedBlock, Refinement

    refined = [Refinement("birth_date", ("substring(given_name, 1, 1)",), 900, 400, 500)]
    block = [GuardedBlock("email", ("x@e",), 600, "sub_blocked")]
    grown = [Refinement("birth_date", ("substring(given_name, 1, 1)",), 950, 420, 510)]
    deeper = [Refinement("birth_date", ("substring(given_name, 1, 1)", "substring(family_name, 1, 1)"), 950, 420, 510)]

    assert guard_signature(block, refined) == guard_signature(block, grown)
    assert guard_signature(block, refined) != guard_signature(block, deeper)
    assert guard_signature(block, refined) != guard_signature(block, [])
    assert guard_signature(block, []) != guard_signature([], [])


def test_a_failed_full_match_keeps_the_last_model_and_the_next_incremental_scores_with_it(
    spark, lakes, tmp_path, monkeypatch, caplog
):
    import jobs.match_full

    lake = tmp_path / "lake"
    shutil.copytree(lakes[0], lake)
    state_path = Lake.at(lake).path("silver", "match_model")
    before = DeltaTable(state_path).to_pandas()

    def cluster_fails(*args, **kwargs):
        raise RuntimeError("the driver died while clustering")

    with monkeypatch.context() as patch:
        patch.setattr(jobs.match_full, "cluster_records", cluster_fails)
        with pytest.raises(RuntimeError, match="while clustering"):
            run_pipeline(spark, demo_context(lake, "run-3"), ("match",))
    after_failure = DeltaTable(state_path).to_pandas()
    assert after_failure[["run_id", "model_json"]].equals(before[["run_id", "model_json"]])

    with caplog.at_level("WARNING", logger="cdi.match"):
        run_pipeline(spark, demo_context(lake, "run-4", incremental=True), ("match",))

    assert "scoring all pairs with its model" in caplog.text
    run_dir = Path(Lake.at(lake).run_dir("run-4"))
    assert json.loads((run_dir / "matching.json").read_text())["training"] is None
    assert (run_dir / "model.json").read_text() == before["model_json"].iloc[0]
    pairs = DeltaTable(Lake.at(lake).path("silver", "pairs")).to_pandas()
    assert set(pairs["run_id"]) == {"run-4"}
