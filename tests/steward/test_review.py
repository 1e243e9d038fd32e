from __future__ import annotations

from datetime import datetime, timezone

import pytest

from matching.settings import load_settings
from steward.review import QueueFilter, attribute_rows, position, review_queue, waterfall
from tests.steward.fake_lake import MATCHING


def candidate(pair: str, probability: float, weight: float, sources: tuple[str, str] = ("crm", "web")) -> dict:
    left, right = pair.split("|")
    return {
        "pair_id": pair, "record_id_l": left, "record_id_r": right, "match_probability": probability,
        "match_weight": weight, "record_l": {"source_system": sources[0]}, "record_r": {"source_system": sources[1]},
    }


def decision(left: str, right: str, action: str, minute: int) -> dict:
    return {"decision_id": f"d{minute}", "decided_at": datetime(2026, 1, 1, 12, minute, tzinfo=timezone.utc),
            "action": action, "record_id_l": left, "record_id_r": right}


CANDIDATES = [
    candidate("a|b", 0.90, 3.17),
    candidate("c|d", 0.55, 0.29),
    candidate("e|f", 0.20, -2.0, ("billing", "web")),
    candidate("g|h", 0.70, 1.22),
]


def test_queue_is_most_uncertain_first() -> None:
    queue = review_queue(CANDIDATES, [], QueueFilter())
    assert [c["pair_id"] for c in queue] == ["c|d", "g|h", "e|f", "a|b"]


def test_match_and_no_match_take_a_pair_out_but_unsure_does_not() -> None:
    decisions = [decision("c", "d", "match", 1), decision("h", "g", "no_match", 2), decision("e", "f", "unsure", 3)]
    queue = review_queue(CANDIDATES, decisions, QueueFilter())
    assert [c["pair_id"] for c in queue] == ["e|f", "a|b"]


def test_filters_by_source_and_probability_range() -> None:
    assert [c["pair_id"] for c in review_queue(CANDIDATES, [], QueueFilter(source="billing"))] == ["e|f"]
    kept = review_queue(CANDIDATES, [], QueueFilter(min_probability=0.5, max_probability=0.8))
    assert [c["pair_id"] for c in kept] == ["c|d", "g|h"]


def test_position_falls_back_to_the_first_pair() -> None:
    queue = review_queue(CANDIDATES, [], QueueFilter())
    middle = position(queue, "g|h")
    assert (middle.index, middle.previous_id, middle.next_id) == (1, "c|d", "e|f")
    assert position(queue, "gone|pair").current["pair_id"] == "c|d"
    assert position([], None).current is None


def test_attribute_rows_mark_agreement_levels() -> None:
    settings = load_settings(MATCHING)
    names = {c.name: c for c in settings.comparisons}
    strongest = {name: len(c.levels) for name, c in names.items()}
    levels = {name: 0 for name in names} | {"given_name": strongest["given_name"], "family_name": 1, "email": -1}
    left = {"given_name": "thomas", "family_name": "hughes", "email": None, "phone": "+44", "country": "GB"}
    right = {"given_name": "thomas", "family_name": "hugh", "email": "t@x.org", "phone": "+45", "country": "GB"}
    rows = {r.attribute: r for r in attribute_rows(left, right, levels, {"given_name": 2.5}, settings.comparisons)}
    assert rows["given_name"].status == "agree" and rows["given_name"].weight == 2.5
    assert rows["family_name"].status == "similar"
    assert rows["email"].status == "missing"
    assert rows["phone"].status == "disagree"
    assert rows["country"].status == "not-compared"


def test_waterfall_bars_chain_from_prior_to_total() -> None:
    evidence = {"given_name": 3.0, "email": -2.0, "phone": 0.0}
    chart = waterfall(evidence, match_weight=-1.0, order=["given_name", "email", "phone"], width=300)
    labels = [b.label for b in chart.bars]
    assert labels == ["prior", "given_name", "email", "phone", "match weight"]
    prior = chart.bars[0]
    assert prior.value == pytest.approx(-2.0)  # -1 - (3 - 2 + 0)
    # Scale: values span -2 .. +1 over 300 px, so 100 px a bit; zero at 200 px.
    assert chart.zero_x == pytest.approx(200.0)
    assert (prior.x, prior.width) == (0.0, 200.0)
    assert (chart.bars[1].x, chart.bars[1].width, chart.bars[1].kind) == (0.0, 300.0, "positive")
    assert (chart.bars[2].x, chart.bars[2].width, chart.bars[2].kind) == (100.0, 200.0, "negative")
    assert chart.bars[-1].kind == "total" and (chart.bars[-1].x, chart.bars[-1].width) == (100.0, 100.0)
