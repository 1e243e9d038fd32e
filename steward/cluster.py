"""The cluster view of a golden record: its records on a circle and the scored links between them.

A link is ``strong`` at or above the match threshold (it links its records on
its own), ``weak`` between the review and the match threshold, and
``against`` below the review threshold: the two records are in one golden
record only through others, and a weak link is where a wrong merge hides.
A steward's match decision between two members is a ``steward`` link, scored or not.

A record is ``odd`` when a ``CONFLICT_ATTRIBUTES`` value of it (birth date,
name suffix) differs from the golden record's.

Pure layout, no I/O: positions are px in a ``width`` x ``height`` box, drawn by
``templates/cluster.html`` as server-rendered SVG (the CSP allows no script
from elsewhere, and the page needs none).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matching.settings import Thresholds
from steward.context import CONFLICT_ATTRIBUTES

NODE_RADIUS = 9
MARGIN = 190  # room left and right of the circle for the labels
V_MARGIN = 48  # room above and below it (two lines of label)
MIN_RING = 90.0
RING_PER_NODE = 16.0


@dataclass(frozen=True)
class Node:
    record_id: str
    x: float
    y: float
    anchor: str  # text-anchor of its label: start | middle | end
    label_x: float
    label_y: float
    name: str
    detail: str  # birth date and suffix, as shown
    odd: bool


@dataclass(frozen=True)
class Link:
    left: str
    right: str
    x1: float
    y1: float
    x2: float
    y2: float
    probability: float | None  # None for a steward's link between records the model did not score
    strength: str  # strong | weak | against | steward

    @property
    def marked(self) -> bool:
        """A link a steward should look at: it does not link its records on its own."""
        return self.strength in ("weak", "against")


@dataclass(frozen=True)
class ClusterGraph:
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    width: float
    height: float
    loose: tuple[str, ...]  # records no strong or steward link holds (none when there are no links at all)


def strength(probability: float, thresholds: Thresholds) -> str:
    if probability >= thresholds.match:
        return "strong"
    return "weak" if probability >= thresholds.review else "against"


def _is_odd(member: Mapping[str, Any], golden: Mapping[str, Any]) -> bool:
    return any(
        member.get(a) is not None and golden.get(a) is not None and member.get(a) != golden.get(a)
        for a in CONFLICT_ATTRIBUTES
    )


def _detail(member: Mapping[str, Any]) -> str:
    return " ".join(str(member[a]) for a in ("birth_date", "name_suffix") if member.get(a) is not None)


def _positions(count: int) -> tuple[float, list[tuple[float, float]]]:
    """The ring's radius and each point on it, the first at the top, clockwise."""
    if count == 1:
        return 0.0, [(0.0, 0.0)]
    ring = max(MIN_RING, RING_PER_NODE * count / math.pi)
    points = []
    for index in range(count):
        angle = -math.pi / 2 + 2 * math.pi * index / count
        points.append((ring * math.cos(angle), ring * math.sin(angle)))
    return ring, points


def cluster_graph(
    golden: Mapping[str, Any],
    members: Sequence[Mapping[str, Any]],
    scored: Iterable[Mapping[str, Any]],
    steward_links: Iterable[tuple[str, str]],
    thresholds: Thresholds,
) -> ClusterGraph:
    """Lay out ``members`` (sorted by record id) on a circle with ``scored`` pairs (``silver/pairs`` rows)
    and ``steward_links`` (pairs a steward matched) between them; links to non-members are left out."""
    ordered = sorted(members, key=lambda m: m["record_id"])
    ring, points = _positions(len(ordered))
    centre_x, centre_y = ring + MARGIN, ring + V_MARGIN
    nodes = []
    for member, (dx, dy) in zip(ordered, points):
        anchor = "middle" if abs(dx) < 1 else ("start" if dx > 0 else "end")
        offset = NODE_RADIUS + 6
        label_x = centre_x + dx + {"start": offset, "end": -offset, "middle": 0}[anchor]
        label_y = centre_y + dy
        if anchor == "middle":  # above the top node, below the bottom one; two lines of text
            label_y += -(offset + 13) if dy <= 0 else offset + 4
        nodes.append(Node(
            record_id=member["record_id"], x=round(centre_x + dx, 1), y=round(centre_y + dy, 1), anchor=anchor,
            label_x=round(label_x, 1), label_y=round(label_y, 1), name=str(member.get("full_name") or ""),
            detail=_detail(member), odd=_is_odd(member, golden),
        ))
    at = {n.record_id: n for n in nodes}
    matched = {tuple(sorted(p)) for p in steward_links}
    links = []
    for pair in sorted(scored, key=lambda p: (p["record_id_l"], p["record_id_r"])):
        left, right = at.get(pair["record_id_l"]), at.get(pair["record_id_r"])
        if left is not None and right is not None and left is not right:
            probability = pair["match_probability"]
            kind = "steward" if (left.record_id, right.record_id) in matched else strength(probability, thresholds)
            links.append(Link(left.record_id, right.record_id, left.x, left.y, right.x, right.y, probability, kind))
    scored_pairs = {(link.left, link.right) for link in links}
    for a, b in sorted(matched - scored_pairs):
        if a in at and b in at and a != b:
            links.append(Link(a, b, at[a].x, at[a].y, at[b].x, at[b].y, None, "steward"))
    held = {end for link in links if link.strength in ("strong", "steward") for end in (link.left, link.right)}
    loose = tuple(n.record_id for n in nodes if n.record_id not in held) if links else ()
    return ClusterGraph(tuple(nodes), tuple(links), 2 * centre_x, 2 * centre_y, loose)
