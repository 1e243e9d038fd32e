"""Saved models: the model and its frozen term frequencies survive JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.errors import ConfigError
from matching.compare import comparison_levels, tf_columns
from matching.fellegi_sunter import ComparisonParameters, FellegiSunterModel, untrained_model
from matching.model_io import SavedModel, load_model_file, misfits, model_from_json, saved_model_from_json
from matching.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

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


def _with_fewer_birth_date_levels(model: FellegiSunterModel) -> FellegiSunterModel:
    """The model as an older cdi trained it: birth_date without its second-weakest level (merged into 0)."""
    data = json.loads(model.to_json())
    for comparison in data["comparisons"]:
        if comparison["name"] == "birth_date":
            comparison["levels"] -= 1
            for key in ("m", "u"):
                values = comparison[key]
                comparison[key] = [values[0] + values[1], *values[2:]]
    return FellegiSunterModel.from_json(data)


def test_a_model_fits_the_settings_it_was_trained_for_and_says_what_differs_otherwise(tmp_path) -> None:
    settings = load_settings(ROOT / "conf" / "matching.yaml")
    levels = comparison_levels(settings)
    fitting = untrained_model(levels, None)
    older = _with_fewer_birth_date_levels(fitting)

    assert misfits(fitting, settings) == []
    assert misfits(older, settings) == [f"birth_date: {levels['birth_date'] - 1} levels in the model, {levels['birth_date']} in the settings"]
    path = tmp_path / "model.json"
    path.write_text(SavedModel(older, {c: {"x": 1.0} for c in tf_columns(settings)}).to_json())
    with pytest.raises(ConfigError, match=r"--model .*model\.json: it does not fit the comparisons of the settings \(birth_date"):
        load_model_file(path, settings)
