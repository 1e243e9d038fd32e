"""Tests for the demo departmental-source generator."""

from __future__ import annotations

import csv
import json
import random
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from demo.generator import (
    DemoSummary,
    Phone,
    Person,
    add_typo,
    format_phone_support,
    generate,
    generate_people,
    nickname_of,
    phone_bracketed,
    phone_e164,
    phone_international,
    phone_national,
    plan_appearances,
    strip_accents,
    swap_day_month,
)

CUSTOMERS = 400
SOURCE_FILES = {"sales_crm.db", "billing.db", "support_desk.csv", "webshop_signups.jsonl", "truth.csv"}
ACTIVITY_FILES = {"support_tickets.csv", "webshop_orders.jsonl", "activity_truth.csv"}
CRM_COLUMNS = [
    "contact_id", "first_name", "middle_name", "last_name", "date_of_birth", "gender", "email",
    "phone", "street", "city", "postcode", "country", "updated_at",
]
BILLING_COLUMNS = [
    "acct_no", "title", "forename", "surname", "birth_dt", "email_addr", "tel", "addr_1", "addr_2",
    "town", "post_code", "country_code", "last_modified",
]
SUPPORT_COLUMNS = [
    "ticket_contact_id", "customer_name", "dob", "phone", "email", "city", "postcode", "last_contact",
]
WEBSHOP_KEYS = {"signup_id", "given_name", "family_name", "birthday", "email", "mobile", "address", "created_at"}
ADDRESS_KEYS = {"line1", "line2", "city", "postcode", "country"}


@dataclass(frozen=True)
class Demo:
    summary: DemoSummary
    crm: list[dict[str, Any]]
    billing: list[dict[str, Any]]
    support: list[dict[str, str]]
    webshop: list[dict[str, Any]]
    truth: list[dict[str, str]]

    def entity_of(self) -> dict[tuple[str, str], str]:
        return {(row["source_system"], row["source_key"]): row["entity_id"] for row in self.truth}


def read_table(path: Path, table: str) -> list[dict[str, Any]]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    rows = [dict(row) for row in connection.execute(f"SELECT * FROM {table}")]
    connection.close()
    return rows


def table_columns(path: Path) -> dict[str, list[str]]:
    connection = sqlite3.connect(path)
    tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    columns = {table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")] for table in tables}
    connection.close()
    return columns


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def load(out_dir: Path, summary: DemoSummary) -> Demo:
    return Demo(
        summary=summary,
        crm=read_table(out_dir / "sales_crm.db", "crm_contacts"),
        billing=read_table(out_dir / "billing.db", "billing_accounts"),
        support=read_csv(out_dir / "support_desk.csv"),
        webshop=read_jsonl(out_dir / "webshop_signups.jsonl"),
        truth=read_csv(out_dir / "truth.csv"),
    )


def file_bytes(out_dir: Path) -> dict[str, bytes]:
    return {name: (out_dir / name).read_bytes() for name in SOURCE_FILES | ACTIVITY_FILES}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, generate(out_dir, customers=CUSTOMERS, seed=3)


@pytest.fixture(scope="module")
def demo(demo_dir: tuple[Path, DemoSummary]) -> Demo:
    return load(*demo_dir)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return list(generate_people(random.Random(11), 3000))


# --- files and columns ---------------------------------------------------------


def test_writes_exactly_the_source_and_activity_files(demo_dir: tuple[Path, DemoSummary]) -> None:
    out_dir, summary = demo_dir
    assert {path.name for path in out_dir.iterdir()} == SOURCE_FILES | ACTIVITY_FILES
    assert summary.truth_path == out_dir / "truth.csv"
    assert summary.customers == CUSTOMERS


def test_crm_contacts_have_the_specified_columns(demo_dir: tuple[Path, DemoSummary]) -> None:
    assert table_columns(demo_dir[0] / "sales_crm.db")["crm_contacts"] == CRM_COLUMNS


def test_billing_accounts_have_the_specified_columns(demo_dir: tuple[Path, DemoSummary]) -> None:
    assert table_columns(demo_dir[0] / "billing.db")["billing_accounts"] == BILLING_COLUMNS


def test_support_csv_header_and_row_widths(demo_dir: tuple[Path, DemoSummary]) -> None:
    with (demo_dir[0] / "support_desk.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == SUPPORT_COLUMNS
    assert {len(row) for row in rows[1:]} == {len(SUPPORT_COLUMNS)}


def test_support_names_with_commas_survive_quoting(demo: Demo) -> None:
    inverted = [row["customer_name"] for row in demo.support if ", " in row["customer_name"]]
    assert inverted
    assert all(re.fullmatch(r"[^,]+, [^,]+", name) for name in inverted)


def test_webshop_lines_have_the_specified_keys(demo: Demo) -> None:
    for row in demo.webshop:
        assert WEBSHOP_KEYS - {"birthday"} <= set(row) <= WEBSHOP_KEYS
        assert row["address"] is None or set(row["address"]) == ADDRESS_KEYS
    assert any("birthday" not in row for row in demo.webshop)
    assert any("birthday" in row and row["birthday"] is None for row in demo.webshop)


def test_truth_header(demo_dir: tuple[Path, DemoSummary]) -> None:
    first_line = (demo_dir[0] / "truth.csv").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "source_system,source_key,entity_id"


# --- value formats -------------------------------------------------------------


def all_match(pattern: str, values: list[Any]) -> bool:
    return all(re.fullmatch(pattern, value) for value in values if value)


def test_date_and_time_formats_per_source(demo: Demo) -> None:
    assert all_match(r"\d{4}-\d{2}-\d{2}", [row["date_of_birth"] for row in demo.crm])
    assert all_match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", [row["updated_at"] for row in demo.crm])
    assert all_match(r"\d{2}/\d{2}/\d{4}", [row["birth_dt"] for row in demo.billing])
    assert all_match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", [row["last_modified"] for row in demo.billing])
    assert all_match(r"\d{2}/\d{2}/\d{4}", [row["dob"] for row in demo.support])
    assert all_match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", [row["last_contact"] for row in demo.support])
    assert all_match(r"\d{4}-\d{2}-\d{2}", [row.get("birthday") for row in demo.webshop])
    assert all_match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", [row["created_at"] for row in demo.webshop])


def test_support_dates_are_month_first(demo: Demo) -> None:
    months = [int(row["dob"][:2]) for row in demo.support if row["dob"]]
    days = [int(row["dob"][3:5]) for row in demo.support if row["dob"]]
    assert max(months) <= 12
    assert max(days) > 12


def test_timestamps_are_before_the_reference_date(demo: Demo) -> None:
    stamps = [row["updated_at"] for row in demo.crm] + [row["created_at"] for row in demo.webshop]
    assert all("2018-01-01" <= stamp < "2026-01-01" for stamp in stamps)


def test_coded_values_come_from_the_specified_sets(demo: Demo) -> None:
    assert {row["gender"] for row in demo.crm} <= {"M", "F", "Male", "Female", None}
    assert {row["country"] for row in demo.crm} <= {"United Kingdom", "UK", "GB"}
    assert {row["title"] for row in demo.billing} <= {"Mr", "Mrs", "Ms", "Miss", "Dr", None}
    assert {row["country_code"] for row in demo.billing} == {"GB"}


def test_crm_has_missing_values_and_messy_postcodes(demo: Demo) -> None:
    assert any(row["date_of_birth"] is None for row in demo.crm)
    assert any(row["email"] is None for row in demo.crm)
    postcodes = [row["postcode"] for row in demo.crm if row["postcode"]]
    assert any(code.islower() for code in postcodes)
    assert any(" " not in code for code in postcodes)


def test_webshop_mobiles_are_national_or_e164(demo: Demo) -> None:
    mobiles = [row["mobile"] for row in demo.webshop if row["mobile"]]
    assert all_match(r"(\+447|07)\d{9}", mobiles)


# --- keys and truth ------------------------------------------------------------


def source_keys(demo: Demo) -> list[tuple[str, str]]:
    return (
        [("sales_crm", str(row["contact_id"])) for row in demo.crm]
        + [("billing", str(row["acct_no"])) for row in demo.billing]
        + [("support_desk", row["ticket_contact_id"]) for row in demo.support]
        + [("webshop", row["signup_id"]) for row in demo.webshop]
    )


def test_primary_keys_are_unique(demo: Demo) -> None:
    keys = source_keys(demo)
    assert len(keys) == len(set(keys))


def test_key_formats(demo: Demo) -> None:
    assert all_match(r"SUP-\d{6}", [row["ticket_contact_id"] for row in demo.support])
    assert all_match(r"W-[0-9a-f]{8}", [row["signup_id"] for row in demo.webshop])


def test_truth_covers_every_source_row_exactly_once(demo: Demo) -> None:
    truth_keys = [(row["source_system"], row["source_key"]) for row in demo.truth]
    assert len(truth_keys) == len(set(truth_keys))
    assert sorted(truth_keys) == sorted(source_keys(demo))


def test_truth_has_the_requested_number_of_entities(demo: Demo) -> None:
    assert len({row["entity_id"] for row in demo.truth}) == CUSTOMERS


def test_rows_per_source_matches_the_files(demo: Demo) -> None:
    assert demo.summary.rows_per_source == {
        "sales_crm": len(demo.crm),
        "billing": len(demo.billing),
        "support_desk": len(demo.support),
        "webshop": len(demo.webshop),
    }


def test_about_two_rows_per_customer(demo: Demo) -> None:
    rows = sum(demo.summary.rows_per_source.values())
    assert 1.9 * CUSTOMERS <= rows <= 2.5 * CUSTOMERS


def test_entities_span_sources_and_repeat_within_one(demo: Demo) -> None:
    sources_of: dict[str, list[str]] = defaultdict(list)
    for row in demo.truth:
        sources_of[row["entity_id"]].append(row["source_system"])
    assert any(len(set(sources)) == 4 for sources in sources_of.values())
    assert any(len(set(sources)) == 1 for sources in sources_of.values())
    assert any(len(sources) > len(set(sources)) for sources in sources_of.values())


# --- determinism and overwrite -------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path: Path, demo_dir: tuple[Path, DemoSummary]) -> None:
    generate(tmp_path, customers=CUSTOMERS, seed=3)
    assert file_bytes(tmp_path) == file_bytes(demo_dir[0])


def test_other_seed_gives_different_rows(tmp_path: Path, demo: Demo) -> None:
    other = load(tmp_path, generate(tmp_path, customers=CUSTOMERS, seed=4))
    assert other.crm != demo.crm
    assert other.truth != demo.truth


def test_regenerating_overwrites_previous_output(tmp_path: Path) -> None:
    generate(tmp_path, customers=300, seed=1)
    summary = generate(tmp_path, customers=50, seed=2)
    reloaded = load(tmp_path, summary)
    assert len(reloaded.crm) == summary.rows_per_source["sales_crm"]
    assert len({row["entity_id"] for row in reloaded.truth}) == 50


def test_rejects_fewer_than_one_customer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate(tmp_path, customers=0)


# --- hard cases in the people ----------------------------------------------------


def pairs_sharing(people: list[Person], key: Any) -> list[tuple[Person, Person]]:
    groups: dict[Any, list[Person]] = defaultdict(list)
    for person in people:
        groups[key(person)].append(person)
    return [(group[0], group[1]) for group in groups.values() if len(group) >= 2]


def test_people_have_unique_entity_ids(people: list[Person]) -> None:
    assert len({person.entity_id for person in people}) == len(people) == 3000


def test_twins_share_family_birth_date_address_and_landline(people: list[Person]) -> None:
    twins = [
        (a, b)
        for a, b in pairs_sharing(people, lambda p: (p.contact.family_name, p.birth_date, p.contact.address))
        if a.given_name != b.given_name
    ]
    assert twins
    assert all(a.contact.landline is not None and a.contact.landline == b.contact.landline for a, b in twins)


def test_fathers_and_sons_share_name_and_address_a_generation_apart(people: list[Person]) -> None:
    pairs = pairs_sharing(people, lambda p: (p.given_name, p.contact.family_name, p.contact.address))
    generations = [(a, b) for a, b in pairs if 20 <= abs(a.birth_date.year - b.birth_date.year) <= 35]
    assert generations
    assert any({a.suffix, b.suffix} == {"Jr", "Sr"} for a, b in generations)
    assert all(a.gender == b.gender == "M" for a, b in generations)


def test_namesakes_live_in_the_same_city_with_different_details(people: list[Person]) -> None:
    pairs = pairs_sharing(people, lambda p: (p.given_name, p.contact.family_name, p.contact.address.city))
    namesakes = [
        (a, b) for a, b in pairs if a.contact.address != b.contact.address and a.contact.email != b.contact.email
    ]
    assert namesakes
    assert any(a.birth_date != b.birth_date for a, b in namesakes)


def test_households_share_email_and_address_but_not_given_name(people: list[Person]) -> None:
    households = pairs_sharing(people, lambda p: p.contact.email)
    assert households
    assert all(a.contact.address == b.contact.address for a, b in households)
    assert all(a.given_name != b.given_name and a.entity_id != b.entity_id for a, b in households)


def test_some_women_changed_family_name(people: list[Person]) -> None:
    married = [p for p in people if p.previous and p.previous.family_name != p.contact.family_name]
    assert married
    assert all(p.gender == "F" for p in married)
    assert any(p.previous is not None and p.previous.email == p.contact.email for p in married)


def test_some_people_moved(people: list[Person]) -> None:
    moved = [
        p for p in people if p.previous and p.previous.family_name == p.contact.family_name
    ]
    assert moved
    assert all(p.previous is not None and p.previous.address != p.contact.address for p in moved)


def test_older_rows_show_the_previous_contact(people: list[Person]) -> None:
    rng = random.Random(5)
    with_history = [p for p in people if p.previous]
    checked = 0
    for person in with_history:
        appearances = plan_appearances(rng, person)
        assert [a.when for a in appearances] == sorted(a.when for a in appearances)
        if len(appearances) >= 2:
            assert appearances[0].contact == person.previous
            assert appearances[-1].contact == person.contact
            checked += 1
    assert checked > 10


# --- hard cases in the files -------------------------------------------------------


def family_and_birth_dates(demo: Demo) -> list[tuple[str, str, date]]:
    """(entity, lower-case family name, birth date) from the sources with split names."""
    entity_of = demo.entity_of()
    found = []
    for row in demo.crm:
        if row["date_of_birth"]:
            found.append((entity_of["sales_crm", str(row["contact_id"])], row["last_name"].lower(),
                          date.fromisoformat(row["date_of_birth"])))
    for row in demo.billing:
        if row["birth_dt"]:
            day, month, year = map(int, row["birth_dt"].split("/"))
            family = row["surname"].lower().removesuffix(" jr").removesuffix(" sr").removesuffix(" iii")
            found.append((entity_of["billing", str(row["acct_no"])], family, date(year, month, day)))
    for row in demo.webshop:
        if row.get("birthday"):
            found.append((entity_of["webshop", row["signup_id"]], row["family_name"].lower(),
                          date.fromisoformat(row["birthday"])))
    return found


def test_files_hold_different_people_with_same_family_name_and_birth_date(demo: Demo) -> None:
    entities: dict[tuple[str, date], set[str]] = defaultdict(set)
    for entity, family, birth_date in family_and_birth_dates(demo):
        entities[family, birth_date].add(entity)
    assert any(len(found) >= 2 for found in entities.values())


def test_files_hold_different_people_sharing_an_email(demo: Demo) -> None:
    entity_of = demo.entity_of()
    entities: dict[str, set[str]] = defaultdict(set)
    for row in demo.crm:
        entities[row["email"]].add(entity_of["sales_crm", str(row["contact_id"])])
    for row in demo.billing:
        entities[row["email_addr"]].add(entity_of["billing", str(row["acct_no"])])
    for row in demo.webshop:
        entities[row["email"]].add(entity_of["webshop", row["signup_id"]])
    entities.pop(None, None)
    assert any(len(found) >= 2 for found in entities.values())


def test_files_hold_different_people_with_the_same_full_name(demo: Demo) -> None:
    entity_of = demo.entity_of()
    entities: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in demo.crm:
        entities[row["first_name"].lower(), row["last_name"].lower()].add(
            entity_of["sales_crm", str(row["contact_id"])]
        )
    assert any(len(found) >= 2 for found in entities.values())


# --- noise functions ---------------------------------------------------------------


def test_add_typo_is_one_edit_that_keeps_the_first_letter() -> None:
    rng = random.Random(0)
    typos = [add_typo(rng, "Jennifer") for _ in range(200)]
    assert all(typo[0] == "J" and abs(len(typo) - len("Jennifer")) <= 1 for typo in typos)
    assert {len(typo) for typo in typos} == {7, 8, 9}
    assert sum(typo != "Jennifer" for typo in typos) > 150


def test_add_typo_leaves_very_short_names_alone() -> None:
    assert add_typo(random.Random(0), "Jo") == "Jo"


def test_nickname_of_known_and_unknown_names() -> None:
    rng = random.Random(0)
    assert {nickname_of(rng, "Robert") for _ in range(50)} <= {"Bob", "Rob", "Bobby", "Robbie"}
    assert nickname_of(rng, "Margaret") in {"Maggie", "Peggy", "Meg"}
    assert nickname_of(rng, "Zoë") is None


def test_strip_accents() -> None:
    assert strip_accents("Zoë Müller-Nuñez, Łukasz Søren") == "Zoe Muller-Nunez, Lukasz Soren"


def test_swap_day_month() -> None:
    assert swap_day_month(date(1980, 3, 7)) == date(1980, 7, 3)
    assert swap_day_month(date(1980, 3, 25)) == date(1980, 3, 25)


def test_phone_formats() -> None:
    london = Phone("020", "79460958")
    mobile = Phone("07700", "900123")
    assert phone_national(london) == "020 7946 0958"
    assert phone_bracketed(Phone("0161", "4960000")) == "(0161) 496 0000"
    assert phone_international(mobile) == "+44 7700 900123"
    assert phone_national(mobile) == "07700 900123"
    assert phone_e164(mobile) == "+447700900123"


def test_support_phone_formats() -> None:
    rng = random.Random(0)
    formats = {format_phone_support(rng, Phone("020", "79460958")) for _ in range(60)}
    assert formats == {"(020) 7946-0958", "+44 (0)20 7946 0958", "020-7946-0958"}
