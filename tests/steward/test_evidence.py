from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from matching.settings import load_settings, parse_settings
from steward.evidence import AttributeRow, NumberRow, Phrase, attribute_rows, numbers, odds_factor, summary
from tests.steward.conftest import log_in
from tests.steward.fake_lake import MATCHING, ONEILL_NATIONAL_ID

D = dt.date
SETTINGS = load_settings(MATCHING)
# A son and a record of his father's: the shapes the review page got wrong (issue 17).
LEFT = dict(given_name="george", family_name="baxter", name_suffix="jr", birth_date=D(1972, 7, 30), gender=None,
            email="g@x.org", phone="+447700900761", address_line1="4 mill lane", city="norwich", postcode="NR47QF",
            country="GB", national_id=ONEILL_NATIONAL_ID)
RIGHT = dict(given_name="george", family_name="baxtor", name_suffix="sr", birth_date=D(1972, 1, 9), gender="m",
             email="g@x.org", phone="+447700900999", address_line1="12 elm grove", city="norwich", postcode="NR47QF",
             country="GB", national_id=None)
# gamma: K = the strongest level; address 3 = "exact, on postcode"; birth_date 3 = "within 366 days".
LEVELS = {"given_name": 4, "family_name": 2, "birth_date": 3, "gender": -1, "email": 2, "phone": 0, "address": 3,
          "national_id": -1}
EVIDENCE = {"given_name": 1.5, "family_name": 2.0, "birth_date": -14.7, "gender": 0.0, "email": 6.3, "phone": -0.4,
            "address": 4.0, "national_id": 0.0}
MASKED = "•••••456C"


def test_badges_follow_the_values_the_level_and_the_sign_of_the_weight() -> None:
    rows = attribute_rows(LEFT, RIGHT, LEVELS, EVIDENCE, SETTINGS.comparisons)
    assert rows == [
        AttributeRow("given_name", "george", "george", "same", "agree", "same given name", "given_name", "exact", 1.5),
        AttributeRow("family_name", "baxter", "baxtor", "similar", "similar", "similar family name", "family_name",
                     "jaro_winkler (threshold 0.92)", 2.0),
        # Compared by nothing, still shown, in red: a Jr / Sr difference tells a son from his father.
        AttributeRow("name_suffix", "jr", "sr", "different", "disagree", "name suffix differs (jr / sr)", None, "", None),
        # A level that held but carries strong evidence against is red, not amber.
        AttributeRow("birth_date", D(1972, 7, 30), D(1972, 1, 9), "similar", "disagree", "birth date within 366 days",
                     "birth_date", "date_distance (max_days 366)", -14.7),
        AttributeRow("gender", None, "m", "missing", "missing", "gender missing on one side", "gender",
                     "missing on one side", 0.0),
        AttributeRow("email", "g@x.org", "g@x.org", "same", "agree", "same email", "email", "exact", 6.3),
        AttributeRow("phone", "+447700900761", "+447700900999", "different", "weak", "different phone", "phone",
                     "no level holds", -0.4),
        AttributeRow("address_line1", "4 mill lane", "12 elm grove", "different", "weak", "different street address",
                     "address", "", None),
        AttributeRow("city", "norwich", "norwich", "same", "agree", "same city", "address", "", None),
        # The postcode matched exactly at the postcode level of the address comparison: the same postcode, green.
        AttributeRow("postcode", "NR47QF", "NR47QF", "same", "agree", "same postcode", "address",
                     "exact (on postcode)", 4.0),
        AttributeRow("country", "GB", "GB", "same", "agree", "same country", None, "", None),
        AttributeRow("national_id", MASKED, None, "missing", "missing", "national id missing on one side",
                     "national_id", "missing on one side", 0.0),
    ]


def test_summary_puts_plain_words_first_and_the_numbers_behind() -> None:
    rows = attribute_rows(LEFT, RIGHT, LEVELS, EVIDENCE, SETTINGS.comparisons)
    assert summary(rows) == [
        Phrase("same given name", "agree"), Phrase("similar family name", "similar"),
        Phrase("name suffix differs (jr / sr)", "disagree"), Phrase("birth date within 366 days", "disagree"),
        Phrase("gender missing on one side", "missing"), Phrase("same email", "agree"),
        Phrase("different phone", "weak"), Phrase("different street address", "weak"),
        Phrase("same postcode", "agree"), Phrase("national id missing on one side", "missing"),
    ]
    assert numbers(rows) == [
        NumberRow("given_name", "exact", 1.5, "×2.83"),
        NumberRow("family_name", "jaro_winkler (threshold 0.92)", 2.0, "×4"),
        NumberRow("birth_date", "date_distance (max_days 366)", -14.7, "÷26,616"),
        NumberRow("gender", "missing on one side", 0.0, "×1"),
        NumberRow("email", "exact", 6.3, "×78.8"),
        NumberRow("phone", "no level holds", -0.4, "÷1.32"),
        NumberRow("address", "exact (on postcode)", 4.0, "×16"),
        NumberRow("national_id", "missing on one side", 0.0, "×1"),
    ]


@pytest.mark.parametrize(
    ("levels", "evidence", "expected"),
    [
        ({"phone": 0}, {"phone": -3.0}, ("different", "disagree", "different phone")),
        ({"phone": 0}, {}, ("different", "disagree", "different phone")),  # no weight known: no level held is red
        ({"phone": 1}, {"phone": 2.5}, ("similar", "similar", "similar phone")),
        ({"phone": 1}, {"phone": -0.5}, ("similar", "weak", "similar phone")),
        ({"phone": 1}, {}, ("similar", "similar", "similar phone")),
        ({"phone": -1}, {"phone": 0.0}, ("missing", "missing", "phone missing on one side")),
    ],
)
def test_one_comparison_in_words_and_colour(levels: dict, evidence: dict, expected: tuple) -> None:
    left, right = {"phone": "+447700900761"}, {"phone": "+447700900716"}
    [row] = [r for r in attribute_rows(left, right, levels, evidence, SETTINGS.comparisons) if r.attribute == "phone"]
    assert (row.status, row.tone, row.words) == expected


def test_special_levels_say_what_held() -> None:
    swapped = attribute_rows({"given_name": "baxter", "family_name": "george"},
                             {"given_name": "george", "family_name": "baxter"},
                             {"given_name": 3, "family_name": 0}, {"given_name": 3.0, "family_name": -2.0},
                             SETTINGS.comparisons)
    transposed = attribute_rows({"birth_date": D(1972, 7, 3)}, {"birth_date": D(1972, 3, 7)}, {"birth_date": 6},
                                {"birth_date": 2.0}, SETTINGS.comparisons)
    typo = attribute_rows({"birth_date": D(1972, 7, 3)}, {"birth_date": D(1992, 7, 3)}, {"birth_date": 5},
                          {"birth_date": 5.0}, SETTINGS.comparisons)
    day_month = attribute_rows({"birth_date": D(1925, 1, 10)}, {"birth_date": D(2025, 1, 10)}, {"birth_date": 2},
                               {"birth_date": 4.0}, SETTINGS.comparisons)
    as_written = attribute_rows({"birth_date": D(1997, 12, 25)}, {"birth_date": None}, {"birth_date": 1},
                                {"birth_date": 3.0}, SETTINGS.comparisons)  # 1997-21-25 on the right
    apart_as_written = attribute_rows({"birth_date": D(1997, 12, 25)}, {"birth_date": None}, {"birth_date": 0},
                                      {"birth_date": -9.0}, SETTINGS.comparisons)  # 1961-31-02 on the right
    unwritten = attribute_rows({"birth_date": D(1997, 12, 25)}, {"birth_date": None}, {"birth_date": -1},
                               {"birth_date": 0.0}, SETTINGS.comparisons)
    assert [(r.attribute, r.words, r.tone) for r in swapped] == [
        ("given_name", "given name and family name swapped", "similar"),
        ("family_name", "different family name", "disagree"),
    ]
    assert [(r.words, r.tone) for r in transposed] == [("birth date with day and month swapped", "similar")]
    assert [(r.words, r.tone) for r in typo] == [("birth date one typed digit apart", "similar")]
    assert [(r.words, r.tone) for r in day_month] == [
        ("birth date of the same day and month, another year", "similar")
    ]
    assert [(r.status, r.words, r.tone) for r in as_written + apart_as_written + unwritten] == [
        ("similar", "birth date as written equal, one typed digit apart or with day and month swapped", "similar"),
        ("different", "different birth date as written", "disagree"),
        ("missing", "birth date missing on one side", "missing"),
    ]


def test_an_attribute_no_comparison_reads_is_shown_masked_when_it_differs() -> None:
    settings = parse_settings(
        {"blocking_rules": [{"name": "family", "keys": ["family_name"]}],
         "comparisons": [{"name": "family_name", "column": "family_name", "levels": [{"kind": "exact"}]}]},
        "test",
    )
    rows = attribute_rows({"family_name": "oneill", "national_id": ONEILL_NATIONAL_ID, "region": "yorkshire"},
                          {"family_name": "oneill", "national_id": "AB123465C", "region": "yorkshire"},
                          {"family_name": 1}, {"family_name": 3.0}, settings.comparisons)
    assert rows == [
        AttributeRow("family_name", "oneill", "oneill", "same", "agree", "same family name", "family_name", "exact", 3.0),
        AttributeRow("region", "yorkshire", "yorkshire", "same", "agree", "same region", None, "", None),
        AttributeRow("national_id", MASKED, "•••••465C", "different", "weak", "national id differs (•••••456C / •••••465C)",
                     None, "", None),
    ]


@pytest.mark.parametrize(("weight", "expected"), [(None, ""), (0.0, "×1"), (3.0, "×8"), (-1.0, "÷2"),
                                                  (-2.69, "÷6.45"), (10.0, "×1,024")])
def test_odds_factor(weight: float | None, expected: str) -> None:
    assert odds_factor(weight) == expected


def test_review_page_shows_words_first_and_numbers_one_click_away(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get("/review?pair=sales_crm:412|support_desk:SUP-000311").text
    summary_html = page[page.index('<p class="summary">'):page.index('<table class="pair">')]
    phrases = re.findall(r'<span class="phrase (\w+)">([^<]+)</span>', summary_html)
    assert phrases == [
        ("agree", "same given name"), ("similar", "similar family name"), ("disagree", "different birth date"),
        ("missing", "gender missing on one side"), ("disagree", "different email"), ("disagree", "different phone"),
        ("agree", "same city"), ("weak", "different postcode"), ("missing", "national id missing on one side"),
    ]
    words = page[page.index('<p class="summary">'):page.index('<details class="numbers">')]
    details = page[page.index('<details class="numbers">'):page.index("</details>")]
    assert "bits" not in words and "prior" not in words and "+" not in words.replace("+44", "")
    assert "<th scope=\"row\">birth_date</th><td><small>no level holds</small></td>" in details
    assert '<rect class="bar prior"' in details and "start (prior)" in details
    assert ONEILL_NATIONAL_ID not in page


def test_an_attribute_neither_record_has_says_nothing_in_the_summary() -> None:
    rows = attribute_rows({"email": "g@x.org"}, {"email": "g@x.org"}, {"email": 2, "gender": -1},
                          {"email": 6.3, "gender": 0.0}, SETTINGS.comparisons)
    assert [(r.attribute, r.status) for r in rows] == [("gender", "missing"), ("email", "same")]
    assert summary(rows) == [Phrase("same email", "agree")]


def test_an_initial_that_held_is_said_in_words() -> None:
    [middle] = [c for c in SETTINGS.comparisons if c.name == "middle_name"]
    rows = attribute_rows({"middle_name": "j"}, {"middle_name": "james"}, {"middle_name": 1}, {"middle_name": 3.0},
                          [middle])
    assert rows == [AttributeRow("middle_name", "j", "james", "similar", "similar", "middle name of the same initial",
                                 "middle_name", "initial", 3.0)]
