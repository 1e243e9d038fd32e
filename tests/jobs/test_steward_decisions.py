"""Steward decisions as the pipeline applies them: splits, retractions and overrides (real Spark and Delta).

The pair tests feed ``latest_pair_decisions`` small frames built here; the
override tests publish a three-record lake twice or three times, with the
override written by the review app's own store (delta-rs), as in production.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql.types import StructType

from config.lake import Lake
from jobs.decisions import PAIR, effective_decisions, latest_pair_decisions, read_decisions, with_every_column
from jobs.erase_tables import Scope, by_decision
from jobs.publish import run_publish
from matching.cluster import cluster_pairs
from schemas.canonical import CANONICAL_SCHEMA
from schemas.golden import CLUSTERS_SCHEMA, STEWARD_DECISIONS_SCHEMA
from steward.decisions import override_decision, retract_decision
from steward.history import AttributeChange, revisions
from steward.store import Store
from tests.demo_run import demo_context

EARLY, LATER, LAST = (datetime(2026, 3, d, tzinfo=timezone.utc) for d in (1, 2, 3))
PAIRS_SCHEMA = "record_id_l string, record_id_r string, match_probability double, match_weight double, " \
               "blocking_rule string, gamma_email int, mw_email double"
DECIDED = "record_id_l string, record_id_r string, is_match boolean"


def decisions(spark, rows: list[dict]):
    """A decisions frame of ``rows`` (each names only the columns it sets), every column present."""
    columns = STEWARD_DECISIONS_SCHEMA.fieldNames()
    full = [tuple(row.get(c) for c in columns) for row in rows]
    return with_every_column(spark.createDataFrame(full, STEWARD_DECISIONS_SCHEMA))


def xref(spark, members: dict[str, str]):
    return spark.createDataFrame(sorted(members.items()), "record_id string, golden_id string")


def decided(spark, frame, members: dict[str, str]):
    return latest_pair_decisions(effective_decisions(frame), xref(spark, members))


def expected(spark, rows):
    return spark.createDataFrame(rows, DECIDED)


def test_a_split_of_several_records_keeps_them_together_and_apart_from_the_rest(spark):
    split = decisions(spark, [dict(decision_id="d1", decided_at=EARLY, steward="s", action="split", golden_id="G1",
                                   record_id_l="a", record_ids=["a", "b"], other_ids=["c", "d"], comment="twins")])
    members_now = {"a": "G1", "b": "G1", "c": "G1", "d": "G1"}
    assert_df_equality(
        decided(spark, split, members_now),
        expected(spark, [("a", "b", True), ("a", "c", False), ("a", "d", False), ("b", "c", False), ("b", "d", False)]),
        ignore_row_order=True, ignore_nullable=True,
    )


def test_clustering_with_a_split_of_several_records_puts_them_in_one_cluster_of_their_own(spark):
    split = decisions(spark, [dict(decision_id="d1", decided_at=EARLY, steward="s", action="split", golden_id="G1",
                                   record_id_l="a", record_ids=["a", "b"], other_ids=["c", "d"], comment="twins")])
    scored = spark.createDataFrame([(x, y, 0.99) for x, y in itertools.combinations("abcd", 2)],  # all four linked
                                   "record_id_l string, record_id_r string, match_probability double")
    steward = decided(spark, split, {})
    nodes = spark.createDataFrame([(r,) for r in "abcd"], "record_id string")

    clusters = cluster_pairs(nodes, scored, 0.9, steward.where("is_match").select(*PAIR),
                             steward.where("NOT is_match").select(*PAIR), 0.5)

    members = {r["record_id"]: r["cluster_id"] for r in clusters.collect()}
    assert members["a"] == members["b"] and members["c"] == members["d"] and members["a"] != members["c"]


def test_a_split_does_not_apply_to_a_record_that_joins_later(spark):
    split = dict(decision_id="d1", decided_at=EARLY, steward="s", action="split", golden_id="G1", record_id_l="a",
                 record_ids=["a"], other_ids=["c", "d"], comment="another person")
    # Since the split: a has its own golden record, and e (a true duplicate of a) joined G1.
    members_now = {"a": "G2", "c": "G1", "d": "G1", "e": "G1"}
    assert_df_equality(
        decided(spark, decisions(spark, [split]), members_now),
        expected(spark, [("a", "c", False), ("a", "d", False)]),
        ignore_row_order=True, ignore_nullable=True,
    )


def test_a_split_written_before_record_ids_keeps_its_old_meaning_against_the_current_members(spark):
    legacy = dict(decision_id="d1", decided_at=EARLY, steward="s", action="split", golden_id="G1", record_id_l="a",
                  comment="another person")
    members_now = {"a": "G1", "c": "G1", "e": "G1"}
    assert_df_equality(
        decided(spark, decisions(spark, [legacy]), members_now),
        expected(spark, [("a", "c", False), ("a", "e", False)]),
        ignore_row_order=True, ignore_nullable=True,
    )


def test_a_retracted_decision_is_not_applied_and_the_one_before_it_holds_again(spark):
    rows = [
        dict(decision_id="d1", decided_at=EARLY, steward="s", action="no_match", record_id_l="a", record_id_r="b"),
        dict(decision_id="d2", decided_at=LATER, steward="s", action="match", record_id_l="a", record_id_r="b"),
        dict(decision_id="d3", decided_at=LATER, steward="s", action="match", record_id_l="c", record_id_r="d"),
        dict(decision_id="d4", decided_at=LAST, steward="s", action="retract", supersedes="d2", record_id_l="a",
             record_id_r="b"),
        dict(decision_id="d5", decided_at=LAST, steward="s", action="retract", supersedes="d3"),
        # A retraction of a retraction withdraws nothing (and the app refuses to write one).
        dict(decision_id="d6", decided_at=LAST, steward="s", action="retract", supersedes="d5"),
    ]
    assert_df_equality(decided(spark, decisions(spark, rows), {}), expected(spark, [("a", "b", False)]),
                       ignore_nullable=True)


def test_a_decisions_table_written_before_the_new_columns_reads_as_before(spark, tmp_path):
    context = demo_context(tmp_path / "lake", "run-1")
    old_columns = [f for f in STEWARD_DECISIONS_SCHEMA.fields if f.name not in ("record_ids", "other_ids",
                   "record_hashes", "supersedes", "attribute", "value")]
    old = spark.createDataFrame([("d1", EARLY, "s", "match", "a", "b", None, None, None)],
                                StructType(old_columns))
    old.write.format("delta").save(context.lake.gold("steward_decisions"))

    read = read_decisions(spark, context)

    assert read.columns == STEWARD_DECISIONS_SCHEMA.fieldNames()
    assert [(r["decision_id"], r["record_ids"], r["supersedes"]) for r in read.collect()] == [("d1", None, None)]


def test_erasing_a_record_deletes_the_splits_and_overrides_that_list_it(spark):
    rows = [
        dict(decision_id="split", decided_at=EARLY, steward="s", action="split", golden_id="G1", record_id_l="a",
             record_ids=["a"], other_ids=["c", "erased:1"]),
        dict(decision_id="override", decided_at=EARLY, steward="s", action="override", golden_id="G2",
             record_ids=["erased:1", "d"], record_hashes=["h1", "h2"], attribute="email", value="x@y.example"),
        dict(decision_id="kept", decided_at=EARLY, steward="s", action="split", golden_id="G1", record_id_l="a",
             record_ids=["a"], other_ids=["c"]),
    ]
    scope = Scope(spark.createDataFrame([("crm", "1", "erased:1")], "source_system string, source_key string, "
                                        "record_id string"), spark.createDataFrame([], "golden_id string"))
    assert sorted(r["decision_id"] for r in by_decision(decisions(spark, rows), scope).collect()) == [
        "override", "split"]


# -- overrides, through publish -------------------------------------------------------------------


def record(record_id: str, record_hash: str, email: str, birth: str) -> dict:
    source, key = record_id.split(":")
    return dict(record_id=record_id, source_system=source, source_key=key, run_id="r", ingested_at=EARLY,
                record_hash=record_hash, given_name="ann", family_name="lee", full_name="ann lee", email=email,
                birth_date=datetime.fromisoformat(birth).date(), updated_at=EARLY)


def write_silver(spark, lake: Lake, records: list[dict]) -> None:
    """customers_std, one cluster of every record, and the pairs between them, as the match stage leaves them."""
    rows = [tuple(r.get(c) for c in CANONICAL_SCHEMA.fieldNames()) for r in records]
    spark.createDataFrame(rows, CANONICAL_SCHEMA).write.format("delta").mode("overwrite").save(lake.customers_std)
    ids = sorted(r["record_id"] for r in records)
    clusters = [(i, ids[0], None, ids[0], h, "r") for i, h in ((r["record_id"], r["record_hash"]) for r in records)]
    spark.createDataFrame(clusters, CLUSTERS_SCHEMA).write.format("delta").mode("overwrite").save(
        lake.path("silver", "clusters"))
    pairs = [(a, b, 0.999, 10.0, "email", 1, 5.0) for i, a in enumerate(ids) for b in ids[i + 1:]]
    spark.createDataFrame(pairs, PAIRS_SCHEMA).write.format("delta").mode("overwrite").save(lake.path("silver", "pairs"))


def publish(spark, root: Path, run_id: str) -> dict:
    """Publish ``run_id``; the one active golden record."""
    context = demo_context(root, run_id)
    run_publish(spark, context, context.settings.survivorship, context.settings.matching.thresholds)
    golden = DeltaTable(context.lake.gold("golden_customers")).to_pyarrow_table().to_pylist()
    (active,) = [g for g in golden if g["status"] == "active"]
    return {**active, "lineage": dict(active["lineage"])}


@pytest.fixture
def overridden(spark, tmp_path):
    """A lake published once, then a steward's override of the golden email (written by the app's store)."""
    root = tmp_path / "lake"
    lake = Lake.at(root)
    records = [record("crm:1", "h1", "ann@crm.example", "1980-02-03"),
               record("web:2", "h2", "ann@web.example", "1980-02-03")]
    write_silver(spark, lake, records)
    first = publish(spark, root, "run-1")
    store = Store(lake)
    hashes = {r["record_id"]: r["record_hash"] for r in records}
    decision = override_decision("alice", first["golden_id"], "email", "ann.lee@right.example", hashes,
                                 "customer phoned to correct it")
    store.append_decision(decision)
    return root, records, first, decision


def test_an_override_survives_the_next_run_then_yields_to_a_source_change(spark, overridden):
    root, records, first, decision = overridden
    assert (first["email"], first["lineage"]["email"]) == ("ann@crm.example", "crm:1")

    second = publish(spark, root, "run-2")

    assert second["golden_id"] == first["golden_id"]
    assert second["email"] == "ann.lee@right.example"
    assert second["lineage"]["email"] == f"steward:{decision.decision_id}"
    assert {k: v for k, v in second["lineage"].items() if k != "email"} == {
        k: v for k, v in first["lineage"].items() if k != "email"}
    # The golden record page's history reads the change (Spark's MERGE images) back with delta-rs.
    latest = revisions(Store(Lake.at(root)).golden_change_feed(first["golden_id"]))[0]
    assert (latest.run_id, latest.changes) == ("run-2", (AttributeChange(
        "email", "ann@crm.example", "ann.lee@right.example", "crm:1", f"steward:{decision.decision_id}"),))

    # The web shop record changes (a newer email): email is "most_recent", so survivorship takes it.
    changed = [records[0], {**records[1], "record_hash": "h2-changed", "email": "ann@web-new.example",
                            "updated_at": LATER}]
    write_silver(spark, Lake.at(root), changed)
    third = publish(spark, root, "run-3")

    assert (third["email"], third["lineage"]["email"]) == ("ann@web-new.example", "web:2")


def test_a_retracted_override_is_not_applied(spark, overridden):
    root, _, first, decision = overridden
    store = Store(Lake.at(root))
    store.append_decision(retract_decision("alice", store.decision(decision.decision_id), "wrong customer"))

    second = publish(spark, root, "run-2")

    assert (second["email"], second["lineage"]["email"]) == (first["email"], first["lineage"]["email"])
