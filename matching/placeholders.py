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

One person's records repeated many times also make such a value (800 copies of
one record: every value is held by all of them). What tells the two apart is
whether the records holding the value agree elsewhere: a placeholder is shared
by strangers, whose names differ, while one person's copies agree on their name
and on every other attribute most of them have. A candidate whose holders do
(``held_by_one_person``) is kept as that person's value.
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

# A candidate's holders are one person's records only when they agree on one of these.
NAME_ATTRIBUTES = ("given_name", "family_name", "full_name")

# Holders "agree" on an attribute when its commonest value among them is held by this share of
# those that have it; an attribute most of them lack is not asked.
AGREEMENT_SHARE = 0.5


@dataclass(frozen=True)
class ValueCounts:
    """One attribute's frequency picture: its commonest values and the number of records with a value."""

    top: pd.Series  # value -> records holding it, the MAX_PER_ATTRIBUTE + 1 commonest values
    total: int  # records with a value
    # Where ``top`` holds fewer values than that because rarer ones were left out (``attribute_value_counts``'
    # ``floor``): the records holding the commonest value left out, None when there is none.
    next_count: int | None = None


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
        if len(following) < len(values) and picture.next_count is not None:
            following.append(picture.next_count)
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


@dataclass(frozen=True)
class Agreement:
    """How the records holding one candidate value agree on another attribute."""

    commonest: int  # holders with the commonest value of the attribute
    present: int  # holders with any value of it


def held_by_one_person(holders: int, agreements: Mapping[str, Agreement]) -> bool:
    """True when the ``holders`` records of a candidate agree on a name and on every attribute most of them have.

    ``agreements`` covers the attributes other than the candidate's own. Without a
    name most holders have there is no evidence they are one person, and the
    value stays a placeholder.
    """
    asked = {a: g for a, g in agreements.items() if g.present > 0 and 2 * g.present >= holders}
    if not any(a in NAME_ATTRIBUTES for a in asked):
        return False
    return all(g.commonest >= AGREEMENT_SHARE * g.present for g in asked.values())


def holder_agreements(
    records: DataFrame, candidates: Sequence[Placeholder], attributes: Sequence[str]
) -> list[dict[str, Agreement]]:
    """For each candidate, how its holders agree on each of ``attributes`` but its own (one query)."""
    present = [a for a in dict.fromkeys(attributes) if a in records.columns]
    if not candidates or not present:
        return [{} for _ in candidates]
    held = [
        F.when(F.col(c.attribute).cast("string") == F.lit(c.value), F.lit(i))
        for i, c in enumerate(candidates)
    ]
    values = F.array(*[F.struct(F.lit(a).alias("attribute"), F.col(a).cast("string").alias("value")) for a in present])
    holders = (
        records.select(F.array_compact(F.array(*held)).alias("held"), values.alias("values"))
        .where(F.size("held") > 0)
        .select(F.explode("held").alias("candidate"), "values")
        .select("candidate", F.explode("values").alias("v"))
        .select("candidate", "v.attribute", "v.value")
        .where(F.col("value").isNotNull())
    )
    rows = (
        holders.groupBy("candidate", "attribute", "value").count()
        .groupBy("candidate", "attribute")
        .agg(F.max("count").alias("commonest"), F.sum("count").alias("present"))
        .collect()
    )
    result: list[dict[str, Agreement]] = [{} for _ in candidates]
    for row in rows:
        if row["attribute"] != candidates[row["candidate"]].attribute:
            result[row["candidate"]][row["attribute"]] = Agreement(int(row["commonest"]), int(row["present"]))
    return result


def attribute_value_counts(records: DataFrame, attributes: Sequence[str], floor: int = 1) -> dict[str, ValueCounts]:
    """``ValueCounts`` of each attribute (values as strings), from one grouping of the records.

    Only values held by at least ``floor`` records are ranked; below it only the
    commonest one's count is kept (``next_count``). ``find_placeholders`` with
    ``min_records`` as the floor finds what it finds from the full ranking, as
    no rarer value can be a placeholder: ranking just the common values spares
    sorting every distinct value (a million emails at a million records).
    """
    present = [a for a in attributes if a in records.columns]
    if not present:
        return {}
    stacked = records.select(
        F.explode(
            F.array(*[F.struct(F.lit(a).alias("attribute"), F.col(a).cast("string").alias("value")) for a in present])
        ).alias("v")
    ).select("v.attribute", "v.value").where(F.col("value").isNotNull())
    counts = stacked.groupBy("attribute", "value").count()
    totals = counts.groupBy("attribute").agg(
        F.sum("count").alias("total"), F.max(F.when(F.col("count") < floor, F.col("count"))).alias("next_count")
    )
    rank = F.row_number().over(Window.partitionBy("attribute").orderBy(F.desc("count"), "value"))
    top = (
        counts.where(F.col("count") >= floor)
        .select("*", rank.alias("rank"))
        .where(F.col("rank") <= MAX_PER_ATTRIBUTE + 1)
    )
    rows = totals.join(top, "attribute", "left").collect()
    result: dict[str, ValueCounts] = {}
    for attribute in present:
        mine = sorted((row for row in rows if row["attribute"] == attribute), key=lambda row: row["rank"] or 0)
        ranked = [row for row in mine if row["value"] is not None]
        values = pd.Series({row["value"]: row["count"] for row in ranked}, dtype="int64")
        below = mine[0]["next_count"] if mine and len(ranked) <= MAX_PER_ATTRIBUTE else None
        result[attribute] = ValueCounts(values, int(mine[0]["total"]) if mine else 0, below)
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


def describe_one_person(placeholder: Placeholder) -> str:
    """A log line for a common value whose holders agree elsewhere, naming the attribute, never the value."""
    return (
        f"{placeholder.attribute}: one value is held by {placeholder.records} records "
        f"({placeholder.share:.1%} of those with a {placeholder.attribute}) that agree on their name and "
        "the rest: kept as one person's"
    )
