"""An incremental match equals a full match with the same model on the same data.

Run 0 lands the demo data less every eighth web shop signup (ingest only).
Run 1 matches it, with one sales CRM email changed since run 0. Run 2 gets the
held-back signups, one changed support desk contact, that CRM email back as
it was in run 0 (A -> B -> A), and deletions at the source: every record of
one person and one record of another. Its match runs once incrementally and
once in full with run 1's model, on two copies of the lake; a fresh lake
given only run 2's sources, with the same model, must publish the same
golden records.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable

from demo.generator import generate
from config.lake import Lake
from config.pipeline import load_pipeline_config
from jobs.pipeline import run_pipeline
from tests.demo_run import CONF, demo_context

CHANGED_EMAIL = "moved.on@example.org"
INTERIM_EMAIL = "interim.address@example.org"
SQLITE_TABLES = {"sales_crm": ("sales_crm.db", "crm_contacts", "contact_id"),
                 "billing": ("billing.db", "billing_accounts", "acct_no")}


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


def crm_email(data: Path, key: int, email: str | None = None) -> str:
    """The CRM contact's email; set to ``email`` when given."""
    with sqlite3.connect(data / "sales_crm.db") as conn:
        if email is not None:
            conn.execute("UPDATE crm_contacts SET email = ? WHERE contact_id = ?", (email, key))
        return conn.execute("SELECT email FROM crm_contacts WHERE contact_id = ?", (key,)).fetchone()[0]


def delete_at_source(data: Path, source: str, key: str) -> None:
    if source in SQLITE_TABLES:
        file, table, column = SQLITE_TABLES[source]
        with sqlite3.connect(data / file) as conn:
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (int(key),))
        return
    path, field = (data / "support_desk.csv", "ticket_contact_id") if source == "support_desk" else (
        data / "webshop_signups.jsonl", "signup_id")
    if source == "support_desk":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row[field] != key]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(line for line in lines if json.loads(line)[field] != key), encoding="utf-8")


def deletions(data: Path) -> list[tuple[str, str]]:
    """Every record of the first person known to three departments, and the first CRM record of another
    person who has records elsewhere too (neither the CRM contact whose email reverts)."""
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    per_person = truth.groupby("entity_id")["source_system"].nunique()
    whole, partial = per_person[per_person >= 3].index[:2]
    gone = truth[truth["entity_id"] == whole]
    crm = truth[(truth["entity_id"] == partial) & (truth["source_system"] == "sales_crm")].head(1)
    return [tuple(row) for row in pd.concat([gone, crm])[["source_system", "source_key"]].itertuples(index=False)]


def untouched_crm_contact(data: Path, gone: list[tuple[str, str]]) -> int:
    """A CRM contact with an email, of a person none of whose records is deleted."""
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    touched = set(truth.loc[truth["source_key"].isin([k for _, k in gone]), "entity_id"])
    with sqlite3.connect(data / "sales_crm.db") as conn:
        with_email = {str(k) for (k,) in conn.execute("SELECT contact_id FROM crm_contacts WHERE email <> ''")}
    crm = truth[(truth["source_system"] == "sales_crm") & ~truth["entity_id"].isin(touched)]
    return int(next(k for k in crm["source_key"] if k in with_email))


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """(incremental lake, full lake, fresh lake, data folder, deleted records, reverted CRM key) after run 2."""
    data = tmp_path_factory.mktemp("data")
    generate(data, customers=60, seed=11)
    signups = data / "webshop_signups.jsonl"
    lines = signups.read_text(encoding="utf-8").splitlines(keepends=True)
    incremental = tmp_path_factory.mktemp("incremental") / "lake"
    full = tmp_path_factory.mktemp("full") / "lake"
    fresh = tmp_path_factory.mktemp("fresh") / "lake"
    gone = deletions(data)
    reverted = untouched_crm_contact(data, gone)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        signups.write_text("".join(line for i, line in enumerate(lines) if i % 8), encoding="utf-8")
        run_pipeline(spark, demo_context(incremental, "run-0"), ("ingest",))
        original_email = crm_email(data, reverted)
        crm_email(data, reverted, INTERIM_EMAIL)
        run_pipeline(spark, demo_context(incremental, "run-1"))
        signups.write_text("".join(lines), encoding="utf-8")
        change_one_email(data / "support_desk.csv")
        crm_email(data, reverted, original_email)
        for source, key in gone:
            delete_at_source(data, source, key)
        run_pipeline(spark, demo_context(incremental, "run-2"), ("ingest", "standardize", "validate"))
        shutil.copytree(incremental, full)
        run_pipeline(spark, demo_context(incremental, "run-2", incremental=True), ("match", "publish"))
        model = Path(Lake.at(incremental).run_dir("run-1")) / "model.json"
        run_pipeline(spark, demo_context(full, "run-2", model_path=model), ("match", "publish"))
        run_pipeline(spark, demo_context(fresh, "run-2", model_path=model))
    return incremental, full, fresh, gone, reverted


def test_pairs_and_clusters_equal_a_full_match(lakes):
    incremental, full, *_ = lakes
    for parts in (("silver", "pairs"), ("silver", "clusters")):
        pd.testing.assert_frame_equal(table(incremental, *parts, drop=("run_id",)), table(full, *parts, drop=("run_id",)))


def test_published_tables_equal_a_full_match(lakes):
    incremental, full, *_ = lakes
    for name in ("golden_customers", "customer_xref", "match_candidates", "golden_id_history"):
        pd.testing.assert_frame_equal(table(incremental, "gold", name), table(full, "gold", name))


def test_only_pairs_of_new_or_changed_records_were_scored(lakes):
    incremental, *_ = lakes
    records = DeltaTable(Lake.at(incremental).customers_std).to_pandas()
    changed = set(records.loc[records["run_id"] == "run-2", "record_id"])
    pairs = DeltaTable(Lake.at(incremental).path("silver", "pairs")).to_pandas()
    touches = pairs["record_id_l"].isin(changed) | pairs["record_id_r"].isin(changed)
    rescored = pairs["run_id"] == "run-2"

    assert CHANGED_EMAIL in set(records["email"])
    assert rescored.any() and (~rescored).any()
    assert (rescored == touches).all()


def test_new_records_joined_existing_customers(lakes):
    incremental, *_ = lakes
    records = DeltaTable(Lake.at(incremental).customers_std).to_pandas(columns=["record_id", "run_id"])
    clusters = DeltaTable(Lake.at(incremental).path("silver", "clusters")).to_pandas(columns=["record_id", "cluster_id"])
    runs = records.merge(clusters, on="record_id").groupby("cluster_id")["run_id"].nunique()

    assert (runs == 2).any()


def test_a_record_that_went_back_to_an_earlier_value_is_matched_as_it_is_now(spark, lakes):
    incremental, _, _, _, reverted = lakes
    bronze = DeltaTable(Lake.at(incremental).bronze("sales_crm")).to_pandas(columns=["source_key", "email", "run_id"])
    versions = bronze[bronze["source_key"] == str(reverted)].sort_values("run_id")
    records = DeltaTable(Lake.at(incremental).customers_std).to_pandas(columns=["record_id", "email"])
    now = records.loc[records["record_id"] == f"sales_crm:{reverted}", "email"].item()

    assert list(versions["run_id"]) == ["run-0", "run-1", "run-2"]
    assert versions["email"].iloc[0] == versions["email"].iloc[2] != INTERIM_EMAIL == versions["email"].iloc[1]
    assert now != INTERIM_EMAIL.lower() and now is not None


def test_deleted_records_leave_silver_and_close_their_xref_rows(lakes):
    incremental, _, _, gone, _ = lakes
    deleted = {f"{source}:{key}" for source, key in gone}
    records = DeltaTable(Lake.at(incremental).customers_std).to_pandas(columns=["record_id"])
    xref = DeltaTable(Lake.at(incremental).gold("customer_xref")).to_pandas()
    closed = xref[xref["record_id"].isin(deleted)]

    assert not deleted & set(records["record_id"])
    assert len(closed) == len(deleted)
    assert set(closed["linked_by"]) == {"deleted"} and closed["valid_to"].notna().all()
    assert xref.loc[~xref["record_id"].isin(deleted), "valid_to"].isna().all()


def test_a_golden_record_whose_records_were_all_deleted_is_deleted(lakes):
    incremental, _, _, gone, _ = lakes
    xref = DeltaTable(Lake.at(incremental).gold("customer_xref")).to_pandas()
    golden = DeltaTable(Lake.at(incremental).gold("golden_customers")).to_pandas().set_index("golden_id")
    history = DeltaTable(Lake.at(incremental).gold("golden_id_history")).to_pandas()
    open_ids = set(xref.loc[xref["valid_to"].isna(), "golden_id"])
    emptied = set(xref.loc[xref["linked_by"] == "deleted", "golden_id"]) - open_ids

    assert emptied, "deleting every record of one person empties at least one golden record"
    assert set(golden.loc[list(emptied), "status"]) == {"deleted"}
    assert set(golden.loc[golden["status"] == "active"].index) == open_ids
    deletes = history[(history["run_id"] == "run-2") & (history["event"] == "delete")]
    assert set(deletes["golden_id"]) == emptied and deletes["related_id"].isna().all()


def test_after_deletions_the_golden_records_equal_a_fresh_run_without_them(lakes):
    incremental, _, fresh, _, _ = lakes

    def active(lake: Path) -> pd.DataFrame:
        golden = DeltaTable(Lake.at(lake).gold("golden_customers")).to_pandas()
        golden = golden[golden["status"] == "active"].drop(
            columns=["golden_id", "first_seen", "last_updated", "run_id", "content_hash"]
        )
        golden = golden.map(lambda v: repr(sorted(v)) if isinstance(v, list) else repr(v))
        return golden.sort_values(list(golden.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(active(incremental), active(fresh))


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


def test_an_incremental_run_whose_last_model_no_longer_fits_the_comparisons_trains_a_new_one(
    spark, lakes, tmp_path, caplog
):
    """A model saved before the comparison settings changed (here birth_date with a level fewer, as an older
    cdi trained it) cannot score today's pairs: the run says so and matches every record with a new model."""
    from jobs.match_state import MODEL_STATE_SCHEMA
    from matching.fellegi_sunter import FellegiSunterModel
    from tests.matching.test_model_io import _with_fewer_birth_date_levels

    lake = tmp_path / "lake"
    shutil.copytree(lakes[0], lake)
    state_path = Lake.at(lake).path("silver", "match_model")
    state = DeltaTable(state_path).to_pandas()
    saved = json.loads(state["model_json"].iloc[0])
    older = json.loads(_with_fewer_birth_date_levels(FellegiSunterModel.from_json(saved)).to_json())
    state["model_json"] = json.dumps({**older, "term_frequencies": saved["term_frequencies"]})
    spark.createDataFrame(state, MODEL_STATE_SCHEMA).write.format("delta").mode("overwrite").save(state_path)

    with caplog.at_level("WARNING", logger="cdi.match"):
        run_pipeline(spark, demo_context(lake, "run-3", incremental=True), ("match",))

    levels = FellegiSunterModel.from_json(saved).comparison("birth_date").levels
    assert (
        f"model does not fit the comparison settings (birth_date: {levels - 1} levels in the model, {levels} in the "
        "settings)"
    ) in caplog.text
    assert "no model from an earlier full match" not in caplog.text
    run_dir = Path(Lake.at(lake).run_dir("run-3"))
    assert json.loads((run_dir / "matching.json").read_text())["training"] is not None
    trained = FellegiSunterModel.from_json(json.loads((run_dir / "model.json").read_text()))
    assert trained.comparison("birth_date").levels == levels


def test_an_incremental_run_after_the_guard_skipped_a_block_scores_all_pairs(spark, lakes, tmp_path, caplog):
    """A skipped block's identical records are each paired with the lowest id among them, which a new, changed or
    gone record can move onto pairs an incremental run would not score again: so it scores them all."""
    lake = tmp_path / "lake"
    shutil.copytree(lakes[0], lake)
    settings = yaml.safe_load(Path(load_pipeline_config(CONF).matching).read_text(encoding="utf-8"))
    matching = tmp_path / "matching.yaml"
    matching.write_text(yaml.safe_dump({**settings, "max_block_size": 2, "sub_block_key": None}), encoding="utf-8")
    run_pipeline(spark, demo_context(lake, "run-3", matching=matching), ("match",))
    model = Path(Lake.at(lake).run_dir("run-3")) / "model.json"

    with caplog.at_level("WARNING"):
        run_pipeline(spark, demo_context(lake, "run-4", matching=matching, incremental=True), ("match",))

    assert "skipped (records identical on every compared attribute still paired)" in caplog.text
    assert "the huge-block guard skipped a block" in caplog.text
    pairs = DeltaTable(Lake.at(lake).path("silver", "pairs")).to_pandas()
    assert set(pairs["run_id"]) == {"run-4"}
    assert (Path(Lake.at(lake).run_dir("run-4")) / "model.json").read_text() == model.read_text()
