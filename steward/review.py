"""Pure logic of the review pages: queue order, filters, attribute agreement, the weight waterfall.

Queue order: a decision helps most where the model is least sure, so pairs
come closest-to-50 % first, i.e. by ``|match_weight|`` ascending (the same
order as ``|match_probability - 0.5|``, since the probability is a monotone,
symmetric function of the weight, but without rounding to 1.0 at large
weights). Such labels move the decision boundary of the next (supervised)
model most, and these are the pairs a threshold tweak would flip. Ties go by
``pair_id`` so the order is stable.

A pair leaves the queue once it has a ``match`` or ``no_match`` decision (the
pipeline then treats the latest of those as a must-link / cannot-link);
``unsure`` keeps it in the queue, marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matching.settings import Comparison
from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.privacy import mask_value
from steward.decisions import DECIDING_ACTIONS, PAIR_ACTIONS

SHOWN_ATTRIBUTES: tuple[str, ...] = tuple(a for a in CANONICAL_ATTRIBUTES if a != "full_name")


@dataclass(frozen=True)
class QueueFilter:
    source: str | None = None
    min_probability: float | None = None
    max_probability: float | None = None

    def keeps(self, candidate: Mapping[str, Any]) -> bool:
        sources = {candidate["record_l"]["source_system"], candidate["record_r"]["source_system"]}
        probability = candidate["match_probability"]
        return (
            (self.source is None or self.source in sources)
            and (self.min_probability is None or probability >= self.min_probability)
            and (self.max_probability is None or probability <= self.max_probability)
        )


def pair_key(record_a: str, record_b: str) -> tuple[str, str]:
    left, right = sorted((record_a, record_b))
    return left, right


def latest_pair_decisions(decisions: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The latest pair decision (any of match / no_match / unsure) per pair."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    ordered = sorted(
        (d for d in decisions if d["action"] in PAIR_ACTIONS), key=lambda d: (d["decided_at"], d["decision_id"])
    )
    for decision in ordered:
        latest[pair_key(decision["record_id_l"], decision["record_id_r"])] = decision
    return latest


def decided_pairs(decisions: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Pairs with a match or no_match decision: they are out of the queue."""
    return {pair_key(d["record_id_l"], d["record_id_r"]) for d in decisions if d["action"] in DECIDING_ACTIONS}


def uncertainty_order(candidate: Mapping[str, Any]) -> tuple[float, str]:
    return abs(candidate["match_weight"]), candidate["pair_id"]


def review_queue(
    candidates: Iterable[Mapping[str, Any]], decisions: Sequence[Mapping[str, Any]], keep: QueueFilter
) -> list[Mapping[str, Any]]:
    """Undecided candidates that pass ``keep``, most uncertain first."""
    done = decided_pairs(decisions)
    pending = [
        c for c in candidates if pair_key(c["record_id_l"], c["record_id_r"]) not in done and keep.keeps(c)
    ]
    return sorted(pending, key=uncertainty_order)


@dataclass(frozen=True)
class Position:
    current: Mapping[str, Any] | None
    index: int  # of current in the queue, 0-based
    previous_id: str | None
    next_id: str | None


def position(queue: Sequence[Mapping[str, Any]], pair_id: str | None) -> Position:
    """Where ``pair_id`` is in the queue; the first pair when it is absent (decided meanwhile)."""
    if not queue:
        return Position(None, 0, None, None)
    ids = [c["pair_id"] for c in queue]
    index = ids.index(pair_id) if pair_id in ids else 0
    return Position(
        current=queue[index],
        index=index,
        previous_id=ids[index - 1] if index > 0 else None,
        next_id=ids[index + 1] if index + 1 < len(ids) else None,
    )


@dataclass(frozen=True)
class AttributeRow:
    attribute: str
    left: Any
    right: Any
    status: str  # agree | similar | disagree | missing | not-compared
    level: str  # the level that held, e.g. "jaro_winkler >= 0.92"
    weight: float | None  # the comparison's match weight, bits


def _level_label(comparison: Comparison, gamma: int) -> str:
    if gamma == -1:
        return "missing on one side"
    if gamma == 0:
        return "no level holds"
    level = comparison.levels[len(comparison.levels) - gamma]
    details = {k: v for k, v in level.model_dump().items() if k not in ("kind", "column")}
    if comparison.level_column(level) != comparison.column:
        details["on"] = comparison.level_column(level)
    bound = ", ".join(f"{k} {v}" for k, v in details.items() if v is not None)
    return f"{level.kind} ({bound})" if bound else level.kind


def _status(comparison: Comparison, gamma: int) -> str:
    if gamma == -1:
        return "missing"
    if gamma == 0:
        return "disagree"
    return "agree" if gamma == len(comparison.levels) else "similar"


def _raw_status(left: Any, right: Any) -> str:
    if left is None or right is None:
        return "missing"
    return "agree" if left == right else "disagree"


def attribute_rows(
    record_l: Mapping[str, Any],
    record_r: Mapping[str, Any],
    levels: Mapping[str, int],
    evidence: Mapping[str, float],
    comparisons: Sequence[Comparison],
) -> list[AttributeRow]:
    """Both records attribute by attribute, with how the comparison on that attribute came out.

    A comparison's outcome, with its weight, is shown on the attribute the
    level that held reads (its own column when no level held): strongest
    level = agree, a weaker level = similar, 0 = disagree, -1 = missing. The
    other attributes a comparison reads (``address`` also reading postcode and
    city) are marked by plain equality, "part of" that comparison.
    Attributes no comparison reads are shown when either side has a value.
    Statuses come from the full values; the values in the rows are as shown
    to a person (``national_id`` masked).
    """
    decisive: dict[str, tuple[Comparison, int]] = {}  # attribute -> the comparison whose outcome it shows
    part_of: dict[str, Comparison] = {}
    for comparison in comparisons:
        if comparison.name not in levels:
            continue
        gamma = int(levels[comparison.name])
        held = comparison.levels[len(comparison.levels) - gamma] if gamma > 0 else None
        column = comparison.level_column(held) if held is not None else comparison.column
        decisive.setdefault(column, (comparison, gamma))
        for other in comparison.columns:
            part_of.setdefault(other, comparison)
    rows = []
    for attribute in SHOWN_ATTRIBUTES:
        left, right = record_l.get(attribute), record_r.get(attribute)
        shown_l, shown_r = mask_value(attribute, left), mask_value(attribute, right)
        if attribute in decisive:
            comparison, gamma = decisive[attribute]
            rows.append(AttributeRow(attribute, shown_l, shown_r, _status(comparison, gamma),
                                     _level_label(comparison, gamma), evidence.get(comparison.name)))
        elif attribute in part_of:
            rows.append(AttributeRow(attribute, shown_l, shown_r, _raw_status(left, right),
                                     f"part of {part_of[attribute].name}", None))
        elif left is not None or right is not None:
            rows.append(AttributeRow(attribute, shown_l, shown_r, "not-compared", "", None))
    return rows


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # this step's weight, bits
    x: float  # left edge, px
    width: float  # px
    kind: str  # prior | positive | negative | zero | total


@dataclass(frozen=True)
class Waterfall:
    bars: tuple[Bar, ...]
    zero_x: float
    width: float
    row_height: int

    @property
    def height(self) -> int:
        return self.row_height * len(self.bars)


def waterfall(
    evidence: Mapping[str, float], match_weight: float, order: Sequence[str], width: float = 360.0,
    row_height: int = 22,
) -> Waterfall:
    """Bars from the prior, through each comparison's match weight, to the pair's total weight.

    The prior is what the evidence does not explain: ``match_weight - sum(evidence)``.
    Each bar starts where the previous one ended; all positions are px in ``[0, width]``.
    """
    names = [n for n in order if n in evidence] + sorted(set(evidence) - set(order))
    prior = match_weight - sum(evidence[n] for n in names)
    steps = [("prior", prior, 0.0)]
    running = prior
    for name in names:
        steps.append((name, evidence[name], running))
        running += evidence[name]
    ends = [0.0, match_weight] + [start + value for _, value, start in steps] + [start for _, _, start in steps]
    low, high = min(ends), max(ends)
    scale = width / (high - low) if high > low else 1.0

    def px(value: float) -> float:
        return round((value - low) * scale, 1)

    bars = []
    for label, value, start in steps:
        kind = "prior" if label == "prior" else ("positive" if value > 0 else "negative" if value < 0 else "zero")
        left, right = sorted((px(start), px(start + value)))
        bars.append(Bar(label, value, left, max(right - left, 1.0), kind))
    total_left, total_right = sorted((px(0.0), px(match_weight)))
    bars.append(Bar("match weight", match_weight, total_left, max(total_right - total_left, 1.0), "total"))
    return Waterfall(tuple(bars), px(0.0), width, row_height)
