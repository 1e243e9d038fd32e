"""Queue order, filters, decided records, unsure pairs and claims: pure logic over in-memory candidates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from steward.queue_index import QueueIndex, flags, flags_after, next_elsewhere, view
from steward.review import CLAIM_HOURS, QueueFilter, from_query, more_pair_states, pair_states, waterfall

PUBLISHED = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
NOW = PUBLISHED + timedelta(hours=1)


def candidate(pair: str, probability: float, weight: float, sources: tuple[str, str] = ("crm", "web"),
              reason: str = "between thresholds", rule: str = "email") -> dict:
    left, right = pair.split("|")
    return {
        "pair_id": pair, "record_id_l": left, "record_id_r": right, "match_probability": probability,
        "match_weight": weight, "reason": reason, "blocking_rule": rule, "run_id": "r1",
        "record_l": {"source_system": sources[0]}, "record_r": {"source_system": sources[1]},
        "evidence": {"email": weight}, "levels": {"email": 1},
    }


def decision(left: str, right: str, action: str, minute: int, steward: str = "alice", **extra: object) -> dict:
    return {"decision_id": f"d{minute}", "decided_at": PUBLISHED + timedelta(minutes=minute), "steward": steward,
            "action": action, "record_id_l": left, "record_id_r": right, "supersedes": None, **extra}


CANDIDATES = [
    candidate("a|b", 0.90, 3.17),
    candidate("c|d", 0.55, 0.29),
    candidate("e|f", 0.20, -2.0, ("billing", "web"), reason="cluster members disagree", rule="phone"),
    candidate("g|h", 0.70, 1.22),
    candidate("c|x", 0.60, 0.41),
]
INDEX = QueueIndex.build(pa.Table.from_pylist(CANDIDATES))


def queue(decisions: list[dict] = (), keep: QueueFilter = QueueFilter(), steward: str = "alice",
          now: datetime = NOW) -> list[str]:
    marks = flags(INDEX, pair_states(decisions, PUBLISHED))
    return [INDEX.pair_ids[row] for row in view(INDEX, marks, keep, steward, now).order]


def test_queue_is_most_uncertain_first() -> None:
    assert queue() == ["c|d", "c|x", "g|h", "e|f", "a|b"]
    assert INDEX.rows([INDEX.row_of["e|f"]])[0]["evidence"] == {"email": -2.0}


def test_match_and_no_match_take_a_pair_out_and_unsure_moves_it_down() -> None:
    decisions = [decision("h", "g", "no_match", -30), decision("e", "f", "unsure", -20), decision("a", "b", "unsure", 1)]
    assert queue(decisions) == ["c|d", "c|x", "e|f", "a|b"]
    # a later match on an unsure pair takes it out; a later unsure does not bring a matched pair back
    assert queue([*decisions, decision("a", "b", "match", 2), decision("g", "h", "unsure", 3)]) == ["c|d", "c|x", "e|f"]


def test_a_record_decided_since_the_run_is_not_asked_about_first_again() -> None:
    # c|d decided after the candidates were published: c|x (record c again) moves behind the rest, even unsure ones
    assert queue([decision("c", "d", "match", 5), decision("e", "f", "unsure", 6)]) == ["g|h", "a|b", "e|f", "c|x"]
    # decided before the publication: the run has scored c anew, c|x keeps its place
    assert queue([decision("c", "d", "match", -5)]) == ["c|x", "g|h", "e|f", "a|b"]


def test_a_retracted_decision_counts_as_never_made() -> None:
    retract = decision("c", "d", "retract", 6, decision_id="r6", supersedes="d5")
    retract["decision_id"] = "r6"
    assert queue([decision("c", "d", "match", 5), retract]) == ["c|d", "c|x", "g|h", "e|f", "a|b"]


def test_filters_by_source_probability_reason_rule_and_unsure() -> None:
    assert queue(keep=QueueFilter(source="billing")) == ["e|f"]
    assert queue(keep=QueueFilter(min_probability=0.5, max_probability=0.8)) == ["c|d", "c|x", "g|h"]
    assert queue(keep=QueueFilter(reason="cluster members disagree")) == ["e|f"]
    assert queue(keep=QueueFilter(blocking_rule="email")) == ["c|d", "c|x", "g|h", "a|b"]
    unsure = [decision("g", "h", "unsure", 1)]
    assert queue(unsure, QueueFilter(unsure="only")) == ["g|h"]
    assert queue(unsure, QueueFilter(unsure="hide")) == ["c|d", "c|x", "e|f", "a|b"]


def test_claimed_pairs_are_hidden_from_other_stewards_until_the_claim_expires() -> None:
    claims = [decision("c", "d", "claim", 1, steward="bob"), decision("g", "h", "claim", 2, steward="alice")]
    assert queue(claims, steward="alice") == ["c|x", "g|h", "e|f", "a|b"]
    assert queue(claims, steward="bob") == ["c|d", "c|x", "e|f", "a|b"]
    assert queue(claims, QueueFilter(mine=True), steward="alice") == ["g|h"]
    later = PUBLISHED + timedelta(hours=CLAIM_HOURS, minutes=5)
    assert queue(claims, steward="alice", now=later) == ["c|d", "c|x", "g|h", "e|f", "a|b"]


def test_the_pair_shown_after_a_decision_shares_no_record_with_it() -> None:
    marks = flags(INDEX, pair_states([], PUBLISHED))
    order = view(INDEX, marks, QueueFilter(), "alice", NOW)
    assert next_elsewhere(INDEX, order, 0) == "g|h"  # not c|x: record c is being decided
    assert order.where(INDEX.row_of["g|h"]) == 2 and order.where(None) is None


def test_later_decisions_update_the_states_as_reading_them_all_would() -> None:
    first = [decision("c", "d", "unsure", -5), decision("a", "b", "claim", 1, steward="bob"),
             decision("e", "f", "unsure", 2)]
    later = [decision("c", "d", "match", 3), decision("f", "e", "no_match", 4), decision("g", "h", "unsure", 5),
             decision("a", "b", "claim", 6, steward="carol"), decision("x", "c", "unsure", 7)]
    updated = more_pair_states(pair_states(first, PUBLISHED), later, PUBLISHED)
    assert updated == pair_states(first + later, PUBLISHED)
    marks = flags_after(INDEX, flags(INDEX, pair_states(first, PUBLISHED)), updated, later)
    expected = flags(INDEX, updated)
    assert all((getattr(marks, f) == getattr(expected, f)).all() for f in ("decided", "unsure", "touched", "tier"))
    assert sorted(marks.claims) == sorted(expected.claims)
    retract = decision("c", "d", "retract", 8, supersedes="d3")
    assert more_pair_states(updated, [retract], PUBLISHED) is None  # read them all again


def test_filters_read_from_a_query_ignore_malformed_values() -> None:
    keep = from_query({"source": " billing ", "min": "0.2", "max": "2", "unsure": "sometimes", "mine": "1", "rule": ""})
    assert keep == QueueFilter(source="billing", min_probability=0.2, mine=True)
    assert from_query(keep.query()) == keep
    assert QueueFilter().query() == {}


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
