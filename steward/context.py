"""The customers behind a pair: each side's golden record and members, what differs across them, merge warnings.

A "match" on two records joins their whole golden records at the next run,
not just the two records. So the review page shows, for each side, the
customer the record sits in now, and highlights each member value the other
customer has no record of (a birth date 20 years apart, another email).

A match warns when it would join two customers whose members disagree on what
tells relatives apart (``CONFLICT_ATTRIBUTES``: birth dates, name suffix) and
at least one of them has other records than the one in the pair: the pair
table shows only the two records, so such a conflict is otherwise invisible.
A value present on one side only (a suffix one source never records) is no
conflict; two different values are.

Pure functions, no I/O: the caller reads the rows (``steward.routes.common``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.privacy import mask_record

CONFLICT_ATTRIBUTES: tuple[str, ...] = ("birth_date", "name_suffix")
# The compact member table: a column is shown when a member on either side has a value in it.
COMPACT_ATTRIBUTES: tuple[str, ...] = (
    "full_name", "name_suffix", "birth_date", "gender", "email", "phone", "address_line1", "postcode", "national_id",
)


@dataclass(frozen=True)
class Side:
    """One side of a pair: the record, the golden record it sits in (None before its first run) and its members."""

    record_id: str
    golden_id: str | None
    golden: Mapping[str, Any] | None  # masked
    members: tuple[Mapping[str, Any], ...]  # current members, masked, the pair's record first
    highlighted: frozenset[tuple[str, str]]  # (record_id, attribute): a value the other customer lacks

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Conflict:
    attribute: str
    left: tuple[Any, ...]  # the distinct values among the left customer's members, sorted
    right: tuple[Any, ...]


@dataclass(frozen=True)
class PairContext:
    left: Side
    right: Side
    columns: tuple[str, ...]  # the compact table's attributes
    conflicts: tuple[Conflict, ...]

    @property
    def same_customer(self) -> bool:
        return self.left.golden_id is not None and self.left.golden_id == self.right.golden_id

    @property
    def warns(self) -> bool:
        """Whether a match needs an explicit confirmation: it would join customers whose members disagree."""
        return bool(self.conflicts) and not self.same_customer and max(self.left.size, self.right.size) > 1


def _values(members: Sequence[Mapping[str, Any]], attribute: str) -> set[Any]:
    return {m.get(attribute) for m in members if m.get(attribute) is not None}


def _ordered_members(record: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pair's record first (added when the golden record does not list it yet), then the others by id."""
    others = sorted((m for m in members if m["record_id"] != record["record_id"]), key=lambda m: m["record_id"])
    own = next((m for m in members if m["record_id"] == record["record_id"]), record)
    return [own, *others]


def _highlights(members: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]],
                columns: Sequence[str]) -> frozenset[tuple[str, str]]:
    found = set()
    for attribute in columns:
        theirs = _values(other, attribute)
        for member in members:
            value = member.get(attribute)
            if theirs and value is not None and value not in theirs:
                found.add((member["record_id"], attribute))
    return frozenset(found)


def conflicts(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]]) -> tuple[Conflict, ...]:
    """The ``CONFLICT_ATTRIBUTES`` on which the two groups of records hold different values."""
    found = []
    for attribute in CONFLICT_ATTRIBUTES:
        ours, theirs = _values(left, attribute), _values(right, attribute)
        if ours and theirs and ours != theirs:
            found.append(Conflict(attribute, tuple(sorted(ours)), tuple(sorted(theirs))))
    return tuple(found)


def pair_context(
    record_l: Mapping[str, Any],
    record_r: Mapping[str, Any],
    golden_l: Mapping[str, Any] | None,
    golden_r: Mapping[str, Any] | None,
    members_l: Sequence[Mapping[str, Any]],
    members_r: Sequence[Mapping[str, Any]],
) -> PairContext:
    """Both sides of a pair with their customers. ``members_*``: the current members of each golden
    record, with their full values (empty when the record has no golden record yet)."""
    left, right = _ordered_members(record_l, members_l), _ordered_members(record_r, members_r)
    everyone = [*left, *right]
    columns = tuple(a for a in COMPACT_ATTRIBUTES if _values(everyone, a))

    def side(record: Mapping[str, Any], golden: Mapping[str, Any] | None, members: list[Mapping[str, Any]],
             other: list[Mapping[str, Any]]) -> Side:
        return Side(
            record_id=record["record_id"],
            golden_id=golden["golden_id"] if golden is not None else None,
            golden=mask_record(golden) if golden is not None else None,
            members=tuple(mask_record(m) for m in members),
            highlighted=_highlights(members, other, columns),
        )

    return PairContext(
        left=side(record_l, golden_l, left, right),
        right=side(record_r, golden_r, right, left),
        columns=columns,
        conflicts=conflicts(left, right),
    )
