"""The "why not?" scorer against the scores the pipeline stored, on the lake of the shared demo run (real Spark)."""

from __future__ import annotations

import pytest

from jobs.runs import RunContext
from steward.explain import comparison_batch, score_pair
from steward.store import Store

PAIRS_CHECKED = 24


@pytest.fixture(scope="module")
def published_run(demo_run) -> RunContext:
    return demo_run.context()


def test_why_not_scores_stored_pairs_as_the_pipeline_did(spark, published_run):
    settings = published_run.settings.matching
    stored = spark.read.format("delta").load(published_run.lake.path("silver", "pairs")).toPandas()
    ranked = stored.sort_values(["match_probability", "record_id_l", "record_id_r"], ignore_index=True)
    first_match = int(ranked["match_probability"].searchsorted(settings.thresholds.match))
    assert 0 < first_match < len(ranked), "the demo run should score pairs on both sides of the match threshold"
    # The least and the most likely pairs, others evenly spread between them, and the two either side of the threshold.
    spread = {round(i * (len(ranked) - 1) / (PAIRS_CHECKED - 1)) for i in range(PAIRS_CHECKED)}
    picked = ranked.iloc[sorted(spread | {first_match - 1, first_match})]

    store = Store(published_run.lake)
    saved = store.latest_model()
    assert saved is not None
    records = store.records([*picked["record_id_l"], *picked["record_id_r"]])
    for pair in picked.itertuples(index=False):
        left, right = records[pair.record_id_l], records[pair.record_id_r]
        # As the "why not?" page does (steward/routes/why.py).
        frequencies = {c.column: saved.share(c.column, left.get(c.column)) for c in settings.tf_comparisons}
        ours = score_pair(settings, saved.model, comparison_batch(settings, left, right, frequencies))
        ids = (pair.record_id_l, pair.record_id_r)
        assert ours.levels == {c.name: getattr(pair, f"gamma_{c.name}") for c in settings.comparisons}, ids
        for name, weight in ours.evidence.items():
            assert weight == pytest.approx(getattr(pair, f"mw_{name}"), abs=1e-9), (ids, name)
        assert ours.match_weight == pytest.approx(pair.match_weight, abs=1e-9), ids
        assert ours.match_probability == pytest.approx(pair.match_probability, abs=1e-9), ids
