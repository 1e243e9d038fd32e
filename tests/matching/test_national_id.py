"""national_id: the normalizer (table-driven), its std_issues reason, its comparison and blocking rule.

The normalizer's table runs through Spark once (module-scoped fixture); each
case is then checked on its own, so a failure names its case.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from matching.blocking import BlockSize, RuleReport, format_blocking_report
from matching.compare import score_batch
from matching.normalize_ids import normalize_national_id
from matching.settings import load_settings
from matching.standardize import StandardizeOptions, Vocabulary, standardize

MATCHING = Path(__file__).resolve().parents[2] / "conf" / "matching.yaml"
HUNDRED_KB_OF_DIGITS = "518293746" * 11_378  # 102,402 characters

CASES = [
    # written forms of one number
    ("518293746", "518293746"),
    ("518-29-3746", "518293746"),
    ("518 293 746", "518293746"),
    ("  518.293.746  ", "518293746"),
    ("518–293—746", "518293746"),  # en and em dashes
    ("518/293\\746", "518293746"),
    ("ab 12 34 56 c", "AB123456C"),
    ("Ab-123456-c", "AB123456C"),
    ("QQ\t12\n34\r56 C", "QQ123456C"),
    # unicode digits and letters
    ("５１８２９３７４６", "518293746"),  # full-width
    ("٥١٨٢٩٣٧٤٦", "518293746"),  # Arabic-Indic
    ("५१८२९३७४६", "518293746"),  # Devanagari
    ("𝟓𝟏𝟖𝟐𝟗𝟑𝟕𝟒𝟔", "518293746"),  # mathematical bold (outside the BMP)
    ("ＡＢ１２３４５６Ｃ", "AB123456C"),  # full-width letters
    ("é1234567", "E1234567"),  # accents folded
    ("\u0430\u0432123456", "\u0410\u0412123456"),  # letters of other scripts kept (Cyrillic), upper case
    # noise dropped
    ("518😀293🎉746", "518293746"),  # emoji
    ("518\x00293\x07746\x1b", "518293746"),  # control characters
    ("518\u200b293\ufeff746", "518293746"),  # invisible characters
    ("5182", "5182"),  # MIN_LENGTH characters is enough
    ("A" + "1" * 30 + "B", "A" + "1" * 30 + "B"),  # MAX_LENGTH characters
    # empty
    ("", None),
    ("   ", None),
    ("\t\n", None),
    ("---", None),
    ("😀😀😀", None),
    ("\x00\x01\x02", None),
    (None, None),
    # unusable
    ("12A", None),  # too short
    ("5-1-8", None),  # too short once cleaned
    ("A" + "1" * 31 + "B", None),  # too long
    (HUNDRED_KB_OF_DIGITS, None),  # 100 KB
    ("000000000", None),  # one digit repeated
    ("999-99-9999", None),
    ("1111", None),
    ("XXXXXXXX", None),  # one letter repeated
    ("123456789", None),  # a straight run of digits
    ("987654321", None),
    ("0123", None),
    ("UNKNOWN", None),  # no digit
    ("refused", None),
]


def ids(cases):
    return [repr(case[0])[:40] for case in cases]


@pytest.fixture(scope="module")
def normalized(spark):
    frame = spark.createDataFrame([(index, value) for index, (value, _) in enumerate(CASES)], "i int, v string")
    return {row["i"]: row["out"] for row in frame.select("i", normalize_national_id(F.col("v")).alias("out")).collect()}


@pytest.mark.parametrize("index, expected", [(i, case[1]) for i, case in enumerate(CASES)], ids=ids(CASES))
def test_normalize_national_id(normalized, index, expected):
    assert normalized[index] == expected


VOCABULARY = Vocabulary(nicknames={}, honorifics=frozenset(), suffixes={}, address_tokens={}, countries={})


def test_unusable_ids_are_reported_in_std_issues_without_the_value(spark):
    bronze = spark.createDataFrame(
        [
            ("crm", "1", "AB 12 34 56 C"),
            ("crm", "2", "000-00-0000"),
            ("crm", "3", "REFUSED"),
            ("crm", "4", "  "),
            ("crm", "5", "n/a"),
            ("crm", "6", None),
        ],
        "source_system string, source_key string, nino string",
    ).select("*", F.lit("r1").alias("run_id"), F.lit(dt.datetime(2025, 1, 2)).alias("ingested_at"),
             F.concat(F.lit("h"), "source_key").alias("record_hash"))
    out = standardize(bronze, {"national_id": "nino"}, StandardizeOptions(), VOCABULARY)
    rows = {r["source_key"]: (r["national_id"], r["std_issues"]) for r in out.collect()}
    reason = "national_id: unusable national id (under 4 or over 32 characters, no digit, or a placeholder)"
    assert rows == {
        "1": ("AB123456C", None),
        "2": (None, reason),
        "3": (None, reason),
        "4": (None, None),  # blank: nothing to report
        "5": (None, None),  # a "no value" marker
        "6": (None, None),
    }
    assert all("0000" not in (issues or "") and "REFUSED" not in (issues or "") for _, issues in rows.values())


def _batch(pairs: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id_l": [f"l{i}" for i in range(len(pairs))],
            "record_id_r": [f"r{i}" for i in range(len(pairs))],
            "national_id_l": pd.Series([left for left, _ in pairs], dtype=object),
            "national_id_r": pd.Series([right for _, right in pairs], dtype=object),
        }
    )


def test_comparison_levels_exact_then_one_edit():
    settings = load_settings(MATCHING)
    [comparison] = [c for c in settings.comparisons if c.name == "national_id"]
    pairs = [
        ("AB123456C", "AB123456C"),  # exact -> 2
        ("AB123456C", "AB123465C"),  # two characters swapped: one edit -> 1
        ("518293746", "518293749"),  # one substitution -> 1
        ("518293746", "51829374"),  # one deletion -> 1
        ("518293746", "518239476"),  # two edits -> 0
        ("518293746", "AB123456C"),  # another id -> 0
        ("518293746", None),  # missing on one side -> -1
        (None, None),  # missing on both -> -1, never agreement
    ]
    scored = score_batch(_batch(pairs), [comparison], ["record_id_l", "record_id_r"])
    assert scored["gamma_national_id"].tolist() == [2, 1, 1, 1, 0, 0, -1, -1]


def test_blocking_rules_on_national_id():
    rules = {rule.name: rule.keys for rule in load_settings(MATCHING).blocking_rules}
    assert rules["national_id"] == ["national_id"]
    assert rules["national_id_start"] == ["substring(national_id, 1, 5)"]
    assert rules["national_id_end"] == ["substring(reverse(national_id), 1, 4)"]


def test_blocking_report_masks_national_id_keys():
    reports = [
        RuleReport(rule="national_id", keys=("national_id",), pairs=1, blocks=1, records_keyed=2, guarded_blocks=0,
                   largest=(BlockSize(("518293746",), 2, "ok"),)),
        RuleReport(rule="email", keys=("email",), pairs=1, blocks=1, records_keyed=2, guarded_blocks=0,
                   largest=(BlockSize(("a@b.co",), 2, "ok"),)),
    ]
    text = format_blocking_report(reports)
    assert "518293746" not in text and "•••••3746" in text
    assert "a@b.co" in text  # other keys are printed as they are (the user asked for the report)
