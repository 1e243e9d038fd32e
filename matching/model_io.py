"""Saving and loading a trained match model (either kind) as JSON.

A saved model carries the term frequencies it was trained with: the share of
records holding each value of every term-frequency column. Scoring with a
saved model uses those frozen shares rather than the data's current ones, so
the same pair gets the same weight in every later run, whether that run
scores all pairs or only the pairs of new records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from config.errors import ConfigError
from matching.compare import comparison_levels, tf_columns
from matching.fellegi_sunter import MODEL_TYPE as FS_TYPE
from matching.fellegi_sunter import FellegiSunterModel, score
from matching.settings import MatchSettings
from matching.supervised import SupervisedModel, score_supervised

MatchModel = Union[FellegiSunterModel, SupervisedModel]
# column -> value -> share of the records (with the column set) holding that value
TermFrequencies = dict[str, dict[str, float]]


@dataclass(frozen=True)
class SavedModel:
    model: MatchModel
    term_frequencies: TermFrequencies = field(default_factory=dict)

    def share(self, column: str, value: object) -> float | None:
        """The frozen share of ``value`` in ``column``; an unseen value counts as the rarest known one."""
        shares = self.term_frequencies.get(column)
        if value is None or not shares:
            return None
        return shares.get(str(value), min(shares.values()))

    def to_json(self) -> str:
        data = json.loads(self.model.to_json())
        data["term_frequencies"] = self.term_frequencies
        return json.dumps(data)


def model_from_json(text: str) -> MatchModel:
    data = json.loads(text)
    if data.get("model_type") == FS_TYPE:
        return FellegiSunterModel.from_json(data)
    return SupervisedModel.from_json(data)


def saved_model_from_json(text: str) -> SavedModel:
    """The model and its term frequencies; a file without them has none."""
    frequencies = json.loads(text).get("term_frequencies", {})
    if not isinstance(frequencies, dict) or not all(isinstance(v, dict) for v in frequencies.values()):
        raise ValueError("term_frequencies must map each column to {value: share}")
    return SavedModel(
        model_from_json(text),
        {column: {str(k): float(v) for k, v in shares.items()} for column, shares in frequencies.items()},
    )


def misfits(model: MatchModel, settings: MatchSettings) -> list[str]:
    """How the model's comparisons differ from the settings' ([] when they fit): a model trained before the
    settings changed (a level added, a comparison dropped, a newer cdi's defaults) cannot score their pairs."""
    wanted = comparison_levels(settings)
    found = {c.name: c.levels for c in model.comparisons}
    problems = []
    for name in [*wanted, *(n for n in found if n not in wanted)]:
        if name not in found:
            problems.append(f"{name}: not in the model")
        elif name not in wanted:
            problems.append(f"{name}: not in the settings")
        elif found[name] != wanted[name]:
            problems.append(f"{name}: {found[name]} levels in the model, {wanted[name]} in the settings")
    return problems


def score_with(model: MatchModel, pairs):
    """``mw_<c>``, ``match_weight``, ``match_probability`` for a pandas batch of comparison vectors."""
    if isinstance(model, FellegiSunterModel):
        return score(model, pairs)
    return score_supervised(model, pairs)


def load_model_file(path: Path, settings: MatchSettings) -> SavedModel:
    """A ``--model`` file; it must carry the term frequencies the settings' comparisons use."""
    try:
        saved = saved_model_from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"--model {path}: {error}") from None
    problems = misfits(saved.model, settings)
    if problems:
        raise ConfigError(f"--model {path}: it does not fit the comparisons of the settings ({'; '.join(problems)}); "
                          "train a new model")
    lacking = [c for c in tf_columns(settings) if c not in saved.term_frequencies]
    if lacking:
        raise ConfigError(
            f"--model {path}: no term frequencies for {', '.join(lacking)} (saved by an older cdi?); train a new model"
        )
    return saved
