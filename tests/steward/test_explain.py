from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from matching.settings import load_settings, parse_settings
from steward.config import StewardSettings
from steward.explain import UNKNOWN, check_rules, comparison_batch, evaluate_key, score_pair, spark_soundex
from tests.steward.conftest import log_in
from tests.steward.fake_lake import FAMILY_PAIR, MATCHING, RUN_ID, fake_model

# soundex() as Spark 4.0.5 computed it for these names (run once with a local session).
SPARK_SOUNDEX = {
    "robert": "R163", "rupert": "R163", "rubin": "R150", "ashcraft": "A261", "tymczak": "T522",
    "pfister": "P236", "honeyman": "H555", "o'brien": "O165", "mc-kenzie": "M225", "smith-jones": "S532",
    "lee": "L000", "a": "A000", "": "", "1abc": "1abc", "van der berg": "V536", "gutierrez": "G362",
    "washington": "W252", "bhattacharya": "B326", "hhh": "H000", "xhw": "X000",
}
RECORD = {"given_name": "Thomas", "family_name": "hughes", "birth_date": dt.date(1969, 8, 21), "email": None,
          "source_system": "billing"}


@pytest.mark.parametrize(("name", "expected"), sorted(SPARK_SOUNDEX.items()))
def test_soundex_agrees_with_spark(name: str, expected: str) -> None:
    assert spark_soundex(name) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("family_name", "hughes"),
        ("substring(family_name, 1, 3)", "hug"),
        ("SUBSTRING(family_name, 0, 2)", "hu"),  # position 0 acts as 1
        ("substring(family_name, -2, 5)", "es"),  # negative counts from the end
        ("substring(family_name, 10, 3)", ""),
        ("year(birth_date)", 1969),
        ("month(birth_date)", 8),
        ("soundex(given_name)", "T520"),
        ("lower(given_name)", "thomas"),
        ("substring(email, 1, 3)", None),  # null in, null out
        ("least(soundex(given_name), soundex(family_name))", "H220"),
        ("greatest(soundex(email), soundex(family_name))", "H220"),  # nulls skipped
        ("CASE WHEN family_name IS NOT NULL THEN soundex(given_name) END", "T520"),
        ("CASE WHEN email IS NOT NULL THEN soundex(given_name) END", None),
        ("CASE WHEN email IS NULL THEN 'none' ELSE email END", "none"),
    ],
)
def test_key_expressions_evaluate_like_spark(expression: str, expected: object) -> None:
    assert evaluate_key(expression, RECORD) == expected


@pytest.mark.parametrize(
    "expression",
    ["concat(given_name, family_name)", "given_name || family_name", "cast(birth_date AS string)",
     "CASE WHEN given_name = 'x' THEN 1 END", "unknown_column", "substring(family_name, 1)", "year(given_name)"],
)
def test_unsupported_expressions_are_unknown(expression: str) -> None:
    assert evaluate_key(expression, RECORD) is UNKNOWN


def test_rules_say_which_would_pair_the_records() -> None:
    settings = parse_settings(
        {
            "blocking_rules": [
                {"name": "family_year", "keys": ["substring(family_name, 1, 3)", "year(birth_date)"]},
                {"name": "email", "keys": ["email"]},
                {"name": "given_prefix", "keys": ["substring(given_name, 1, 3)"]},
                {"name": "odd", "keys": ["concat(given_name, family_name)"]},
            ],
            "comparisons": [{"name": "given_name", "column": "given_name", "levels": [{"kind": "exact"}]}],
        },
        "test",
    )
    left = dict(RECORD)
    right = dict(RECORD, given_name="Thom", birth_date=dt.date(1969, 1, 1), email="t@x.org")
    verdicts = {c.rule: c.verdict for c in check_rules(settings, left, right)}
    assert verdicts == {"family_year": "pairs", "email": "does-not-pair", "given_prefix": "pairs", "odd": "unknown"}
    notes = {c.rule: c.note for c in check_rules(settings, left, right)}
    assert "null" in notes["email"]


def test_a_pair_the_pair_budget_may_have_split_says_so() -> None:
    settings = parse_settings(
        {
            "blocking_rules": [{"name": "family_year", "keys": ["substring(family_name, 1, 3)", "year(birth_date)"],
                                "refine": ["month(birth_date)"]}],
            "max_pairs_per_record": 1.5,
            "comparisons": [{"name": "given_name", "column": "given_name", "levels": [{"kind": "exact"}]}],
        },
        "test",
    )
    same_month = check_rules(settings, RECORD, dict(RECORD, birth_date=dt.date(1969, 8, 1)))[0]
    other_month = check_rules(settings, RECORD, dict(RECORD, birth_date=dt.date(1969, 1, 1)))[0]

    assert (same_month.verdict, other_month.verdict) == ("pairs", "pairs")
    assert "pair budget" not in same_month.note
    assert "or the pair budget refined the rule by month(birth_date)" in other_month.note


def test_link_only_never_pairs_records_of_one_source() -> None:
    settings = parse_settings(
        {"link_type": "link_only", "blocking_rules": [{"name": "family", "keys": ["family_name"]}],
         "comparisons": [{"name": "given_name", "column": "given_name", "levels": [{"kind": "exact"}]}]},
        "test",
    )
    assert check_rules(settings, RECORD, dict(RECORD))[0].verdict == "does-not-pair"


def test_score_pair_uses_the_comparisons_and_model() -> None:
    settings = load_settings(MATCHING)
    model = fake_model(settings)
    same = {"given_name": "thomas", "middle_name": "james", "family_name": "hughes", "birth_date": dt.date(1969, 8, 21),
            "email": "t@x.org", "phone": "+447700900777", "address_line1": "3 station rd", "city": "cardiff",
            "postcode": "CF103AT", "gender": "m", "national_id": "QQ123456C"}
    other = {"given_name": "amir", "middle_name": "k", "family_name": "shah", "birth_date": dt.date(1993, 1, 7),
             "email": "amir.shah@gmail.com",
             "phone": "+447700900530", "address_line1": "9 high st", "city": "leicester", "postcode": "LE15WW",
             "gender": "f", "national_id": "SZ987654A"}
    frequencies = {c.column: 0.01 for c in settings.tf_comparisons}
    twin = score_pair(settings, model, comparison_batch(settings, same, dict(same), frequencies))
    stranger = score_pair(settings, model, comparison_batch(settings, same, other, frequencies))
    assert twin.levels == {c.name: len(c.levels) for c in settings.comparisons}
    assert set(stranger.levels.values()) == {0}
    assert twin.match_probability > 0.99 > 0.01 > stranger.match_probability
    assert twin.match_weight - sum(twin.evidence.values()) == pytest.approx(model.prior_weight)


def why_url(a: str, b: str) -> str:
    return f"/why?a={a}&b={b}"


def test_why_page_explains_in_words_with_the_numbers_one_click_away(rich_client: TestClient) -> None:
    log_in(rich_client, "victor")
    page = rich_client.get(why_url(*FAMILY_PAIR)).text
    words = page[page.index('<p class="summary">'):page.index('<details class="numbers">')]
    assert re.findall(r'<span class="phrase (\w+)">([^<]+)</span>', words) == [
        ("agree", "same given name"), ("agree", "same family name"), ("missing", "birth date missing on one side"),
        ("agree", "same email"), ("agree", "same phone"), ("agree", "same street address"),
    ]
    assert "bits" not in words and "prior" not in words
    details = page[page.index('<details class="numbers">'):page.index("</details>")]
    levels = re.findall(r'<tr><th scope="row">(\w+)</th><td><small>([^<]+)</small></td>', details)
    assert levels == [("given_name", "exact"), ("middle_name", "missing on one side"), ("family_name", "exact"),
                      ("birth_date", "missing on one side"),
                      ("gender", "missing on one side"), ("email", "exact"), ("phone", "exact"), ("address", "exact"),
                      ("national_id", "missing on one side")]
    assert 'class="alert merge-warning"' in page


def test_why_page_without_a_model_still_shows_the_customers(rich_client: TestClient,
                                                           rich_settings: StewardSettings) -> None:
    (Path(rich_settings.lake) / "_runs" / RUN_ID / "model.json").unlink()
    log_in(rich_client, "alice")
    page = rich_client.get(why_url(*FAMILY_PAIR)).text
    assert "No published model yet" in page and '<p class="summary">' not in page
    assert 'class="alert merge-warning"' in page and 'name="confirm_join"' in page
