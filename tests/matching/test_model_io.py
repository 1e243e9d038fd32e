"""Saved models: the model and its frozen term frequencies survive JSON."""

from __future__ import annotations

import json

import pytest

from matching.fellegi_sunter import ComparisonParameters, FellegiSunterModel
from matching.model_io import SavedModel, model_from_json, saved_model_from_json

MODEL = FellegiSunterModel(
    comparisons=(ComparisonParameters("family_name", 1, m=(0.1, 0.9), u=(0.95, 0.05), tf=True),),
    lambda_=0.001,
)
SHARES = {"family_name": {"smith": 0.02, "zbigniewski": 0.0001}}


def test_round_trip_keeps_model_and_shares() -> None:
    saved = SavedModel(MODEL, SHARES)

    assert saved_model_from_json(saved.to_json()) == saved
    assert model_from_json(saved.to_json()) == MODEL


def test_an_unseen_value_counts_as_the_rarest_known_one() -> None:
    saved = SavedModel(MODEL, SHARES)

    assert saved.share("family_name", "smith") == 0.02
    assert saved.share("family_name", "okonkwo") == 0.0001
    assert saved.share("family_name", None) is None
    assert saved.share("given_name", "ann") is None


def test_a_model_file_without_shares_loads_with_none() -> None:
    assert saved_model_from_json(MODEL.to_json()) == SavedModel(MODEL, {})


def test_malformed_shares_are_rejected() -> None:
    text = json.dumps({**json.loads(MODEL.to_json()), "term_frequencies": {"family_name": 0.5}})

    with pytest.raises(ValueError, match="term_frequencies"):
        saved_model_from_json(text)
