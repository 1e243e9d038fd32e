"""Tests for the demo's departmental activity and its truth."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.pipeline import MappingExpression, load_pipeline_config
from demo.activities import ACTIVITY_SOURCES
from demo.generator import DemoSummary, generate
from demo.layout import REFERENCE_TIME

CUSTOMERS = 1500
REPOSITORY = Path(__file__).resolve().parents[2]

# activity -> (file, table or None for a file, key column, customer key column, time column, time format)
ACTIVITIES: dict[str, tuple[str, str | None, str, str, str, str]] = {
    "crm_opportunities": ("sales_crm.db", "crm_opportunities", "opportunity_id", "contact_id", "created_at",
                          "%Y-%m-%d %H:%M:%S"),
    "crm_campaign_responses": ("sales_crm.db", "crm_campaign_responses", "response_id", "contact_id",
                               "responded_at", "%Y-%m-%d %H:%M:%S"),
    "invoices": ("billing.db", "invoices", "invoice_no", "acct_no", "issued_at", "%Y-%m-%dT%H:%M:%S"),
    "payments": ("billing.db", "payments", "payment_id", "acct_no", "paid_at", "%d/%m/%Y %H:%M"),
    "support_tickets": ("support_tickets.csv", None, "ticket_id", "ticket_contact_id", "opened_at",
                        "%Y-%m-%dT%H:%M:%SZ"),
    "webshop_orders": ("webshop_orders.jsonl", None, "order_id", "signup_id", "ordered_at", "%Y-%m-%dT%H:%M:%S"),
}
COLUMNS = {
    "crm_opportunities": ["opportunity_id", "contact_id", "created_at", "stage", "amount", "currency"],
    "crm_campaign_responses": ["response_id", "contact_id", "responded_at", "campaign", "channel"],
    "invoices": ["invoice_no", "acct_no", "issued_at", "total", "currency", "status"],
    "payments": ["payment_id", "acct_no", "paid_at", "amount", "currency", "method"],
    "support_tickets": ["ticket_id", "ticket_contact_id", "opened_at", "channel", "status", "category"],
    "webshop_orders": ["order_id", "signup_id", "ordered_at", "total", "currency", "channel", "status"],
}
# (file, table, time column, time format) of each customer source row's first write
CUSTOMER_SOURCES = {
    "sales_crm": ("sales_crm.db", "crm_contacts", "contact_id", "updated_at", "%Y-%m-%d %H:%M:%S"),
    "billing": ("billing.db", "billing_accounts", "acct_no", "last_modified", "%Y-%m-%dT%H:%M:%S"),
    "support_desk": ("support_desk.csv", None, "ticket_contact_id", "last_contact", "%Y-%m-%dT%H:%M:%SZ"),
    "webshop": ("webshop_signups.jsonl", None, "signup_id", "created_at", "%Y-%m-%dT%H:%M:%S"),
}
# What the customer sources of generate(customers=400, seed=3) were before activity existed: activity
# must never shift their draws. SQLite files are compared by content (their bytes change with new tables).
CUSTOMER_FINGERPRINTS_SEED_3 = {
    "billing.db:billing_accounts": "6ba1ac54d6ecc7996a73a1f1da2f1e222205cfca65df78dc85207c5adfdab6b8",
    "sales_crm.db:crm_contacts": "a860beeb410728052d920e07d6e3836d59e95014b54b82de56897ffc06477b1e",
    "support_desk.csv": "a31d663a1392b01338dce5f35e2f923cfacc15fb78c758037af62c87abccfbce",
    "truth.csv": "243f221fe175a1b0f9a3ca047aff836f6203d07c64e0d18788cabcf91a5146fe",
    "webshop_signups.jsonl": "bb03fa1d27a995bb37f0e250e4f489575dfbaf42cdefc18bf6204ff7419b75e5",
}


def read_rows(out_dir: Path, file: str, table: str | None) -> list[dict[str, Any]]:
    """A table or file's rows, every value as text (None stays None)."""
    path = out_dir / file
    if table is not None:
        connection = sqlite3.connect(path)
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute(f"SELECT * FROM {table}")]
        connection.close()
    elif file.endswith(".csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    else:
        with path.open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
    return [{k: v if v is None or isinstance(v, (dict, str)) else str(v) for k, v in row.items()} for row in rows]


@dataclass(frozen=True)
class Demo:
    out_dir: Path
    summary: DemoSummary
    activities: dict[str, list[dict[str, Any]]]
    activity_truth: list[dict[str, str]]
    entity_of: dict[tuple[str, str], str]  # (source, source key) -> entity
    first_written: dict[tuple[str, str], datetime]  # (source, source key) -> the row's time

    def activity_entity(self) -> dict[tuple[str, str], str]:
        return {(row["activity"], row["activity_key"]): row["entity_id"] for row in self.activity_truth}


def load(out_dir: Path, summary: DemoSummary) -> Demo:
    truth = read_rows(out_dir, "truth.csv", None)
    first_written = {}
    for source, (file, table, key, column, fmt) in CUSTOMER_SOURCES.items():
        for row in read_rows(out_dir, file, table):
            first_written[source, row[key]] = datetime.strptime(row[column], fmt)
    return Demo(
        out_dir=out_dir,
        summary=summary,
        activities={name: read_rows(out_dir, file, table) for name, (file, table, *_) in ACTIVITIES.items()},
        activity_truth=read_rows(out_dir, "activity_truth.csv", None),
        entity_of={(row["source_system"], row["source_key"]): row["entity_id"] for row in truth},
        first_written=first_written,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out_dir = tmp_path_factory.mktemp("activity")
    return load(out_dir, generate(out_dir, customers=CUSTOMERS, seed=5))


def event_times(demo: Demo, name: str) -> list[datetime]:
    *_, column, fmt = ACTIVITIES[name]
    return [datetime.strptime(row[column], fmt) for row in demo.activities[name]]


def customer_ages(demo: Demo) -> dict[str, tuple[timedelta, timedelta]]:
    """entity -> (age of its first, age of its last activity) at the reference date."""
    entity_of = demo.activity_entity()
    times: dict[str, list[datetime]] = defaultdict(list)
    for name, (_, _, key, *_) in ACTIVITIES.items():
        for row, when in zip(demo.activities[name], event_times(demo, name)):
            entity = entity_of[name, row[key]]
            if entity:
                times[entity].append(when)
    return {entity: (REFERENCE_TIME - min(t), REFERENCE_TIME - max(t)) for entity, t in times.items()}


# --- tables and files ----------------------------------------------------------


def test_activity_tables_and_files_have_the_specified_columns(demo: Demo) -> None:
    for name, rows in demo.activities.items():
        assert rows, name
        assert {tuple(row) for row in rows} == {tuple(COLUMNS[name])}, name


def test_rows_per_activity_matches_the_files(demo: Demo) -> None:
    assert demo.summary.rows_per_activity == {name: len(rows) for name, rows in demo.activities.items()}
    assert demo.summary.activity_truth_path == demo.out_dir / "activity_truth.csv"


def test_activity_keys_are_unique_and_the_truth_covers_each_row_once(demo: Demo) -> None:
    keys = [(name, row[ACTIVITIES[name][2]]) for name, rows in demo.activities.items() for row in rows]
    truth_keys = [(row["activity"], row["activity_key"]) for row in demo.activity_truth]
    assert len(keys) == len(set(keys))
    assert sorted(truth_keys) == sorted(keys)
    assert all(ACTIVITY_SOURCES[row["activity"]] == row["source_system"] for row in demo.activity_truth)


# --- volume ----------------------------------------------------------------------


def test_about_ten_activities_per_customer(demo: Demo) -> None:
    assert 8 * CUSTOMERS <= len(demo.activity_truth) <= 12 * CUSTOMERS


def test_activity_varies_from_none_to_a_great_deal(demo: Demo) -> None:
    per_person = Counter(row["entity_id"] for row in demo.activity_truth if row["entity_id"])
    without = CUSTOMERS - len(per_person)
    assert 0.05 * CUSTOMERS <= without <= 0.35 * CUSTOMERS
    assert max(per_person.values()) >= 50
    assert sum(count <= 3 for count in per_person.values()) >= 0.1 * CUSTOMERS


def test_customers_known_to_all_four_departments_are_active_in_each(demo: Demo) -> None:
    departments: dict[str, set[str]] = defaultdict(set)
    for row in demo.activity_truth:
        departments[row["entity_id"]].add(row["source_system"])
    assert any(len(found) == 4 for entity, found in departments.items() if entity)
    assert any(len(found) == 1 for entity, found in departments.items() if entity)


# --- keys point at the same person ---------------------------------------------


def test_every_activity_is_keyed_to_a_source_row_of_its_own_person(demo: Demo) -> None:
    entity_of = demo.activity_entity()
    checked = 0
    for name, (_, _, key, customer_key, *_) in ACTIVITIES.items():
        source = ACTIVITY_SOURCES[name]
        for row in demo.activities[name]:
            entity = entity_of[name, row[key]]
            if entity:
                assert demo.entity_of[source, row[customer_key]] == entity, (name, row)
                checked += 1
    assert checked > 0.98 * len(demo.activity_truth)


def test_orphans_are_few_and_their_customer_key_is_in_no_source_row(demo: Demo) -> None:
    entity_of = demo.activity_entity()
    orphans = 0
    for name, (_, _, key, customer_key, *_) in ACTIVITIES.items():
        source = ACTIVITY_SOURCES[name]
        for row in demo.activities[name]:
            if not entity_of[name, row[key]]:
                assert (source, row[customer_key]) not in demo.entity_of, (name, row)
                orphans += 1
    assert 0.001 * len(demo.activity_truth) <= orphans <= 0.015 * len(demo.activity_truth)


# --- time --------------------------------------------------------------------------


def test_activity_is_after_the_customer_row_was_written_and_before_the_reference_date(demo: Demo) -> None:
    entity_of = demo.activity_entity()
    for name, (_, _, key, customer_key, *_) in ACTIVITIES.items():
        source = ACTIVITY_SOURCES[name]
        for row, when in zip(demo.activities[name], event_times(demo, name)):
            assert datetime(2018, 1, 1) <= when < REFERENCE_TIME, (name, row)
            if entity_of[name, row[key]]:
                assert when >= demo.first_written[source, row[customer_key]].replace(second=0), (name, row)


def test_every_activity_has_recent_rows(demo: Demo) -> None:
    for name in ACTIVITIES:
        assert any(REFERENCE_TIME - when <= timedelta(days=90) for when in event_times(demo, name)), name


def test_customers_fall_into_every_segment(demo: Demo) -> None:
    """The customer 360's default thresholds: new 90 days, active 180, lapsing 365."""
    segments = Counter()
    for first, last in customer_ages(demo).values():
        if first <= timedelta(days=90):
            segments["new"] += 1
        elif last <= timedelta(days=180):
            segments["active"] += 1
        elif last <= timedelta(days=365):
            segments["lapsing"] += 1
        else:
            segments["lost"] += 1
    assert set(segments) == {"new", "active", "lapsing", "lost"}
    assert min(segments.values()) >= 5


def test_payments_are_written_day_first(demo: Demo) -> None:
    days = [int(row["paid_at"][:2]) for row in demo.activities["payments"]]
    assert max(days) > 12


# --- values --------------------------------------------------------------------------


def values(demo: Demo, name: str, column: str) -> list[Any]:
    return [row[column] for row in demo.activities[name]]


def test_amounts_are_decimal_text_with_two_places_and_mostly_gbp(demo: Demo) -> None:
    for name, column in (("crm_opportunities", "amount"), ("invoices", "total"), ("payments", "amount"),
                         ("webshop_orders", "total")):
        assert all(re.fullmatch(r"[1-9]\d*\.\d{2}", amount) for amount in values(demo, name, column)), name
        currencies = Counter(values(demo, name, "currency"))
        assert set(currencies) == {"GBP", "EUR", "USD"}, name
        assert currencies["GBP"] > 0.8 * sum(currencies.values()), name


def test_coded_values_come_from_the_specified_sets(demo: Demo) -> None:
    expected: dict[tuple[str, str], set[str]] = {
        ("crm_opportunities", "stage"): {"open", "won", "lost"},
        ("crm_campaign_responses", "channel"): {"email", "phone", "web", "post"},
        ("invoices", "status"): {"paid", "overdue", "open"},
        ("payments", "method"): {"card", "direct_debit", "bank_transfer"},
        ("support_tickets", "channel"): {"phone", "email", "chat"},
        ("support_tickets", "status"): {"open", "closed"},
        ("webshop_orders", "channel"): {"web", "app"},
        ("webshop_orders", "status"): {"delivered", "returned", "cancelled"},
    }
    for (name, column), allowed in expected.items():
        assert set(values(demo, name, column)) == allowed, (name, column)


def test_paid_invoices_have_one_payment_each(demo: Demo) -> None:
    paid = Counter((row["acct_no"], row["total"]) for row in demo.activities["invoices"] if row["status"] == "paid")
    payments = Counter((row["acct_no"], row["amount"]) for row in demo.activities["payments"])
    assert paid == payments


# --- determinism and the customer sources -----------------------------------------------


def fingerprint(out_dir: Path) -> dict[str, str]:
    """Hashes of the customer sources: file bytes, and a SQLite table's schema and rows."""
    found = {name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
             for name in ("support_desk.csv", "webshop_signups.jsonl", "truth.csv")}
    for file, table in (("sales_crm.db", "crm_contacts"), ("billing.db", "billing_accounts")):
        connection = sqlite3.connect(out_dir / file)
        digest = hashlib.sha256()
        (schema,) = connection.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        digest.update(schema.encode())
        for row in connection.execute(f"SELECT * FROM {table} ORDER BY rowid"):
            digest.update(repr(row).encode())
        connection.close()
        found[f"{file}:{table}"] = digest.hexdigest()
    return found


def test_activity_leaves_the_customer_sources_as_they_were(tmp_path: Path) -> None:
    generate(tmp_path, customers=400, seed=3)
    assert fingerprint(tmp_path) == CUSTOMER_FINGERPRINTS_SEED_3


def activity_content(out_dir: Path) -> dict[str, Any]:
    return {
        "rows": {name: read_rows(out_dir, file, table) for name, (file, table, *_) in ACTIVITIES.items()},
        "truth": (out_dir / "activity_truth.csv").read_bytes(),
    }


def test_same_seed_gives_the_same_activity_and_another_seed_other(tmp_path: Path) -> None:
    generate(tmp_path / "a", customers=300, seed=8)
    generate(tmp_path / "b", customers=300, seed=8)
    generate(tmp_path / "c", customers=300, seed=9)
    assert activity_content(tmp_path / "a") == activity_content(tmp_path / "b")
    assert activity_content(tmp_path / "a")["truth"] != activity_content(tmp_path / "c")["truth"]


# --- the shipped config -------------------------------------------------------------------


def columns_of(path: Path, table: str | None) -> set[str]:
    if table is not None:
        connection = sqlite3.connect(path)
        found = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        connection.close()
        return found
    return set(read_rows(path.parent, path.name, None)[0])


def test_the_shipped_config_reads_the_demo_activity(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_DATA_DIR", str(demo.out_dir))
    config = load_pipeline_config(REPOSITORY / "conf" / "cdi.yaml")
    assert config.customer_360.as_of == date(2026, 1, 1) == REFERENCE_TIME.date()
    configured = {activity.name: (source, activity) for source in config.sources for activity in source.activities}
    assert {name: source.name for name, (source, _) in configured.items()} == ACTIVITY_SOURCES
    for name, (source, activity) in configured.items():
        _, table, key, customer_key, time_column, _ = ACTIVITIES[name]
        assert (activity.table, activity.primary_key, activity.timestamp) == (table, (key,), time_column), name
        assert activity.customer_key == (customer_key,) == source.primary_key, name
        location = activity.url.removeprefix("jdbc:sqlite:") if activity.url else activity.path
        available = columns_of(Path(location or ""), activity.table)
        mapped = [activity.amount, activity.currency, activity.channel, activity.status]
        assert {column for column in mapped if isinstance(column, str)} <= available, name
        assert isinstance(activity.type, MappingExpression), name
        assert set(activity.columns or available) == available, name
