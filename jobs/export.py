"""``cdi export``: the golden customers of some segments with their 360 figures, to one Parquet or CSV file.

Reads with delta-rs and pyarrow, not Spark: the export is one join of two
tables of at most a million rows (``gold/customer_360`` and the golden
columns), which fits in memory, and its output is a single file a marketing
tool can open, where Spark would write a folder of part files; it also starts
in a second instead of a JVM's ten.

The golden values come from the version of ``gold/golden_customers`` the last
publication marker names (``gold/_publications``): the state a downstream
reader may trust, never a run's half-written one. The file is written beside
its destination and renamed into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from config.errors import ConfigError
from config.lake import Lake
from jobs.customer_360 import VIEW_TABLE

SEGMENTS = ("new", "active", "lapsing", "lost", "none", "undated")  # matching.customer_360._segment
GOLDEN_COLUMNS = ("full_name", "given_name", "middle_name", "family_name", "name_suffix", "email", "phone",
                  "address_line1", "address_line2", "city", "postcode", "region", "country")
VIEW_COLUMNS = ("segment", "recency_days", "frequency_365d", "monetary")
FORMATS = (".parquet", ".csv")


@dataclass(frozen=True)
class Export:
    path: Path
    customers: int
    per_segment: dict[str, int]


def parse_segments(values: list[str]) -> tuple[str, ...]:
    """``--segment`` values (repeated, or comma lists) in ``SEGMENTS`` order; an unknown one is a ConfigError."""
    asked = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(asked - set(SEGMENTS))
    if unknown or not asked:
        raise ConfigError(f"unknown segment(s): {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(SEGMENTS)}")
    return tuple(s for s in SEGMENTS if s in asked)


def check_destination(path: Path, overwrite: bool) -> None:
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"--to {path}: name a .parquet or .csv file")
    if path.exists() and not overwrite:
        raise ConfigError(f"--to {path} exists; give --overwrite to replace it")
    if path.is_dir():
        raise ConfigError(f"--to {path} is a folder")


def published_golden(lake: Lake) -> pa.Table:
    """The active golden customers of the last publication: ``golden_id`` and ``GOLDEN_COLUMNS``."""
    try:
        markers = DeltaTable(lake.gold("_publications")).to_pyarrow_table().to_pylist()
    except TableNotFoundError:
        markers = []
    if not markers:
        raise ConfigError(f"nothing published in {lake.root} yet: run the pipeline first")
    last = max(markers, key=lambda m: (m["published_at"], m["run_id"]))
    golden = DeltaTable(lake.gold("golden_customers"), version=last["golden_customers_version"])
    table = golden.to_pyarrow_table(columns=["golden_id", "status", *GOLDEN_COLUMNS])
    return table.filter(pc.equal(table["status"], "active")).drop_columns(["status"])


def segment_customers(lake: Lake, segments: tuple[str, ...]) -> pa.Table:
    """The published golden customers of ``segments`` with their 360 columns, by golden id."""
    try:
        view = DeltaTable(lake.gold(VIEW_TABLE)).to_pyarrow_table(columns=["golden_id", *VIEW_COLUMNS])
    except TableNotFoundError:
        raise ConfigError(f"no {VIEW_TABLE} table in {lake.root}: run the customer_360 stage first") from None
    chosen = view.filter(pc.is_in(view["segment"], pa.array(segments, pa.string())))
    golden = published_golden(lake)
    # A join by position (Arrow's hash join cannot carry the monetary map column along).
    at = pc.index_in(chosen["golden_id"], value_set=golden["golden_id"])
    found = pc.is_valid(at)
    values = golden.take(at.filter(found)).drop_columns(["golden_id"])
    joined = chosen.filter(found)
    for name in GOLDEN_COLUMNS:
        joined = joined.append_column(name, values[name])
    return joined.select(["golden_id", *GOLDEN_COLUMNS, *VIEW_COLUMNS]).sort_by("golden_id")


def _monetary_as_json(table: pa.Table) -> pa.Table:
    """``monetary`` (currency -> decimal) as JSON text, ``{"GBP": "12.5000"}``: CSV has no map type, and the
    amounts stay exact as text."""
    text = [json.dumps({currency: str(amount) for currency, amount in sorted(entries or [])})
            for entries in table["monetary"].to_pylist()]
    index = table.column_names.index("monetary")
    return table.set_column(index, "monetary", pa.array(text, pa.string()))


# A cell a spreadsheet would run as a formula: =, +, -, @, tab or carriage return first. A number or a phone
# number (digits, spaces, brackets, dots and dashes after an optional sign) is left as it is.
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_NUMBER_OR_PHONE = re.compile(r"^[+-]?[\d\s().-]+$")


def spreadsheet_safe(text: str | None) -> str | None:
    """``text`` with a leading ``'`` when a spreadsheet opening the CSV would run it as a formula (CSV injection)."""
    if text is None or not _FORMULA_START.match(text) or _NUMBER_OR_PHONE.match(text):
        return text
    return "'" + text


def _for_spreadsheets(table: pa.Table) -> pa.Table:
    for index, column in enumerate(table.schema):
        if pa.types.is_string(column.type) and column.name != "monetary":
            values = [spreadsheet_safe(v) for v in table.column(index).to_pylist()]
            table = table.set_column(index, column.name, pa.array(values, pa.string()))
    return table


def export_segments(lake: Lake, segments: tuple[str, ...], path: Path, overwrite: bool = False) -> Export:
    """Write the customers of ``segments`` to ``path`` (its suffix picks Parquet or CSV)."""
    check_destination(path, overwrite)
    table = segment_customers(lake, segments)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if path.suffix.lower() == ".csv":
        pa_csv.write_csv(_for_spreadsheets(_monetary_as_json(table)), partial)
    else:
        pq.write_table(table, partial)
    os.replace(partial, path)
    counts = {row["values"]: row["counts"] for row in pc.value_counts(table["segment"]).to_pylist()}
    return Export(path, len(table), {s: counts.get(s, 0) for s in segments})


def format_export(export: Export) -> str:
    per_segment = ", ".join(f"{segment} {count}" for segment, count in export.per_segment.items())
    return f"{export.customers} customers written to {export.path} ({per_segment})"
