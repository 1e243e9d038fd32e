"""Stable golden ids: each case gives the whole expected assignment and history, checked in pandas and Spark."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.errors import PySparkException
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from matching.golden_ids import assign_golden_ids_spark
from tests.matching.golden_ids_reference import GoldenIdCollision, assign_golden_ids, new_golden_id

RUN = "run-2"
OLDER, NEWER = datetime(2023, 1, 1), datetime(2024, 1, 1)


def nid(min_record_id: str, run_id: str = RUN) -> str:
    """The documented id formula, written out independently of the module."""
    return "G" + hashlib.sha256(f"{run_id}|{min_record_id}".encode()).hexdigest()[:16]


def new(min_record_id: str) -> str:
    """In the case table: the new id of the cluster whose smallest record is ``min_record_id``."""
    return f"new:{min_record_id}"


def resolve(golden_id: str | None, prefix: str) -> str | None:
    """A case's id with every record and id prefixed (several cases in one Spark run)."""
    if golden_id is None:
        return None
    if golden_id.startswith("new:"):
        return nid(prefix + golden_id.removeprefix("new:"))
    return prefix + golden_id


@dataclass(frozen=True)
class Case:
    name: str
    clusters: dict[str, list[str]]  # cluster_id -> record ids (this run)
    previous: dict[str, list[str]]  # golden_id -> record ids (last published xref)
    expected: dict[str, str]  # cluster_id -> golden_id
    history: list[tuple[str, str, str | None, int]]  # (event, golden_id, related_id, records)
    first_seen: dict[str, datetime] = field(default_factory=dict)  # default NEWER
    retired: tuple[str, ...] = ()  # issued before, no longer in the xref


CASES = [
    Case("unchanged clusters keep their ids",
         {"c1": ["a1", "a2"], "c2": ["b1"]}, {"GA": ["a1", "a2"], "GB": ["b1"]},
         {"c1": "GA", "c2": "GB"}, []),
    Case("a record added keeps the id",
         {"c1": ["a1", "a2", "n1"]}, {"GA": ["a1", "a2"]},
         {"c1": "GA"}, []),
    Case("merge: the bigger golden survives",
         {"c1": ["a1", "a2", "a3", "b1"]}, {"GA": ["a1", "a2", "a3"], "GB": ["b1"]},
         {"c1": "GA"}, [("merge", "GA", None, 4), ("retire", "GB", "GA", 1)]),
    Case("merge: equal size, the older survives",
         {"c1": ["a1", "b1"]}, {"GA": ["a1"], "GB": ["b1"]},
         {"c1": "GB"}, [("merge", "GB", None, 2), ("retire", "GA", "GB", 1)],
         first_seen={"GA": NEWER, "GB": OLDER}),
    Case("split: the largest part keeps the id",
         {"c1": ["a1", "a2"], "c2": ["a3", "a4", "a5"]}, {"GA": ["a1", "a2", "a3", "a4", "a5"]},
         {"c1": new("a1"), "c2": "GA"}, [("split", new("a1"), "GA", 2)]),
    Case("split: equal parts, the part with the smallest record keeps the id",
         {"c1": ["a3", "a4"], "c2": ["a1", "a2"]}, {"GA": ["a1", "a2", "a3", "a4"]},
         {"c1": new("a3"), "c2": "GA"}, [("split", new("a3"), "GA", 2)]),
    Case("split and merge in the same run",
         {"c1": ["a1", "a2", "b1", "b2"], "c2": ["a3"]}, {"GA": ["a1", "a2", "a3"], "GB": ["b1", "b2"]},
         {"c1": "GA", "c2": new("a3")},
         [("merge", "GA", None, 4), ("retire", "GB", "GA", 2), ("split", new("a3"), "GA", 1)]),
    Case("a split-off part absorbs an unclaimed golden under a new id",
         {"c1": ["a1", "a2", "b1"], "c2": ["a3", "a4", "a5"]}, {"GA": ["a1", "a2", "a3", "a4", "a5"], "GB": ["b1"]},
         {"c1": new("a1"), "c2": "GA"},
         [("merge", new("a1"), None, 3), ("retire", "GB", new("a1"), 1), ("split", new("a1"), "GA", 3)]),
    Case("majority tie: equal sizes, the older golden is proposed",
         {"c1": ["a1", "b1"], "c2": ["a2"], "c3": ["b2"]}, {"GA": ["a1", "a2"], "GB": ["b1", "b2"]},
         {"c1": "GB", "c2": "GA", "c3": new("b2")}, [("split", new("b2"), "GB", 1)],
         first_seen={"GA": NEWER, "GB": OLDER}),
    Case("a new cluster gets a new id",
         {"c1": ["a1"], "c2": ["n2", "n1"]}, {"GA": ["a1"]},
         {"c1": "GA", "c2": new("n1")}, [("create", new("n1"), None, 2)]),
    Case("a golden whose records all vanished (deleted at the source) is deleted, with no survivor",
         {"c1": ["a1"]}, {"GA": ["a1"], "GB": ["b1", "b2"]},
         {"c1": "GA"}, [("delete", "GB", None, 2)], retired=("GZ",)),
    Case("first run: every cluster is created",
         {"c1": ["x1", "x2"], "c2": ["y1"]}, {},
         {"c1": new("x1"), "c2": new("y1")}, [("create", new("x1"), None, 2), ("create", new("y1"), None, 1)]),
]
IDS = [c.name for c in CASES]


BY_NAME = {c.name: c for c in CASES}
SPLIT_AND_MERGE = BY_NAME["split and merge in the same run"]
NEW_CLUSTER = BY_NAME["a new cluster gets a new id"]


def frames(case: Case, prefix: str = "") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The case's inputs; ``prefix`` goes before every record, cluster and golden id."""
    clusters = pd.DataFrame(
        [(prefix + r, prefix + c) for c, records in case.clusters.items() for r in records],
        columns=["record_id", "cluster_id"],
    )
    previous = pd.DataFrame(
        [(prefix + r, prefix + g) for g, records in case.previous.items() for r in records],
        columns=["record_id", "golden_id"],
    )
    goldens = [*case.previous, *case.retired]
    issued = pd.DataFrame(
        {
            "golden_id": [prefix + g for g in goldens],
            "first_seen": pd.to_datetime([case.first_seen.get(g, NEWER) for g in goldens]),
        }
    )
    return clusters, previous, issued


def expected_rows(case: Case, prefix: str = "") -> tuple[list[tuple], list[tuple]]:
    clusters = sorted((prefix + c, resolve(g, prefix)) for c, g in case.expected.items())
    history = sorted(
        ((RUN, event, resolve(g, prefix), resolve(related, prefix), n) for event, g, related, n in case.history),
        key=lambda row: (row[1], row[2]),
    )
    return clusters, history


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_assign_golden_ids(case):
    assignment = assign_golden_ids(*frames(case), RUN)
    clusters, history = expected_rows(case)
    pd.testing.assert_frame_equal(assignment.clusters, pd.DataFrame(clusters, columns=["cluster_id", "golden_id"]))
    expected_history = pd.DataFrame(history, columns=["run_id", "event", "golden_id", "related_id", "records"])
    pd.testing.assert_frame_equal(
        assignment.history, expected_history.astype({"records": "int64", "related_id": object})
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_id_reused_or_duplicated(case):
    clusters, previous, issued = frames(case)
    assigned = assign_golden_ids(clusters, previous, issued, RUN).clusters
    assert assigned["golden_id"].is_unique
    new_ids = set(assigned["golden_id"]) - set(previous["golden_id"])
    assert not new_ids & set(issued["golden_id"])


def test_replaying_a_run_gives_identical_ids():
    inputs = frames(SPLIT_AND_MERGE)
    first, second = assign_golden_ids(*inputs, RUN), assign_golden_ids(*inputs, RUN)
    pd.testing.assert_frame_equal(first.clusters, second.clusters)
    pd.testing.assert_frame_equal(first.history, second.history)


def test_replaying_after_publishing_keeps_every_id_and_logs_nothing():
    clusters, previous, issued = frames(SPLIT_AND_MERGE)
    first = assign_golden_ids(clusters, previous, issued, RUN)
    published = clusters.merge(first.clusters, on="cluster_id")[["record_id", "golden_id"]]
    new_ids = sorted(set(first.clusters["golden_id"]) - set(issued["golden_id"]))
    issued_after = pd.concat([issued, pd.DataFrame({"golden_id": new_ids, "first_seen": pd.Timestamp(NEWER)})])
    replay = assign_golden_ids(clusters, published, issued_after, RUN)
    pd.testing.assert_frame_equal(replay.clusters, first.clusters)
    assert replay.history.empty


def test_new_id_format_is_pinned():
    assert new_golden_id("run-1", "billing:1") == nid("billing:1", "run-1")
    assert new_golden_id("run-1", "billing:1") == "Ge4902941044f80a6"


def test_a_new_id_issued_before_is_never_reused():
    clusters, previous, issued = frames(NEW_CLUSTER)
    issued = pd.concat([issued, pd.DataFrame({"golden_id": [nid("n1")], "first_seen": pd.Timestamp(OLDER)})])
    with pytest.raises(GoldenIdCollision, match=nid("n1")):
        assign_golden_ids(clusters, previous, issued, RUN)


CLUSTERS = StructType([StructField("record_id", StringType()), StructField("cluster_id", StringType())])
XREF = StructType([StructField("record_id", StringType()), StructField("golden_id", StringType())])
ISSUED = StructType([StructField("golden_id", StringType()), StructField("first_seen", TimestampType())])
ASSIGNED = StructType([StructField("cluster_id", StringType()), StructField("golden_id", StringType())])
HISTORY = StructType(
    [
        StructField("run_id", StringType()),
        StructField("event", StringType()),
        StructField("golden_id", StringType()),
        StructField("related_id", StringType()),
        StructField("records", IntegerType()),
    ]
)


def spark_frames(spark, cases: dict[str, Case]):
    """Every case in one set of frames, its ids prefixed by its key, so Spark runs once for all of them."""
    parts = [frames(case, prefix) for prefix, case in cases.items()]
    clusters, previous, issued = (pd.concat(p, ignore_index=True) for p in zip(*parts))
    return (
        spark.createDataFrame(list(clusters.itertuples(index=False)), CLUSTERS),
        spark.createDataFrame(list(previous.itertuples(index=False)), XREF),
        spark.createDataFrame([(g, t.to_pydatetime()) for g, t in issued.itertuples(index=False)], ISSUED),
    )


def test_assign_golden_ids_spark_on_every_case(spark):
    cases = {f"k{i}:": case for i, case in enumerate(CASES)}
    assigned, history = assign_golden_ids_spark(*spark_frames(spark, cases), RUN)
    expected = [expected_rows(case, prefix) for prefix, case in cases.items()]
    check(assigned, spark.createDataFrame([row for clusters, _ in expected for row in clusters], ASSIGNED))
    check(history, spark.createDataFrame([row for _, events in expected for row in events], HISTORY))


def test_spark_never_reuses_an_issued_id(spark):
    clusters, previous, issued = spark_frames(spark, {"": NEW_CLUSTER})
    issued = issued.union(spark.createDataFrame([(nid("n1"), OLDER)], ISSUED))
    assigned, _ = assign_golden_ids_spark(clusters, previous, issued, RUN)
    with pytest.raises(PySparkException, match=nid("n1")):
        assigned.collect()


def check(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
