"""The review queue at scale: candidates as arrays in queue order, filtered and ordered per request.

``QueueIndex`` is built once per version of ``match_candidates``: the rows
sorted most uncertain first (``steward.review.uncertainty_order``), and the
columns the filters read as numpy arrays. ``PairStates`` (steward/review.py)
is built once per version of ``steward_decisions``. A page then costs a few
vectorised comparisons over 100,000 rows and a ``take`` of the rows it shows;
nothing is read from disk.

Order within the filtered queue: fresh pairs first, then pairs marked
``unsure`` (tier 1), then pairs with a record a steward already decided
since the candidates were published (tier 2): the steward is not asked about
that record again until the next run scores it anew. Within a tier, the
uncertainty order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steward.review import TIER_FRESH, TIER_TOUCHED, TIER_UNSURE, PairStates, QueueFilter, pair_key

PAGE_SIZE = 50


def _codes(column: Any) -> dict[str, int]:
    """Distinct non-null values, sorted, to their codes 0, 1, ..."""
    return {value: code for code, value in enumerate(sorted(v for v in column.unique().to_pylist() if v is not None))}


@dataclass(frozen=True)
class QueueIndex:
    table: pa.Table  # match_candidates, most uncertain first
    pair_ids: list[str]
    row_of: dict[str, int]  # pair_id -> row
    record_l: list[str]
    record_r: list[str]
    probability: np.ndarray
    # reason, blocking rule and the two sources as integer codes (-1 where null): cheap to compare
    codes: dict[str, dict[str, int]]  # "reason" / "rule" / "source" -> value -> code
    reason: np.ndarray
    blocking_rule: np.ndarray
    source_l: np.ndarray
    source_r: np.ndarray
    rows_of_record: dict[str, list[int]]  # record id -> rows of the pairs it is in
    run_ids: frozenset[str]

    @classmethod
    def build(cls, candidates: pa.Table) -> QueueIndex:
        keys = pa.table({"weight": pc.abs(candidates["match_weight"]), "pair_id": candidates["pair_id"]})
        table = candidates.take(pc.sort_indices(keys, [("weight", "ascending"), ("pair_id", "ascending")]))
        pair_ids = table["pair_id"].to_pylist()
        record_l, record_r = table["record_id_l"].to_pylist(), table["record_id_r"].to_pylist()
        rows_of_record: dict[str, list[int]] = {}
        for row, (left, right) in enumerate(zip(record_l, record_r)):
            rows_of_record.setdefault(left, []).append(row)
            rows_of_record.setdefault(right, []).append(row)

        source_l = pc.struct_field(table["record_l"], "source_system")
        source_r = pc.struct_field(table["record_r"], "source_system")
        codes = {
            "reason": _codes(table["reason"]),
            "rule": _codes(table["blocking_rule"]),
            "source": _codes(pa.chunked_array(source_l.chunks + source_r.chunks, pa.string())),
        }

        def coded(column: Any, kind: str) -> np.ndarray:
            return np.array([codes[kind].get(v, -1) for v in column.to_pylist()], dtype=np.int32)

        return cls(
            table=table,
            pair_ids=pair_ids,
            row_of={pair_id: row for row, pair_id in enumerate(pair_ids)},
            record_l=record_l,
            record_r=record_r,
            probability=table["match_probability"].to_numpy(zero_copy_only=False),
            codes=codes,
            reason=coded(table["reason"], "reason"),
            blocking_rule=coded(table["blocking_rule"], "rule"),
            source_l=coded(source_l, "source"),
            source_r=coded(source_r, "source"),
            rows_of_record=rows_of_record,
            run_ids=frozenset(r for r in table["run_id"].unique().to_pylist() if r is not None),
        )

    def __len__(self) -> int:
        return len(self.pair_ids)

    @property
    def choices(self) -> dict[str, list[str]]:
        """The values the filters offer: sources, reasons and blocking rules present in the queue."""
        return {kind: list(values) for kind, values in self.codes.items()}

    def code(self, kind: str, value: str) -> int:
        """The code of ``value`` (-2, matching nothing, when no candidate has it)."""
        return self.codes[kind].get(value, -2)

    def rows(self, rows: list[int]) -> list[dict[str, Any]]:
        """Full candidate rows (records side by side, evidence and levels as dicts)."""
        picked = self.table.take(pa.array(rows, pa.int64())).to_pylist()
        for row in picked:
            for column in ("evidence", "levels"):
                row[column] = dict(row[column] or [])
        return picked


@dataclass(frozen=True)
class Flags:
    """Per candidate row, what the decisions say about it (arrays aligned with a QueueIndex)."""

    decided: np.ndarray
    unsure: np.ndarray
    touched: np.ndarray
    tier: np.ndarray  # TIER_FRESH / TIER_UNSURE / TIER_TOUCHED
    claims: tuple[tuple[int, str, dt.datetime], ...]  # (row, steward, until), live or not


def flags(index: QueueIndex, states: PairStates) -> Flags:
    size = len(index)
    decided, unsure, touched = np.zeros(size, bool), np.zeros(size, bool), np.zeros(size, bool)
    for key in states.decided:
        row = index.row_of.get(f"{key[0]}|{key[1]}")
        if row is not None:
            decided[row] = True
    for key in states.unsure:
        row = index.row_of.get(f"{key[0]}|{key[1]}")
        if row is not None:
            unsure[row] = True
    for record in states.touched_records:
        touched[index.rows_of_record.get(record, [])] = True
    claims = []
    for key, (steward, until) in states.claims.items():
        row = index.row_of.get(f"{key[0]}|{key[1]}")
        if row is not None:
            claims.append((row, steward, until))
    tier = np.where(touched, TIER_TOUCHED, np.where(unsure, TIER_UNSURE, TIER_FRESH))
    return Flags(decided, unsure, touched, tier, tuple(claims))


def flags_after(index: QueueIndex, marks: Flags, states: PairStates, later: list[dict[str, Any]]) -> Flags:
    """``marks`` brought up to date with ``states`` for the pairs and records of ``later`` decisions only."""
    decided, unsure, touched = marks.decided.copy(), marks.unsure.copy(), marks.touched.copy()
    for d in later:
        if not d["record_id_l"] or not d["record_id_r"]:
            continue
        key = pair_key(d["record_id_l"], d["record_id_r"])
        row = index.row_of.get(f"{key[0]}|{key[1]}")
        if row is not None:
            decided[row], unsure[row] = key in states.decided, key in states.unsure
        for record in key:
            if record in states.touched_records:
                touched[index.rows_of_record.get(record, [])] = True
    claims = tuple((index.row_of[f"{k[0]}|{k[1]}"], who, until) for k, (who, until) in states.claims.items()
                   if f"{k[0]}|{k[1]}" in index.row_of)
    tier = np.where(touched, TIER_TOUCHED, np.where(unsure, TIER_UNSURE, TIER_FRESH))
    return Flags(decided, unsure, touched, tier, claims)


@dataclass(frozen=True)
class QueueView:
    """One steward's filtered queue: candidate rows in the order they are asked about."""

    order: np.ndarray  # rows of the QueueIndex
    tier: np.ndarray  # per row of the index: TIER_FRESH / TIER_UNSURE / TIER_TOUCHED
    claimed_by: Mapping[int, str]  # row -> steward, live claims only

    def __len__(self) -> int:
        return len(self.order)

    def where(self, row: int | None) -> int | None:
        """Position of ``row`` in the view, or None when it is not in it."""
        if row is None:
            return None
        found = np.flatnonzero(self.order == row)
        return int(found[0]) if len(found) else None


def view(index: QueueIndex, marks: Flags, keep: QueueFilter, steward: str, now: dt.datetime) -> QueueView:
    """The rows ``steward`` is asked about under ``keep``: undecided, filtered, not claimed by someone
    else (only their own claims with ``keep.mine``), fresh before unsure before already-decided records."""
    claimed_by = {row: who for row, who, until in marks.claims if until > now}
    keeps = ~marks.decided
    if keep.source is not None:
        source = index.code("source", keep.source)
        keeps &= (index.source_l == source) | (index.source_r == source)
    if keep.min_probability is not None:
        keeps &= index.probability >= keep.min_probability
    if keep.max_probability is not None:
        keeps &= index.probability <= keep.max_probability
    if keep.reason is not None:
        keeps &= index.reason == index.code("reason", keep.reason)
    if keep.blocking_rule is not None:
        keeps &= index.blocking_rule == index.code("rule", keep.blocking_rule)
    if keep.unsure == "only":
        keeps &= marks.unsure
    elif keep.unsure == "hide":
        keeps &= ~marks.unsure
    mine = np.zeros(len(index), bool)
    others = np.zeros(len(index), bool)
    for row, who in claimed_by.items():
        (mine if who == steward else others)[row] = True
    keeps &= mine if keep.mine else ~others
    # rows are in uncertainty order already: each tier keeps it
    order = np.concatenate([np.flatnonzero(keeps & (marks.tier == tier)) for tier in (TIER_FRESH, TIER_UNSURE, TIER_TOUCHED)])
    return QueueView(order, marks.tier, claimed_by)


def next_elsewhere(index: QueueIndex, queue: QueueView, at: int) -> str | None:
    """The pair after position ``at`` that shares no record with the pair there: once the steward
    decides that pair, pairs sharing its records move down, so this is the one to show next."""
    current = int(queue.order[at])
    records = {index.record_l[current], index.record_r[current]}
    for row in queue.order[at + 1:]:
        if queue.tier[row] != TIER_TOUCHED and not records & {index.record_l[row], index.record_r[row]}:
            return index.pair_ids[int(row)]
    return None


def pairs_of(index: QueueIndex, rows: np.ndarray) -> list[tuple[str, str]]:
    """The (record_id_l, record_id_r) of ``rows``."""
    return [pair_key(index.record_l[int(r)], index.record_r[int(r)]) for r in rows]
