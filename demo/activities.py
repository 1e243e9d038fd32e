"""Demo departmental activity: what the demo's customers did, keyed as each department keys it.

Every customer source row gets a history of events in its own department
(opportunities and campaign responses in the sales CRM, invoices and payments
in billing, tickets at the support desk, orders in the webshop), each row
keyed to that source row's key, so activity reaches the right golden customer
through the pipeline's cross-reference. ``activity_truth.csv`` maps every
activity row to its person; an empty ``entity_id`` marks an orphan: activity
of a customer row the department has since deleted, whose key no customer
source holds, as real systems have.

How much a person does is one draw per person (``engagement``): some do
nothing, a few a great deal, and a person known to all four departments is
active in each. Events follow a Poisson process from the row's first write
until the reference date, or until the customer drifted away, so recent,
fading and long-gone customers all occur.

The randomness comes from its own ``random.Random`` derived from the seed, so
the customer sources are the same with or without activity.
"""

from __future__ import annotations

import csv
import random
from bisect import bisect
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from demo.layout import (
    BILLING,
    HISTORY_START,
    REFERENCE_TIME,
    SALES_CRM,
    SUPPORT_DESK,
    WEBSHOP,
    CsvSink,
    JsonLinesSink,
    Sink,
    SqliteDatabase,
)

OPPORTUNITIES = "crm_opportunities"
CAMPAIGN_RESPONSES = "crm_campaign_responses"
INVOICES = "invoices"
PAYMENTS = "payments"
TICKETS = "support_tickets"
ORDERS = "webshop_orders"
# activity name (as in conf/cdi.yaml, the SQLite table or the file's stem) -> its customer source
ACTIVITY_SOURCES = {
    OPPORTUNITIES: SALES_CRM,
    CAMPAIGN_RESPONSES: SALES_CRM,
    INVOICES: BILLING,
    PAYMENTS: BILLING,
    TICKETS: SUPPORT_DESK,
    ORDERS: WEBSHOP,
}

OPPORTUNITY_COLUMNS = (
    ("opportunity_id", "INTEGER PRIMARY KEY"),
    ("contact_id", "INTEGER"),
    ("created_at", "TEXT"),
    ("stage", "TEXT"),
    ("amount", "TEXT"),
    ("currency", "TEXT"),
)
CAMPAIGN_RESPONSE_COLUMNS = (
    ("response_id", "INTEGER PRIMARY KEY"),
    ("contact_id", "INTEGER"),
    ("responded_at", "TEXT"),
    ("campaign", "TEXT"),
    ("channel", "TEXT"),
)
INVOICE_COLUMNS = (
    ("invoice_no", "TEXT PRIMARY KEY"),
    ("acct_no", "INTEGER"),
    ("issued_at", "TEXT"),
    ("total", "TEXT"),
    ("currency", "TEXT"),
    ("status", "TEXT"),
)
PAYMENT_COLUMNS = (
    ("payment_id", "INTEGER PRIMARY KEY"),
    ("acct_no", "INTEGER"),
    ("paid_at", "TEXT"),
    ("amount", "TEXT"),
    ("currency", "TEXT"),
    ("method", "TEXT"),
)
TICKET_COLUMNS = ("ticket_id", "ticket_contact_id", "opened_at", "channel", "status", "category")
ORDER_KEY = "order_id"  # then signup_id, ordered_at, total, currency, channel, status

TICKETS_FILE = "support_tickets.csv"
ORDERS_FILE = "webshop_orders.jsonl"
ACTIVITY_TRUTH_FILE = "activity_truth.csv"
ACTIVITY_TRUTH_COLUMNS = ("source_system", "activity", "activity_key", "entity_id")

# Events a year at engagement 1; about 10 activity rows per customer in all.
EVENTS_PER_YEAR = {
    OPPORTUNITIES: 0.35,
    CAMPAIGN_RESPONSES: 1.15,
    INVOICES: 0.8,  # each paid invoice also makes a payment
    TICKETS: 0.7,
    ORDERS: 1.85,
}
NO_ACTIVITY_RATE = 0.05
ENGAGEMENT_SHAPE = 1.2  # gamma: most people do a little, a few a great deal
MAX_ENGAGEMENT = 10.0
STILL_ACTIVE_RATE = 0.6  # the others drifted away at some point after their first record
ORPHAN_ROW_RATE = 0.005  # deleted customer rows whose activity stays behind
# Deleted rows are numbered from here, far beyond any row the demo writes,
# and keyed by the source's own scheme, so their keys look real but match no customer.
ORPHAN_FIRST_ROW = 900_000_000

CURRENCIES = ("GBP", "EUR", "USD")
CURRENCY_WEIGHTS = tuple(accumulate((0.90, 0.06, 0.04)))
YEAR = timedelta(days=365.25)
CAMPAIGNS = (
    "Spring Sale", "Summer Newsletter", "Back to School", "Black Friday", "Christmas Offers",
    "New Year Clearance", "Loyalty Rewards", "Product Launch", "Customer Survey", "Webinar Invitation",
)
STAGES = ("open", "won", "lost")
RECENT_STAGE_WEIGHTS = tuple(accumulate((0.6, 0.2, 0.2)))  # opportunities of the last 90 days
STAGE_WEIGHTS = tuple(accumulate((0.1, 0.35, 0.55)))
RESPONSE_CHANNELS = ("email", "phone", "web", "post")
RESPONSE_CHANNEL_WEIGHTS = tuple(accumulate((0.55, 0.10, 0.30, 0.05)))
PAYMENT_METHODS = ("card", "direct_debit", "bank_transfer")
PAYMENT_METHOD_WEIGHTS = tuple(accumulate((0.50, 0.35, 0.15)))
UNPAID_INVOICE_RATE = 0.04
INVOICE_DUE = timedelta(days=30)
TICKET_CHANNELS = ("phone", "email", "chat")
TICKET_CHANNEL_WEIGHTS = tuple(accumulate((0.45, 0.35, 0.20)))
TICKET_CATEGORIES = ("billing", "delivery", "returns", "account", "technical", "complaint")
NEVER_CLOSED_RATE = 0.01
ORDER_STATUSES = ("delivered", "returned", "cancelled")
ORDER_STATUS_WEIGHTS = tuple(accumulate((0.86, 0.08, 0.06)))
RECENT = timedelta(days=90)


@dataclass(frozen=True)
class CustomerRow:
    """A customer source row as written, or a deleted one (``entity_id`` None)."""

    source: str
    key: str
    entity_id: str | None
    since: datetime  # when the department first wrote the row


@dataclass(frozen=True)
class Activity:
    name: str  # one of ACTIVITY_SOURCES
    entity_id: str | None
    values: Any  # column values without the activity key, or a JSON object


def pick(rng: random.Random, options: tuple[str, ...], cum_weights: tuple[float, ...]) -> str:
    """``rng.choices(options, cum_weights=...)[0]``, without its per-call overhead (millions of calls)."""
    return options[bisect(cum_weights, rng.random() * cum_weights[-1])]


def activity_rng(seed: int) -> random.Random:
    """A stream of its own, so activity never shifts the customer sources' draws."""
    return random.Random(f"cdi demo activity {seed}")


def engagement(rng: random.Random) -> float:
    """How active a person is, 1 on average: none for some, up to ten times for a few."""
    if rng.random() < NO_ACTIVITY_RATE:
        return 0.0
    level = rng.gammavariate(ENGAGEMENT_SHAPE, 1 / ENGAGEMENT_SHAPE / (1 - NO_ACTIVITY_RATE))
    return min(level, MAX_ENGAGEMENT)


def active_until(rng: random.Random, since: datetime) -> datetime:
    """The reference date for a customer still active; else a moment they drifted away."""
    if rng.random() < STILL_ACTIVE_RATE:
        return REFERENCE_TIME
    return since + (REFERENCE_TIME - since) * rng.random()


def event_times(rng: random.Random, per_year: float, start: datetime, end: datetime) -> list[datetime]:
    """A Poisson process of ``per_year`` events a year in [start, end), whole seconds, oldest first."""
    times: list[datetime] = []
    if per_year <= 0:
        return times
    per_second = per_year / YEAR.total_seconds()
    span = (end - start).total_seconds()
    offset = rng.expovariate(per_second)
    while offset < span:
        times.append(start + timedelta(seconds=int(offset)))
        offset += rng.expovariate(per_second)
    return times


def amount(rng: random.Random, typical: float, spread: float) -> str:
    """A money amount as decimal text with two places, around ``typical``."""
    return f"{max(rng.lognormvariate(0, spread) * typical, 1.0):.2f}"


def sales_activity(rng: random.Random, customer: CustomerRow, level: float, currency: str) -> list[Activity]:
    contact_id = int(customer.key)
    end = active_until(rng, customer.since)
    found = []
    for created in event_times(rng, level * EVENTS_PER_YEAR[OPPORTUNITIES], customer.since, end):
        if REFERENCE_TIME - created < RECENT:
            stage = pick(rng, STAGES, RECENT_STAGE_WEIGHTS)
        else:
            stage = pick(rng, STAGES, STAGE_WEIGHTS)
        values = (contact_id, created.isoformat(" "), stage, amount(rng, 1500, 1.0), currency)
        found.append(Activity(OPPORTUNITIES, customer.entity_id, values))
    for responded in event_times(rng, level * EVENTS_PER_YEAR[CAMPAIGN_RESPONSES], customer.since, end):
        campaign = f"{rng.choice(CAMPAIGNS)} {responded.year}"
        channel = pick(rng, RESPONSE_CHANNELS, RESPONSE_CHANNEL_WEIGHTS)
        values = (contact_id, responded.isoformat(" "), campaign, channel)
        found.append(Activity(CAMPAIGN_RESPONSES, customer.entity_id, values))
    return found


def billing_activity(rng: random.Random, customer: CustomerRow, level: float, currency: str) -> list[Activity]:
    """Invoices, and a payment for each one paid by the reference date; ``paid_at`` is day-first text."""
    acct_no = int(customer.key)
    end = active_until(rng, customer.since)
    found = []
    for issued in event_times(rng, level * EVENTS_PER_YEAR[INVOICES], customer.since, end):
        total = amount(rng, 60, 0.7)
        paid = issued + timedelta(hours=rng.uniform(1, 40 * 24))
        if rng.random() >= UNPAID_INVOICE_RATE and paid < REFERENCE_TIME:
            status = "paid"
            method = pick(rng, PAYMENT_METHODS, PAYMENT_METHOD_WEIGHTS)
            values = (acct_no, paid.strftime("%d/%m/%Y %H:%M"), total, currency, method)
            found.append(Activity(PAYMENTS, customer.entity_id, values))
        else:
            status = "overdue" if REFERENCE_TIME - issued > INVOICE_DUE else "open"
        values = (acct_no, issued.isoformat(), total, currency, status)
        found.append(Activity(INVOICES, customer.entity_id, values))
    return found


def support_activity(rng: random.Random, customer: CustomerRow, level: float, currency: str) -> list[Activity]:
    """Tickets: closed a few days after opening, except the newest and a few forgotten ones."""
    found = []
    for opened in event_times(rng, level * EVENTS_PER_YEAR[TICKETS], customer.since, active_until(rng, customer.since)):
        closed = opened + timedelta(days=rng.expovariate(1 / 3))
        status = "closed" if closed < REFERENCE_TIME and rng.random() >= NEVER_CLOSED_RATE else "open"
        values = (
            customer.key,
            opened.isoformat() + "Z",
            pick(rng, TICKET_CHANNELS, TICKET_CHANNEL_WEIGHTS),
            status,
            rng.choice(TICKET_CATEGORIES),
        )
        found.append(Activity(TICKETS, customer.entity_id, values))
    return found


def webshop_activity(rng: random.Random, customer: CustomerRow, level: float, currency: str) -> list[Activity]:
    found = []
    app_share = rng.random()  # some people shop on the app, some on the web
    for ordered in event_times(rng, level * EVENTS_PER_YEAR[ORDERS], customer.since, active_until(rng, customer.since)):
        values = {
            "signup_id": customer.key,
            "ordered_at": ordered.isoformat(),
            "total": amount(rng, 40, 0.8),
            "currency": currency,
            "channel": "app" if rng.random() < app_share else "web",
            "status": pick(rng, ORDER_STATUSES, ORDER_STATUS_WEIGHTS),
        }
        found.append(Activity(ORDERS, customer.entity_id, values))
    return found


ActivityPlanner = Callable[[random.Random, CustomerRow, float, str], list[Activity]]
PLANNERS: dict[str, ActivityPlanner] = {
    SALES_CRM: sales_activity,
    BILLING: billing_activity,
    SUPPORT_DESK: support_activity,
    WEBSHOP: webshop_activity,
}


def customer_activity(rng: random.Random, customer: CustomerRow, level: float) -> list[Activity]:
    """One customer row's events; the row's account is in one currency, mostly GBP."""
    currency = pick(rng, CURRENCIES, CURRENCY_WEIGHTS)
    return PLANNERS[customer.source](rng, customer, level, currency)


class ActivityWriter:
    """Writes the six activity tables and ``activity_truth.csv``, one chunk of customer rows at a time.

    The SQLite tables go into the departments' own databases (one writer per
    file); ``customer_keys`` is each customer source's key scheme, used to key
    the deleted rows whose activity is orphaned.
    """

    def __init__(
        self,
        out_dir: Path,
        databases: Mapping[str, SqliteDatabase],
        customer_keys: Mapping[str, Callable[[int], int | str]],
        seed: int,
        stack: ExitStack,
    ) -> None:
        self._rng = activity_rng(seed)
        self._customer_keys = customer_keys
        self._deleted_rows = 0
        crm, billing = databases[SALES_CRM], databases[BILLING]
        tickets = CsvSink(out_dir / TICKETS_FILE, TICKET_COLUMNS, key_of=lambda n: f"T-{n:07d}")
        orders = JsonLinesSink(out_dir / ORDERS_FILE, ORDER_KEY, key_of=lambda n: f"ORD-{n:08d}")
        stack.callback(tickets.close)
        stack.callback(orders.close)
        self.sinks: dict[str, Sink] = {
            OPPORTUNITIES: crm.table(OPPORTUNITIES, OPPORTUNITY_COLUMNS, key_of=lambda n: n),
            CAMPAIGN_RESPONSES: crm.table(CAMPAIGN_RESPONSES, CAMPAIGN_RESPONSE_COLUMNS, key_of=lambda n: n),
            INVOICES: billing.table(INVOICES, INVOICE_COLUMNS, key_of=lambda n: f"INV-{n:07d}"),
            PAYMENTS: billing.table(PAYMENTS, PAYMENT_COLUMNS, key_of=lambda n: n),
            TICKETS: tickets,
            ORDERS: orders,
        }
        self.truth_path = out_dir / ACTIVITY_TRUTH_FILE
        truth_file = stack.enter_context(self.truth_path.open("w", encoding="utf-8", newline=""))
        self._truth = csv.writer(truth_file)
        self._truth.writerow(ACTIVITY_TRUTH_COLUMNS)

    def _deleted_row(self, source: str) -> CustomerRow:
        self._deleted_rows += 1
        key = self._customer_keys[source](ORPHAN_FIRST_ROW + self._deleted_rows)
        since = HISTORY_START + (REFERENCE_TIME - HISTORY_START) * self._rng.random()
        return CustomerRow(source, str(key), None, since.replace(microsecond=0))

    def add(self, customers: list[CustomerRow]) -> None:
        """Write the activity of a chunk of customer rows holding every row of each of its people.

        Shuffled within the chunk, so a person's activity rows are not adjacent.
        """
        rng = self._rng
        levels: dict[str | None, float] = {}
        activities: list[Activity] = []
        for customer in customers:
            if customer.entity_id not in levels:
                levels[customer.entity_id] = engagement(rng)
            activities += customer_activity(rng, customer, levels[customer.entity_id])
            if rng.random() < ORPHAN_ROW_RATE:
                activities += customer_activity(rng, self._deleted_row(customer.source), engagement(rng))
        rng.shuffle(activities)
        for activity in activities:
            key = self.sinks[activity.name].add(activity.values)
            self._truth.writerow((ACTIVITY_SOURCES[activity.name], activity.name, key, activity.entity_id or ""))

    def rows(self) -> dict[str, int]:
        return {name: sink.rows for name, sink in self.sinks.items()}
