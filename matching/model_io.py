"""Saving and loading a trained match model (either kind) as JSON."""

from __future__ import annotations

import json
from typing import Union

from matching.fellegi_sunter import MODEL_TYPE as FS_TYPE
from matching.fellegi_sunter import FellegiSunterModel, score
from matching.supervised import SupervisedModel, score_supervised

MatchModel = Union[FellegiSunterModel, SupervisedModel]


def model_from_json(text: str) -> MatchModel:
    data = json.loads(text)
    if data.get("model_type") == FS_TYPE:
        return FellegiSunterModel.from_json(data)
    return SupervisedModel.from_json(data)


def score_with(model: MatchModel, pairs):
    """``mw_<c>``, ``match_weight``, ``match_probability`` for a pandas batch of comparison vectors."""
    if isinstance(model, FellegiSunterModel):
        return score(model, pairs)
    return score_supervised(model, pairs)
