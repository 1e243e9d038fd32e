"""Steward decisions: one immutable row per click, in ``gold/steward_decisions``.

Pair actions (``match``, ``no_match``, ``unsure``) name two records, always
with ``record_id_l < record_id_r`` as the pipeline expects. A later decision
about the same pair supersedes an earlier one; none is ever changed in place.

``split`` names the records taken out together (``record_ids``), the
members they leave as they were when the steward decided (``other_ids``) and
the golden record (``golden_id``); ``record_id_l`` repeats the smallest record
taken out, which is all a split row written before ``record_ids`` existed has.
``merge`` names two golden records, ordered the same way.

``retract`` withdraws an earlier decision (``supersedes`` = its id): the
pipeline and the queue then act as if it had never been made. A retraction
itself cannot be retracted (decide again instead).

``override`` sets one attribute of a golden record (``attribute``,
``value``) and records the golden record's members and their ``record_hash``
at decision time (``record_ids``, ``record_hashes``): publish keeps the value
while those are still the members, unchanged.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.privacy import mask_value

PairAction = Literal["match", "no_match", "unsure"]
PAIR_ACTIONS: tuple[PairAction, ...] = ("match", "no_match", "unsure")
DECIDING_ACTIONS = ("match", "no_match")  # the ones that take a pair out of the queue
RETRACTABLE = ("match", "no_match", "unsure", "split", "merge", "override")
# What the next pipeline run applies (``unsure`` and the queue's ``claim`` rows change nothing there).
RUN_ACTIONS = ("match", "no_match", "split", "merge", "override", "retract")
OVERRIDABLE: tuple[str, ...] = CANONICAL_ATTRIBUTES  # what an override may set
MAX_COMMENT = 2000
MAX_VALUE = 500


@dataclass(frozen=True)
class Decision:
    decision_id: str
    decided_at: dt.datetime
    steward: str
    action: str
    record_id_l: str | None = None
    record_id_r: str | None = None
    golden_id: str | None = None
    golden_id_other: str | None = None
    comment: str | None = None
    record_ids: list[str] | None = None
    other_ids: list[str] | None = None
    record_hashes: list[str] | None = None
    supersedes: str | None = None
    attribute: str | None = None
    value: str | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text[:MAX_COMMENT] or None


def _stamp() -> tuple[str, dt.datetime]:
    return str(uuid.uuid4()), dt.datetime.now(dt.timezone.utc)


def pair_decision(steward: str, action: str, record_a: str, record_b: str, comment: str | None) -> Decision:
    if action not in PAIR_ACTIONS:
        raise ValueError(f"action {action!r}: expected one of {', '.join(PAIR_ACTIONS)}")
    if record_a == record_b:
        raise ValueError("a pair needs two different records")
    decision_id, decided_at = _stamp()
    left, right = sorted((record_a, record_b))
    return Decision(decision_id, decided_at, steward, action, record_id_l=left, record_id_r=right,
                    comment=_clean_comment(comment))


def split_decision(steward: str, golden_id: str, record_ids: Iterable[str], members: Iterable[str],
                   reason: str) -> Decision:
    """Take ``record_ids`` out of ``golden_id`` together; ``members`` are its current records (all of them)."""
    taken = sorted(set(record_ids))
    everyone = set(members)
    left = sorted(everyone - set(taken))
    if not taken:
        raise ValueError("choose at least one record to split out")
    if not set(taken) <= everyone:
        raise ValueError("a record to split out is not part of this golden record")
    if not left:
        raise ValueError("a split must leave at least one record behind")
    decision_id, decided_at = _stamp()
    return Decision(decision_id, decided_at, steward, "split", record_id_l=taken[0], golden_id=golden_id,
                    comment=_clean_comment(reason), record_ids=taken, other_ids=left)


def merge_decision(steward: str, golden_a: str, golden_b: str, reason: str) -> Decision:
    if golden_a == golden_b:
        raise ValueError("a merge needs two different golden records")
    decision_id, decided_at = _stamp()
    first, second = sorted((golden_a, golden_b))
    return Decision(decision_id, decided_at, steward, "merge", golden_id=first, golden_id_other=second,
                    comment=_clean_comment(reason))


def retract_decision(steward: str, retracted: Mapping[str, Any], reason: str) -> Decision:
    """Withdraw ``retracted`` (a decision row); it keeps its place in the log, marked by this row."""
    if retracted["action"] not in RETRACTABLE:
        raise ValueError(f"a {retracted['action']} decision cannot be retracted")
    decision_id, decided_at = _stamp()
    return Decision(decision_id, decided_at, steward, "retract", record_id_l=retracted["record_id_l"],
                    record_id_r=retracted["record_id_r"], golden_id=retracted["golden_id"],
                    golden_id_other=retracted["golden_id_other"], comment=_clean_comment(reason),
                    supersedes=retracted["decision_id"])


def override_value(attribute: str, value: str) -> str:
    """The value as stored: stripped; a birth date must be ``YYYY-MM-DD``. Raises ValueError."""
    if attribute not in OVERRIDABLE:
        raise ValueError(f"{attribute!r} cannot be overridden")
    text = value.strip()
    if not text:
        raise ValueError("an override needs a value")
    if len(text) > MAX_VALUE:
        raise ValueError(f"a value has at most {MAX_VALUE} characters")
    if attribute == "birth_date":
        try:
            text = dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("a birth date is written YYYY-MM-DD") from None
    return text


def override_decision(steward: str, golden_id: str, attribute: str, value: str,
                      member_hashes: Mapping[str, str], reason: str) -> Decision:
    """Set ``attribute`` of ``golden_id`` to ``value`` while its members (``record_id -> record_hash``) stay as they are."""
    if not _clean_comment(reason):
        raise ValueError("an override needs a reason")
    if not member_hashes:
        raise ValueError("a golden record without current source records cannot be overridden")
    stored = override_value(attribute, value)
    members = sorted(member_hashes)
    decision_id, decided_at = _stamp()
    return Decision(decision_id, decided_at, steward, "override", golden_id=golden_id, comment=_clean_comment(reason),
                    record_ids=members, record_hashes=[member_hashes[m] for m in members], attribute=attribute,
                    value=stored)


def retracted_ids(decisions: Iterable[Mapping[str, Any]]) -> set[str]:
    """Ids of the decisions a ``retract`` row withdraws (a retraction of a retraction withdraws nothing)."""
    rows = list(decisions)
    retractions = {d["decision_id"] for d in rows if d["action"] == "retract"}
    return {d["supersedes"] for d in rows
            if d["action"] == "retract" and d.get("supersedes") and d["supersedes"] not in retractions}


def effective_decisions(decisions: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The decisions that still hold: neither retracted nor a retraction."""
    rows = list(decisions)
    withdrawn = retracted_ids(rows)
    return [d for d in rows if d["action"] != "retract" and d["decision_id"] not in withdrawn]


def pending_decisions(decisions: Sequence[Mapping[str, Any]], published_at: dt.datetime | None) -> list[Mapping[str, Any]]:
    """Decisions the next run applies (``RUN_ACTIONS``, retractions included) made after the last publication,
    newest first."""
    fresh = [d for d in decisions
             if d["action"] in RUN_ACTIONS and (published_at is None or d["decided_at"] > published_at)]
    return sorted(fresh, key=lambda d: (d["decided_at"], d["decision_id"]), reverse=True)


def masked_decision(decision: Mapping[str, Any]) -> dict[str, Any]:
    """A decision row as shown to a person: an override's value masked as its attribute is (``national_id``)."""
    attribute = decision.get("attribute")
    return {**decision, "value": mask_value(attribute, decision.get("value")) if attribute else decision.get("value")}


def retractions(decisions: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """decision_id -> the retraction that withdrew it (the first, should there be two)."""
    found: dict[str, Mapping[str, Any]] = {}
    for row in sorted(decisions, key=lambda d: (d["decided_at"], d["decision_id"])):
        if row["action"] == "retract" and row.get("supersedes"):
            found.setdefault(row["supersedes"], row)
    return found


def may_retract(decision: Mapping[str, Any], withdrawn: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``decision`` can still be retracted (``withdrawn`` as from ``retractions``)."""
    return decision["action"] in RETRACTABLE and decision["decision_id"] not in withdrawn
