"""Pure logic of the review pages: queue order, filters, the weight waterfall (attribute evidence: ``steward.evidence``).

Queue order: a decision helps most where the model is least sure, so pairs
come closest-to-50 % first, i.e. by ``|match_weight|`` ascending (the same
order as ``|match_probability - 0.5|``, since the probability is a monotone,
symmetric function of the weight, but without rounding to 1.0 at large
weights). Such labels move the decision boundary of the next (supervised)
model most, and these are the pairs a threshold tweak would flip. Ties go by
``pair_id`` so the order is stable.

A pair leaves the queue once it has a ``match`` or ``no_match`` decision (the
pipeline then treats the latest of those as a must-link / cannot-link).
``unsure`` keeps it in the queue, moved down and marked. Once a record was
decided (match / no_match) after the candidates were published, its other
pairs move down too, marked: the steward is not asked about it again until
the next run scores it anew. A retracted decision counts as never made.

Assignment: a steward claims the next pairs of a filtered queue with
``claim`` rows in ``steward_decisions`` (one per pair, ``record_id_l`` /
``record_id_r`` as for a pair decision), which the pipeline ignores. A claim
holds for ``CLAIM_HOURS``; meanwhile the pair is hidden from other stewards'
queues, and its steward can list the pairs they claimed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steward.decisions import DECIDING_ACTIONS, PAIR_ACTIONS, Decision, effective_decisions

CLAIM_ACTION = "claim"
CLAIM_HOURS = 4
UNSURE_CHOICES = ("", "only", "hide")  # unsure pairs: shown last (default), only them, none
TIER_FRESH, TIER_UNSURE, TIER_TOUCHED = 0, 1, 2


@dataclass(frozen=True)
class QueueFilter:
    source: str | None = None
    min_probability: float | None = None
    max_probability: float | None = None
    reason: str | None = None
    blocking_rule: str | None = None
    unsure: str = ""  # one of UNSURE_CHOICES
    mine: bool = False  # only the pairs this steward claimed

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (empty ones left out); ``from_query`` reads them back."""
        values = {
            "source": self.source, "min": self.min_probability, "max": self.max_probability, "reason": self.reason,
            "rule": self.blocking_rule, "unsure": self.unsure or None, "mine": "1" if self.mine else None,
        }
        return {k: str(v) for k, v in values.items() if v is not None}


FILTER_KEYS = ("source", "min", "max", "reason", "rule", "unsure", "mine")


def _probability(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def from_query(values: Mapping[str, str | None]) -> QueueFilter:
    """A QueueFilter from query or form values; a malformed value counts as not given."""

    def text(key: str) -> str | None:
        value = (values.get(key) or "").strip()
        return value or None

    unsure = text("unsure") or ""
    return QueueFilter(
        source=text("source"), min_probability=_probability(text("min")), max_probability=_probability(text("max")),
        reason=text("reason"), blocking_rule=text("rule"), unsure=unsure if unsure in UNSURE_CHOICES else "",
        mine=text("mine") == "1",
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


@dataclass(frozen=True)
class PairStates:
    """What the decision log says about pairs and records, for the queue."""

    decided: set[tuple[str, str]] = field(default_factory=set)  # match / no_match: out of the queue
    unsure: set[tuple[str, str]] = field(default_factory=set)  # latest pair decision is unsure: moved down
    touched_records: set[str] = field(default_factory=set)  # decided since the candidates were published
    claims: dict[tuple[str, str], tuple[str, dt.datetime]] = field(default_factory=dict)  # pair -> (steward, until)
    latest: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)


def pair_states(decisions: Iterable[Mapping[str, Any]], published_at: dt.datetime | None) -> PairStates:
    """``PairStates`` of the decisions that hold (retracted ones left out); records count as touched
    when decided after ``published_at`` (every decided record when it is None)."""
    holding = effective_decisions(decisions)
    decided = decided_pairs(holding)
    latest = latest_pair_decisions(holding)
    unsure = {key for key, d in latest.items() if d["action"] == "unsure" and key not in decided}
    touched = {
        record for d in holding if d["action"] in DECIDING_ACTIONS
        and (published_at is None or d["decided_at"] > published_at)
        for record in (d["record_id_l"], d["record_id_r"])
    }
    claims: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
    for d in sorted((d for d in holding if d["action"] == CLAIM_ACTION), key=lambda d: d["decided_at"]):
        claims[pair_key(d["record_id_l"], d["record_id_r"])] = (d["steward"], d["decided_at"] + dt.timedelta(hours=CLAIM_HOURS))
    return PairStates(decided, unsure, touched, claims, latest)


def _when(decision: Mapping[str, Any]) -> tuple[dt.datetime, str]:
    return decision["decided_at"], decision["decision_id"]


def more_pair_states(states: PairStates, later: Iterable[Mapping[str, Any]],
                     published_at: dt.datetime | None) -> PairStates | None:
    """``states`` with ``later`` decisions applied, as ``pair_states`` of all of them would give;
    None when one of them is a retraction, which can undo anything before it: then every decision
    is read again."""
    rows = sorted(later, key=lambda d: (d["decided_at"], d["decision_id"]))
    if any(d["action"] == "retract" for d in rows):
        return None
    decided, touched = set(states.decided), set(states.touched_records)
    unsure, claims, latest = set(states.unsure), dict(states.claims), dict(states.latest)
    for d in rows:
        key = pair_key(d["record_id_l"], d["record_id_r"]) if d["record_id_l"] and d["record_id_r"] else None
        if key is None:
            continue
        if d["action"] in DECIDING_ACTIONS:
            decided.add(key)
            if published_at is None or d["decided_at"] > published_at:
                touched.update(key)
        if d["action"] in PAIR_ACTIONS and (key not in latest or _when(latest[key]) <= _when(d)):
            latest[key] = d
        until = d["decided_at"] + dt.timedelta(hours=CLAIM_HOURS)
        if d["action"] == CLAIM_ACTION and (key not in claims or claims[key][1] <= until):
            claims[key] = (d["steward"], until)
        if key in latest and latest[key]["action"] == "unsure" and key not in decided:
            unsure.add(key)
        else:
            unsure.discard(key)
    return PairStates(decided, unsure, touched, claims, latest)


def claim_decisions(steward: str, pairs: Iterable[tuple[str, str]]) -> list[Decision]:
    """One ``claim`` row per pair: ``steward`` takes these pairs for ``CLAIM_HOURS``."""
    at = dt.datetime.now(dt.timezone.utc)
    return [Decision(str(uuid.uuid4()), at, steward, CLAIM_ACTION, *pair_key(*pair)) for pair in pairs]


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
