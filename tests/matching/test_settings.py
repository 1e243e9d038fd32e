"""Settings parsing and validation (pure Python, no Spark)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from matching.settings import (
    DateTransposedLevel,
    JaroWinklerLevel,
    LevenshteinLevel,
    MatchSettings,
    NamesSwappedLevel,
    SettingsError,
    load_settings,
    parse_settings,
)

DEFAULT = Path(__file__).resolve().parents[2] / "conf" / "matching.yaml"

MINIMAL = {
    "blocking_rules": [{"name": "email", "keys": ["email"]}],
    "comparisons": [{"name": "email", "column": "email", "levels": [{"kind": "exact"}]}],
}


def _with(path: tuple, value) -> dict:
    """MINIMAL with one key replaced, e.g. ``_with(("comparisons", 0, "levels"), [])``."""
    data = copy.deepcopy(MINIMAL)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _error(data: dict) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(data, "conf/matching.yaml")
    return str(caught.value)


def test_minimal_settings_take_documented_defaults():
    settings = MatchSettings.model_validate(MINIMAL)

    assert settings.link_type == "dedupe_only"
    assert settings.max_block_size == 500
    assert settings.sub_block_key is None
    assert (settings.thresholds.match, settings.thresholds.review) == (0.7, 0.5)
    assert settings.model.kind == "fellegi_sunter"
    assert (settings.model.em_max_iterations, settings.model.u_random_pairs) == (25, 1_000_000)


def test_default_file_covers_person_attributes():
    settings = load_settings(DEFAULT)

    assert [c.name for c in settings.comparisons] == [
        "given_name", "family_name", "middle_name", "birth_date", "email", "phone", "address", "gender",
        "national_id",
    ]
    assert [c.name for c in settings.tf_comparisons] == ["given_name", "family_name", "birth_date"]
    assert settings.model.identity == ["given_name", "family_name", "birth_date", "national_id"]
    assert "postcode" in settings.placeholders.attributes and "gender" not in settings.placeholders.attributes
    assert settings.comparisons[6].columns == ("address_line1", "postcode", "city")
    assert settings.model.em_sessions == [["given_name", "family_name"], ["birth_date"]]
    assert {r.name for r in settings.blocking_rules} >= {"email", "phone", "soundex_names"}
    given = settings.comparisons[0]
    assert given.levels[1] == NamesSwappedLevel(kind="names_swapped", other="family_name", threshold=0.92)
    assert given.columns == ("given_name", "family_name")
    assert isinstance({c.name: c for c in settings.comparisons}["birth_date"].levels[1], DateTransposedLevel)


def test_levels_parse_into_typed_models_in_order():
    levels = [{"kind": "exact"}, {"kind": "jaro_winkler", "threshold": 0.9}, {"kind": "levenshtein", "max_distance": 1}]
    settings = MatchSettings.model_validate(_with(("comparisons", 0, "levels"), levels))

    parsed = settings.comparisons[0].levels
    assert parsed[1] == JaroWinklerLevel(kind="jaro_winkler", threshold=0.9)
    assert parsed[2] == LevenshteinLevel(kind="levenshtein", max_distance=1)


def test_unknown_level_kind_names_file_key_and_choices():
    message = _error(_with(("comparisons", 0, "levels"), [{"kind": "exact"}, {"kind": "fuzzy"}]))

    assert message.startswith("conf/matching.yaml: comparisons[0].levels[1].kind: unknown level kind 'fuzzy'")
    assert "jaro_winkler" in message


LEVELS = ("comparisons", 0, "levels")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (LEVELS, [], "comparisons[0].levels: "),
        (("comparisons", 0, "column"), "emial", "comparisons[0].column: unknown attribute 'emial'"),
        (LEVELS, [{"kind": "jaro_winkler"}], "comparisons[0].levels[0].threshold: Field required"),
        (LEVELS, [{"kind": "jaro_winkler", "threshold": 1.5}], "comparisons[0].levels[0].threshold"),
        (LEVELS, [{"kind": "levenshtein"}], "comparisons[0].levels[0]: give exactly one"),
        (LEVELS, [{"kind": "date_transposed"}], "comparisons[0].levels[0]: date_transposed needs a date"),
        (LEVELS, [{"kind": "names_swapped", "other": "birth_date"}], "comparisons[0].levels[0].other"),
        (
            ("blocking_rules", 0, "keys"),
            ["substring(famly_name, 1, 3)"],
            "blocking_rules[0].keys: unknown attribute 'famly_name'",
        ),
        (("blocking_rules", 0, "keys"), [], "blocking_rules[0].keys"),
        (("thresholds",), {"match": 0.5, "review": 0.7}, "thresholds.review: 0.7 must be below match"),
        (("thresholds",), {"match": 1.0, "review": 0.5}, "thresholds.match"),
        (("link_type",), "dedupe", "link_type: "),
        (("sub_block_key",), "year(birthdate)", "sub_block_key: unknown attribute 'birthdate'"),
        (("blocking_rules", 0, "refine"), ["month(birthdate)"], "blocking_rules[0].refine: unknown attribute 'birthdate'"),
        (("max_pairs_per_record",), 0, "max_pairs_per_record: Input should be greater than 0"),
        (("min_pair_budget",), -1, "min_pair_budget: Input should be greater than or equal to 0"),
        (("comparisons", 0, "tf"), True, "comparisons[0].tf: Extra inputs"),
    ],
)
def test_invalid_settings_name_the_key_path(path, value, expected):
    assert f"conf/matching.yaml: {expected}" in _error(_with(path, value))


def test_duplicate_comparison_names_rejected():
    data = copy.deepcopy(MINIMAL)
    data["comparisons"].append(copy.deepcopy(data["comparisons"][0]))

    assert "comparisons: duplicate names ['email']" in _error(data)


def test_key_expressions_allow_functions_literals_and_casts():
    keys = ["soundex(given_name)", "concat_ws('x y', email, cast(year(birth_date) as string))", "source_system"]
    settings = MatchSettings.model_validate(_with(("blocking_rules", 0, "keys"), keys))

    assert settings.blocking_rules[0].keys == keys


def test_load_settings_reports_the_file_for_bad_yaml(tmp_path):
    path = tmp_path / "matching.yaml"
    path.write_text("blocking_rules: [\n", encoding="utf-8")

    with pytest.raises(SettingsError, match=str(path)):
        load_settings(path)



def test_a_level_may_read_another_attribute_of_the_right_type():
    levels = [{"kind": "exact"}, {"kind": "exact", "column": "postcode"}]
    settings = MatchSettings.model_validate(_with(("comparisons", 0, "levels"), levels))

    assert settings.comparisons[0].columns[-1] == "postcode"
    dated = [{"kind": "exact"}, {"kind": "date_distance", "max_days": 3, "column": "city"}]
    assert "date_distance needs a date attribute, not 'city'" in _error(_with(("comparisons", 0, "levels"), dated))


def test_a_date_as_written_is_read_by_date_as_written_only_and_it_reads_nothing_else():
    written = [{"kind": "exact"}, {"kind": "date_as_written", "column": "birth_date_written"}]
    settings = MatchSettings.model_validate(_with(LEVELS, written))
    assert settings.comparisons[0].columns[-1] == "birth_date_written"

    on_a_name = [{"kind": "exact"}, {"kind": "date_as_written", "column": "family_name"}]
    assert "date_as_written reads a date as written (birth_date_written) and nothing else does, not 'family_name'" in (
        _error(_with(LEVELS, on_a_name))
    )
    exact_on_written = [{"kind": "exact", "column": "birth_date_written"}]
    assert "not 'birth_date_written'" in _error(_with(LEVELS, exact_on_written))
    unknown = [{"kind": "exact", "column": "birth_date_typed"}]
    assert "unknown attribute 'birth_date_typed'" in _error(_with(LEVELS, unknown))


def test_em_sessions_must_name_comparisons():
    data = copy.deepcopy(MINIMAL)
    data["model"] = {"em_sessions": [["nope"]]}

    assert "em_sessions[0]: expected one or more of" in _error(data)


def test_refined_rule_takes_refine_keys_in_order():
    rule = MatchSettings.model_validate(
        _with(("blocking_rules", 0), {"name": "r", "keys": ["email"], "refine": ["phone", "postcode"]})
    ).blocking_rules[0]

    assert (rule.refined(0).keys, rule.refined(0).refine) == (["email"], ["phone", "postcode"])
    assert (rule.refined(1).keys, rule.refined(1).refine) == (["email", "phone"], ["postcode"])
    assert (rule.refined(2).keys, rule.refined(2).refine) == (["email", "phone", "postcode"], [])
    with pytest.raises(ValueError, match="refine level 3 not in 0..2"):
        rule.refined(3)
