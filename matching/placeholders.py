"""Placeholder values: what exports write where they have nothing (``00000``, ``1900-01-01``, ``test@test.com``).

Such a value looks real, so two strangers who both carry it agree on it, and a
blocking key on it makes one huge block. It is found from this data's own
value frequencies, not from a list. With an attribute's values sorted by the
number of records holding them, c1 >= c2 >= ..., the values before a gap
(c_j >= ``ratio`` x c_(j+1), among the commonest ``MAX_PER_ATTRIBUTE``, c_j
>= ``min_records``) are held by far more records than the data can explain;
so is a value that alone covers ``max_share`` of the records that have the
attribute. Real values fall off smoothly: the commonest family names of a
country are a few times more frequent than the next ones, not ten times. The
match stage treats placeholders as missing, for blocking and for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from matching.settings import PlaceholderSettings

# At most this many values per attribute are flagged (the commonest first).
MAX_PER_ATTRIBUTE = 20


@dataclass(frozen=True)
class ValueCounts:
    """One attribute's frequency picture: its commonest values and the number of records with a value."""

    top: pd.Series  # value -> records holding it, the MAX_PER_ATTRIBUTE + 1 commonest values
    total: int  # records with a value


@dataclass(frozen=True)
class Placeholder:
    attribute: str
    value: str
    records: int
    share: float  # of the records that have a value for the attribute


def find_placeholders(counts: Mapping[str, ValueCounts], settings: PlaceholderSettings) -> list[Placeholder]:
    """The placeholders of each attribute, commonest first (see the module docstring for the rule)."""
    found: list[Placeholder] = []
    for attribute, picture in counts.items():
        if picture.total <= 0:
            continue
        top = picture.top.astype("int64").sort_values(ascending=False, kind="stable")
        values = list(top.head(MAX_PER_ATTRIBUTE).items())
        # The next value's count; the last distinct value has none, and no gap after it.
        following: list[int | None] = [int(c) for c in top.to_numpy()[1 : MAX_PER_ATTRIBUTE + 1]]
        following += [None] * (len(values) - len(following))
        before_gap = 0
        for j, ((_, records), after) in enumerate(zip(values, following), start=1):
            if after is not None and records >= settings.min_records and records >= settings.ratio * after:
                before_gap = j
        for j, (value, records) in enumerate(values, start=1):
            share = records / picture.total
            if records >= settings.min_records and (j <= before_gap or share >= settings.max_share):
                found.append(Placeholder(attribute, str(value), int(records), float(share)))
    return found


def attribute_value_counts(records: DataFrame, attributes: Sequence[str]) -> dict[str, ValueCounts]:
    """``ValueCounts`` of each attribute (values as strings), from one grouping of the records."""
    present = [a for a in attributes if a in records.columns]
    if not present:
        return {}
    stacked = records.select(
        F.explode(
            F.array(*[F.struct(F.lit(a).alias("attribute"), F.col(a).cast("string").alias("value")) for a in present])
        ).alias("v")
    ).select("v.attribute", "v.value").where(F.col("value").isNotNull())
    counts = stacked.groupBy("attribute", "value").count()
    rank = F.row_number().over(Window.partitionBy("attribute").orderBy(F.desc("count"), "value"))
    total = F.sum("count").over(Window.partitionBy("attribute"))
    rows = (
        counts.select("*", rank.alias("rank"), total.alias("total"))
        .where(F.col("rank") <= MAX_PER_ATTRIBUTE + 1)
        .collect()
    )
    result: dict[str, ValueCounts] = {}
    for attribute in present:
        mine = [row for row in rows if row["attribute"] == attribute]
        top = pd.Series({row["value"]: row["count"] for row in mine}, dtype="int64")
        result[attribute] = ValueCounts(top, int(mine[0]["total"]) if mine else 0)
    return result


def mask_placeholders(records: DataFrame, placeholders: Sequence[Placeholder]) -> DataFrame:
    """``records`` with every placeholder value set to null in its attribute (type kept)."""
    by_attribute: dict[str, list[str]] = {}
    for placeholder in placeholders:
        by_attribute.setdefault(placeholder.attribute, []).append(placeholder.value)
    columns = []
    for field in records.schema.fields:
        column = F.col(field.name)
        if field.name in by_attribute:
            flagged = column.cast("string").isin(*by_attribute[field.name])
            column = F.when(flagged, F.lit(None).cast(field.dataType)).otherwise(column)
        columns.append(column.alias(field.name))
    return records.select(*columns)


def describe(placeholder: Placeholder) -> str:
    """A log line naming the attribute and the share, never the value."""
    return (
        f"{placeholder.attribute}: one value is held by {placeholder.records} records "
        f"({placeholder.share:.1%} of those with a {placeholder.attribute}); treated as missing"
    )
