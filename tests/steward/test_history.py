"""Attribute-level history of a golden record from change data feed rows (pure)."""

from __future__ import annotations

import datetime as dt

from steward.history import AttributeChange, Revision, revisions

T0, T1, T2 = (dt.datetime(2026, 3, d, 6, 0) for d in (1, 2, 3))


def image(kind: str, version: int, at: dt.datetime, run_id: str, **values) -> dict:
    row = {"golden_id": "G1", "status": "active", "survivor_id": None, "given_name": "ann", "email": "ann@a.example",
           "national_id": "AB123456C", "num_records": 2, "lineage": {"given_name": "crm:1", "email": "crm:1"},
           "run_id": run_id, "_change_type": kind, "_commit_version": version, "_commit_timestamp": at}
    return {**row, **values}


def test_an_update_lists_the_attributes_that_changed_with_when_the_run_and_the_source():
    feed = [
        image("insert", 0, T0, "run-1"),
        image("update_preimage", 3, T1, "run-1"),
        image("update_postimage", 3, T1, "run-2", email="ann@b.example", lineage={"given_name": "crm:1", "email": "web:2"}),
    ]
    assert revisions(feed) == [
        Revision(3, T1, "run-2", False, (AttributeChange("email", "ann@a.example", "ann@b.example", "crm:1", "web:2"),)),
        Revision(0, T0, "run-1", True, ()),
    ]


def test_a_replaced_row_counts_like_an_update_and_a_commit_changing_nothing_tracked_is_left_out():
    feed = [
        image("insert", 0, T0, "run-1"),
        image("delete", 1, T1, "run-1"),
        image("insert", 1, T1, "run-1", status="deleted", num_records=0),
        # only the content hash and timestamps moved: nothing a steward reads
        image("update_preimage", 2, T2, "run-1", status="deleted", num_records=0),
        image("update_postimage", 2, T2, "run-3", status="deleted", num_records=0),
    ]
    (deleted, created) = revisions(feed)
    assert [(c.attribute, c.before, c.after) for c in deleted.changes] == [("status", "active", "deleted"),
                                                                         ("num_records", 2, 0)]
    assert created.created and created.version == 0


def test_national_id_stays_masked_in_the_history():
    feed = [image("update_preimage", 1, T1, "run-1"),
            image("update_postimage", 1, T1, "run-2", national_id="ZX987654A")]
    (change,) = revisions(feed)[0].changes
    assert (change.attribute, change.before, change.after) == ("national_id", "•••••456C", "•••••654A")
    assert "AB123456C" not in repr(revisions(feed)) and "ZX987654A" not in repr(revisions(feed))


def test_a_source_swap_with_the_same_value_is_a_change_of_lineage():
    feed = [image("update_preimage", 1, T1, "run-1"),
            image("update_postimage", 1, T1, "run-2", lineage={"given_name": "crm:1", "email": "steward:d-9"})]
    (change,) = revisions(feed)[0].changes
    assert (change.before, change.after, change.source_before, change.source_after) == (
        "ann@a.example", "ann@a.example", "crm:1", "steward:d-9")
