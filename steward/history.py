"""Attribute-level history of one golden record, from the change data feed of ``golden_customers``.

Each commit that changed the row carries its old image and its new one:
``update_preimage`` / ``update_postimage`` when the pipeline's MERGE updated
it, ``delete`` / ``insert`` when a writer replaced the row. Comparing the two
gives the attributes that changed, with when (the commit's timestamp) and the
run that changed them (the new image's ``run_id``). An ``insert`` with no old
image is the record's creation. Values come out masked (``national_id``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.canonical import CANONICAL_ATTRIBUTES
from schemas.privacy import mask_value

TRACKED: tuple[str, ...] = ("status", "survivor_id", *CANONICAL_ATTRIBUTES, "num_records")
BEFORE = ("update_preimage", "delete")
AFTER = ("update_postimage", "insert")


@dataclass(frozen=True)
class AttributeChange:
    attribute: str
    before: Any
    after: Any
    source_before: str | None  # the record the value came from (lineage), before and after
    source_after: str | None


@dataclass(frozen=True)
class Revision:
    version: int
    at: dt.datetime | None
    run_id: str | None
    created: bool  # the first image of the golden record: nothing before it
    changes: tuple[AttributeChange, ...]


def _lineage(row: Mapping[str, Any] | None) -> Mapping[str, str]:
    return (row or {}).get("lineage") or {}


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[AttributeChange, ...]:
    was, now = _lineage(before), _lineage(after)
    changed = []
    for attribute in TRACKED:
        old, new = before.get(attribute), after.get(attribute)
        if old != new or was.get(attribute) != now.get(attribute):
            changed.append(AttributeChange(attribute, mask_value(attribute, old), mask_value(attribute, new),
                                           was.get(attribute), now.get(attribute)))
    return tuple(changed)


def revisions(feed: Iterable[Mapping[str, Any]]) -> list[Revision]:
    """The revisions of one golden record, newest first; commits that changed nothing tracked are left out."""
    by_version: dict[int, dict[str, Mapping[str, Any]]] = {}
    for row in feed:
        kind = row["_change_type"]
        side = "before" if kind in BEFORE else "after" if kind in AFTER else None
        if side is not None:
            by_version.setdefault(int(row["_commit_version"]), {})[side] = row
    found = []
    for version in sorted(by_version):
        images = by_version[version]
        after = images.get("after")
        if after is None:
            continue  # removed without a new image: the golden table never deletes, nothing to show
        before = images.get("before")
        changes = _changes(before, after) if before is not None else ()
        if before is not None and not changes:
            continue
        found.append(Revision(version, after.get("_commit_timestamp"), after.get("run_id"), before is None, changes))
    return list(reversed(found))
