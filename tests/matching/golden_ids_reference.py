"""The pandas reference of stable golden ids, the one ``assign_golden_ids_spark`` is tested against.

``assign_golden_ids`` follows the rules in ``matching/golden_ids.py``'s
docstring in plain pandas, on small frames; ``tests/matching/test_golden_ids.py``
checks both it and the Spark implementation against the same expected cases.
Production runs only the Spark implementation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from matching.golden_ids import _ID_HEX_CHARS

HISTORY_COLUMNS: tuple[str, ...] = ("run_id", "event", "golden_id", "related_id", "records")
CLUSTER_COLUMNS: tuple[str, ...] = ("cluster_id", "golden_id")


class GoldenIdCollision(RuntimeError):
    """A generated golden id was issued before; ids are never reused."""


@dataclass(frozen=True)
class Assignment:
    """``clusters``: cluster_id → golden_id; ``history``: GOLDEN_ID_HISTORY_SCHEMA's columns but ``at``."""

    clusters: pd.DataFrame
    history: pd.DataFrame


def new_golden_id(run_id: str, min_record_id: str) -> str:
    digest = hashlib.sha256(f"{run_id}|{min_record_id}".encode("utf-8")).hexdigest()
    return "G" + digest[:_ID_HEX_CHARS]


def assign_golden_ids(clusters: pd.DataFrame, previous: pd.DataFrame, issued: pd.DataFrame, run_id: str) -> Assignment:
    """Golden ids for ``clusters`` (record_id, cluster_id).

    ``previous`` is the last published xref (record_id, golden_id); ``issued``
    every golden id ever issued (golden_id, first_seen).
    """
    # Empty frames arrive with any dtype; ids are strings, first_seen a timestamp.
    clusters = clusters[["record_id", "cluster_id"]].astype(object)
    previous = previous[["record_id", "golden_id"]].astype(object)
    issued = issued[["golden_id", "first_seen"]].astype({"golden_id": object})
    issued["first_seen"] = pd.to_datetime(issued["first_seen"])
    sizes = clusters.groupby("cluster_id", as_index=False).agg(
        size=("record_id", "size"), min_record=("record_id", "min")
    )
    goldens = previous.groupby("golden_id", as_index=False).agg(golden_size=("record_id", "size")).merge(
        issued, on="golden_id", how="left"
    )
    overlap = (
        clusters.merge(previous, on="record_id")
        .groupby(["cluster_id", "golden_id"], as_index=False)
        .agg(n=("record_id", "size"), part_min=("record_id", "min"))
        .merge(goldens, on="golden_id")
    )
    proposals = (
        overlap.sort_values(
            ["cluster_id", "n", "golden_size", "first_seen", "golden_id"],
            ascending=[True, False, False, True, True],
            na_position="last",
        )
        .groupby("cluster_id")
        .head(1)
        .sort_values(["golden_id", "n", "part_min"], ascending=[True, False, True])
    )
    won = ~proposals.duplicated("golden_id")
    kept = proposals.loc[won, ["cluster_id", "golden_id"]].rename(columns={"golden_id": "kept_id"})

    assigned = sizes.merge(kept, on="cluster_id", how="left")
    fresh = assigned["kept_id"].isna()
    assigned["golden_id"] = assigned["kept_id"]
    assigned.loc[fresh, "golden_id"] = [new_golden_id(run_id, r) for r in assigned.loc[fresh, "min_record"]]
    taken = set(issued["golden_id"]) | set(previous["golden_id"])
    reused = sorted(set(assigned.loc[fresh, "golden_id"]) & taken)
    if reused:
        raise GoldenIdCollision(f"new golden id {reused[0]} was issued before; run {run_id!r} cannot reuse it")

    split = assigned.merge(proposals.loc[~won, ["cluster_id", "golden_id"]], on="cluster_id", suffixes=("", "_origin"))
    created = assigned[~assigned["cluster_id"].isin(proposals["cluster_id"])]
    destination = overlap.sort_values(["golden_id", "n", "part_min"], ascending=[True, False, True]).drop_duplicates(
        "golden_id"
    )
    retired = (
        goldens[~goldens["golden_id"].isin(kept["kept_id"])]
        .merge(destination[["golden_id", "cluster_id"]], on="golden_id", how="left")
        .merge(assigned[["cluster_id", "golden_id"]], on="cluster_id", how="left", suffixes=("", "_survivor"))
    )
    survivors = assigned[assigned["golden_id"].isin(retired["golden_id_survivor"].dropna())]
    absorbed, deleted = retired[retired["golden_id_survivor"].notna()], retired[retired["golden_id_survivor"].isna()]
    history = pd.concat(
        [
            _events("create", created["golden_id"], None, created["size"]),
            _events("split", split["golden_id"], split["golden_id_origin"], split["size"]),
            _events("retire", absorbed["golden_id"], absorbed["golden_id_survivor"], absorbed["golden_size"]),
            _events("delete", deleted["golden_id"], None, deleted["golden_size"]),
            _events("merge", survivors["golden_id"], None, survivors["size"]),
        ],
        ignore_index=True,
    )
    history.insert(0, "run_id", run_id)
    history["related_id"] = history["related_id"].astype(object).where(history["related_id"].notna(), None)
    history = history.sort_values(["event", "golden_id"], ignore_index=True)
    return Assignment(
        clusters=assigned[list(CLUSTER_COLUMNS)].sort_values("cluster_id", ignore_index=True),
        history=history[list(HISTORY_COLUMNS)].astype({"records": "int64"}),
    )


def _events(event: str, golden_ids: pd.Series, related_ids: pd.Series | None, records: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event": event,
            "golden_id": golden_ids.to_numpy(dtype=object),
            "related_id": None if related_ids is None else related_ids.to_numpy(dtype=object),
            "records": records.to_numpy(dtype="int64"),
        }
    )
