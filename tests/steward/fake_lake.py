"""A small, realistic lake written with delta-rs, shaped exactly like the pipeline's tables.

Fourteen current source records from four departmental systems in eight
active golden customers, one golden id retired into a survivor, a published
run ``r1`` with its Fellegi-Sunter model, and a review queue whose scores come
from that model, so every page shows numbers that agree with one another.

Records also leave: one of cooper's records was deleted at its source (its
xref row closed), whitfield's golden record lost all its records that way
(status ``deleted``, last values kept), and falk was erased (``cdi erase``:
golden values nulled, xref keys replaced by salted hashes). ``golden_customers``
has two versions, so the change feed holds falk's values from before the
erasure: the app must not show them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from config.lake import Lake
from jobs.suppressions import SALT_SCHEMA, key_hash, salt_path
from matching.fellegi_sunter import ComparisonParameters, FellegiSunterModel
from matching.settings import MatchSettings, load_settings
from schemas.canonical import CANONICAL_ATTRIBUTES, CANONICAL_SCHEMA
from schemas.golden import (
    CUSTOMER_XREF_SCHEMA,
    GOLDEN_CUSTOMERS_SCHEMA,
    GOLDEN_ID_HISTORY_SCHEMA,
    MATCH_CANDIDATES_SCHEMA,
    PUBLICATIONS_SCHEMA,
    RECORD_STRUCT,
)
from steward.explain import comparison_batch, score_pair
from schemas.arrow import arrow_schema

MATCHING = Path(__file__).resolve().parents[2] / "conf" / "matching.yaml"
RUN_ID = "r1"
AT = dt.datetime(2026, 11, 24, 9, 59, 46, tzinfo=dt.timezone.utc)
MEMBER_DELETED_AT = dt.datetime(2026, 11, 28, 16, 20, tzinfo=dt.timezone.utc)
DELETED_AT = dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.timezone.utc)
ERASED_AT = dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.timezone.utc)
SALT = "5a1f" * 16
D = dt.date

# National ids (PII: every page and API answer must mask them), on records whose queued partners
# have none, so the review queue's scores do not depend on them. billing:100233 holds a one-edit typo.
ONEILL_NATIONAL_ID = "AB123456C"
ONEILL_NATIONAL_ID_TYPO = "AB123465C"
NATARAJAN_NATIONAL_ID = "518293746"
FALK_NATIONAL_ID = "CE904417B"

# record id -> (golden id, attributes). Golden ids: Gb0ab… mckenzie, Gc53f… cooper, G3f2a… oneill
# (and its retired predecessor G04e1…), G71c0… / G8d44… natarajan, G9e05… / Ga1f6… hughes, Gd2c7… shah,
# G6a2d… whitfield (deleted), G2b7e… falk (erased).
RECORDS: dict[str, tuple[str, dict[str, Any]]] = {
    "sales_crm:397": ("Gb0ab3d2aae1e71e7", dict(given_name="steven", family_name="mckenzie", birth_date=D(1950, 6, 16), gender="m",
                      email="smckenzie1950@gmail.com", phone="+447409019719", address_line1="114 heather ter", city="derby", postcode="DE12EJ")),
    "billing:100009": ("Gb0ab3d2aae1e71e7", dict(given_name="steven", family_name="mckenzie", birth_date=D(1950, 6, 16),
                       email="smckenzie1950@gmail.com", address_line1="114 heather terrace", city="derby", postcode="DE12EJ")),
    "support_desk:SUP-000074": ("Gc53f949e01944f00", dict(given_name="vernon", family_name="cooper", birth_date=D(2001, 9, 26),
                                email="vernonc@btinternet.com", phone="+447892328096", city="york")),
    "webshop:W-1a2b3c4d": ("Gc53f949e01944f00", dict(given_name="vernon", family_name="cooper", email="vernonc@btinternet.com",
                           address_line1="53 mill dr", city="york", postcode="YO323PT")),
    "sales_crm:412": ("G3f2a9c4e1b7d0a53", dict(given_name="margaret", family_name="oneill", birth_date=D(1978, 2, 3), gender="f",
                      email="maggie.oneill@outlook.com", phone="+447700900412", address_line1="7 church rd", city="leeds", postcode="LS61QT",
                      national_id=ONEILL_NATIONAL_ID)),
    "billing:100233": ("G3f2a9c4e1b7d0a53", dict(given_name="margaret", family_name="oneill", birth_date=D(1978, 2, 3),
                       email="maggie.oneill@outlook.com", address_line1="7 church road", city="leeds", postcode="LS61QT",
                       national_id=ONEILL_NATIONAL_ID_TYPO)),
    "webshop:W-7f3e9a10": ("G3f2a9c4e1b7d0a53", dict(given_name="maggie", family_name="oneill", email="maggie.oneill@outlook.com",
                           phone="+447700900412", city="leeds", postcode="LS61QT")),
    "support_desk:SUP-000311": ("G3f2a9c4e1b7d0a53", dict(given_name="margaret", family_name="oneil", birth_date=D(1991, 11, 30),
                                email="m.oneil91@yahoo.co.uk", phone="+447700955310", city="leeds", postcode="LS29JT")),
    "sales_crm:501": ("G71c0e2d94ab3f618", dict(given_name="priya", family_name="natarajan", birth_date=D(1985, 4, 12), gender="f",
                      email="priya.n@gmail.com", phone="+447911123456", address_line1="22 park ave", city="bristol", postcode="BS81TH",
                      national_id=NATARAJAN_NATIONAL_ID)),
    "webshop:W-c41d0e77": ("G8d4417fa0c2b9e35", dict(given_name="priya", family_name="natarajan", birth_date=D(1985, 12, 4),
                           email="pnatarajan@work.example", city="bristol", postcode="BS81TH")),
    "billing:100412": ("G9e05c3b1d7a4f262", dict(given_name="thomas", family_name="hughes", birth_date=D(1969, 8, 21), gender="m",
                       email="t.hughes@hotmail.co.uk", address_line1="3 station rd", city="cardiff", postcode="CF103AT")),
    "support_desk:SUP-000420": ("Ga1f6b8e2c0d39574", dict(given_name="tom", family_name="hughes", birth_date=D(1969, 8, 21),
                                phone="+447700900777", city="cardiff", postcode="CF103AT")),
    "webshop:W-99aa0b1c": ("Ga1f6b8e2c0d39574", dict(given_name="thomas", family_name="hughes", email="tom.hughes@gmail.com",
                           phone="+447700900777", city="cardiff", postcode="CF103AT")),
    "sales_crm:530": ("Gd2c7a9f4e1b06883", dict(given_name="amir", family_name="shah", birth_date=D(1993, 1, 7), gender="m",
                      email="amir.shah@gmail.com", phone="+447700900530", city="leicester", postcode="LE15WW")),
    "billing:100871": ("Gc53f949e01944f00", dict(given_name="vernon", family_name="cooper", birth_date=D(2001, 9, 26),
                       address_line1="9 old mill dr", city="york", postcode="YO324QX")),
    "support_desk:SUP-000188": ("G6a2d0f58c3e1b794", dict(given_name="dennis", family_name="whitfield", birth_date=D(1962, 3, 14),
                                email="d.whitfield@talk21.com", phone="+447700900188", city="hull", postcode="HU52AB")),
    "webshop:W-3c8d7e21": ("G6a2d0f58c3e1b794", dict(given_name="dennis", family_name="whitfield", email="d.whitfield@talk21.com",
                           address_line1="41 spring bank", city="hull", postcode="HU52AB")),
    "sales_crm:618": ("G2b7e5a91f0c4d368", dict(given_name="ingrid", family_name="falk", birth_date=D(1987, 10, 9), gender="f",
                      email="ingrid.falk@fastmail.example", phone="+447700900618", address_line1="5 quarry lane",
                      city="sheffield", postcode="S102TN", national_id=FALK_NATIONAL_ID)),
    "support_desk:SUP-000902": ("G2b7e5a91f0c4d368", dict(given_name="ingrid", family_name="falk", birth_date=D(1987, 10, 9),
                                email="ingrid.falk@fastmail.example", phone="+447700900618", city="sheffield")),
}
RETIRED = {"G04e1d8b2c7f9a316": "G3f2a9c4e1b7d0a53"}  # retired id -> survivor
# Records deleted at their source -> when; cooper keeps its other two, whitfield has none left.
DELETED = {"billing:100871": MEMBER_DELETED_AT, "support_desk:SUP-000188": DELETED_AT, "webshop:W-3c8d7e21": DELETED_AT}
DELETED_GOLDEN = "G6a2d0f58c3e1b794"
ERASED_GOLDEN = "G2b7e5a91f0c4d368"
ERASED = frozenset(r for r, (g, _) in RECORDS.items() if g == ERASED_GOLDEN)
CURRENT = [r for r in RECORDS if r not in DELETED and r not in ERASED]
SOURCE_TRUST = {  # attribute -> sources, most trusted first
    "default": ["sales_crm", "billing", "support_desk", "webshop"],
    "email": ["webshop", "support_desk", "sales_crm", "billing"],
    "phone": ["support_desk", "webshop", "sales_crm", "billing"],
    "address_line1": ["billing", "sales_crm", "webshop", "support_desk"],
    "postcode": ["billing", "sales_crm", "webshop", "support_desk"],
}
PAIRS = [  # candidate pairs for the review queue
    ("sales_crm:501", "webshop:W-c41d0e77"),
    ("billing:100412", "support_desk:SUP-000420"),
    ("billing:100412", "webshop:W-99aa0b1c"),
    ("sales_crm:412", "support_desk:SUP-000311"),
    ("support_desk:SUP-000074", "webshop:W-1a2b3c4d"),
    ("webshop:W-7f3e9a10", "support_desk:SUP-000311"),
    ("billing:100233", "webshop:W-7f3e9a10"),
]


def _record(record_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    source_system, source_key = record_id.split(":", 1)
    row = {a: attributes.get(a) for a in CANONICAL_ATTRIBUTES}
    row["full_name"] = " ".join(attributes[a] for a in ("given_name", "family_name") if attributes.get(a))
    row.update(
        record_id=record_id, source_system=source_system, source_key=source_key, run_id=RUN_ID, ingested_at=AT,
        record_hash=f"h-{record_id}", updated_at=AT, country="GB",
    )
    return row


CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}


def _write(path: str, rows: list[dict[str, Any]], schema: Any, configuration: dict[str, str] | None = None) -> None:
    table = pa.Table.from_pylist(rows, schema=arrow_schema(schema))
    write_deltalake(path, table, mode="append", configuration=configuration)


def _golden_rows(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every golden record as it was before the deletions and the erasure (version 0)."""
    rows = []
    by_golden: dict[str, list[str]] = {}
    for record_id, (golden_id, _) in RECORDS.items():
        by_golden.setdefault(golden_id, []).append(record_id)
    for golden_id, everyone in sorted(by_golden.items()):
        members = sorted(r for r in everyone if r in CURRENT) or sorted(everyone)
        values, lineage = {}, {}
        for attribute in CANONICAL_ATTRIBUTES:
            # Survivorship stand-in: each attribute from the source trusted most for it.
            trusted = SOURCE_TRUST.get(attribute, SOURCE_TRUST["default"])
            ranked = sorted(members, key=lambda r: (trusted.index(records[r]["source_system"]), r))
            chosen = next((r for r in ranked if records[r][attribute] is not None), None)
            values[attribute] = records[chosen][attribute] if chosen else None
            if chosen:
                lineage[attribute] = chosen
        rows.append(dict(golden_id=golden_id, status="active", survivor_id=None, **values, lineage=list(lineage.items()),
                         num_records=len(members), first_seen=AT, last_updated=AT, content_hash=f"c-{golden_id}",
                         run_id=RUN_ID))
    for retired, survivor in RETIRED.items():
        rows.append(dict(golden_id=retired, status="retired", survivor_id=survivor,
                         **{a: None for a in CANONICAL_ATTRIBUTES}, lineage=[], num_records=0, first_seen=AT,
                         last_updated=AT, content_hash=f"c-{retired}", run_id=RUN_ID))
    return rows


def _leaving_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Version 1 of two golden rows: whitfield deleted at its sources (values kept), falk erased (values gone)."""
    by_id = {row["golden_id"]: row for row in rows}
    deleted = dict(by_id[DELETED_GOLDEN], status="deleted", num_records=0, last_updated=DELETED_AT)
    erased = dict(by_id[ERASED_GOLDEN], status="erased", **{a: None for a in CANONICAL_ATTRIBUTES}, lineage=None,
                  num_records=0, last_updated=ERASED_AT, content_hash=f"c-{ERASED_GOLDEN}-erased")
    return [deleted, erased]


def _xref_row(record_id: str, golden_id: str) -> dict[str, Any]:
    source_system, source_key = record_id.split(":", 1)
    if record_id in ERASED:
        hashed = "erased:" + key_hash(SALT, source_system, source_key)
        return dict(source_system=source_system, source_key=hashed, record_id=hashed, golden_id=golden_id,
                    match_probability=None, linked_by="erased", run_id=RUN_ID, valid_to=ERASED_AT)
    singleton = sum(g == golden_id for g, _ in RECORDS.values()) == 1
    return dict(source_system=source_system, source_key=source_key, record_id=record_id, golden_id=golden_id,
                match_probability=None if singleton else 0.99,
                linked_by="deleted" if record_id in DELETED else "singleton" if singleton else "model",
                run_id=RUN_ID, valid_to=DELETED.get(record_id))


def _history_rows() -> list[dict[str, Any]]:
    sizes = {g: sum(x == g for x, _ in RECORDS.values()) for g, _ in RECORDS.values()}
    history = [dict(run_id=RUN_ID, event="create", golden_id=g, related_id=None, records=n, at=AT)
               for g, n in sorted(sizes.items())]
    history += [dict(run_id=RUN_ID, event="retire", golden_id=r, related_id=s, records=0, at=AT) for r, s in RETIRED.items()]
    history.append(dict(run_id=RUN_ID, event="delete", golden_id=DELETED_GOLDEN, related_id=None,
                        records=sizes[DELETED_GOLDEN], at=DELETED_AT))
    history.append(dict(run_id=RUN_ID, event="erase", golden_id=ERASED_GOLDEN, related_id=None,
                        records=sizes[ERASED_GOLDEN], at=ERASED_AT))
    return history


def _write_golden(path: str, records: dict[str, dict[str, Any]]) -> None:
    """Version 0 with every golden record active; version 1 deletes whitfield and erases falk.

    Version 1 replaces the two rows (in the change feed: each deleted, then inserted) rather than
    merging them as the pipeline does: delta-rs' MERGE writes ``string_view`` columns, which pyarrow's
    dataset filters cannot compare with a string (Spark, which writes the real lake, does not).
    """
    rows = _golden_rows(records)
    _write(path, rows, GOLDEN_CUSTOMERS_SCHEMA, CHANGE_FEED)
    leaving = pa.Table.from_pylist(_leaving_rows(rows), schema=arrow_schema(GOLDEN_CUSTOMERS_SCHEMA))
    write_deltalake(path, leaving, mode="overwrite", predicate=f"golden_id IN ('{DELETED_GOLDEN}', '{ERASED_GOLDEN}')")


def fake_model(settings: MatchSettings) -> FellegiSunterModel:
    """m rises and u falls with the level (0 = disagree .. K = exact), as a trained model's do."""

    def shares(weights: list[float]) -> tuple[float, ...]:
        return tuple(w / sum(weights) for w in weights)

    return FellegiSunterModel(
        comparisons=tuple(
            ComparisonParameters(
                name=c.name,
                levels=len(c.levels),
                m=shares([0.15] + [0.05] * (len(c.levels) - 1) + [0.8]),
                u=shares([0.97] + [0.02 / max(len(c.levels) - 1, 1)] * (len(c.levels) - 1) + [0.01]),
                tf=c.term_frequency,
            )
            for c in settings.comparisons
        ),
        lambda_=0.05,
    )


def _frequency(records: dict[str, dict[str, Any]], column: str, value: Any) -> float | None:
    present = [r[column] for r in records.values() if r[column] is not None]
    return present.count(value) / len(present) if value is not None and present else None


# The pairs' fake probabilities were chosen for this cut: five of them land in the queue,
# whatever the default match threshold in conf/matching.yaml.
QUEUE_MATCH_THRESHOLD = 0.96


def _candidate_rows(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    settings = load_settings(MATCHING)
    model = fake_model(settings)
    record_fields = [f.name for f in RECORD_STRUCT.fields]
    rows = []
    for a, b in (sorted(pair) for pair in PAIRS):
        left, right = records[a], records[b]
        frequencies = {c.column: _frequency(records, c.column, left[c.column]) for c in settings.tf_comparisons}
        scored = score_pair(settings, model, comparison_batch(settings, left, right, frequencies))
        if scored.match_probability >= QUEUE_MATCH_THRESHOLD:
            continue  # linked by the model, never queued
        between = settings.thresholds.review <= scored.match_probability
        rows.append(dict(
            pair_id=f"{a}|{b}", record_id_l=a, record_id_r=b, match_probability=scored.match_probability,
            match_weight=scored.match_weight, evidence=list(scored.evidence.items()), levels=list(scored.levels.items()),
            blocking_rule="family_prefix_birth_year",
            reason="between thresholds" if between else "cluster members disagree",
            record_l={f: left[f] for f in record_fields}, record_r={f: right[f] for f in record_fields}, run_id=RUN_ID,
        ))
    return rows


def build_lake(root: Path) -> Lake:
    lake = Lake.at(root)
    records = {record_id: _record(record_id, attributes) for record_id, (_, attributes) in RECORDS.items()}
    current = {record_id: records[record_id] for record_id in CURRENT}
    _write(lake.customers_std, list(current.values()), CANONICAL_SCHEMA)
    _write_golden(lake.gold("golden_customers"), records)
    xref = [_xref_row(record_id, golden_id) for record_id, (golden_id, _) in RECORDS.items()]
    _write(lake.gold("customer_xref"), xref, CUSTOMER_XREF_SCHEMA, CHANGE_FEED)
    _write(lake.gold("match_candidates"), _candidate_rows(current), MATCH_CANDIDATES_SCHEMA)
    _write(lake.gold("golden_id_history"), _history_rows(), GOLDEN_ID_HISTORY_SCHEMA)
    _write(lake.gold("_publications"), [dict(run_id=RUN_ID, published_at=AT, golden_customers_version=1,
                                             customer_xref_version=0)], PUBLICATIONS_SCHEMA)
    _write(salt_path(lake), [dict(salt=SALT)], SALT_SCHEMA)
    run_dir = Path(lake.run_dir(RUN_ID))
    run_dir.mkdir(parents=True)
    (run_dir / "model.json").write_text(fake_model(load_settings(MATCHING)).to_json())
    return lake


# -- the richer lake (build_rich_lake): a father and his son, and the scored pairs of the match stage ----------
# The father's customer holds three records, one of them his son's webshop account (no birth date, the son's
# email, phone and street). The son's own two records are another customer, born 20 years later, suffix "jr".
# The queue holds the son's support record and that webshop record: near certain, "linked but kept apart".
FATHER_GOLDEN = "G5e0f1a2b3c4d5e6f"
SON_GOLDEN = "G7a8b9c0d1e2f3a4b"
SONS_ACCOUNT = "webshop:W-5b6c7d80"  # in the father's customer
FAMILY: dict[str, tuple[str, dict[str, Any]]] = {
    "sales_crm:760": (FATHER_GOLDEN, dict(given_name="george", family_name="baxter", name_suffix="sr",
                      birth_date=D(1952, 3, 9), gender="m", email="g.baxter@btinternet.com", phone="+447700900760",
                      address_line1="12 elm grove", city="norwich", postcode="NR23PA")),
    "billing:100760": (FATHER_GOLDEN, dict(given_name="george", family_name="baxter", birth_date=D(1952, 3, 9),
                       email="g.baxter@btinternet.com", address_line1="12 elm grove", city="norwich",
                       postcode="NR23PA")),
    SONS_ACCOUNT: (FATHER_GOLDEN, dict(given_name="george", family_name="baxter", email="george.baxter@gmail.com",
                   phone="+447700900761", address_line1="4 mill lane", city="norwich", postcode="NR47QF")),
    "support_desk:SUP-000761": (SON_GOLDEN, dict(given_name="george", family_name="baxter", name_suffix="jr",
                                birth_date=D(1972, 7, 30), email="george.baxter@gmail.com", phone="+447700900761",
                                address_line1="4 mill lane", city="norwich", postcode="NR47QF")),
    "sales_crm:761": (SON_GOLDEN, dict(given_name="george", family_name="baxter", name_suffix="jr",
                      birth_date=D(1972, 7, 30), gender="m", email="george.baxter@gmail.com",
                      address_line1="4 mill lane", city="norwich", postcode="NR47QF")),
}
FAMILY_PAIR = ("support_desk:SUP-000761", SONS_ACCOUNT)
# Golden records whose members' scored pairs are in silver/pairs (oneill's four, the father's three, the son's two).
SCORED_GOLDEN = ("G3f2a9c4e1b7d0a53", FATHER_GOLDEN, SON_GOLDEN)


def _family_golden_rows(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for golden_id in (FATHER_GOLDEN, SON_GOLDEN):
        members = sorted(r for r, (g, _) in FAMILY.items() if g == golden_id)
        values, lineage = {}, {}
        for attribute in CANONICAL_ATTRIBUTES:
            trusted = SOURCE_TRUST.get(attribute, SOURCE_TRUST["default"])
            ranked = sorted(members, key=lambda r: (trusted.index(records[r]["source_system"]), r))
            chosen = next((r for r in ranked if records[r][attribute] is not None), None)
            values[attribute] = records[chosen][attribute] if chosen else None
            if chosen:
                lineage[attribute] = chosen
        rows.append(dict(golden_id=golden_id, status="active", survivor_id=None, **values, lineage=list(lineage.items()),
                         num_records=len(members), first_seen=AT, last_updated=AT, content_hash=f"c-{golden_id}",
                         run_id=RUN_ID))
    return rows


def _scored_pair(records: dict[str, dict[str, Any]], a: str, b: str) -> dict[str, Any]:
    settings = load_settings(MATCHING)
    left, right = records[a], records[b]
    frequencies = {c.column: _frequency(records, c.column, left[c.column]) for c in settings.tf_comparisons}
    scored = score_pair(settings, fake_model(settings), comparison_batch(settings, left, right, frequencies))
    return dict(record_id_l=a, record_id_r=b, match_probability=scored.match_probability,
                match_weight=scored.match_weight, evidence=list(scored.evidence.items()),
                levels=list(scored.levels.items()))


def build_rich_lake(root: Path) -> Lake:
    """``build_lake`` plus the father and son (``FAMILY``), their queued pair, and ``silver/pairs``: every pair
    within the ``SCORED_GOLDEN`` golden records and the queued family pair, scored with the fake model."""
    lake = build_lake(root)
    family = {record_id: _record(record_id, attributes) for record_id, (_, attributes) in FAMILY.items()}
    _write(lake.customers_std, list(family.values()), CANONICAL_SCHEMA)
    _write(lake.gold("golden_customers"), _family_golden_rows(family), GOLDEN_CUSTOMERS_SCHEMA)
    _write(lake.gold("customer_xref"), [_xref_row(r, g) | {"linked_by": "model", "match_probability": 0.99}
                                        for r, (g, _) in FAMILY.items()], CUSTOMER_XREF_SCHEMA)
    everyone = {record_id: _record(record_id, attributes) for record_id, (_, attributes) in RECORDS.items()
                if record_id in CURRENT} | family
    record_fields = [f.name for f in RECORD_STRUCT.fields]
    a, b = sorted(FAMILY_PAIR)
    queued = _scored_pair(everyone, a, b)
    _write(lake.gold("match_candidates"), [dict(
        queued, pair_id=f"{a}|{b}", blocking_rule="email", reason="linked but kept apart",
        record_l={f: everyone[a][f] for f in record_fields}, record_r={f: everyone[b][f] for f in record_fields},
        run_id=RUN_ID,
    )], MATCH_CANDIDATES_SCHEMA)
    golden_of = {r: g for r, (g, _) in (RECORDS | FAMILY).items() if r in everyone}
    scored = [queued] + [
        _scored_pair(everyone, x, y)
        for golden_id in SCORED_GOLDEN
        for x in sorted(r for r, g in golden_of.items() if g == golden_id)
        for y in sorted(r for r, g in golden_of.items() if g == golden_id)
        if x < y
    ]
    pairs = pa.Table.from_pylist([
        {k: row[k] for k in ("record_id_l", "record_id_r", "match_probability", "match_weight")}
        | {"blocking_rule": "email", "run_id": RUN_ID} for row in scored
    ])
    write_deltalake(lake.path("silver", "pairs"), pairs, mode="append")
    return lake
