"""``cdi show``: a few golden records beside the source records they came from.

Reads the published tables with delta-rs (no Spark), as a downstream reader would.
"""

from __future__ import annotations

import pandas as pd
from deltalake import DeltaTable

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
    return "\n".join(lines)
