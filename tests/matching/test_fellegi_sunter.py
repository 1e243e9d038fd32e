"""Fellegi-Sunter: EM recovers simulated parameters; scoring matches hand-computed bits."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume as hypothesis_assume
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st

from matching.fellegi_sunter import (
    COUNT_COLUMN,
    TF_MAX_ADJUSTMENT,
    ComparisonParameters,
    DisagreeingMatchClass,
    FellegiSunterModel,
    estimate_u,
    gamma_column,
    random_pair_prior,
    score,
    Household,
    Strangers,
    anchor_m,
    consistent_prior,
    household_pairs,
    household_u,
    with_household,
    clamp_agreeing,
    model_problems,
    session_m,
    train,
    train_checked,
    train_in_sessions,
    u_sample_sizes,
    untrained_model,
    u_settled,
)


def count_patterns(pairs: pd.DataFrame, comparisons: dict[str, int]) -> pd.DataFrame:
    """Distinct gamma patterns of ``pairs`` with their ``count``: the pandas twin of the pipeline's Spark groupBy."""
    columns = [gamma_column(name) for name in comparisons]
    return pairs.groupby(columns, sort=False).size().rename(COUNT_COLUMN).reset_index()


COMPARISONS = {"name": 2, "dob": 1, "email": 2}
TRUE_M = {"name": [0.05, 0.15, 0.80], "dob": [0.08, 0.92], "email": [0.10, 0.05, 0.85]}
TRUE_U = {"name": [0.90, 0.08, 0.02], "dob": [0.97, 0.03], "email": [0.97, 0.02, 0.01]}
MISSING_RATE = {"name": 0.05, "dob": 0.2, "email": 0.4}
TRUE_LAMBDA = 0.2


def simulate(rng: np.random.Generator, n: int, lambda_: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Comparison vectors drawn from TRUE_M / TRUE_U, missing independently of the class."""
    truth = rng.random(n) < lambda_
    columns = {}
    for name, k in COMPARISONS.items():
        levels = np.where(
            truth, rng.choice(k + 1, n, p=TRUE_M[name]), rng.choice(k + 1, n, p=TRUE_U[name])
        )
        levels[rng.random(n) < MISSING_RATE[name]] = -1
        columns[gamma_column(name)] = levels
    return pd.DataFrame(columns), truth


@pytest.fixture(scope="module")
def simulated() -> tuple[dict[str, np.ndarray], pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(20)
    random_pairs, _ = simulate(rng, 50_000, 0.0)
    u = estimate_u(count_patterns(random_pairs, COMPARISONS), COMPARISONS)
    candidates, truth = simulate(rng, 20_000, TRUE_LAMBDA)
    return u, candidates, truth


def test_em_recovers_m_and_lambda_and_classifies_the_truth(simulated) -> None:
    u, candidates, truth = simulated
    model = train(count_patterns(candidates, COMPARISONS), COMPARISONS, u)

    assert model.converged
    assert 1 < model.iterations < 100
    assert model.lambda_ == pytest.approx(TRUE_LAMBDA, abs=0.01)
    for name in COMPARISONS:
        np.testing.assert_allclose(model.comparison(name).m, TRUE_M[name], atol=0.02)
        np.testing.assert_allclose(model.comparison(name).u, u[name])
    predicted = score(model, candidates)["match_probability"].to_numpy() > 0.5
    assert (predicted == truth).mean() > 0.97


def test_em_with_free_u_recovers_u_and_fixes_swapped_classes(simulated) -> None:
    """Starting u = the true m makes EM put the matches in the 'u' class; train swaps them back."""
    _, candidates, _ = simulated
    swapped_start = {name: np.asarray(TRUE_M[name]) for name in COMPARISONS}
    model = train(count_patterns(candidates, COMPARISONS), COMPARISONS, swapped_start, fix_u=False)

    assert model.lambda_ == pytest.approx(TRUE_LAMBDA, abs=0.01)
    for name in COMPARISONS:
        np.testing.assert_allclose(model.comparison(name).m, TRUE_M[name], atol=0.02)
        np.testing.assert_allclose(model.comparison(name).u, TRUE_U[name], atol=0.02)


def test_em_with_fixed_u_favouring_agreement_is_rejected(simulated) -> None:
    _, candidates, _ = simulated
    agreeing_u = {name: np.asarray(TRUE_M[name]) for name in COMPARISONS}
    with pytest.raises(DisagreeingMatchClass, match="favours disagreement"):
        train(count_patterns(candidates, COMPARISONS), COMPARISONS, agreeing_u, fix_u=True)


# Comparisons a file lacks (no phone, address, national id or city): missing from every pair.
ABSENT = {"phone": 1, "address": 3, "national_id": 1, "city": 1}


def with_absent_comparisons(simulated) -> tuple[pd.DataFrame, dict[str, int], dict[str, np.ndarray]]:
    """The simulated candidates' patterns, comparisons and u with ``ABSENT`` added (u uniform)."""
    u, candidates, _ = simulated
    comparisons = {**COMPARISONS, **ABSENT}
    padded = candidates.assign(**{f"gamma_{name}": -1 for name in ABSENT})
    u_all = {**u, **{name: np.full(k + 1, 1.0 / (k + 1)) for name, k in ABSENT.items()}}
    return count_patterns(padded, comparisons), comparisons, u_all


def test_comparisons_no_pair_has_do_not_outvote_the_ones_the_data_has(simulated) -> None:
    model = train(*with_absent_comparisons(simulated))

    assert model.lambda_ == pytest.approx(TRUE_LAMBDA, abs=0.01)
    for name in COMPARISONS:
        np.testing.assert_allclose(model.comparison(name).m, TRUE_M[name], atol=0.02)
    for name in ABSENT:
        np.testing.assert_allclose(model.comparison(name).m, model.comparison(name).u)


def test_a_session_whose_free_comparisons_are_mostly_missing_is_skipped(simulated) -> None:
    """Fixing the name leaves dob, email and four comparisons no pair has: the session estimates nothing."""
    u, candidates, _ = simulated
    patterns, comparisons, u_all = with_absent_comparisons(simulated)

    first = train(patterns, comparisons, u_all)
    skipped = train_in_sessions(patterns, comparisons, u_all, [["name"]])
    run = train_in_sessions(count_patterns(candidates, COMPARISONS), COMPARISONS, u, [["name"]])

    for name in ("dob", "email"):
        assert skipped.comparison(name).m == first.comparison(name).m
        assert run.comparison(name).m != train(count_patterns(candidates, COMPARISONS), COMPARISONS, u).comparison(name).m


def test_em_stops_at_max_iterations_without_converging(simulated) -> None:
    u, candidates, _ = simulated
    model = train(count_patterns(candidates, COMPARISONS), COMPARISONS, u, max_iterations=2)
    assert model.iterations == 2
    assert not model.converged


@pytest.mark.parametrize(
    ("levels", "counts", "expected"),
    [
        # Laplace: (count + 1) / (non-missing + K + 1); missing (-1) ignored.
        ([0, 1, -1], [8, 0, 5], [9 / 10, 1 / 10]),
        ([0, 1], [3, 1], [4 / 6, 2 / 6]),
        ([-1], [7], [1 / 2, 1 / 2]),
    ],
)
def test_estimate_u_is_laplace_smoothed_share_of_non_missing(levels, counts, expected) -> None:
    patterns = pd.DataFrame({"gamma_dob": levels, "count": counts})
    u = estimate_u(patterns, {"dob": 1})
    np.testing.assert_allclose(u["dob"], expected)


def toy_model(lambda_: float = 0.2, tf: bool = False) -> FellegiSunterModel:
    """Weights in bits: a = (-2, 2); b = (-3, 1, log2 12); prior log2(0.25) = -2."""
    return FellegiSunterModel(
        comparisons=(
            ComparisonParameters("a", 1, m=(0.2, 0.8), u=(0.8, 0.2)),
            ComparisonParameters("b", 2, m=(0.1, 0.3, 0.6), u=(0.8, 0.15, 0.05), tf=tf),
        ),
        lambda_=lambda_,
    )


def test_score_matches_hand_computed_bits() -> None:
    pairs = pd.DataFrame(
        {"gamma_a": [1, 0, -1, 1, -1], "gamma_b": [2, 0, 1, -1, -1]}, index=[10, 11, 12, 13, 14]
    )
    scores = score(toy_model(), pairs)

    expected = pd.DataFrame(
        {
            "mw_a": [2.0, -2.0, 0.0, 2.0, 0.0],
            "mw_b": [math.log2(12), -3.0, 1.0, 0.0, 0.0],
            "match_weight": [math.log2(12), -7.0, -1.0, 0.0, -2.0],
            "match_probability": [12 / 13, 1 / 129, 1 / 3, 1 / 2, 1 / 5],
        },
        index=[10, 11, 12, 13, 14],
    )
    pd.testing.assert_frame_equal(scores, expected, rtol=1e-12)


def test_missing_level_adds_no_evidence() -> None:
    pairs = pd.DataFrame({"gamma_a": [1, 1], "gamma_b": [-1, 0]})
    scores = score(toy_model(), pairs)
    assert scores["mw_b"].tolist() == [0.0, -3.0]
    assert scores["match_weight"].iloc[0] == pytest.approx(toy_model().prior_weight + 2.0)


@pytest.mark.parametrize(
    ("level", "tf", "expected_mw_b"),
    [
        # u_exact = 0.05: adjustment log2(0.05 / tf) on the exact level only.
        (2, 0.0005, math.log2(12) + math.log2(100)),  # rare value: stronger
        (2, 0.2, math.log2(12) - 2.0),  # common value: weaker
        (2, 1e-12, math.log2(12) + TF_MAX_ADJUSTMENT),  # clipped
        (2, 2.2e-313, math.log2(12) + TF_MAX_ADJUSTMENT),  # subnormal: no overflow in u / tf
        (2, np.nan, math.log2(12)),  # no frequency known: plain weight
        (1, 0.0005, 1.0),  # not the exact level: tf ignored
        (-1, np.nan, 0.0),
    ],
)
def test_term_frequency_adjusts_the_exact_level(level, tf, expected_mw_b) -> None:
    pairs = pd.DataFrame({"gamma_a": [1], "gamma_b": [level], "tf_b": [tf]})
    with np.errstate(all="raise"):
        scores = score(toy_model(tf=True), pairs)
    assert scores["mw_b"].iloc[0] == pytest.approx(expected_mw_b)


def test_rare_agreement_outweighs_common_agreement() -> None:
    pairs = pd.DataFrame({"gamma_a": [1, 1], "gamma_b": [2, 2], "tf_b": [0.0001, 0.03]})
    probability = score(toy_model(tf=True), pairs)["match_probability"]
    assert probability.iloc[0] > probability.iloc[1]


def test_json_round_trip_gives_identical_model_and_scores(simulated) -> None:
    u, candidates, _ = simulated
    model = train(count_patterns(candidates, COMPARISONS), COMPARISONS, u, tf_comparisons=["name"])
    restored = FellegiSunterModel.from_json(model.to_json())

    assert restored == model
    assert restored.comparison("name").tf
    pairs = candidates.head(500).assign(tf_name=0.001)
    pd.testing.assert_frame_equal(score(restored, pairs), score(model, pairs), check_exact=True)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (pd.DataFrame({"gamma_a": [1]}), "lack column 'gamma_b'"),
        (pd.DataFrame({"gamma_a": [1], "gamma_b": [3]}), r"levels \[3\] outside -1..2"),
        (pd.DataFrame({"gamma_a": [1], "gamma_b": [-2]}), r"levels \[-2\] outside"),
        (pd.DataFrame({"gamma_a": [1.0], "gamma_b": [np.nan]}), "has nulls"),
    ],
)
def test_score_rejects_bad_comparison_vectors(pairs, message) -> None:
    with pytest.raises(ValueError, match=message):
        score(toy_model(), pairs)


def test_score_needs_tf_column_for_tf_comparison() -> None:
    with pytest.raises(ValueError, match="tf_b"):
        score(toy_model(tf=True), pd.DataFrame({"gamma_a": [1], "gamma_b": [2]}))


@pytest.mark.parametrize(
    ("updates", "dropped", "message"),
    [
        ({"format_version": 99}, None, "format_version"),
        ({"model_type": "logistic"}, None, "model_type"),
        ({}, "lambda", "lacks key 'lambda'"),
    ],
)
def test_from_json_rejects_unknown_or_broken_documents(updates, dropped, message) -> None:
    document = json.loads(toy_model().to_json()) | updates
    document.pop(dropped, None)
    with pytest.raises(ValueError, match=message):
        FellegiSunterModel.from_json(document)


def test_train_rejects_tf_comparison_not_in_comparisons() -> None:
    patterns = pd.DataFrame({"gamma_a": [1, 0], "count": [3, 5]})
    with pytest.raises(ValueError, match="tf_comparisons"):
        train(patterns, {"a": 1}, {"a": [0.9, 0.1]}, tf_comparisons=["zzz"])


def _with_relatives(candidates: pd.DataFrame, n: int) -> pd.DataFrame:
    """Candidates plus ``n`` non-matching relatives: other name and birth date, the same email."""
    relatives = pd.DataFrame({gamma_column("name"): 0, gamma_column("dob"): 0, gamma_column("email"): 2}, index=range(n))
    return pd.concat([candidates, relatives], ignore_index=True)


def test_sessions_keep_relatives_from_inflating_m_of_disagreement(simulated) -> None:
    u, candidates, truth = simulated
    patterns = count_patterns(_with_relatives(candidates, 1_500), COMPARISONS)

    plain = train(patterns, COMPARISONS, u)
    sessions = train_in_sessions(patterns, COMPARISONS, u, [["dob"], ["name"]])

    # EM over everything takes the relatives (email agrees, u tiny) for matches with another name.
    assert plain.comparison("name").m[0] > 0.2
    # Among pairs agreeing on the birth date there are no relatives: m is near the truth again.
    assert sessions.comparison("name").m == pytest.approx(TRUE_M["name"], abs=0.03)
    assert sessions.comparison("dob").m == pytest.approx(TRUE_M["dob"], abs=0.03)
    # lambda re-estimated with the sessions' m no longer counts the relatives as matches.
    assert sessions.lambda_ == pytest.approx(truth.sum() / (len(candidates) + 1_500), abs=0.01)
    assert plain.lambda_ > sessions.lambda_ + 0.05


def test_session_without_pairs_keeps_the_first_estimate(simulated) -> None:
    u, candidates, _ = simulated
    patterns = count_patterns(candidates.assign(**{gamma_column("dob"): -1}), COMPARISONS)

    plain = train(patterns, COMPARISONS, u)
    sessions = train_in_sessions(patterns, COMPARISONS, u, [["dob"]])

    assert sessions.comparisons == plain.comparisons
    assert sessions.lambda_ == pytest.approx(plain.lambda_, abs=1e-4)


def test_a_healthy_model_passes_the_checks_untouched(simulated) -> None:
    u, candidates, _ = simulated
    patterns = count_patterns(candidates, COMPARISONS)

    checked, report = train_checked(patterns, COMPARISONS, u, [["dob"], ["name"]], ["name", "dob"])

    assert (report.problems, report.recovered, report.clamped, report.remaining) == ((), (), (), ())
    assert checked == train_in_sessions(patterns, COMPARISONS, u, [["dob"], ["name"]])


def test_households_taken_for_matches_are_detected_and_m_comes_from_anchor_pairs(simulated) -> None:
    """Many relatives (other name, no birth date, same email): EM calls them matches; anchors recover m."""
    u, candidates, truth = simulated
    relatives = pd.DataFrame(
        {gamma_column("name"): 0, gamma_column("dob"): -1, gamma_column("email"): 2}, index=range(30_000)
    )
    patterns = count_patterns(pd.concat([candidates, relatives], ignore_index=True), COMPARISONS)

    plain = train_in_sessions(patterns, COMPARISONS, u, [])
    checked, report = train_checked(patterns, COMPARISONS, u, [], ["name", "dob"])

    assert model_problems(plain, ["name", "dob"]) == list(report.problems)
    assert any(p.startswith("name: disagreeing costs only") for p in report.problems)
    assert report.recovered == ("name", "dob", "email")
    assert report.remaining == ()
    assert checked.comparison("name").m == pytest.approx(TRUE_M["name"], abs=0.05)
    assert checked.comparison("name").weights[0] < -3
    # The relatives now score as non-matches.
    relative = pd.DataFrame({gamma_column("name"): [0], gamma_column("dob"): [-1], gamma_column("email"): [2]})
    assert score(checked, relative)["match_weight"].iloc[0] < score(plain, relative)["match_weight"].iloc[0] - 3


def test_every_candidate_called_a_match_is_a_problem() -> None:
    model = FellegiSunterModel(
        comparisons=(ComparisonParameters("name", 1, (0.2, 0.8), (0.9, 0.1)),), lambda_=0.99
    )
    assert model_problems(model, ["name"]) == ["EM called 99.0% of the candidate pairs matches"]


def test_anchor_m_counts_only_pairs_agreeing_on_other_identity_comparisons() -> None:
    patterns = pd.DataFrame(
        {
            gamma_column("name"): [2, 0, 1, 0],
            gamma_column("dob"): [1, 1, 1, 0],
            gamma_column("email"): [2, 2, 0, 2],
            "count": [60, 20, 20, 1_000],
        }
    )
    m = anchor_m(patterns, COMPARISONS, ["name", "dob"], smoothing=0.0)
    # name: anchors agree on dob (the only other identity comparison) and exactly on email.
    np.testing.assert_allclose(m["name"], [20 / 80, 0.0, 60 / 80])
    # dob: anchors agree exactly on name and on email: the first row only (60 pairs).
    np.testing.assert_allclose(m["dob"], [0.0, 1.0])
    # email: anchors agree on name and dob... need 2 of [name, dob]: 60 pairs, all exact.
    np.testing.assert_allclose(m["email"], [0.0, 0.0, 1.0])


def test_agreeing_levels_never_count_against_a_match() -> None:
    model = FellegiSunterModel(
        comparisons=(ComparisonParameters("a", 2, (0.15, 0.05, 0.80), (0.80, 0.15, 0.05)),), lambda_=0.1
    )
    clamped, levels = clamp_agreeing(model)
    assert levels == ["a level 1"]
    # Level 1 raised to its u; the 0.10 it gained taken from levels 0 and 2 in proportion (0.15 : 0.80).
    np.testing.assert_allclose(clamped.comparison("a").m, [0.15 * 0.85 / 0.95, 0.15, 0.80 * 0.85 / 0.95])
    np.testing.assert_allclose(clamped.comparison("a").weights[1], 0.0, atol=1e-12)


def test_raising_agreeing_levels_leaves_the_weight_of_disagreement_almost_as_it_was() -> None:
    """Matches that seldom disagree: three weak levels raised to u cost disagreement a sliver, not most, of its m."""
    m = (0.004, 0.0001, 0.0002, 0.0003, 0.9954)
    u = (0.97, 0.002, 0.02, 0.001, 0.007)
    model = FellegiSunterModel(comparisons=(ComparisonParameters("dob", 4, m, u),), lambda_=0.001)
    before = model.comparison("dob").weights[0]

    clamped, levels = clamp_agreeing(model)

    assert levels == ["dob level 1", "dob level 2", "dob level 3"]
    np.testing.assert_allclose(clamped.comparison("dob").weights[1:4], 0.0, atol=1e-12)
    assert abs(clamped.comparison("dob").weights[0] - before) < 0.05
    np.testing.assert_allclose(sum(clamped.comparison("dob").m), 1.0)


HOUSEHOLD_LEVELS = {"given": 1, "family": 1, "dob": 1, "address": 1}
HOUSEHOLD = Household(key="family", own=("given", "dob"), shared=("address",))


def _household_patterns() -> pd.DataFrame:
    rows = [
        # given, family, dob, address, count
        (1, 1, 1, 1, 300),  # matches
        (0, 1, 0, 1, 90),  # relatives: same family and home, other given name and birth date
        (0, 1, 0, 0, 10),  # namesakes elsewhere
        (0, 1, 1, 1, 40),  # same birth date: not counted as relatives (could be a match)
        (0, 0, 0, 0, 5_000),
    ]
    frame = pd.DataFrame(rows, columns=[*(gamma_column(n) for n in HOUSEHOLD_LEVELS), "count"])
    return frame


def test_household_u_is_measured_among_same_family_pairs_with_other_given_name_and_birth_date() -> None:
    u = {"address": np.array([0.999, 0.001])}
    estimates = household_u(_household_patterns(), HOUSEHOLD_LEVELS, u, HOUSEHOLD, smoothing=0.0)
    np.testing.assert_allclose(estimates["address"], [10 / 100, 90 / 100])
    # An agreeing level never gets a u below the random-pair one.
    rare = household_u(_household_patterns().assign(**{gamma_column("address"): 0}), HOUSEHOLD_LEVELS,
                       {"address": np.array([0.5, 0.5])}, HOUSEHOLD, smoothing=0.0)
    assert rare["address"][1] == pytest.approx(0.5)


def test_relatives_score_low_once_the_household_u_is_known() -> None:
    comparisons = tuple(
        ComparisonParameters(name, 1, (0.05, 0.95), (0.99, 0.01) if name != "address" else (0.999, 0.001))
        for name in HOUSEHOLD_LEVELS
    )
    plain = FellegiSunterModel(comparisons, lambda_=1e-3)
    model = with_household(plain, _household_patterns(), HOUSEHOLD_LEVELS, HOUSEHOLD)
    assert model.household_key == "family"
    relatives = pd.DataFrame({gamma_column("given"): [0], gamma_column("family"): [1], gamma_column("dob"): [-1],
                              gamma_column("address"): [1]})
    strangers_at_one_address = relatives.assign(**{gamma_column("family"): [0]})
    assert score(plain, relatives)["match_probability"].iloc[0] > 0.5
    assert score(model, relatives)["match_probability"].iloc[0] < 0.01
    # Without a shared family name the address keeps its random-pair weight.
    np.testing.assert_allclose(score(model, strangers_at_one_address)["mw_address"], np.log2(0.95 / 0.001))
    assert FellegiSunterModel.from_json(model.to_json()) == model


def test_one_family_name_at_different_homes_is_no_evidence_for_a_match() -> None:
    comparisons = tuple(
        ComparisonParameters(name, 1, (0.30, 0.70) if name == "address" else (0.05, 0.95),
                             (0.999, 0.001) if name == "address" else (0.99, 0.01))
        for name in HOUSEHOLD_LEVELS
    )
    plain = FellegiSunterModel(comparisons, lambda_=1e-3)
    model = with_household(plain, _household_patterns(), HOUSEHOLD_LEVELS, HOUSEHOLD)
    # Relatives mostly share a home (u_household of level 0 is 0.1), yet living apart keeps its plain weight.
    assert model.comparison("address").u_household[0] < 0.3
    apart = pd.DataFrame({gamma_column("given"): [1], gamma_column("family"): [1], gamma_column("dob"): [1],
                          gamma_column("address"): [0]})
    np.testing.assert_allclose(score(model, apart)["mw_address"], np.log2(0.30 / 0.999))
    np.testing.assert_allclose(model.comparison("address").household_weights,
                               [np.log2(0.30 / 0.999), np.log2(0.70 / model.comparison("address").u_household[1])])


def _couple_model() -> FellegiSunterModel:
    """Given name, family name, birth date, national id and an address with a household u."""
    names = ("given", "family", "dob", "nid")
    return FellegiSunterModel(
        (
            *(ComparisonParameters(n, 1, (0.05, 0.95), (0.99, 0.01)) for n in names),
            ComparisonParameters("address", 1, (0.30, 0.70), (0.999, 0.001), u_household=(0.2, 0.8)),
        ),
        lambda_=1e-3,
        household_key="family",
        household_own=("given", "dob", "nid"),
    )


# given, family, dob, nid, address; whether the address is weighed with the household u
COUPLE_CASES = [
    ((0, 0, 0, -1, 1), True),  # a couple of two family names: nothing of one person agrees
    ((0, 0, 0, 0, 1), True),
    ((0, 0, -1, 0, 1), True),  # one own comparison present is enough
    ((0, 1, 0, -1, 1), True),  # one family name: relatives, as before
    ((1, 1, 1, 1, 1), True),
    ((0, 0, 1, -1, 1), False),  # the same birth date: could be one person with both names mistyped
    ((0, 0, 0, 1, 1), False),  # the same national id
    ((0, 0, -1, -1, 1), False),  # nothing to tell them apart but the names
    ((1, 0, 0, -1, 1), False),  # the same given name
    ((-1, 0, 0, -1, 1), False),  # a given name missing
    ((0, -1, 0, -1, 1), False),  # a family name missing
]


def test_a_couple_of_two_family_names_sharing_a_home_gets_the_household_u() -> None:
    model = _couple_model()
    columns = [gamma_column(n) for n in ("given", "family", "dob", "nid", "address")]
    pairs = pd.DataFrame([levels for levels, _ in COUPLE_CASES], columns=columns)
    expected = np.array([shared for _, shared in COUPLE_CASES])
    np.testing.assert_array_equal(household_pairs(model, pairs), expected)
    household, plain = np.log2(0.70 / 0.8), np.log2(0.70 / 0.001)
    np.testing.assert_allclose(score(model, pairs)["mw_address"], np.where(expected, household, plain))
    # Without own comparisons (a model saved before them), only one family name marks relatives.
    older = replace(model, household_own=())
    np.testing.assert_array_equal(household_pairs(older, pairs), pairs[gamma_column("family")].to_numpy() >= 1)
    assert FellegiSunterModel.from_json(model.to_json()) == model


def test_household_own_comparisons_must_be_in_the_model() -> None:
    model = _couple_model()
    with pytest.raises(ValueError, match="'phone' is not among the comparisons"):
        replace(model, household_own=("given", "phone"))
    with pytest.raises(ValueError, match="household_own needs a household_key"):
        replace(model, household_key=None)


def test_with_household_keeps_the_own_comparisons_the_model_has() -> None:
    comparisons = tuple(
        ComparisonParameters(name, 1, (0.05, 0.95), (0.99, 0.01) if name != "address" else (0.999, 0.001))
        for name in HOUSEHOLD_LEVELS
    )
    household = Household(key="family", own=("given", "dob", "nid"), shared=("address",))
    model = with_household(FellegiSunterModel(comparisons, lambda_=1e-3), _household_patterns(), HOUSEHOLD_LEVELS,
                           household)
    assert (model.household_key, model.household_own) == ("family", ("given", "dob"))


@pytest.mark.parametrize("start", [1e-9, 5e-4, 0.3])
def test_consistent_prior_counts_the_matches_the_candidates_score(start) -> None:
    # 500 clear matches and 10,000 clear non-matches among 1,000,000 possible pairs: 500 matches, from any start.
    prior = consistent_prior([40.0, -10.0], [500, 10_000], 1_000_000, start)
    assert prior == pytest.approx(5e-4, rel=1e-3)


@hypothesis_settings(max_examples=50, deadline=None)
@given(
    evidence=st.lists(st.floats(-60, 60), min_size=1, max_size=40),
    counts=st.lists(st.integers(1, 10_000), min_size=40, max_size=40),
    start=st.floats(1e-12, 0.5),
)
def test_consistent_prior_is_a_fixed_point(evidence, counts, start) -> None:
    possible = 10**7
    prior = consistent_prior(evidence, counts[: len(evidence)], possible, start, max_iterations=100_000, tolerance=1e-9)
    odds = np.log(prior / (1 - prior)) + np.asarray(evidence) * np.log(2)
    expected = (np.asarray(counts[: len(evidence)]) / (1 + np.exp(-odds))).sum()
    assert expected / possible == pytest.approx(prior, rel=1e-6) or prior == pytest.approx(1e-12)


def test_consistent_prior_without_candidates_keeps_its_start_and_checks_its_pairs() -> None:
    assert consistent_prior([], [], 100, 0.01) == 0.01
    with pytest.raises(ValueError, match="possible_pairs"):
        consistent_prior([1.0], [1], 0, 0.01)


def test_random_pair_prior_spreads_expected_matches_over_all_pairs() -> None:
    # 80% of 2,000 candidates are matches: 1,600 matches among 1,000,000 possible pairs.
    assert random_pair_prior(0.8, 2_000, 1_000_000) == pytest.approx(0.0016)
    with pytest.raises(ValueError, match="possible_pairs"):
        random_pair_prior(0.5, 10, 0)


@pytest.mark.parametrize(
    ("first", "most", "possible", "expected"),
    [
        (100_000, 1_000_000, 499_500, [100_000, 100_000, 200_000, 99_500]),
        (100_000, 1_000_000, 10**12, [100_000, 100_000, 200_000, 400_000, 200_000]),
        (100_000, 1_000_000, 45, [45]),
        (100_000, 150_000, 10**9, [100_000, 50_000]),
        (100_000, 1_000_000, 0, []),
    ],
)
def test_u_samples_double_and_never_exceed_the_pairs_there_are(first, most, possible, expected):
    assert u_sample_sizes(first, most, possible) == expected


def test_u_settles_when_a_bigger_sample_of_the_same_data_agrees():
    rng = np.random.default_rng(3)
    first, _ = simulate(rng, 100_000, 0.0)
    second, _ = simulate(rng, 100_000, 0.0)
    before = count_patterns(first, COMPARISONS)
    after = count_patterns(pd.concat([first, second]), COMPARISONS)
    assert u_settled(before, after, COMPARISONS)


def test_u_is_not_settled_when_a_common_level_moves():
    rng = np.random.default_rng(3)
    first, _ = simulate(rng, 100_000, 0.0)
    second, _ = simulate(rng, 100_000, 0.0)
    second[gamma_column("dob")] = 1  # every pair of the second sample agrees on dob: u(dob=1) moves from 0.03 to 0.5
    before = count_patterns(first, COMPARISONS)
    after = count_patterns(pd.concat([first, second]), COMPARISONS)
    assert not u_settled(before, after, COMPARISONS)


def test_with_no_candidate_pair_the_model_keeps_its_starting_m_and_the_smallest_prior() -> None:
    model = untrained_model({"a": 1, "b": 2}, {"a": np.array([0.9, 0.1]), "b": np.array([0.7, 0.2, 0.1])}, ["b"])
    uniform = untrained_model({"a": 1}, None)

    assert [(c.name, c.m, c.u, c.tf) for c in model.comparisons] == [
        ("a", (0.25, 0.75), (0.9, 0.1), False),
        ("b", (1 / 13, 3 / 13, 9 / 13), (0.7, 0.2, 0.1), True),
    ]
    assert (model.lambda_, model.iterations, model.converged) == (1e-12, 0, False)
    assert uniform.comparison("a").u == (0.5, 0.5)
    assert json.loads(model.to_json()) == json.loads(FellegiSunterModel.from_json(model.to_json()).to_json())


def test_when_em_fails_the_model_starts_from_its_starting_m_and_takes_m_from_anchor_pairs(simulated) -> None:
    """u that favours agreement makes EM fail; the checked model is still built, and says why."""
    _, candidates, _ = simulated
    agreeing_u = {name: np.asarray(TRUE_M[name]) for name in COMPARISONS}
    patterns = count_patterns(candidates, COMPARISONS)
    model, report = train_checked(patterns, COMPARISONS, agreeing_u, [], ["name", "dob"])

    assert report.problems[0] == (
        "EM failed (EM ended with a 'match' class that favours disagreement; check u (from random pairs) and "
        "the blocking rules that produced the candidate pairs); m started from EM's starting values"
    )
    assert set(report.recovered) == set(COMPARISONS)
    for name in COMPARISONS:
        assert model.comparison(name).u == tuple(agreeing_u[name])
        assert (model.comparison(name).weights[1:] >= -1e-9).all()  # no agreeing level counts against a match


ONE_ERROR = {"given": 2, "family": 2, "dob": 2}  # 2 exact, 1 similar (a typo), 0 else


def _one_error_patterns() -> pd.DataFrame:
    """Candidates of a names and birth dates file where every duplicate has exactly one error (a typo).

    1,200 matches, 400 with each field mistyped; the blocking rules let in 5,000 strangers who share
    both names (common names), 2,000 who share a birth date and 40,000 who share one name.
    """
    rows = [
        ((1, 2, 2), 400), ((2, 1, 2), 400), ((2, 2, 1), 400),
        ((2, 2, 0), 5_000), ((0, 0, 2), 2_000), ((2, 0, 0), 20_000), ((0, 2, 0), 20_000),
    ]
    return pd.DataFrame(
        [{**{gamma_column(n): g for n, g in zip(ONE_ERROR, levels)}, COUNT_COLUMN: count} for levels, count in rows]
    )


def _stranger_patterns(shares: dict[str, tuple[float, float]], total: float = 1e6) -> pd.DataFrame:
    """Random pairs: each comparison at level 1 and 2 with its shares, independently of the others."""
    rows = []
    for levels in itertools.product([0, 1, 2], repeat=len(shares)):
        chance = np.prod([(1.0 - sum(s), *s)[g] for s, g in zip(shares.values(), levels)])
        rows.append({**{gamma_column(n): g for n, g in zip(shares, levels)}, COUNT_COLUMN: total * chance})
    return pd.DataFrame(rows)


STRANGER_SHARES = {"given": (0.003, 0.01), "family": (0.003, 0.01), "dob": (5e-4, 1e-4)}


def test_m_is_pooled_over_the_sessions_when_every_duplicate_has_one_error() -> None:
    """EM over all candidates calls every pair a match; anchors (two other fields exact) are exactly the
    pairs with their one error in the third field. The sessions' likely matches give m and their count."""
    u = estimate_u(_stranger_patterns(STRANGER_SHARES), ONE_ERROR)
    strangers = Strangers.from_random(_stranger_patterns(STRANGER_SHARES), ONE_ERROR, possible_pairs=50_000_000)
    patterns = _one_error_patterns()
    sessions = [["given", "family"], ["dob"]]
    identity = list(ONE_ERROR)

    _, before = train_checked(patterns, ONE_ERROR, u, sessions, identity)
    model, report = train_checked(patterns, ONE_ERROR, u, sessions, identity, strangers=strangers)

    assert before.remaining and not before.pooled
    assert report.problems and not report.remaining
    assert report.pooled == pytest.approx(1_200, rel=0.05)
    assert model.lambda_ == pytest.approx(1_200 / patterns[COUNT_COLUMN].sum(), rel=0.05)
    for name in ONE_ERROR:
        assert model.comparison(name).m == pytest.approx((0.0, 1 / 3, 2 / 3), abs=0.03)


def test_strangers_expected_to_agree_on_several_comparisons_multiply_their_shares() -> None:
    strangers = Strangers.from_random(_stranger_patterns(STRANGER_SHARES), ONE_ERROR, 1_000_000)

    assert strangers.expected(["given", "family"]) == pytest.approx(100.0)
    assert strangers.expected(["dob"]) == pytest.approx(100.0)
    assert Strangers.from_random(_stranger_patterns(STRANGER_SHARES), ONE_ERROR, 0) is None


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5_000), min_size=27, max_size=27), st.integers(1, 10**9))
def test_pooled_m_is_always_a_distribution_over_no_more_matches_than_pairs(counts, possible_pairs) -> None:
    """Any candidate counts: session_m gives nothing, or m that sums to 1 per comparison from at most every pair."""
    grid = list(itertools.product([0, 1, 2], repeat=3))
    patterns = pd.DataFrame(
        [{**{gamma_column(n): g for n, g in zip(ONE_ERROR, levels)}, COUNT_COLUMN: c} for levels, c in zip(grid, counts)]
    )
    hypothesis_assume(sum(counts) > 0)
    u = estimate_u(_stranger_patterns(STRANGER_SHARES), ONE_ERROR)
    strangers = Strangers.from_random(_stranger_patterns(STRANGER_SHARES), ONE_ERROR, possible_pairs)

    pooled = session_m(patterns, ONE_ERROR, u, [["given", "family"], ["dob"]], strangers)

    if pooled is not None:
        assert 0 < pooled.matches <= sum(counts) + 1e-6
        for values in pooled.m.values():
            assert (values > 0).all() and values.sum() == pytest.approx(1.0)


def test_a_pooled_model_keeps_its_count_of_matches_when_households_get_their_own_u() -> None:
    """Households (same family name, another given name, one address) get their u; lambda stays the sessions'."""
    comparisons = {**ONE_ERROR, "address": 1}
    patterns = _one_error_patterns().assign(gamma_address=-1)
    relatives = {gamma_column("given"): 0, gamma_column("family"): 2, gamma_column("dob"): 0, "gamma_address": 1}
    patterns = pd.concat([patterns, pd.DataFrame([{**relatives, COUNT_COLUMN: 500}])], ignore_index=True)
    strangers_alone = _stranger_patterns(STRANGER_SHARES)
    random = pd.concat(
        [strangers_alone.assign(gamma_address=0, count=strangers_alone[COUNT_COLUMN] * 0.999),
         strangers_alone.assign(gamma_address=1, count=strangers_alone[COUNT_COLUMN] * 0.001)],
        ignore_index=True,
    )
    household = Household(key="family", own=("given", "dob"), shared=("address",))
    identity = list(ONE_ERROR)

    model, report = train_checked(
        patterns, comparisons, estimate_u(random, comparisons), [["given", "family"], ["dob"]], identity,
        household=household, strangers=Strangers.from_random(random, comparisons, possible_pairs=50_000_000),
    )

    assert report.pooled == pytest.approx(1_200, rel=0.05)
    assert model.household_key == "family"
    assert model.lambda_ == pytest.approx(report.pooled / patterns[COUNT_COLUMN].sum())
