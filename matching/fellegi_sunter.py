"""Fellegi-Sunter match model: EM training on comparison patterns, vectorized scoring.

Comparison vectors are the contract with the comparison stage. For each
comparison ``c`` a pair carries ``gamma_<c>``: -1 = missing (no evidence),
0 = disagree, 1..K_c = agreement levels with K_c the strongest (exact). For
term-frequency comparisons it also carries ``tf_<c>``: the relative frequency
of the agreeing value among all records (NaN off the exact level).

Training works on distinct gamma patterns with a ``count`` column, so the
driver handles a few thousand rows however many pairs there are. ``u`` comes
from random record pairs (``estimate_u``) and is kept fixed by default, as
Splink does; EM then estimates ``m`` and ``lambda_``.

Weights are in bits: a level's match weight is ``log2(m / u)``, a pair's
``match_weight`` is ``log2(lambda / (1 - lambda))`` plus the sum of its levels'
weights, and ``match_probability = 2^w / (1 + 2^w)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FORMAT_VERSION = 1
MODEL_TYPE = "fellegi_sunter"
MISSING = -1
COUNT_COLUMN = "count"
PROBABILITY_FLOOR = 1e-6
# Bound on the term-frequency adjustment, in bits: one typo'd or unseen value
# must not outweigh every other comparison.
TF_MAX_ADJUSTMENT = 10.0
# Ratio between successive starting m values: the exact level starts most likely.
_STARTING_M_RATIO = 3.0
_STARTING_LAMBDA_BOUNDS = (1e-3, 1.0 - 1e-3)
# A trained model is implausible when EM calls nearly every candidate pair a match, or when
# disagreeing on an identity comparison costs less than this many bits (m0 > u0 / 2: more
# than half of true matches would disagree outright on a name or a birth date).
MATCH_SHARE_LIMIT = 0.95
MIN_DISAGREEMENT_BITS = 1.0
# Fewest anchor pairs (weighted count) from which m of a comparison is taken.
MIN_ANCHOR_PAIRS = 20.0
# Fewest likely-relative pairs (weighted count) from which a household u is taken.
MIN_HOUSEHOLD_PAIRS = 50.0


def gamma_column(name: str) -> str:
    """The level column of comparison ``name``."""
    return f"gamma_{name}"


def tf_column(name: str) -> str:
    """The term-frequency column of comparison ``name``."""
    return f"tf_{name}"


def weight_column(name: str) -> str:
    """The output column holding comparison ``name``'s match weight."""
    return f"mw_{name}"


def level_array(frame: pd.DataFrame, name: str, levels: int) -> np.ndarray:
    """The validated integer levels (-1..levels) of comparison ``name``."""
    column = gamma_column(name)
    if column not in frame.columns:
        raise ValueError(f"comparison vectors lack column {column!r}")
    series = frame[column]
    if series.isna().any():
        raise ValueError(f"column {column!r} has nulls; missing must be encoded as {MISSING}")
    values = series.to_numpy(dtype=np.int64)
    bad = (values < MISSING) | (values > levels)
    if bad.any():
        found = sorted({int(v) for v in values[bad]})[:5]
        raise ValueError(f"column {column!r} has levels {found} outside {MISSING}..{levels}")
    return values


def assemble_scores(
    index: pd.Index, names: Sequence[str], contributions: np.ndarray, prior_weight: float
) -> pd.DataFrame:
    """Build the score frame shared by every model: ``mw_<c>``, weight, probability.

    ``contributions`` is (rows, comparisons) in bits, 0 where a level is missing.
    """
    match_weight = prior_weight + contributions.sum(axis=1)
    # 2^w / (1 + 2^w) written so that large |w| neither overflows nor warns.
    probability = 1.0 / (1.0 + np.exp2(-np.clip(match_weight, -1000.0, 1000.0)))
    columns: dict[str, np.ndarray] = {
        weight_column(name): contributions[:, j] for j, name in enumerate(names)
    }
    columns["match_weight"] = match_weight
    columns["match_probability"] = probability
    return pd.DataFrame(columns, index=index)


@dataclass(frozen=True)
class ComparisonParameters:
    """m and u per level 0..levels of one comparison (missing has none)."""

    name: str
    levels: int
    m: tuple[float, ...]
    u: tuple[float, ...]
    tf: bool = False
    # u among pairs that share the model's ``household_key`` (see ``household_u``): used in
    # place of u for the pairs ``household_pairs`` picks (those agreeing on that key at any level, a
    # typo'd family name being still the family's). None: no household correction.
    u_household: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"comparison {self.name!r}: levels must be >= 1, got {self.levels}")
        checked = [("m", self.m), ("u", self.u)]
        if self.u_household is not None:
            checked.append(("u_household", self.u_household))
        for label, values in checked:
            if len(values) != self.levels + 1:
                raise ValueError(
                    f"comparison {self.name!r}: {label} needs {self.levels + 1} values "
                    f"(levels 0..{self.levels}), got {len(values)}"
                )
            if not all(0.0 < v < 1.0 for v in values):
                raise ValueError(f"comparison {self.name!r}: {label} values must be in (0, 1)")
            if abs(sum(values) - 1.0) > 1e-6:
                raise ValueError(f"comparison {self.name!r}: {label} must sum to 1")

    @property
    def weights(self) -> np.ndarray:
        """Match weight ``log2(m / u)`` per level 0..levels."""
        return np.log2(np.asarray(self.m) / np.asarray(self.u))

    @property
    def household_weights(self) -> np.ndarray:
        """``log2(m / u_household)`` per agreeing level, or the plain weights without a household u.

        Disagreeing (level 0) keeps its plain weight. Relatives mostly live together, so
        ``u_household`` of level 0 is small, and ``m / u_household`` would make two records of one
        family name at different homes evidence *for* a match. The household u only discounts a
        shared home; living apart says what it says among random pairs.
        """
        if self.u_household is None:
            return self.weights
        weights = np.log2(np.asarray(self.m) / np.asarray(self.u_household))
        weights[0] = self.weights[0]
        return weights


@dataclass(frozen=True)
class FellegiSunterModel:
    """A trained Fellegi-Sunter model.

    ``lambda_`` is the prior probability that a pair is a match: among the
    pairs EM trained on as ``train`` returns it, among random record pairs
    (to go with u from random pairs) once the match stage has applied
    ``random_pair_prior``.
    """

    comparisons: tuple[ComparisonParameters, ...]
    lambda_: float
    iterations: int = 0
    converged: bool = False
    household_key: str | None = None  # the comparison relatives share (a family name); see ``household_u``
    # The comparisons that tell relatives apart (``Household.own``: a given name, a birth date, an identifier):
    # a pair that disagrees on the key and on all of them may be a couple of two family names (``household_pairs``).
    household_own: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.lambda_ < 1.0:
            raise ValueError(f"lambda_ must be in (0, 1), got {self.lambda_}")
        names = [c.name for c in self.comparisons]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate comparison names in {names}")
        for name in (self.household_key, *self.household_own):
            if name is not None and name not in names:
                raise ValueError(f"household comparison {name!r} is not among the comparisons {names}")
        if self.household_own and self.household_key is None:
            raise ValueError("household_own needs a household_key")

    def comparison(self, name: str) -> ComparisonParameters:
        for parameters in self.comparisons:
            if parameters.name == name:
                return parameters
        raise KeyError(f"model has no comparison {name!r}")

    @property
    def prior_weight(self) -> float:
        """``log2`` of the prior match odds."""
        return float(np.log2(self.lambda_ / (1.0 - self.lambda_)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "model_type": MODEL_TYPE,
                "lambda": self.lambda_,
                "iterations": self.iterations,
                "converged": self.converged,
                "household_key": self.household_key,
                "household_own": list(self.household_own),
                "comparisons": [
                    {
                        "name": c.name, "levels": c.levels, "m": list(c.m), "u": list(c.u), "tf": c.tf,
                        "u_household": None if c.u_household is None else list(c.u_household),
                    }
                    for c in self.comparisons
                ],
            }
        )

    @classmethod
    def from_json(cls, source: str | Mapping[str, Any]) -> FellegiSunterModel:
        data = json.loads(source) if isinstance(source, str) else source
        if data.get("model_type") != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {data.get('model_type')!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"format_version must be {FORMAT_VERSION}, got {data.get('format_version')!r}"
            )
        try:
            comparisons = tuple(
                ComparisonParameters(
                    name=c["name"],
                    levels=int(c["levels"]),
                    m=tuple(float(v) for v in c["m"]),
                    u=tuple(float(v) for v in c["u"]),
                    tf=bool(c["tf"]),
                    u_household=None if c.get("u_household") is None else tuple(float(v) for v in c["u_household"]),
                )
                for c in data["comparisons"]
            )
            return cls(
                comparisons=comparisons,
                lambda_=float(data["lambda"]),
                iterations=int(data["iterations"]),
                converged=bool(data["converged"]),
                household_key=data.get("household_key"),
                household_own=tuple(data.get("household_own") or ()),
            )
        except KeyError as error:
            raise ValueError(f"Fellegi-Sunter model JSON lacks key {error}") from None


def household_pairs(model: FellegiSunterModel, patterns: pd.DataFrame) -> np.ndarray:
    """Per pair, whether its shared comparisons are weighed with the household u (``household_u``).

    Relatives of one family name agree on the household key at some level (a mistyped family name is still the
    family's). A couple of two family names disagrees on the key and on the given name (``household_own[0]``),
    agrees exactly on none of its other own comparisons (a birth date, an identifier) and has at least one of
    them: a pair that shares a home and nothing that tells one person from another. Duplicates seldom look so:
    their names agree, are swapped or mistyped, or their birth date or identifier agrees.
    """
    if model.household_key is None:
        return np.zeros(len(patterns), dtype=bool)
    key = model.comparison(model.household_key)
    key_levels = level_array(patterns, key.name, key.levels)
    shared = key_levels >= 1
    if len(model.household_own) > 1:
        first, *others = (model.comparison(name) for name in model.household_own)
        apart = (key_levels == 0) & (level_array(patterns, first.name, first.levels) == 0)
        present = np.zeros(len(patterns), dtype=bool)
        for c in others:
            levels = level_array(patterns, c.name, c.levels)
            apart &= levels != c.levels
            present |= levels != MISSING
        shared |= apart & present
    return shared


def _pattern_counts(patterns: pd.DataFrame) -> np.ndarray:
    if COUNT_COLUMN not in patterns.columns:
        raise ValueError(f"patterns lack the {COUNT_COLUMN!r} column")
    counts = patterns[COUNT_COLUMN].to_numpy(dtype=np.float64)
    if (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"column {COUNT_COLUMN!r} must hold finite non-negative counts")
    if counts.sum() <= 0:
        raise ValueError("patterns hold no pairs (total count is 0)")
    return counts


def _level_shares(levels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Weighted share of each level 0..k among non-missing rows, clipped away from 0 and 1."""
    present = levels != MISSING
    tally = np.bincount(levels[present], weights=weights[present], minlength=k + 1)
    total = tally.sum()
    shares = tally / total if total > 0 else np.full(k + 1, 1.0 / (k + 1))
    shares = np.clip(shares, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return shares / shares.sum()


def estimate_u(
    patterns: pd.DataFrame, comparisons: Mapping[str, int], smoothing: float = 1.0
) -> dict[str, np.ndarray]:
    """u per comparison level from patterns of RANDOM record pairs (nearly all non-matches).

    u[c][k] is the share of level k among pairs where c is not missing, with
    Laplace smoothing (``smoothing`` pseudo-counts per level) so no u is 0.
    """
    if smoothing <= 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing}")
    counts = _pattern_counts(patterns)
    u: dict[str, np.ndarray] = {}
    for name, k in comparisons.items():
        levels = level_array(patterns, name, k)
        present = levels != MISSING
        tally = np.bincount(levels[present], weights=counts[present], minlength=k + 1)
        u[name] = (tally + smoothing) / (tally.sum() + smoothing * (k + 1))
    return u


# u is re-estimated on a sample twice as big until no well-measured level moves by more than this.
U_SETTLED_BITS = 0.1
# Levels seen fewer times than this in the sample are not checked: between two samples their u
# moves by sampling noise alone (about 1/sqrt(tally), 0.07 bit at 400), and a level that rare
# (u under 0.004 in the first sample) has a weight of 8 bits or more whatever the next sample says.
U_MIN_TALLY = 400


def u_sample_sizes(first: int, most: int, possible: int) -> list[int]:
    """Sizes of the random-pair samples u is estimated from, doubling the pairs drawn each time.

    Never more than ``most`` pairs in all, nor more than the ``possible``
    record pairs: small data is sampled whole in one go.
    """
    limit = min(most, possible)
    if limit < 1:
        return []
    sizes, drawn = [], 0
    while drawn < limit:
        size = min(max(first, drawn), limit - drawn)
        sizes.append(size)
        drawn += size
    return sizes


def u_settled(
    before: pd.DataFrame, after: pd.DataFrame, comparisons: Mapping[str, int], bits: float = U_SETTLED_BITS
) -> bool:
    """Whether u from ``after`` (the bigger sample's patterns) moved under ``bits`` from ``before`` on every level.

    Only levels seen at least ``U_MIN_TALLY`` times in ``after`` are checked.
    """
    u_before, u_after = estimate_u(before, comparisons), estimate_u(after, comparisons)
    counts = _pattern_counts(after)
    for name, k in comparisons.items():
        levels = level_array(after, name, k)
        present = levels != MISSING
        tally = np.bincount(levels[present], weights=counts[present], minlength=k + 1)
        shift = np.abs(np.log2(u_after[name] / u_before[name]))
        if np.any(shift[tally >= U_MIN_TALLY] > bits):
            return False
    return True


def _starting_m(k: int) -> np.ndarray:
    """Geometric starting m: each level ``_STARTING_M_RATIO`` times likelier than the one below."""
    raw = _STARTING_M_RATIO ** np.arange(k + 1, dtype=np.float64)
    return raw / raw.sum()


def _starting_lambda(levels: Mapping[str, np.ndarray], counts: np.ndarray) -> float:
    """Share of pairs agreeing (level >= 1) on more than half of their non-missing comparisons."""
    agreeing = sum((g >= 1).astype(np.int64) for g in levels.values())
    present = sum((g != MISSING).astype(np.int64) for g in levels.values())
    share = counts[2 * agreeing > present].sum() / counts.sum()
    return float(np.clip(share, *_STARTING_LAMBDA_BOUNDS))


def _posterior(
    levels: Mapping[str, np.ndarray],
    m: Mapping[str, np.ndarray],
    u: Mapping[str, np.ndarray],
    lambda_: float,
) -> np.ndarray:
    """E step: posterior match probability per pattern; missing levels add nothing."""
    # Index -1 (missing) picks the appended 0.
    log_odds = np.log(lambda_ / (1.0 - lambda_)) + sum(
        np.append(np.log(m[name] / u[name]), 0.0)[g] for name, g in levels.items()
    )
    return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700.0, 700.0)))


def _favours_agreement(m: Mapping[str, np.ndarray], u: Mapping[str, np.ndarray], observed: Sequence[str]) -> bool:
    """True when m beats u at the exact level for most ``observed`` comparisons (the 'match' class).

    A comparison missing from every pair (a file without emails) teaches EM
    nothing, and its m and u stay equal: counting it would outvote the
    comparisons the data has.
    """
    wins = sum(1 for name in observed if m[name][-1] > u[name][-1])
    return 2 * wins > len(observed)


def _validated_u(
    u: Mapping[str, npt.ArrayLike], comparisons: Mapping[str, int]
) -> dict[str, np.ndarray]:
    checked: dict[str, np.ndarray] = {}
    for name, k in comparisons.items():
        if name not in u:
            raise ValueError(f"u has no values for comparison {name!r}")
        values = np.asarray(u[name], dtype=np.float64)
        if values.shape != (k + 1,) or (values <= 0).any():
            raise ValueError(
                f"u[{name!r}] must hold {k + 1} positive values, got {values.tolist()}"
            )
        values = np.clip(values / values.sum(), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        checked[name] = values / values.sum()
    return checked


class DisagreeingMatchClass(ValueError):
    """EM with u fixed ended on a 'match' class that favours disagreement: EM failed on these patterns."""


def untrained_model(
    comparisons: Mapping[str, int], u: Mapping[str, npt.ArrayLike] | None, tf_comparisons: Iterable[str] = ()
) -> FellegiSunterModel:
    """EM's starting m, ``u`` (uniform when None) and the smallest prior, for data with no candidate pair.

    With no candidate pair EM has nothing to learn from, and the run has
    nothing to score: every record is a customer of its own.
    """
    tf_names = set(tf_comparisons)
    return FellegiSunterModel(
        comparisons=tuple(
            ComparisonParameters(
                name=name,
                levels=k,
                m=tuple(float(v) for v in _starting_m(k)),
                u=tuple(float(v) for v in (np.full(k + 1, 1.0 / (k + 1)) if u is None else np.asarray(u[name]))),
                tf=name in tf_names,
            )
            for name, k in comparisons.items()
        ),
        lambda_=PROBABILITY_FLOOR**2,
    )


def train(
    patterns: pd.DataFrame,
    comparisons: Mapping[str, int],
    u: Mapping[str, npt.ArrayLike],
    tf_comparisons: Iterable[str] = (),
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    fix_u: bool = True,
    fixed_lambda: float | None = None,
    check_agreement: bool = True,
) -> FellegiSunterModel:
    """Estimate m (and lambda unless ``fixed_lambda`` is given; u too unless ``fix_u``) by EM over
    candidate-pair patterns.

    ``patterns`` has one ``gamma_<c>`` column per comparison plus ``count``.
    Stops when no parameter moves by ``tolerance`` or more, or after
    ``max_iterations``. ``tf_comparisons`` only marks which comparisons
    score with a term-frequency adjustment; EM ignores tf, as Splink does.
    Raises ValueError when, with u fixed, EM ends on a
    'match' class that favours disagreement: such a model would score
    non-matches as matches (unless ``check_agreement`` is False: a caller
    that only wants the posteriors).
    """
    if not comparisons:
        raise ValueError("at least one comparison is needed")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    tf_names = tuple(tf_comparisons)
    unknown = sorted(set(tf_names) - set(comparisons))
    if unknown:
        raise ValueError(f"tf_comparisons {unknown} are not among the comparisons")
    counts = _pattern_counts(patterns)
    levels = {name: level_array(patterns, name, k) for name, k in comparisons.items()}
    u_now = _validated_u(u, comparisons)
    m_now = {name: _starting_m(k) for name, k in comparisons.items()}
    lambda_now = _starting_lambda(levels, counts) if fixed_lambda is None else fixed_lambda

    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        posterior = _posterior(levels, m_now, u_now, lambda_now)
        match_weights = counts * posterior
        m_next = {n: _level_shares(levels[n], match_weights, k) for n, k in comparisons.items()}
        u_next = u_now
        if not fix_u:
            non_match_weights = counts * (1.0 - posterior)
            u_next = {
                n: _level_shares(levels[n], non_match_weights, k) for n, k in comparisons.items()
            }
        lambda_next = fixed_lambda if fixed_lambda is not None else float(
            np.clip(match_weights.sum() / counts.sum(), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        )
        change = max(
            abs(lambda_next - lambda_now),
            max(np.abs(m_next[n] - m_now[n]).max() for n in comparisons),
            max(np.abs(u_next[n] - u_now[n]).max() for n in comparisons),
        )
        m_now, u_now, lambda_now = m_next, u_next, lambda_next
        if change < tolerance:
            converged = True
            break

    observed = [name for name in comparisons if (levels[name] != MISSING).any()]
    if check_agreement and not _favours_agreement(m_now, u_now, observed):
        if fix_u:
            raise DisagreeingMatchClass(
                "EM ended with a 'match' class that favours disagreement; check u (from random "
                "pairs) and the blocking rules that produced the candidate pairs"
            )
        m_now, u_now, lambda_now = u_now, m_now, 1.0 - lambda_now

    return FellegiSunterModel(
        comparisons=tuple(
            ComparisonParameters(
                name=name,
                levels=k,
                m=tuple(float(v) for v in m_now[name]),
                u=tuple(float(v) for v in u_now[name]),
                tf=name in tf_names,
            )
            for name, k in comparisons.items()
        ),
        lambda_=lambda_now,
        iterations=iterations,
        converged=converged,
    )


def train_in_sessions(
    patterns: pd.DataFrame,
    comparisons: Mapping[str, int],
    u: Mapping[str, npt.ArrayLike],
    sessions: Iterable[Sequence[str]],
    tf_comparisons: Iterable[str] = (),
    max_iterations: int = 100,
    tolerance: float = 1e-5,
) -> FellegiSunterModel:
    """``train`` over all patterns, then m re-estimated in sessions, as Splink trains on blocking rules.

    A session names comparisons; EM over the patterns that agree exactly on
    all of them (their strongest level) estimates m of the other comparisons.
    Over all candidate pairs, EM takes near relatives who share every contact
    detail (households, twins) for matches, which inflates m of disagreeing on
    a name or a birth date; among pairs that agree on the name, or on the
    birth date, those relatives are rare. Each comparison's m is the mean of
    its session estimates; a comparison no session estimates, and a session
    that holds no pairs or whose EM fails, keep the first estimate. lambda
    is then re-estimated over all the patterns with the final m and u
    (``estimate_lambda``): the first EM's lambda goes with its own m, which
    took relatives for matches, and overstates the share of matches.
    A session whose free comparisons are mostly missing from the data (a file
    without emails, phones or an id: the names session has only the birth date
    and the address left) is skipped: among pairs that agree exactly on its
    fixed comparisons nearly all are matches, and its EM then sends every
    disagreement on the rest to the non-match class, which drives m of
    disagreeing to zero (a names and birth dates file: -20 bits for a birth
    date typo).
    """
    tf_names = tuple(tf_comparisons)
    model = train(patterns, comparisons, u, tf_names, max_iterations, tolerance)
    estimates: dict[str, list[np.ndarray]] = {name: [] for name in comparisons}
    for session in sessions:
        fixed = set(session)
        agree = np.ones(len(patterns), dtype=bool)
        for name in fixed:
            agree &= level_array(patterns, name, comparisons[name]) == comparisons[name]
        free = {name: k for name, k in comparisons.items() if name not in fixed}
        if not free or patterns.loc[agree, COUNT_COLUMN].sum() <= 0:
            continue
        observed = [name for name, k in free.items() if (level_array(patterns[agree], name, k) != MISSING).any()]
        if 2 * len(observed) <= len(free):
            continue  # most of what the session would estimate is missing from the data
        try:
            trained = train(patterns[agree], free, {n: u[n] for n in free}, (), max_iterations, tolerance)
        except ValueError:
            continue
        for parameters in trained.comparisons:
            # A session estimate where agreeing exactly is no evidence is implausible: keep the others.
            if parameters.weights[-1] > 0:
                estimates[parameters.name].append(np.asarray(parameters.m))
    final = replace(
        model,
        comparisons=tuple(
            replace(c, m=tuple(float(v) for v in np.mean(estimates[c.name], axis=0)))
            if estimates[c.name]
            else c
            for c in model.comparisons
        ),
    )
    return replace(final, lambda_=estimate_lambda(patterns, final, max_iterations, tolerance))


def estimate_lambda(
    patterns: pd.DataFrame, model: FellegiSunterModel, max_iterations: int = 100, tolerance: float = 1e-5
) -> float:
    """The share of matches among ``patterns`` by EM over lambda alone, m and u held at ``model``'s.

    Household u applies where ``household_pairs`` holds, as in ``score``.
    """
    counts = _pattern_counts(patterns)
    frame = patterns.reset_index(drop=True)
    shared = household_pairs(model, frame)
    evidence = np.zeros(len(frame), dtype=np.float64)
    for c in model.comparisons:
        levels = level_array(frame, c.name, c.levels)
        plain = np.append(c.weights * np.log(2.0), 0.0)[levels]
        household = np.append(c.household_weights * np.log(2.0), 0.0)[levels]
        evidence += np.where(shared, household, plain)
    lambda_now = model.lambda_
    for _ in range(max_iterations):
        log_odds = np.log(lambda_now / (1.0 - lambda_now)) + evidence
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700.0, 700.0)))
        lambda_next = float(
            np.clip((counts * posterior).sum() / counts.sum(), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        )
        if abs(lambda_next - lambda_now) < tolerance:
            return lambda_next
        lambda_now = lambda_next
    return lambda_now


def random_pair_prior(candidate_lambda: float, candidate_pairs: int, possible_pairs: int) -> float:
    """The probability that two random records match, from the match share among candidate pairs.

    u comes from random record pairs, so the prior that goes with it is the
    random-pair one: the expected matches among the candidates spread over
    every possible pair. Scoring a candidate with the candidate share instead
    counts the blocking keys' agreement twice (once in the prior, once in the
    comparisons) and over-links.
    """
    if possible_pairs < 1 or candidate_pairs < 0:
        raise ValueError(f"expected possible_pairs >= 1 and candidate_pairs >= 0, got {possible_pairs}, {candidate_pairs}")
    expected = candidate_lambda * min(candidate_pairs, possible_pairs)
    return float(np.clip(expected / possible_pairs, PROBABILITY_FLOOR**2, 1.0 - PROBABILITY_FLOOR))


def consistent_prior(
    evidence: npt.ArrayLike, counts: npt.ArrayLike, possible_pairs: int, start: float,
    max_iterations: int = 500, tolerance: float = 1e-6,
) -> float:
    """The random-pair prior at which the candidates, scored with it, expect ``prior * possible_pairs`` matches.

    ``evidence``: distinct sums of the comparisons' weights in bits (term-frequency adjusted, no prior), with
    their ``counts`` of candidate pairs; ``start``: the prior to begin from (``random_pair_prior``'s).

    EM's match share among the candidates goes with the candidate-level prior, under which agreeing on a
    blocking key counts twice (it made the pair a candidate and it is a comparison), so it calls too many
    candidates matches: in pseudopeople's censuses 60,126 expected matches for 17,895 true pairs, every
    probability 3.4 times too confident in its odds. This is the prior that the scores agree with: EM over the
    prior alone, every pair outside the candidates a non-match (blocking misses few), as in ``estimate_lambda``
    but on the random-pair scale and with the weights the pairs are scored with.
    """
    if possible_pairs < 1:
        raise ValueError(f"expected possible_pairs >= 1, got {possible_pairs}")
    bits = np.asarray(evidence, dtype=np.float64)
    weights = np.asarray(counts, dtype=np.float64)
    low, high = PROBABILITY_FLOOR**2, 1.0 - PROBABILITY_FLOOR
    prior = float(np.clip(start, low, high))
    if weights.sum() <= 0:
        return prior
    log_bayes = np.clip(bits, -1000.0, 1000.0) * np.log(2.0)
    for _ in range(max_iterations):
        log_odds = np.log(prior / (1.0 - prior)) + log_bayes
        expected = float((weights / (1.0 + np.exp(-np.clip(log_odds, -700.0, 700.0)))).sum())
        following = float(np.clip(expected / possible_pairs, low, high))
        if abs(following - prior) <= tolerance * prior:
            return following
        prior = following
    return prior


def _tf_adjustment(
    parameters: ComparisonParameters, levels: np.ndarray, pairs: pd.DataFrame
) -> np.ndarray:
    """Splink-style ``log2(u_exact / tf)`` on the exact level, clipped; 0 elsewhere or without tf.

    Replacing u_exact by the value's frequency makes agreeing on a common
    value weaker evidence than agreeing on a rare one.
    """
    column = tf_column(parameters.name)
    if column not in pairs.columns:
        raise ValueError(
            f"comparison {parameters.name!r} uses term frequencies but pairs lack {column!r}"
        )
    tf = pairs[column].to_numpy(dtype=np.float64, na_value=np.nan)
    usable = (levels == parameters.levels) & np.isfinite(tf) & (tf > 0)
    adjustment = np.log2(parameters.u[-1]) - np.log2(np.where(usable, tf, 1.0))
    return np.where(usable, np.clip(adjustment, -TF_MAX_ADJUSTMENT, TF_MAX_ADJUSTMENT), 0.0)


def score(model: FellegiSunterModel, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair: ``mw_<c>`` (bits, 0 when missing), ``match_weight`` and ``match_probability``.

    Vectorized (numpy indexing only), for use inside pandas UDFs; the result
    keeps ``pairs``' index.
    """
    contributions = np.empty((len(pairs), len(model.comparisons)), dtype=np.float64)
    shared = household_pairs(model, pairs)
    for j, parameters in enumerate(model.comparisons):
        levels = level_array(pairs, parameters.name, parameters.levels)
        column = np.where(
            shared,
            np.append(parameters.household_weights, 0.0)[levels],
            np.append(parameters.weights, 0.0)[levels],
        )
        if parameters.tf:
            column = column + _tf_adjustment(parameters, levels, pairs)
        contributions[:, j] = column
    return assemble_scores(
        pairs.index, [c.name for c in model.comparisons], contributions, model.prior_weight
    )


@dataclass(frozen=True)
class TrainingReport:
    """What ``train_checked`` found and did, for the run's log and report (names and numbers, no values)."""

    problems: tuple[str, ...]  # why EM's model was implausible; empty when it was not
    recovered: tuple[str, ...]  # comparisons whose m was taken from anchor pairs
    clamped: tuple[str, ...]  # agreeing levels whose m was raised to u ("name level k")
    remaining: tuple[str, ...]  # problems the final model still has
    pooled: float = 0.0  # matches the EM sessions found, when m was pooled over them (session_m); 0: it was not


def model_problems(model: FellegiSunterModel, identity: Iterable[str]) -> list[str]:
    """Why a model trained on candidate pairs (``lambda_`` = their match share) is implausible; [] if it is not."""
    problems = []
    if model.lambda_ >= MATCH_SHARE_LIMIT:
        problems.append(f"EM called {model.lambda_:.1%} of the candidate pairs matches")
    names = set(identity)
    for c in model.comparisons:
        weights = c.weights
        if np.allclose(c.m, c.u):
            continue  # nothing was learnt: the attribute is missing everywhere
        if weights[-1] <= 0:
            problems.append(f"{c.name}: agreeing exactly is no evidence of a match (m <= u)")
        if c.name in names and weights[0] > -MIN_DISAGREEMENT_BITS:
            problems.append(f"{c.name}: disagreeing costs only {max(-weights[0], 0.0):.2f} bits")
    return problems


def anchor_m(
    patterns: pd.DataFrame, comparisons: Mapping[str, int], identity: Sequence[str], smoothing: float = 1.0
) -> dict[str, np.ndarray]:
    """m per comparison counted (no EM) over anchor pairs: near-certain matches by a strict deterministic rule.

    The anchors for comparison c agree exactly on two identity comparisons
    other than c (on the one there is, plus exactly on a non-identity
    comparison, when the settings have a single other). Relatives who share
    a family name and a home agree on one identity comparison only, so they
    do not inflate m of disagreeing on a given name. Comparisons with fewer
    than ``MIN_ANCHOR_PAIRS`` anchors with a value are left out.
    """
    counts = _pattern_counts(patterns)
    levels = {name: level_array(patterns, name, k) for name, k in comparisons.items()}
    exact = {name: (levels[name] == k).astype(np.int64) for name, k in comparisons.items()}
    identity = [name for name in identity if name in comparisons]
    estimates: dict[str, np.ndarray] = {}
    for name, k in comparisons.items():
        others = [i for i in identity if i != name]
        if not others:
            continue
        need = min(2, len(others))
        anchor = sum(exact[i] for i in others) >= need
        if need < 2:
            supporting = [o for o in comparisons if o != name and o not in identity]
            anchor &= sum((exact[o] for o in supporting), np.zeros(len(counts), dtype=np.int64)) >= 1
        present = anchor & (levels[name] != MISSING)
        if counts[present].sum() < MIN_ANCHOR_PAIRS:
            continue
        tally = np.bincount(levels[name][present], weights=counts[present], minlength=k + 1)
        estimates[name] = (tally + smoothing) / (tally.sum() + smoothing * (k + 1))
    return estimates


@dataclass(frozen=True)
class Strangers:
    """How often two strangers agree exactly, and how many record pairs there are.

    ``exact[c]`` is the share of random pairs (nearly all strangers) that
    agree exactly on comparison c, a pair with c missing counting as not
    agreeing. Strangers are taken to agree on different comparisons
    independently: the pairs expected to agree exactly on several
    comparisons are ``possible_pairs`` times the product of their shares.
    Among 10,000 records where a few names are common, thousands of
    strangers agree on both names exactly.
    """

    exact: Mapping[str, float]
    possible_pairs: int

    @classmethod
    def from_random(cls, random: pd.DataFrame, comparisons: Mapping[str, int], possible_pairs: int) -> Strangers | None:
        """From the patterns of random pairs (at least one); None when the data has no pair."""
        if possible_pairs <= 0:
            return None
        counts = _pattern_counts(random)
        total = float(counts.sum())
        exact = {name: float(counts[level_array(random, name, k) == k].sum()) / total for name, k in comparisons.items()}
        return cls(exact, possible_pairs)

    def expected(self, agreeing: Iterable[str]) -> float:
        """Pairs of strangers expected to agree exactly on every comparison in ``agreeing``."""
        return self.possible_pairs * float(np.prod([self.exact[name] for name in agreeing]))


@dataclass(frozen=True)
class PooledM:
    """m counted over the likely matches of every EM session, and how many candidate pairs they make."""

    m: dict[str, np.ndarray]
    matches: float


def session_m(
    patterns: pd.DataFrame,
    comparisons: Mapping[str, int],
    u: Mapping[str, npt.ArrayLike],
    sessions: Iterable[Sequence[str]],
    strangers: Strangers,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    smoothing: float = 0.5,
) -> PooledM | None:
    """m of every comparison counted over the pairs each session's EM takes for matches (no EM over all pairs).

    For data where every other estimate fails: EM over all candidate pairs
    calls nearly all of them matches (the blocking rules picked pairs that
    agree), and the anchors (``anchor_m``) tell nothing when a duplicate has
    one error only, as in files of names and birth dates: pairs agreeing
    exactly on both names then disagree on the birth date whenever they are
    the same person. Within a session (pairs agreeing exactly on its
    comparisons) the strangers' other comparisons are distributed as u, so
    EM there is sound, given its share of matches: taken from ``strangers``
    for a session of two or more comparisons (the strangers expected to
    agree on all of them), estimated by EM for one that leaves two or more
    comparisons observed, and skipped otherwise (one free comparison cannot
    tell EM how many of its pairs match). Each pair counts as a match with
    its highest probability over the sessions that hold it; m is the level
    shares over those weights. The matches (the summed weights) give the
    share of matches among the candidates. None when the sessions find
    fewer than ``MIN_ANCHOR_PAIRS`` matches.
    """
    counts = _pattern_counts(patterns)
    levels = {name: level_array(patterns, name, k) for name, k in comparisons.items()}
    u_checked = _validated_u(u, comparisons)
    probability = np.zeros(len(counts))
    for session in sessions:
        fixed = [name for name in session if name in comparisons]
        agree = np.ones(len(counts), dtype=bool)
        for name in fixed:
            agree &= levels[name] == comparisons[name]
        held = float(counts[agree].sum())
        free = {name: k for name, k in comparisons.items() if name not in fixed}
        observed = [name for name in free if (levels[name][agree] != MISSING).any()]
        if not fixed or held <= 0 or not observed:
            continue
        share: float | None = None
        if len(fixed) >= 2:
            share = 1.0 - strangers.expected(fixed) / held
            if share <= 0.0:
                continue
            share = float(np.clip(share, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR))
        elif len(observed) < 2:
            continue
        trained = train(
            patterns[agree], free, {n: u_checked[n] for n in free}, (), max_iterations, tolerance,
            fixed_lambda=share, check_agreement=False,
        )
        m = {c.name: np.asarray(c.m) for c in trained.comparisons}
        posterior = _posterior({n: levels[n][agree] for n in free}, m, {n: u_checked[n] for n in free}, trained.lambda_)
        probability[agree] = np.maximum(probability[agree], posterior)
    weights = counts * probability
    if weights.sum() < MIN_ANCHOR_PAIRS:
        return None
    pooled = {}
    for name, k in comparisons.items():
        present = levels[name] != MISSING
        tally = np.bincount(levels[name][present], weights=weights[present], minlength=k + 1)
        pooled[name] = (tally + smoothing) / (tally.sum() + smoothing * (k + 1))
    return PooledM(pooled, float(weights.sum()))


def clamp_agreeing(model: FellegiSunterModel) -> tuple[FellegiSunterModel, list[str]]:
    """Agreeing levels with m < u raised to m = u (weight 0), the difference taken from the other levels in
    proportion to their m.

    Agreeing on something can be weak evidence, never evidence against. Taking the difference from
    disagreement alone would make disagreeing stronger evidence against a match the more levels are
    raised: where matches seldom disagree, its small m would lose much of itself (pseudopeople's census:
    a birth date's disagreement at -9.4 bits with three levels raised to their u), down to its floor.
    """
    clamped: list[str] = []
    comparisons = []
    for c in model.comparisons:
        m, u = np.asarray(c.m, dtype=np.float64), np.asarray(c.u, dtype=np.float64)
        low = np.flatnonzero(m[1:] < u[1:]) + 1
        if len(low):
            others = np.ones(len(m), dtype=bool)
            others[low] = False
            m = m.copy()
            m[low] = u[low]
            m[others] *= max(1.0 - m[low].sum(), PROBABILITY_FLOOR) / m[others].sum()
            m = np.clip(m, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
            m = m / m.sum()
            clamped.extend(f"{c.name} level {int(k)}" for k in low)
            c = replace(c, m=tuple(float(v) for v in m))
        comparisons.append(c)
    return replace(model, comparisons=tuple(comparisons)), clamped


@dataclass(frozen=True)
class Household:
    """What relatives share: ``key`` (a family name comparison) and ``shared`` (address, phone), not ``own``.

    ``own[0]`` (the given name) tells relatives apart; the others (birth date)
    usually do, and are only required not to agree exactly.
    """

    key: str
    own: tuple[str, ...]
    shared: tuple[str, ...]


def household_u(
    patterns: pd.DataFrame,
    comparisons: Mapping[str, int],
    u: Mapping[str, npt.ArrayLike],
    household: Household,
    smoothing: float = 1.0,
) -> dict[str, np.ndarray]:
    """u of each shared comparison among pairs with the same family name but another given name (and birth date).

    Fellegi-Sunter treats comparisons as independent given the class, but among
    non-matches that share a family name, sharing an address, a phone or an
    email is far commoner than among random pairs: they are households. u from
    random pairs makes a shared home strong evidence, and spouses and children
    score as matches. Among candidate pairs with the same family name,
    different given names and not the same birth date, nearly all are
    relatives or namesakes (true matches agree on the birth date); their level
    shares are the u a shared comparison gets when the family name agrees. An
    agreeing level never gets a u below the random-pair one. Comparisons with
    fewer than ``MIN_HOUSEHOLD_PAIRS`` such pairs with a value are left out.
    """
    if household.key not in comparisons or not household.own or household.own[0] not in comparisons:
        return {}
    counts = _pattern_counts(patterns)
    first, *others = household.own
    proxy = (level_array(patterns, household.key, comparisons[household.key]) == comparisons[household.key]) & (
        level_array(patterns, first, comparisons[first]) == 0
    )
    for name in others:
        if name in comparisons:
            proxy &= level_array(patterns, name, comparisons[name]) != comparisons[name]
    estimates: dict[str, np.ndarray] = {}
    for name in household.shared:
        if name not in comparisons:
            continue
        k = comparisons[name]
        levels = level_array(patterns, name, k)
        present = proxy & (levels != MISSING)
        if counts[present].sum() < MIN_HOUSEHOLD_PAIRS:
            continue
        tally = np.bincount(levels[present], weights=counts[present], minlength=k + 1)
        shares = (tally + smoothing) / (tally.sum() + smoothing * (k + 1))
        base = np.asarray(u[name], dtype=np.float64)
        shares[1:] = np.maximum(shares[1:], base[1:])
        shares[0] = max(1.0 - shares[1:].sum(), PROBABILITY_FLOOR)
        estimates[name] = shares / shares.sum()
    return estimates


def with_household(
    model: FellegiSunterModel, patterns: pd.DataFrame, comparisons: Mapping[str, int], household: Household | None
) -> FellegiSunterModel:
    """``model`` with household u (``household_u``) on its shared comparisons, when there are enough pairs."""
    if household is None:
        return model
    u = {c.name: np.asarray(c.u) for c in model.comparisons}
    estimates = household_u(patterns, comparisons, u, household)
    if not estimates:
        return model
    return replace(
        model,
        household_key=household.key,
        household_own=tuple(name for name in household.own if name in comparisons),
        comparisons=tuple(
            replace(c, u_household=tuple(float(v) for v in estimates[c.name])) if c.name in estimates else c
            for c in model.comparisons
        ),
    )


def train_checked(
    patterns: pd.DataFrame,
    comparisons: Mapping[str, int],
    u: Mapping[str, npt.ArrayLike],
    sessions: Iterable[Sequence[str]],
    identity: Sequence[str],
    tf_comparisons: Iterable[str] = (),
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    household: Household | None = None,
    strangers: Strangers | None = None,
) -> tuple[FellegiSunterModel, TrainingReport]:
    """``train_in_sessions``, then checked; an implausible model gets m from anchor pairs.

    EM can settle on the wrong class: every candidate pair (a loose blocking
    rule), or households (same family name and address) when few attributes
    tell people apart. ``model_problems`` detects that; m of every comparison
    with enough anchor pairs (``anchor_m``) then replaces EM's, and lambda is
    re-estimated with the new m. No agreeing level may count against a match
    (``clamp_agreeing``). Last, comparisons relatives share get their
    household u (``with_household``).

    When EM itself fails (its 'match' class favours disagreement, as when the
    names are missing from every record), the model starts from EM's
    starting m (``untrained_model``) with lambda estimated for it, and goes
    through the same anchor re-estimation.

    A model still implausible after that gets m pooled over the sessions'
    likely matches (``session_m``, given ``strangers``) and their share of
    the candidates as lambda, when that model is plausible.
    """
    try:
        model = train_in_sessions(patterns, comparisons, u, sessions, tf_comparisons, max_iterations, tolerance)
        failed = []
    except DisagreeingMatchClass as error:
        model = untrained_model(comparisons, u, tf_comparisons)
        model = replace(model, lambda_=estimate_lambda(patterns, model, max_iterations, tolerance))
        failed = [f"EM failed ({error}); m started from EM's starting values"]
    problems = failed + model_problems(model, identity)
    recovered: list[str] = []
    if problems:
        anchors = anchor_m(patterns, comparisons, identity)
        if anchors:
            model = replace(
                model,
                comparisons=tuple(
                    replace(c, m=tuple(float(v) for v in anchors[c.name])) if c.name in anchors else c
                    for c in model.comparisons
                ),
            )
            model = replace(model, lambda_=estimate_lambda(patterns, model, max_iterations, tolerance))
            recovered = [c.name for c in model.comparisons if c.name in anchors]
    pooled_matches = 0.0
    if problems and strangers is not None and model_problems(model, identity):
        pooled = session_m(patterns, comparisons, u, sessions, strangers, max_iterations, tolerance)
        if pooled is not None:
            share = float(np.clip(pooled.matches / _pattern_counts(patterns).sum(), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR))
            candidate = replace(
                model,
                comparisons=tuple(replace(c, m=tuple(float(v) for v in pooled.m[c.name])) for c in model.comparisons),
                lambda_=share,
            )
            if not model_problems(candidate, identity):
                model, pooled_matches = candidate, pooled.matches
    model, clamped = clamp_agreeing(model)
    household_model = with_household(model, patterns, comparisons, household)
    if household_model is not model:
        # A pooled model's lambda is the sessions' count of matches; EM's over all candidates is what failed.
        lambda_ = model.lambda_ if pooled_matches else estimate_lambda(patterns, household_model, max_iterations, tolerance)
        model = replace(household_model, lambda_=lambda_)
    report = TrainingReport(
        problems=tuple(problems),
        recovered=tuple(recovered),
        clamped=tuple(clamped),
        remaining=tuple(model_problems(model, identity)) if problems else (),
        pooled=pooled_matches,
    )
    return model, report
