"""A hot blocking key: 10% of the records share one family name, birth year and postcode.

With the default settings (``conf/matching.yaml``: ``max_block_size`` 500,
sub-blocks by the first two letters of the given name) two rules meet the hot
key: ``family_prefix_birth_year`` (``('smi', 1980)``) and
``family_name_postcode`` (``('smith', 'ZZ99ZZ')``). Their 600-record blocks
must be sub-blocked, named in the guard list with their size, logged by the
match stage and shown by ``cdi blocking-report``, and the candidate pairs must
stay bounded. With a pair budget small enough to act (the last test), the match
stage refines ``family_prefix_birth_year`` before the guard looks at its blocks.
Placeholder detection is off here (see ``settings``); ``test_placeholders_mask_the_hot_key``
shows that with it on the hot values are treated as missing instead.
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import date, datetime
from math import comb
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from demo.names import FEMALE_GIVEN_NAMES, MALE_GIVEN_NAMES, SURNAMES
from jobs.match import run_match
from matching.blocking import BlockSize, GuardedBlock, blocking_report, format_blocking_report, guarded_candidate_pairs
from matching.settings import MatchSettings, load_settings
from schemas.canonical import CANONICAL_SCHEMA
from tests.demo_run import demo_context

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 6000
HOT = RECORDS // 10
HOT_POSTCODE = "ZZ99ZZ"
COPIES = 30
HOT_BLOCKS = [
    GuardedBlock("family_prefix_birth_year", ("smi", 1980), HOT, "sub_blocked"),
    GuardedBlock("family_name_postcode", ("smith", HOT_POSTCODE), HOT, "sub_blocked"),
]


def person(i: int, rng: random.Random, family: str, birth: date, postcode: str) -> dict:
    given = rng.choice(MALE_GIVEN_NAMES + FEMALE_GIVEN_NAMES).lower()
    key = f"{i:05d}"
    return {
        "record_id": f"crm:{key}", "source_system": "crm", "source_key": key, "run_id": "run-0",
        "ingested_at": datetime(2026, 1, 1), "record_hash": hashlib.sha256(key.encode()).hexdigest(),
        "given_name": given, "middle_name": None, "family_name": family, "full_name": f"{given} {family}",
        "name_suffix": None, "birth_date": birth, "gender": None,
        "email": f"{given}.{family}.{key}@example.org", "phone": f"+4477009{i:05d}",
        "address_line1": f"{i} high st", "address_line2": None, "city": "leeds", "postcode": postcode,
        "region": None, "country": "GB", "national_id": None, "updated_at": datetime(2025, 6, 1),
    }


def duplicate(row: dict, i: int) -> dict:
    """The same person in billing, without an email: the model needs true matches to learn from."""
    key = f"{i:05d}"
    return {
        **row, "record_id": f"billing:{key}", "source_system": "billing", "source_key": key,
        "record_hash": hashlib.sha256(f"billing{key}".encode()).hexdigest(), "email": None,
    }


def hot_key_records(spark: SparkSession) -> DataFrame:
    """600 Smiths born in 1980 in one postcode; 5,400 others spread over names, years and postcodes.

    Every fifth record duplicates the one before it.
    """
    rng = random.Random(7)
    others = [s.lower() for s in SURNAMES if not s.lower().startswith("smi")]
    rows: list[dict] = []
    for i in range(RECORDS):
        if i % 5 == 4:
            rows.append(duplicate(rows[-1], i))
        elif i < HOT:
            rows.append(person(i, rng, "smith", date(1980, 1, 1 + i % 28), HOT_POSTCODE))
        else:
            birth = date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
            postcode = f"LS{rng.randint(1, 99)}{rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTU')}"
            rows.append(person(i, rng, rng.choice(others), birth, postcode))
    columns = CANONICAL_SCHEMA.fieldNames()
    return spark.createDataFrame([tuple(row[c] for c in columns) for row in rows], CANONICAL_SCHEMA)


@pytest.fixture(scope="module")
def settings() -> MatchSettings:
    """The defaults without placeholder detection, which would (rightly) mask the hot values
    and leave the guard nothing to do: this module tests the guard."""
    defaults = load_settings(ROOT / "conf" / "matching.yaml")
    return defaults.model_copy(update={"placeholders": defaults.placeholders.model_copy(update={"attributes": []})})


@pytest.fixture(scope="module")
def records(spark):
    frame = hot_key_records(spark).persist()
    yield frame
    frame.unpersist()


@pytest.fixture(scope="module")
def guarded_pairs(records, settings):
    pairs, guarded = guarded_candidate_pairs(records, settings)
    pairs = pairs.persist()
    yield pairs, guarded
    pairs.unpersist()


def test_the_guard_names_the_hot_key_and_its_size_in_every_rule_it_meets(guarded_pairs):
    _, guarded = guarded_pairs

    assert sorted(guarded, key=repr) == sorted(HOT_BLOCKS, key=repr)


def test_no_block_gives_more_pairs_than_the_largest_allowed_block(records, settings, guarded_pairs):
    pairs, _ = guarded_pairs
    limit = comb(settings.max_block_size, 2)
    largest = {}
    for rule in settings.blocking_rules:
        # A pair's block is its rule's key, the same on both sides: read it from the left record.
        keys = [F.expr(key).alias(f"k{i}") for i, key in enumerate(rule.keys)]
        left = records.select(F.col("record_id").alias("record_id_l"), *keys)
        per_block = pairs.where(F.col("blocking_rule") == rule.name).join(left, "record_id_l")
        counts = per_block.groupBy(*[f"k{i}" for i in range(len(keys))]).count()
        largest[rule.name] = counts.agg(F.max("count")).first()[0] or 0

    assert max(largest.values()) <= limit, largest
    # Unguarded, each hot block alone would give comb(600, 2) = 179,700 pairs, more than the limit.
    assert comb(HOT, 2) > limit


def test_hot_key_pairs_stay_inside_their_sub_blocks(records, guarded_pairs):
    pairs, _ = guarded_pairs
    smiths = records.where(F.col("family_name") == "smith").select("record_id", "given_name")
    both_hot = (
        pairs.join(smiths.withColumnsRenamed({"record_id": "record_id_l", "given_name": "given_l"}), "record_id_l")
        .join(smiths.withColumnsRenamed({"record_id": "record_id_r", "given_name": "given_r"}), "record_id_r")
    )
    hot_rules = [block.rule for block in HOT_BLOCKS]
    by_hot_rules = both_hot.where(F.col("blocking_rule").isin(hot_rules))

    assert by_hot_rules.count() > 0
    assert by_hot_rules.where(F.substring("given_l", 1, 2) != F.substring("given_r", 1, 2)).count() == 0


def test_candidate_pairs_stay_far_below_all_pairs(guarded_pairs):
    pairs, _ = guarded_pairs
    total = pairs.count()

    # Fewer pairs in all than the hot family name alone would give unguarded, and under 1% of all pairs.
    assert total < comb(HOT, 2)
    assert total < comb(RECORDS, 2) / 100


def test_blocking_report_shows_the_hot_key_sub_blocked(records, settings):
    reports = {report.rule: report for report in blocking_report(records, settings)}

    for block in HOT_BLOCKS:
        report = reports[block.rule]
        assert report.largest[0] == BlockSize(block.key, HOT, "sub_blocked")
        assert report.guarded_blocks == 1
        assert report.pairs < comb(HOT, 2)
        assert f"{HOT:>10,}  sub_blocked  {block.key!r}" in format_blocking_report([report])


def test_the_match_stage_warns_about_the_hot_key(spark, records, settings, tmp_path, caplog):
    context = demo_context(tmp_path / "lake", "run-1")
    records.write.format("delta").save(context.lake.customers_std)
    # A small u sample keeps the test quick; it does not touch blocking or the guard.
    quick = settings.model_copy(update={"model": settings.model.model_copy(update={"u_random_pairs": 20_000})})

    with caplog.at_level(logging.WARNING, logger="cdi.match"):
        outcome = run_match(spark, context, quick, tmp_path)

    # 6,000 records are far below the default min_pair_budget: the pair budget leaves the rules alone.
    assert outcome.refinements == []
    assert sorted(outcome.guarded_blocks, key=repr) == sorted(HOT_BLOCKS, key=repr)
    warnings = [r.getMessage() for r in caplog.records if r.name == "cdi.match" and r.levelno == logging.WARNING]
    for block in HOT_BLOCKS:
        assert any(block.rule in w and str(HOT) in w for w in warnings), warnings
    assert not any("smith" in r.getMessage() for r in caplog.records)  # logs carry no names


def test_with_a_small_pair_budget_the_match_stage_refines_the_hot_rule_first(spark, records, settings, tmp_path, caplog):
    context = demo_context(tmp_path / "lake", "run-1")
    records.write.format("delta").save(context.lake.customers_std)
    quick = settings.model_copy(
        update={"model": settings.model.model_copy(update={"u_random_pairs": 20_000}), "min_pair_budget": 0}
    )

    with caplog.at_level(logging.WARNING):
        outcome = run_match(spark, context, quick, tmp_path)

    # The budget (1.5 pairs per record) acts before the guard: the hot key alone gives
    # family_prefix_birth_year far more, so the rule takes its refine keys and its hot block
    # breaks up. family_name_postcode has no refine keys: the guard sub-blocks its hot block.
    assert [(r.rule, r.added) for r in outcome.refinements] == [
        ("family_prefix_birth_year", ("substring(given_name, 1, 1)", "month(birth_date)"))
    ]
    assert outcome.refinements[0].pairs_before >= comb(HOT, 2)
    assert outcome.guarded_blocks == [HOT_BLOCKS[1]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'family_prefix_birth_year' would give" in w and "over the budget of 9000" in w for w in warnings)
    assert outcome.candidate_pairs < comb(RECORDS, 2) / 100
    assert not any("smith" in r.getMessage() for r in caplog.records)  # logs carry no names


def test_placeholders_mask_the_hot_key(spark, records, tmp_path, caplog):
    """With the default settings the hot family name, birth date and postcode are placeholders.

    Thirty copies of one more person are not: their email, phone and birth date are as far
    above the rest as a placeholder, but the records holding them agree on everything.
    """
    defaults = load_settings(ROOT / "conf" / "matching.yaml")
    quick = defaults.model_copy(update={"model": defaults.model.model_copy(update={"u_random_pairs": 20_000})})
    context = demo_context(tmp_path / "lake", "run-3")
    one = person(RECORDS, random.Random(3), "okafor", date(1961, 4, 9), "LS61OK")
    copies = [{**one, "record_id": f"shop:{i}", "source_system": "shop", "source_key": str(i)} for i in range(COPIES)]
    columns = CANONICAL_SCHEMA.fieldNames()
    copied = spark.createDataFrame([tuple(row[c] for c in columns) for row in copies], CANONICAL_SCHEMA)
    records.unionByName(copied).write.format("delta").save(context.lake.customers_std)
    (tmp_path / "run").mkdir()
    with caplog.at_level(logging.INFO, logger="cdi.match"):
        outcome = run_match(spark, context, quick, tmp_path / "run")
    assert outcome.guarded_blocks == []
    assert {p.attribute for p in outcome.placeholders} >= {"postcode"}
    assert all(p.records == HOT for p in outcome.placeholders if p.attribute == "postcode")
    assert all(p.records != COPIES for p in outcome.placeholders)
    assert HOT_POSTCODE not in caplog.text and "placeholder value: postcode" in caplog.text
    assert "not a placeholder: email: one value is held by 30 records" in caplog.text
    assert one["email"] not in caplog.text
    clusters = spark.read.format("delta").load(context.lake.path("silver", "clusters"))
    copied_clusters = clusters.where(F.col("record_id").startswith("shop:")).select("cluster_id").distinct().count()
    assert copied_clusters == 1
