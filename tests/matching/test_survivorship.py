"""Survivorship: settings, each rule and tie-break in pure Python, and Spark against the reference."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import IntegerType, MapType, StringType, StructField, StructType

from config.errors import ConfigError
from matching.survivorship import (
    Selection,
    SurvivorshipSettings,
    apply_overrides,
    golden_attributes,
    load_survivorship,
)
from schemas.canonical import CANONICAL_ATTRIBUTES, CANONICAL_SCHEMA
from schemas.golden import GOLDEN_CUSTOMERS_SCHEMA
from tests.matching.survivorship_reference import Candidate, choose, golden_record

REPO = Path(__file__).resolve().parents[2]
PRIORITY = ("billing", "sales_crm", "webshop", "support_desk")
OLD, MID, NEW = datetime(2024, 1, 1), datetime(2024, 6, 1), datetime(2025, 1, 1)


def cand(record_id, source, updated_at, value):
    return Candidate(record_id, source, updated_at, value)


# (case, rule, candidates, expected winner's record_id or None)
CHOICES = [
    ("all null → none", "most_recent", [cand("a", "billing", NEW, None)], None),
    ("no candidates → none", "most_frequent", [], None),
    # source_priority
    ("priority: most trusted source", "source_priority",
     [cand("a", "webshop", NEW, "x"), cand("b", "billing", OLD, "y")], "b"),
    ("priority: null never wins", "source_priority",
     [cand("a", "billing", NEW, None), cand("b", "support_desk", OLD, "y")], "b"),
    ("priority: unlisted source ranks last", "source_priority",
     [cand("a", "legacy", NEW, "x"), cand("b", "support_desk", OLD, "y")], "b"),
    ("priority tie → most recent", "source_priority",
     [cand("a", "billing", OLD, "x"), cand("b", "billing", NEW, "y")], "b"),
    ("priority tie, same time → record_id", "source_priority",
     [cand("b", "billing", NEW, "x"), cand("a", "billing", NEW, "y")], "a"),
    # most_recent
    ("recent: newest wins", "most_recent",
     [cand("a", "billing", OLD, "x"), cand("b", "support_desk", NEW, "y")], "b"),
    ("recent: undated is oldest", "most_recent",
     [cand("a", "billing", None, "x"), cand("b", "support_desk", OLD, "y")], "b"),
    ("recent: newest null loses", "most_recent",
     [cand("a", "billing", NEW, None), cand("b", "support_desk", OLD, "y")], "b"),
    ("recent tie → source priority", "most_recent",
     [cand("a", "webshop", NEW, "x"), cand("b", "sales_crm", NEW, "y")], "b"),
    ("recent tie, same source → record_id", "most_recent",
     [cand("b", "webshop", NEW, "x"), cand("a", "webshop", NEW, "y")], "a"),
    # most_frequent
    ("frequent: shared value wins over trusted source", "most_frequent",
     [cand("a", "billing", NEW, "x"), cand("b", "webshop", OLD, "y"), cand("c", "support_desk", OLD, "y")], "b"),
    ("frequent: nulls are not a value", "most_frequent",
     [cand("a", "billing", NEW, "x"), cand("b", "webshop", OLD, None), cand("c", "support_desk", OLD, None)], "a"),
    ("frequent tie → source priority", "most_frequent",
     [cand("a", "webshop", NEW, "x"), cand("b", "sales_crm", OLD, "y")], "b"),
    ("frequent tie, same source → most recent", "most_frequent",
     [cand("a", "webshop", OLD, "x"), cand("b", "webshop", NEW, "y")], "b"),
    ("frequent tie, same source and time → record_id", "most_frequent",
     [cand("b", "webshop", NEW, "x"), cand("a", "webshop", NEW, "y")], "a"),
    ("frequent: representative of the value by source", "most_frequent",
     [cand("a", "webshop", NEW, "y"), cand("b", "billing", OLD, "y"), cand("c", "billing", NEW, "x")], "b"),
    # longest
    ("longest: most complete", "longest",
     [cand("a", "billing", NEW, "12 high st"), cand("b", "support_desk", OLD, "flat 2 12 high st")], "b"),
    ("longest tie → source priority", "longest",
     [cand("a", "webshop", NEW, "abc"), cand("b", "sales_crm", OLD, "xyz")], "b"),
    ("longest tie, same source → most recent", "longest",
     [cand("a", "webshop", OLD, "abc"), cand("b", "webshop", NEW, "xyz")], "b"),
    ("longest tie, same source and time → record_id", "longest",
     [cand("b", "webshop", NEW, "abc"), cand("a", "webshop", NEW, "xyz")], "a"),
    ("longest: group tuples sum their members", "longest",
     [cand("a", "billing", NEW, ("12 high st", None)), cand("b", "webshop", OLD, ("12 high st", "flat 2"))], "b"),
    # first_non_null
    ("first: smallest record_id", "first_non_null",
     [cand("b", "billing", NEW, "x"), cand("a", "support_desk", OLD, "y")], "a"),
    ("first: skips nulls", "first_non_null",
     [cand("a", "billing", NEW, None), cand("b", "support_desk", OLD, "y")], "b"),
]


@pytest.mark.parametrize(("case", "rule", "candidates", "expected"), CHOICES, ids=[c[0] for c in CHOICES])
def test_choose(case, rule, candidates, expected):
    winner = choose(candidates, rule, PRIORITY)
    assert (winner.record_id if winner else None) == expected


def test_repo_settings_cover_every_attribute_once():
    settings = load_survivorship(REPO / "conf" / "survivorship.yaml")
    members = [m for s in settings.selections() for m in s.members]
    assert sorted(members) == sorted(CANONICAL_ATTRIBUTES)
    assert settings.source_priority == PRIORITY


def test_selections_resolve_groups_rules_and_default():
    settings = SurvivorshipSettings.model_validate(
        {
            "source_priority": ["billing"],
            "default_rule": "first_non_null",
            "attributes": {"email": {"rule": "most_recent"}},
            "groups": {"address": {"members": ["city", "postcode"], "rule": "longest"}},
        }
    )
    by_name = {s.name: s for s in settings.selections()}
    assert by_name["address"] == Selection("address", ("city", "postcode"), "city", "longest")
    assert by_name["email"] == Selection("email", ("email",), "email", "most_recent")
    assert by_name["phone"] == Selection("phone", ("phone",), "phone", "first_non_null")
    assert "city" not in by_name


BASE = "source_priority: [billing, webshop]\n"
BAD_SETTINGS = [
    ("unknown attribute", BASE + "attributes: {given_nam: {rule: most_recent}}\n",
     "attributes: unknown attribute 'given_nam'"),
    ("unknown rule", BASE + "attributes: {email: {rule: newest}}\n", "attributes.email.rule: Input should be"),
    ("unknown group member", BASE + "groups: {address: {members: [cty], rule: most_recent}}\n",
     "groups.address.members: unknown attribute 'cty'"),
    ("key not a member", BASE + "groups: {address: {members: [city], key: postcode, rule: most_recent}}\n",
     "groups.address.key: 'postcode' is not one of the group's members"),
    ("member of two groups",
     BASE + "groups: {a: {members: [city], rule: most_recent}, b: {members: [city], rule: most_recent}}\n",
     "groups: 'city' is in both groups 'a' and 'b'"),
    ("group member with its own rule",
     BASE + "attributes: {city: {rule: longest}}\ngroups: {a: {members: [city], rule: most_recent}}\n",
     "groups: 'city' is in group 'a' and also has its own rule"),
    ("longest on a date", BASE + "attributes: {birth_date: {rule: longest}}\n",
     "attributes: birth_date: rule 'longest' applies to string attributes only"),
    ("default longest reaches a date", BASE + "default_rule: longest\n",
     "default_rule: birth_date: rule 'longest' applies to string attributes only"),
    ("duplicate source", "source_priority: [billing, billing]\n",
     "source_priority: source 'billing' appears more than once"),
    ("unknown key", BASE + "rules: {}\n", "rules: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_settings_name_file_and_key(tmp_path, case, text, message):
    path = tmp_path / "survivorship.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_survivorship(path)
    assert str(error.value).startswith(f"{path}: {message}")


SETTINGS = SurvivorshipSettings.model_validate(
    {
        "source_priority": list(PRIORITY),
        "default_rule": "most_frequent",
        "attributes": {"email": {"rule": "most_recent"}, "phone": {"rule": "source_priority"},
                       "middle_name": {"rule": "longest"}, "gender": {"rule": "first_non_null"}},
        "groups": {"address": {"members": ["address_line1", "address_line2", "city", "postcode"],
                               "rule": "most_recent"}},
    }
)


def record(cluster_id, record_id, source, updated_at, **attributes):
    row = {name: None for name in CANONICAL_SCHEMA.names}
    row.update(record_id=record_id, source_system=source, source_key=record_id, updated_at=updated_at, **attributes)
    return {**row, "cluster_id": cluster_id}


MEMBERS = [
    # c1: the newest address has no line2 but still wins as a unit; the address-less newest record cannot win.
    record("c1", "billing:1", "billing", OLD, given_name="ann", family_name="lee", email="ann@old.example",
           phone="+441", address_line1="1 high st", address_line2="flat 2", city="york", postcode="YO1"),
    record("c1", "webshop:7", "webshop", MID, given_name="ann", family_name="smith", email="ann@new.example",
           middle_name="marie", birth_date=date(1980, 2, 3), address_line1="9 low rd", city="leeds"),
    record("c1", "support_desk:3", "support_desk", NEW, given_name="anne", family_name="smith",
           middle_name="m", phone="+442", gender="f", city="hull", postcode="HU1"),
    # c2: a singleton
    record("c2", "sales_crm:5", "sales_crm", None, given_name="bob", email="bob@example.com"),
    # c3: everything null but the lineage columns
    record("c3", "webshop:9", "webshop", NEW),
]


def test_golden_record_reference():
    members = [r for r in MEMBERS if r["cluster_id"] == "c1"]
    every_other_attribute_null = {a: None for a in CANONICAL_ATTRIBUTES}
    assert golden_record(members, SETTINGS) == {
        **every_other_attribute_null,
        "given_name": "ann", "middle_name": "marie", "family_name": "smith",
        "birth_date": date(1980, 2, 3), "gender": "f", "email": "ann@new.example", "phone": "+441",
        "address_line1": "9 low rd", "address_line2": None, "city": "leeds", "postcode": None,
        "lineage": {
            "given_name": "billing:1", "middle_name": "webshop:7", "family_name": "webshop:7",
            "birth_date": "webshop:7", "gender": "support_desk:3", "email": "webshop:7", "phone": "billing:1",
            "address_line1": "webshop:7", "city": "webshop:7",
        },
        "num_records": 3,
    }


GOLDEN_ATTRIBUTES = StructType(
    [
        StructField("cluster_id", StringType()),
        *[f for f in GOLDEN_CUSTOMERS_SCHEMA.fields if f.name in CANONICAL_ATTRIBUTES],
        StructField("lineage", MapType(StringType(), StringType())),
        StructField("num_records", IntegerType()),
    ]
)


def test_spark_matches_reference(spark):
    schema = StructType([*CANONICAL_SCHEMA.fields, StructField("cluster_id", StringType(), False)])
    members = spark.createDataFrame([tuple(r[n] for n in schema.names) for r in MEMBERS], schema)
    expected_rows = []
    for cluster_id in ("c1", "c2", "c3"):
        golden = golden_record([r for r in MEMBERS if r["cluster_id"] == cluster_id], SETTINGS)
        expected_rows.append((cluster_id, *[golden[a] for a in CANONICAL_ATTRIBUTES], golden["lineage"],
                              golden["num_records"]))
    expected = spark.createDataFrame(expected_rows, GOLDEN_ATTRIBUTES)
    # Ordered by the key rather than ignore_row_order: chispa's row sort cannot hash the lineage map.
    actual = golden_attributes(members, SETTINGS).orderBy("cluster_id")
    assert_df_equality(actual, expected.orderBy("cluster_id"), ignore_nullable=True)


def test_spark_requires_member_columns(spark):
    members = spark.createDataFrame([("c1", "billing:1")], "cluster_id string, record_id string")
    with pytest.raises(ValueError, match="members: missing column"):
        golden_attributes(members, SETTINGS)


# -- steward overrides ---------------------------------------------------------------------------

OVERRIDE_MEMBERS = "cluster_id string, record_id string, record_hash string"
OVERRIDES = "cluster_id string, attribute string, value string, record_ids array<string>, " \
            "record_hashes array<string>, decision_id string"


def test_an_override_holds_while_its_records_are_unchanged_and_yields_otherwise(spark):
    schema = StructType([*CANONICAL_SCHEMA.fields, StructField("cluster_id", StringType(), False)])
    members = spark.createDataFrame([tuple(r[n] for n in schema.names) for r in MEMBERS], schema)
    survived = golden_attributes(members, SETTINGS)
    now = spark.createDataFrame(
        [("c1", "billing:1", "h1"), ("c1", "support_desk:3", "h3"), ("c1", "webshop:7", "h7"),
         ("c2", "sales_crm:5", "h5-changed"), ("c3", "webshop:9", "h9")], OVERRIDE_MEMBERS)
    c1_as_decided = (["webshop:7", "billing:1", "support_desk:3"], ["h7", "h1", "h3"])
    overrides = spark.createDataFrame([
        ("c1", "email", "ann@steward.example", *c1_as_decided, "d1"),
        ("c1", "birth_date", "1980-03-02", *c1_as_decided, "d2"),
        ("c2", "email", "bob@steward.example", ["sales_crm:5"], ["h5"], "d3"),  # its record changed since
        ("c3", "email", "x@steward.example", ["webshop:9", "webshop:10"], ["h9", "h10"], "d4"),  # one record left
    ], OVERRIDES)

    applied = {r["cluster_id"]: r for r in apply_overrides(survived, now, overrides).collect()}
    before = {r["cluster_id"]: r for r in survived.collect()}

    assert (applied["c1"]["email"], applied["c1"]["birth_date"]) == ("ann@steward.example", date(1980, 3, 2))
    assert applied["c1"]["lineage"] == {**before["c1"]["lineage"], "email": "steward:d1", "birth_date": "steward:d2"}
    assert {k: v for k, v in applied["c1"].asDict().items() if k not in ("email", "birth_date", "lineage")} == {
        k: v for k, v in before["c1"].asDict().items() if k not in ("email", "birth_date", "lineage")}
    assert applied["c2"] == before["c2"] and applied["c3"] == before["c3"]
    assert apply_overrides(survived, now, overrides).columns == survived.columns
