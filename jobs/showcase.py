"""``cdi show``: a few golden records beside the source records they came from, then one customer's
360 view and household.

Reads the published tables with delta-rs (no Spark), as a downstream reader would.
"""

from __future__ import annotations

import pandas as pd
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from config.lake import Lake

SHOWN = ("given_name", "family_name", "birth_date", "email", "phone", "address_line1", "city", "postcode")


def _value(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def showcase(lake: Lake, count: int = 3) -> str:
    golden = DeltaTable(lake.gold("golden_customers")).to_pandas()
    xref = DeltaTable(lake.gold("customer_xref")).to_pandas(columns=["record_id", "golden_id", "linked_by"])
    records = DeltaTable(lake.customers_std).to_pandas(columns=["record_id", "source_system", *SHOWN])
    active = golden[golden["status"] == "active"]
    chosen = active[active["num_records"] >= 3].sort_values("golden_id").head(count)
    lines = [
        f"{len(active)} golden customers from {len(xref)} source records "
        f"({(active['num_records'] > 1).sum()} merged from several records). A few of them:"
    ]
    for row in chosen.itertuples():
        lineage = dict(row.lineage or [])
        lines.append("")
        lines.append(f"golden {row.golden_id}  ({row.num_records} source records)")
        for attribute in SHOWN:
            source = lineage.get(attribute, "")
            lines.append(f"    {attribute:<14} {_value(getattr(row, attribute)):<32} ← {source}")
        members = xref[xref["golden_id"] == row.golden_id].merge(records, on="record_id")
        for member in members.sort_values("record_id").itertuples():
            values = " | ".join(_value(getattr(member, a)) for a in ("given_name", "family_name", "birth_date", "email"))
            lines.append(f"  ◦ {member.record_id:<22} {values}")
    return "\n".join(lines + customer_360_view(lake, golden))


def _table(path: str) -> pd.DataFrame | None:
    try:
        return DeltaTable(path).to_pandas()
    except TableNotFoundError:
        return None


def _amounts(entries: object) -> str:
    return ", ".join(f"{currency} {amount:.2f}" for currency, amount in sorted(entries or [])) or "-"


def _when(moment: object) -> str:
    return "-" if moment is None or pd.isna(moment) else pd.Timestamp(moment).strftime("%Y-%m-%d")


def customer_360_view(lake: Lake, golden: pd.DataFrame, timeline: int = 5) -> list[str]:
    """The 360 view of the active customer most departments know (in a household when one is), or nothing
    when the ``customer_360`` stage has not run."""
    view, households = _table(lake.gold("customer_360")), _table(lake.gold("households"))
    activity = _table(lake.gold("customer_activity"))
    if view is None or households is None or activity is None or view.empty:
        return []
    household_of = {g: row for row in households.itertuples() for g in row.golden_ids}
    view = view.assign(in_household=view["golden_id"].isin(list(household_of)))
    chosen = view.sort_values(["in_household", "department_count", "frequency_365d", "golden_id"],
                              ascending=[False, False, False, True]).iloc[0]
    names = golden.set_index("golden_id")
    name = " ".join(_value(names.at[chosen.golden_id, part]) for part in ("given_name", "family_name")).strip()
    lines = ["", f"One customer across departments: golden {chosen.golden_id} ({name})",
             f"    segment {chosen.segment}, last contact {_when(chosen.last_contact)} "
             f"({'-' if pd.isna(chosen.recency_days) else int(chosen.recency_days)} days before {_when(chosen.as_of)}), "
             f"{chosen.frequency_365d} interactions in the last 365 days, spent {_amounts(chosen.monetary)}, "
             f"{chosen.open_tickets} open tickets, prefers {chosen.preferred_channel or '-'}"]
    for department in chosen.per_department:
        lines.append(f"    {department['source_system']:<14} {department['interactions']:>4} interactions "
                     f"{_when(department['first_interaction'])} → {_when(department['last_interaction'])}  "
                     f"{_amounts(department['amount'])}")
    own = activity[activity["golden_id"] == chosen.golden_id].sort_values("event_time", ascending=False)
    lines.append("  latest activity:")
    for event in own.head(timeline).itertuples():
        amount = "" if event.amount is None or pd.isna(event.amount) else f" {event.currency or ''} {event.amount:.2f}"
        lines.append(f"    {_when(event.event_time)}  {event.source_system:<14} {event.event_type}"
                     f"{' (' + event.status + ')' if event.status else ''}{amount}")
    household = household_of.get(chosen.golden_id)
    if household is not None:
        lines.append(f"  household {household.household_id} (shares {', '.join(household.evidence)}):")
        for member in household.golden_ids:
            member_name = " ".join(_value(names.at[member, p]) for p in ("given_name", "family_name")).strip()
            lines.append(f"    {'*' if member == chosen.golden_id else '◦'} {member}  {member_name}")
    return lines
