"""Blocking: candidate pairs, link types, incremental mode, huge-block guard, report, random pairs."""

from __future__ import annotations

import logging

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame

from matching.blocking import (
    BlockSize,
    GuardedBlock,
    LevelCount,
    Refinement,
    RuleReport,
    apply_pair_budget,
    blocking_report,
    format_blocking_report,
    format_refinements,
    guarded_candidate_pairs,
    key_fingerprint,
    possible_pairs,
    random_pairs,
    _counted_levels,
    refine_rules,
    rules_with_big_blocks,
)
from matching.settings import MatchSettings

RECORDS_SCHEMA = "record_id string, source_system string, given_name string, family_name string, email string"
PAIRS_SCHEMA = "record_id_l string, record_id_r string, blocking_rule string"
COMPARISONS = [{"name": "email", "column": "email", "levels": [{"kind": "exact"}]}]


def candidate_pairs(records: DataFrame, settings: MatchSettings, new_record_ids: DataFrame | None = None) -> DataFrame:
    """``record_id_l, record_id_r, blocking_rule``: the pairs of ``guarded_candidate_pairs``."""
    return guarded_candidate_pairs(records, settings, new_record_ids)[0]


def _settings(**overrides) -> MatchSettings:
    data = {
        "blocking_rules": [
            {"name": "email", "keys": ["email"]},
            {"name": "family_soundex", "keys": ["soundex(family_name)"]},
        ],
        "comparisons": COMPARISONS,
        **overrides,
    }
    return MatchSettings.model_validate(data)


@pytest.fixture(scope="module")
def records(spark):
    # smith / smyth share soundex S530; jones / jonas J520; d has no family name and no email.
    return spark.createDataFrame(
        [
            ("a", "s1", "anna", "smith", "x@e"),
            ("b", "s1", "anna", "smyth", "x@e"),
            ("c", "s2", "ann", "smith", None),
            ("d", "s2", "bob", None, None),
            ("e", "s1", "carl", "jones", "y@e"),
            ("f", "s2", "carl", "jonas", "y@e"),
        ],
        RECORDS_SCHEMA,
    )


def test_pairs_are_ordered_unique_and_attributed_to_first_rule(spark, records):
    expected = spark.createDataFrame(
        [("a", "b", "email"), ("e", "f", "email"), ("a", "c", "family_soundex"), ("b", "c", "family_soundex")],
        PAIRS_SCHEMA,
    )

    actual = candidate_pairs(records, _settings())

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_link_only_keeps_pairs_across_sources(spark, records):
    expected = spark.createDataFrame(
        [("e", "f", "email"), ("a", "c", "family_soundex"), ("b", "c", "family_soundex")], PAIRS_SCHEMA
    )

    actual = candidate_pairs(records, _settings(link_type="link_only"))

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_incremental_keeps_pairs_with_a_new_side_once(spark, records):
    new_ids = spark.createDataFrame([("a",), ("c",)], "record_id string")
    expected = spark.createDataFrame(
        [("a", "b", "email"), ("a", "c", "family_soundex"), ("b", "c", "family_soundex")], PAIRS_SCHEMA
    )

    actual = candidate_pairs(records, _settings(), new_record_ids=new_ids)

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.fixture(scope="module")
def crowded(spark):
    """smith: 6 records (a-initials 3, b-initials 2, one without given name); jones: 4 all 'c'; brown: 2."""
    rows = [
        ("s1", "ann", "smith"), ("s2", "amy", "smith"), ("s3", "al", "smith"),
        ("s4", "ben", "smith"), ("s5", "bob", "smith"), ("s6", None, "smith"),
        ("j1", "carl", "jones"), ("j2", "cora", "jones"), ("j3", "cy", "jones"), ("j4", "cid", "jones"),
        ("b1", "dan", "brown"), ("b2", "dora", "brown"),
    ]
    return spark.createDataFrame([(rid, "src", g, f, None) for rid, g, f in rows], RECORDS_SCHEMA)


def _guarded_settings() -> MatchSettings:
    return _settings(
        blocking_rules=[{"name": "family", "keys": ["family_name"]}],
        max_block_size=3,
        sub_block_key="substring(given_name, 1, 1)",
    )


def test_huge_blocks_are_sub_blocked_or_skipped_with_warnings(spark, crowded, caplog):
    expected = spark.createDataFrame(
        [("s1", "s2", "family"), ("s1", "s3", "family"), ("s2", "s3", "family"),
         ("s4", "s5", "family"), ("b1", "b2", "family")],
        PAIRS_SCHEMA,
    )

    with caplog.at_level(logging.WARNING, logger="cdi.matching.blocking"):
        actual, guarded = guarded_candidate_pairs(crowded, _guarded_settings())

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert sorted(guarded, key=repr) == sorted(
        [
            GuardedBlock("family", ("smith",), 6, "sub_blocked"),
            GuardedBlock("family", ("jones",), 4, "sub_blocked"),
            GuardedBlock("family", ("jones",), 4, "skipped", "c"),
        ],
        key=repr,
    )
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == [
        f"blocking rule 'family': key {key_fingerprint(('jones',))}: a sub-block still has 4 records (max_block_size 3): skipped "
        "(records identical on every compared attribute still paired)"
    ]
    assert not any("jones" in r.getMessage() or "smith" in r.getMessage() for r in caplog.records)


REPEATED_COMPARISONS = [
    {"name": "given_name", "column": "given_name", "levels": [{"kind": "exact"}]},
    {"name": "email", "column": "email", "levels": [{"kind": "exact"}]},
]


@pytest.fixture(scope="module")
def repeated(spark):
    """jones: a block of 10, its sub-block "c" of 6; j1-j3 alike on every compared attribute (j3 in s2),
    j4 another email, j5 and j6 other given names; its sub-block of no given name, k1-k4, 4: k1-k3 alike,
    k4 with nothing compared. brown: 4, b1 and b2 alike, b3 and b4 with nothing compared."""
    rows = [
        ("j1", "s1", "carl", "jones", "x@e"), ("j2", "s1", "carl", "jones", "x@e"), ("j3", "s2", "carl", "jones", "x@e"),
        ("j4", "s1", "carl", "jones", "y@e"), ("j5", "s1", "cy", "jones", None), ("j6", "s2", "cid", "jones", None),
        ("k1", "s1", None, "jones", "w@e"), ("k2", "s2", None, "jones", "w@e"), ("k3", "s1", None, "jones", "w@e"),
        ("k4", "s1", None, "jones", None),
        ("b1", "s1", "dan", "brown", "z@e"), ("b2", "s2", "dan", "brown", "z@e"),
        ("b3", "s1", None, "brown", None), ("b4", "s2", None, "brown", None),
    ]
    return spark.createDataFrame(rows, RECORDS_SCHEMA)


@pytest.mark.parametrize(
    "sub_block_key, link_type, new, expected",
    [
        # The brown block's sub-blocks are small enough to pair as any block: b1 and b2 are its "d",
        # b3 and b4, without a given name, the sub-block of a null sub-key.
        ("substring(given_name, 1, 1)", "dedupe_only", None,
         [("j1", "j2"), ("j1", "j3"), ("k1", "k2"), ("k1", "k3"), ("b1", "b2"), ("b3", "b4")]),
        ("substring(given_name, 1, 1)", "link_only", None,
         [("j1", "j3"), ("j2", "j3"), ("k1", "k2"), ("k2", "k3"), ("b1", "b2"), ("b3", "b4")]),
        ("substring(given_name, 1, 1)", "dedupe_only", ["j2"], [("j1", "j2")]),
        (None, "dedupe_only", None, [("j1", "j2"), ("j1", "j3"), ("k1", "k2"), ("k1", "k3"), ("b1", "b2")]),
        (None, "link_and_dedupe", ["j3", "b1"], [("j1", "j3"), ("b1", "b2")]),
    ],
)
def test_a_skipped_blocks_identical_records_are_each_paired_with_one_of_them(
    spark, repeated, sub_block_key, link_type, new, expected
):
    settings = _settings(
        blocking_rules=[{"name": "family", "keys": ["family_name"]}],
        comparisons=REPEATED_COMPARISONS,
        max_block_size=3,
        sub_block_key=sub_block_key,
        link_type=link_type,
    )
    new_ids = None if new is None else spark.createDataFrame([(n,) for n in new], "record_id string")

    actual, guarded = guarded_candidate_pairs(repeated, settings, new_ids)

    if sub_block_key is not None:
        skipped = sorted((block.size, block.sub_key) for block in guarded if block.action == "skipped")
        assert skipped == [(4, None), (6, "c")]
    assert_df_equality(
        actual,
        spark.createDataFrame([(left, right, "family") for left, right in expected], PAIRS_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_report_counts_pairs_after_the_guard_without_pairs(crowded):
    [report] = blocking_report(crowded, _guarded_settings(), largest=2)

    assert report == RuleReport(
        rule="family",
        keys=("family_name",),
        pairs=5,
        blocks=3,
        records_keyed=12,
        guarded_blocks=2,
        largest=(BlockSize(("smith",), 6, "sub_blocked"), BlockSize(("jones",), 4, "sub_blocked")),
    )


def test_report_counts_only_cross_source_pairs_for_link_only(records):
    # email: only e-f crosses sources; soundex S530 {a, b | c} gives a-c, b-c, J520 gives e-f.
    reports = blocking_report(records, _settings(link_type="link_only"))

    assert [(r.rule, r.pairs, r.records_keyed) for r in reports] == [("email", 1, 4), ("family_soundex", 3, 5)]


def test_format_blocking_report_lists_rules_and_largest_blocks():
    report = RuleReport("email", ("email",), 1234, 10, 30, 1, (BlockSize(("x@e",), 600, "skipped"),))

    text = format_blocking_report([report])

    assert "email" in text.splitlines()[1] and "1,234" in text.splitlines()[1]
    assert "600  skipped      ('x@e',)" in text


def test_random_pairs_are_distinct_ordered_records(spark):
    records = spark.createDataFrame([(f"r{i:03d}",) for i in range(200)], "record_id string")

    pairs = [tuple(row) for row in random_pairs(records, 100, seed=7).collect()]

    assert len(pairs) == 100
    assert len(set(pairs)) == 100
    assert all(left < right for left, right in pairs)
    assert {rid for pair in pairs for rid in pair} <= {f"r{i:03d}" for i in range(200)}


def test_random_pairs_for_link_only_cross_sources(spark):
    records = spark.createDataFrame(
        [(f"a{i:03d}", "a") for i in range(150)] + [(f"b{i:03d}", "b") for i in range(50)],
        "record_id string, source_system string",
    )

    pairs = [tuple(row) for row in random_pairs(records, 100, seed=7, link_only=True).collect()]

    assert len(set(pairs)) == len(pairs) == 100
    assert all(left[0] != right[0] for left, right in pairs)


@pytest.mark.parametrize("link_only", [False, True])
def test_random_pairs_depend_on_the_ids_and_seed_not_the_layout(spark, link_only):
    rows = [(f"r{i:03d}", "ab"[i % 3 == 0]) for i in range(300)]
    one_file = spark.createDataFrame(rows, "record_id string, source_system string").coalesce(1)
    seven = spark.createDataFrame(rows[::-1], "record_id string, source_system string").repartition(7)
    assert (one_file.rdd.getNumPartitions(), seven.rdd.getNumPartitions()) == (1, 7)

    def sample(records, seed: int) -> set[tuple[str, str]]:
        drawn = [tuple(row) for row in random_pairs(records, 2000, seed, link_only).collect()]
        assert len(drawn) == len(set(drawn))
        return set(drawn)

    first = sample(one_file, seed=7)

    assert len(first) == 2000 < possible_pairs([200, 100], "link_only" if link_only else "dedupe_only")
    assert sample(seven, seed=7) == first
    assert sample(seven, seed=8) != first


@pytest.mark.parametrize(
    ("sizes", "link_type", "expected"),
    [([10], "dedupe_only", 45), ([6, 4], "dedupe_only", 45), ([6, 4], "link_and_dedupe", 45), ([6, 4], "link_only", 24),
     ([2, 3, 5], "link_only", 31), ([1], "link_only", 0)],
)
def test_possible_pairs(sizes, link_type, expected):
    assert possible_pairs(sizes, link_type) == expected


def _budget_settings(budget: float | None) -> MatchSettings:
    return _settings(
        blocking_rules=[
            {"name": "email", "keys": ["email"]},
            {"name": "given", "keys": ["given_name"], "refine": ["substring(family_name, 1, 1)", "family_name"]},
        ],
        max_pairs_per_record=budget,
    )


@pytest.mark.parametrize(
    ("pairs_by_level", "expected_keys", "expected"),
    [
        ({(1, 0): 20}, ["given_name"], []),
        ({(1, 0): 21, (1, 1): 20}, ["given_name", "substring(family_name, 1, 1)"],
         [Refinement("given", ("substring(family_name, 1, 1)",), 21, 20, 20)]),
        ({(1, 0): 90, (1, 1): 50, (1, 2): 30}, ["given_name", "substring(family_name, 1, 1)", "family_name"],
         [Refinement("given", ("substring(family_name, 1, 1)", "family_name"), 90, 30, 20)]),
    ],
)
def test_pair_budget_adds_refine_keys_until_the_rule_fits(pairs_by_level, expected_keys, expected):
    # A budget of 2 pairs per record on 10 records: 20 pairs per rule.
    settings, refinements = apply_pair_budget(_budget_settings(2.0), pairs_by_level, 10)

    assert [rule.keys for rule in settings.blocking_rules] == [["email"], expected_keys]
    assert refinements == expected
    assert all(r.fits == (r.pairs_after <= 20) for r in refinements)
    assert [rule.name for rule in settings.blocking_rules] == ["email", "given"]


def test_the_budget_is_never_below_min_pair_budget():
    settings = _budget_settings(2.0).model_copy(update={"min_pair_budget": 100})

    assert apply_pair_budget(settings, {(1, 0): 100, (1, 1): 10}, 10) == (settings, [])
    refined, refinements = apply_pair_budget(settings, {(1, 0): 101, (1, 1): 10}, 10)
    assert refinements == [Refinement("given", ("substring(family_name, 1, 1)",), 101, 10, 100)]


def test_no_budget_leaves_the_rules_alone():
    settings = _budget_settings(None)

    assert apply_pair_budget(settings, {(1, 0): 10**9}, 10) == (settings, [])


# Six "anna"s: 15 pairs on given_name alone; by family initial s (4 records) and j (2): 6 + 1 = 7.
ANNAS = [
    ("a", "s1", "anna", "smith", None),
    ("b", "s1", "anna", "smyth", None),
    ("c", "s2", "anna", "smith", None),
    ("d", "s2", "anna", "sims", None),
    ("e", "s1", "anna", "jones", None),
    ("f", "s2", "anna", "jonas", None),
]


def test_refine_rules_counts_pairs_on_the_records_and_blocks_with_the_refined_keys(spark, caplog):
    records = spark.createDataFrame(ANNAS, RECORDS_SCHEMA)
    with caplog.at_level(logging.WARNING, logger="cdi.matching.blocking"):
        refined, refinements, big_rules = refine_rules(records, _budget_settings(7 / 6))

    assert refinements == [Refinement("given", ("substring(family_name, 1, 1)",), 15, 7, 7)]
    assert big_rules == frozenset()
    assert "blocking rule 'given' would give 15 pairs, over the budget of 7" in caplog.text
    assert "anna" not in caplog.text
    pairs = candidate_pairs(records, refined).select("record_id_l", "record_id_r")
    expected = spark.createDataFrame(
        [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d"), ("e", "f")],
        "record_id_l string, record_id_r string",
    )
    assert_df_equality(pairs, expected, ignore_row_order=True)
    unrefined, none, _ = refine_rules(records, _budget_settings(2.5))
    assert none == [] and candidate_pairs(records, unrefined).count() == 15


@pytest.mark.parametrize(
    ("budget", "counted"),
    [
        (2.5, {(1, 0): LevelCount(15, 6)}),
        (7 / 6, {(1, 0): LevelCount(15, 6), (1, 1): LevelCount(7, 4)}),
        (0.5, {(1, 0): LevelCount(15, 6), (1, 1): LevelCount(7, 4), (1, 2): LevelCount(1, 2)}),
        (None, {(1, 0): LevelCount(15, 6)}),
    ],
    ids=["under the budget: level 0 only", "the first refine key fits", "every level", "no budget"],
)
def test_only_the_levels_the_budget_reaches_are_counted(spark, budget, counted):
    """Every rule is counted at level 0 (the email rule has no keyed record here, so no blocks)."""
    records = spark.createDataFrame(ANNAS, RECORDS_SCHEMA)
    assert _counted_levels(records, _budget_settings(budget), len(ANNAS)) == counted


@pytest.mark.parametrize(
    ("max_block_size", "budget", "expected"),
    [(5, None, {1}), (5, 7 / 6, set()), (3, 7 / 6, {1}), (3, 0.5, set()), (6, None, set())],
    ids=["six annas", "refined to four", "four over three", "refined to two", "at the limit"],
)
def test_refine_rules_finds_the_rules_with_a_huge_block_at_their_refined_keys(spark, max_block_size, budget, expected):
    records = spark.createDataFrame(ANNAS, RECORDS_SCHEMA)
    settings = _budget_settings(budget).model_copy(update={"max_block_size": max_block_size})
    refined, _, big_rules = refine_rules(records, settings)

    assert big_rules == frozenset(expected)
    assert big_rules == frozenset(
        rules_with_big_blocks(records, refined.blocking_rules, max_block_size)
    ), "the same rules as counted on their own"


def test_format_refinements_names_the_budget_rules_keys_and_counts():
    text = format_refinements(
        [
            Refinement("birth_date", ("substring(given_name, 1, 1)",), 13_768_008, 1_300_804, 1_500_054),
            Refinement("soundex_names", ("year(birth_date)", "month(birth_date)"), 30_141_291, 1_600_000, 1_500_054),
        ]
    )

    assert text.splitlines() == [
        "pair budget: 1,500,054 pairs per rule",
        "  birth_date: 13,768,008 pairs; refined by substring(given_name, 1, 1) to 1,300,804",
        "  soundex_names: 30,141,291 pairs; refined by year(birth_date), month(birth_date) to 1,600,000"
        " (still over: no refine keys left)",
    ]
    assert format_refinements([]) == ""


def test_rules_whose_keys_few_records_have_are_listed_with_their_share() -> None:
    from matching.blocking import sparse_rules
    from matching.settings import BlockingRule

    rules = [
        BlockingRule(name="email", keys=["email"]),
        BlockingRule(name="names", keys=["substring(family_name, 1, 3)", "soundex(given_name)"]),
        BlockingRule(name="family_phone", keys=["family_name", "phone"]),
    ]
    present = {"email": 0, "family_name": 1000, "given_name": 990, "phone": 50}
    assert sparse_rules(rules, present, 1000) == [("email", 0.0), ("family_phone", 0.05)]
    assert rules[1].attributes == frozenset({"family_name", "given_name"})
