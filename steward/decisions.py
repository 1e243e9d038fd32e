"""Steward decisions: one immutable row per click, in ``gold/steward_decisions``.

Pair actions (``match``, ``no_match``, ``unsure``) name two records, always
with ``record_id_l < record_id_r`` as the pipeline expects. ``split`` names
the record taken out (``record_id_l``) and the golden record it leaves
(``golden_id``); ``merge`` names two golden records, ordered the same way.
A later decision about the same pair supersedes an earlier one; none is
ever changed in place.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Literal

PairAction = Literal["match", "no_match", "unsure"]
PAIR_ACTIONS: tuple[PairAction, ...] = ("match", "no_match", "unsure")
DECIDING_ACTIONS = ("match", "no_match")  # the ones that take a pair out of the queue
MAX_COMMENT = 2000


@dataclass(frozen=True)
class Decision:
    decision_id: str
    decided_at: datetime
    steward: str
    action: str
    record_id_l: str | None = None
    record_id_r: str | None = None
    golden_id: str | None = None
    golden_id_other: str | None = None
    comment: str | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text[:MAX_COMMENT] or None


def _stamp() -> tuple[str, datetime]:
    return str(uuid.uuid4()), datetime.now(timezone.utc)


def pair_decision(steward: str, action: str, record_a: str, record_b: str, comment: str | None) -> Decision:
    if action not in PAIR_ACTIONS:
        raise ValueError(f"action {action!r}: expected one of {', '.join(PAIR_ACTIONS)}")
    if record_a == record_b:
        raise ValueError("a pair needs two different records")
    decision_id, decided_at = _stamp()
    left, right = sorted((record_a, record_b))
    return Decision(decision_id, decided_at, steward, action, record_id_l=left, record_id_r=right,
                    comment=_clean_comment(comment))


def split_decision(steward: str, record_id: str, golden_id: str, reason: str) -> Decision:
    decision_id, decided_at = _stamp()
    return Decision(decision_id, decided_at, steward, "split", record_id_l=record_id, golden_id=golden_id,
                    comment=_clean_comment(reason))


def merge_decision(steward: str, golden_a: str, golden_b: str, reason: str) -> Decision:
    if golden_a == golden_b:
        raise ValueError("a merge needs two different golden records")
    decision_id, decided_at = _stamp()
    first, second = sorted((golden_a, golden_b))
    return Decision(decision_id, decided_at, steward, "merge", golden_id=first, golden_id_other=second,
                    comment=_clean_comment(reason))
