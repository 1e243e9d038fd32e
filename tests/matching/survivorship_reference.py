"""The plain-Python reference of survivorship, the one ``golden_attributes`` is tested against.

``choose`` is one choice under a rule and its tie-breaks (``TIE_BREAKS``);
``golden_record`` applies the settings to one cluster. Production runs only
the Spark ``golden_attributes`` in ``matching/survivorship.py``, whose sort key
is built from the same ``TIE_BREAKS`` table, so both always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from matching.survivorship import TIE_BREAKS, SurvivorshipSettings
from schemas.canonical import CANONICAL_ATTRIBUTES


@dataclass(frozen=True)
class Candidate:
    """One record's value for an attribute (or a tuple of values for a group)."""

    record_id: str
    source_system: str
    updated_at: datetime | None
    value: Any


def source_rank(source_system: str, priority: Sequence[str]) -> int:
    """1 for the most trusted source; every unlisted source ranks ``len(priority) + 1``."""
    return priority.index(source_system) + 1 if source_system in priority else len(priority) + 1


def choose(values: Sequence[Candidate], rule: str, priority: Sequence[str]) -> Candidate | None:
    """The winning candidate under ``rule`` and its tie-breakers; None when every value is null."""
    candidates = [c for c in values if c.value is not None]
    if not candidates:
        return None
    frequency = Counter(c.value for c in candidates)

    def sort_key(candidate: Candidate) -> tuple[Any, ...]:
        parts: list[Any] = []
        for criterion in TIE_BREAKS[rule]:
            if criterion == "frequency":
                parts.append(-frequency[candidate.value])
            elif criterion == "length":
                parts.append(-_length(candidate.value))
            elif criterion == "source":
                parts.append(source_rank(candidate.source_system, priority))
            elif criterion == "recency":
                parts.extend((candidate.updated_at is None, -_micros(candidate.updated_at)))
            else:
                parts.append(candidate.record_id)
        return tuple(parts)

    return min(candidates, key=sort_key)


def golden_record(records: Sequence[Mapping[str, Any]], settings: SurvivorshipSettings) -> dict[str, Any]:
    """Pure reference of one cluster's golden attributes, ``lineage`` and ``num_records``.

    ``records`` are customers_std rows (mappings with ``record_id``,
    ``source_system``, ``updated_at`` and the canonical attributes).
    """
    result: dict[str, Any] = {a: None for a in CANONICAL_ATTRIBUTES}
    lineage: dict[str, str] = {}
    for selection in settings.selections():
        candidates = [
            Candidate(
                r["record_id"],
                r["source_system"],
                r.get("updated_at"),
                tuple(r.get(m) for m in selection.members) if r.get(selection.key) is not None else None,
            )
            for r in records
        ]
        winner = choose(candidates, selection.rule, settings.source_priority)
        if winner is None:
            continue
        for member, value in zip(selection.members, winner.value):
            result[member] = value
            if value is not None:
                lineage[member] = winner.record_id
    return {**result, "lineage": lineage, "num_records": len(records)}


def _length(value: Any) -> int:
    if isinstance(value, tuple):
        return sum(len(v) for v in value if v is not None)
    return len(value)


def _micros(moment: datetime | None) -> int:
    """Microseconds since the epoch (0 for None); naive datetimes stay naive, as Spark returns them."""
    if moment is None:
        return 0
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return (moment - epoch) // timedelta(microseconds=1)
