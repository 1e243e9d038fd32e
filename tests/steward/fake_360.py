"""The ``customer_360`` stage's three gold tables, written with delta-rs onto the fake lake (``fake_lake.build_lake``).

oneill (``ONEILL``) is known to three departments and has ``ONEILL_ACTIVITY``
linked activity rows: dated ones an hour apart, the newest two at the same moment
(the department breaks the tie), two undated (last on the timeline), one with a
status that is HTML. mckenzie has two rows; two more rows link to nobody.
oneill lives with natarajan and with falk, who was erased since (the app must
not show falk). The retired ``G04e1…`` leads to oneill.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from config.lake import Lake
from jobs.customer_360 import CUSTOMER_ACTIVITY_SCHEMA, HOUSEHOLDS_SCHEMA
from matching.customer_360 import CUSTOMER_360_SCHEMA
from schemas.arrow import arrow_schema
from tests.steward.fake_lake import ERASED_GOLDEN, RUN_ID

ONEILL = "G3f2a9c4e1b7d0a53"
ONEILL_RETIRED = "G04e1d8b2c7f9a316"
MCKENZIE = "Gb0ab3d2aae1e71e7"
NATARAJAN = "G71c0e2d94ab3f618"
HOUSEHOLD = "H5c1d2e3f4a5b6c7d"
AS_OF = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
NEWEST = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
DATED = 58  # oneill's dated rows; two more are undated
ONEILL_ACTIVITY = DATED + 2
HTML_STATUS = "<script>alert('status')</script>"
UTC = dt.timezone.utc


def _activity(source_system: str, activity: str, key: str, record_id: str, at: dt.datetime | None,
              golden_id: str | None, **values: Any) -> dict[str, Any]:
    return dict(source_system=source_system, activity=activity, activity_key=key, record_id=record_id, event_time=at,
                event_type=values.get("event_type", activity.rstrip("s")), amount=values.get("amount"),
                currency=values.get("currency"), channel=values.get("channel"), status=values.get("status"),
                golden_id=golden_id, link_status="linked" if golden_id else "unknown_customer",
                value_issues=values.get("value_issues", []), run_id=RUN_ID)


def activity_rows() -> list[dict[str, Any]]:
    """Oneill's rows in no particular order (the store sorts them), mckenzie's, and two orphans."""
    rows = []
    for n in range(DATED):
        source = ("billing", "invoices", "billing:100233") if n % 2 else ("webshop", "orders", "webshop:W-7f3e9a10")
        at = NEWEST - dt.timedelta(hours=max(n - 1, 0))  # k000 and k001 at the same moment
        rows.append(_activity(*source[:2], f"k{n:03d}", source[2], at, ONEILL, amount=Decimal("10.5000") + n,
                              currency="GBP" if n % 2 else "EUR", channel="web"))
    rows.append(_activity("support_desk", "tickets", "T-1", "support_desk:SUP-000311", None, ONEILL,
                          event_type="support_ticket", status="open", value_issues=["event_time: unreadable date"]))
    rows.append(_activity("support_desk", "tickets", "T-2", "support_desk:SUP-000311", None, ONEILL,
                          event_type="support_ticket", status=HTML_STATUS))
    rows.append(_activity("billing", "invoices", "m1", "billing:100009", dt.datetime(2025, 6, 1, tzinfo=UTC), MCKENZIE,
                          amount=Decimal("99.9900"), currency="GBP"))
    rows.append(_activity("sales_crm", "opportunities", "m2", "sales_crm:397", dt.datetime(2025, 5, 1, tzinfo=UTC),
                          MCKENZIE))
    rows.append(_activity("billing", "invoices", "o1", "billing:999", dt.datetime(2026, 1, 1, tzinfo=UTC), None))
    rows.append(_activity("webshop", "orders", "o2", "webshop:W-gone", None, None))
    return rows


def _department(source: str, first: dt.datetime | None, last: dt.datetime | None, interactions: int,
                amount: dict[str, Decimal]) -> dict[str, Any]:
    return dict(source_system=source, first_interaction=first, last_interaction=last, interactions=interactions,
                amount=list(amount.items()))


def view_rows() -> list[dict[str, Any]]:
    oldest = NEWEST - dt.timedelta(hours=DATED - 2)
    oneill = dict(
        golden_id=ONEILL, departments=["billing", "support_desk", "webshop"], department_count=3,
        per_department=[
            _department("billing", oldest, NEWEST, 29, {"GBP": Decimal("1131.5000")}),
            _department("support_desk", None, None, 2, {}),
            _department("webshop", oldest + dt.timedelta(hours=1), NEWEST, 29, {"EUR": Decimal("1102.5000")}),
        ],
        first_contact=oldest, last_contact=NEWEST, recency_days=10, frequency_365d=58,
        monetary=[("EUR", Decimal("1102.5000")), ("GBP", Decimal("1131.5000"))],
        monetary_365d=[("EUR", Decimal("1102.5000")), ("GBP", Decimal("1131.5000"))],
        open_tickets=1, preferred_channel="web", segment="active", content_hash="h-oneill", as_of=AS_OF,
    )
    mckenzie = dict(
        golden_id=MCKENZIE, departments=["billing", "sales_crm"], department_count=2,
        per_department=[
            _department("billing", dt.datetime(2025, 6, 1, tzinfo=UTC), dt.datetime(2025, 6, 1, tzinfo=UTC), 1,
                        {"GBP": Decimal("99.9900")}),
            _department("sales_crm", dt.datetime(2025, 5, 1, tzinfo=UTC), dt.datetime(2025, 5, 1, tzinfo=UTC), 1, {}),
        ],
        first_contact=dt.datetime(2025, 5, 1, tzinfo=UTC), last_contact=dt.datetime(2025, 6, 1, tzinfo=UTC),
        recency_days=548, frequency_365d=0, monetary=[("GBP", Decimal("99.9900"))], monetary_365d=[],
        open_tickets=0, preferred_channel=None, segment="lost", content_hash="h-mckenzie", as_of=AS_OF,
    )
    return [oneill, mckenzie]


def write_customer_360(lake: Lake) -> None:
    """The three tables, as the customer_360 stage would leave them after the fake lake's run."""
    tables = {
        "customer_activity": (activity_rows(), CUSTOMER_ACTIVITY_SCHEMA),
        "customer_360": (view_rows(), CUSTOMER_360_SCHEMA),
        "households": ([dict(household_id=HOUSEHOLD, golden_ids=sorted([ONEILL, NATARAJAN, ERASED_GOLDEN]), size=3,
                             evidence=["family_name", "phone"], run_id=RUN_ID)], HOUSEHOLDS_SCHEMA),
    }
    for name, (rows, schema) in tables.items():
        write_deltalake(lake.gold(name), pa.Table.from_pylist(rows, schema=arrow_schema(schema)), mode="append")
