"""Survivorship: build each golden record from its cluster's member records.

Every canonical attribute is chosen by one rule (``conf/survivorship.yaml``):

| rule            | winner                                  | then ties broken by               |
| --------------- | --------------------------------------- | --------------------------------- |
| source_priority | the most trusted source                 | most recent, record_id            |
| most_recent     | the newest ``updated_at``               | source, record_id                 |
| most_frequent   | the value most members share            | source, most recent, record_id    |
| longest         | the longest string (most complete)      | source, most recent, record_id    |
| first_non_null  | the smallest record_id                  | (record ids are unique)           |

A null never wins over a value; a source missing from ``source_priority``
ranks after every listed one; a record without ``updated_at`` is older than
any dated one. Because record ids are unique, every choice is deterministic.

A *group* (an address, a name) is a unit: one record wins for the whole group
and all its members come from it, nulls included. Its candidates are the
records whose ``key`` member has a value; ``most_frequent`` compares whole
tuples of member values and ``longest`` the summed length of the members.

``golden_attributes`` builds every cluster's golden record in Spark with
``min_by`` over a sort-key struct built from the ``TIE_BREAKS`` table. It is
tested against a plain-Python reference built from the same table
(``tests/matching/survivorship_reference.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from config.yaml_files import parse_model, read_yaml
from schemas.canonical import CANONICAL_ATTRIBUTES, CANONICAL_SCHEMA

Rule = Literal["source_priority", "most_recent", "most_frequent", "longest", "first_non_null"]

# For each rule, the criteria compared in order (each ascending on a key where smaller is better).
TIE_BREAKS: dict[str, tuple[str, ...]] = {
    "source_priority": ("source", "recency", "record_id"),
    "most_recent": ("recency", "source", "record_id"),
    "most_frequent": ("frequency", "source", "recency", "record_id"),
    "longest": ("length", "source", "recency", "record_id"),
    "first_non_null": ("record_id",),
}

STRING_ATTRIBUTES = frozenset(
    f.name for f in CANONICAL_SCHEMA.fields if f.name in CANONICAL_ATTRIBUTES and f.dataType.typeName() == "string"
)
MEMBER_COLUMNS: tuple[str, ...] = ("cluster_id", "record_id", "source_system", "updated_at", *CANONICAL_ATTRIBUTES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_attribute(name: str) -> str:
    if name not in CANONICAL_ATTRIBUTES:
        raise ValueError(f"unknown attribute {name!r}; expected one of {', '.join(CANONICAL_ATTRIBUTES)}")
    return name


def _check_rule_fits(name: str, members: tuple[str, ...], rule: str) -> None:
    if rule == "longest" and not set(members) <= STRING_ATTRIBUTES:
        raise ValueError(f"{name}: rule 'longest' applies to string attributes only")


class AttributeRule(_Strict):
    rule: Rule


class GroupRule(_Strict):
    """Attributes taken together from one record; ``key`` (default: first member) must have a value."""

    members: tuple[str, ...] = Field(min_length=1)
    key: str | None = None
    rule: Rule

    @field_validator("members")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _check_attribute(name)
        if len(set(value)) != len(value):
            raise ValueError("an attribute appears more than once")
        return value

    @field_validator("key")
    @classmethod
    def _key_is_member(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "members" in info.data and value not in info.data["members"]:
            raise ValueError(f"{value!r} is not one of the group's members")
        return value


@dataclass(frozen=True)
class Selection:
    """One resolved choice: the ``members`` taken from the winning record under ``rule``."""

    name: str
    members: tuple[str, ...]
    key: str
    rule: str


class SurvivorshipSettings(_Strict):
    """Validated in declaration order, so ``groups`` and ``default_rule`` can check against ``attributes``."""

    source_priority: tuple[str, ...] = Field(min_length=1)
    attributes: dict[str, AttributeRule] = {}
    groups: dict[str, GroupRule] = {}
    default_rule: Rule = "most_frequent"

    @field_validator("source_priority")
    @classmethod
    def _unique_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = sorted({s for s in value if value.count(s) > 1})
        if duplicates:
            raise ValueError(f"source {duplicates[0]!r} appears more than once")
        return value

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, value: dict[str, AttributeRule]) -> dict[str, AttributeRule]:
        for name, choice in value.items():
            _check_attribute(name)
            _check_rule_fits(name, (name,), choice.rule)
        return value

    @field_validator("groups")
    @classmethod
    def _each_attribute_once(cls, value: dict[str, GroupRule], info: ValidationInfo) -> dict[str, GroupRule]:
        attributes = info.data.get("attributes", {})
        owner: dict[str, str] = {}
        for name, group in value.items():
            for member in group.members:
                if member in owner:
                    raise ValueError(f"{member!r} is in both groups {owner[member]!r} and {name!r}")
                if member in attributes:
                    raise ValueError(
                        f"{member!r} is in group {name!r} and also has its own rule under attributes; "
                        "a group member takes the group's rule"
                    )
                owner[member] = name
            _check_rule_fits(name, group.members, group.rule)
        return value

    @field_validator("default_rule")
    @classmethod
    def _default_fits(cls, value: str, info: ValidationInfo) -> str:
        if "attributes" in info.data and "groups" in info.data:
            covered = set(info.data["attributes"]) | {m for g in info.data["groups"].values() for m in g.members}
            for attribute in CANONICAL_ATTRIBUTES:
                if attribute not in covered:
                    _check_rule_fits(attribute, (attribute,), value)
        return value

    def selections(self) -> tuple[Selection, ...]:
        """Every canonical attribute in exactly one selection: the groups, then one per other attribute."""
        chosen = [Selection(name, g.members, g.key or g.members[0], g.rule) for name, g in self.groups.items()]
        grouped = {m for g in self.groups.values() for m in g.members}
        for attribute in CANONICAL_ATTRIBUTES:
            if attribute not in grouped:
                rule = self.attributes[attribute].rule if attribute in self.attributes else self.default_rule
                chosen.append(Selection(attribute, (attribute,), attribute, rule))
        return tuple(chosen)


def load_survivorship(path: Path | str) -> SurvivorshipSettings:
    """Parse ``conf/survivorship.yaml``; a ConfigError names the file and the key."""
    return parse_model(SurvivorshipSettings, read_yaml(path), path)


def golden_attributes(members: DataFrame, settings: SurvivorshipSettings) -> DataFrame:
    """One row per ``cluster_id``: the surviving attributes, ``lineage`` and ``num_records``.

    ``members`` are customers_std rows plus ``cluster_id``. Rows are
    repartitioned by cluster once; the frequency windows (partitioned by
    cluster and value) and the final aggregate then need no further shuffle.
    """
    missing = [c for c in MEMBER_COLUMNS if c not in members.columns]
    if missing:
        raise ValueError(f"members: missing column(s) {', '.join(missing)}")
    frame = members.repartition("cluster_id")
    selections = settings.selections()
    winners = []
    for index, selection in enumerate(selections):
        frequency = f"_frequency{index}"
        if "frequency" in TIE_BREAKS[selection.rule]:
            frame = frame.withColumn(
                frequency, F.count(F.lit(1)).over(Window.partitionBy("cluster_id", *selection.members))
            )
        winner = F.struct(F.col("record_id"), *[F.col(m) for m in selection.members])
        key = _spark_sort_key(selection, frequency, settings.source_priority)
        winners.append(F.min_by(winner, key).alias(f"_winner{index}"))
    grouped = frame.groupBy("cluster_id").agg(F.count(F.lit(1)).cast("int").alias("num_records"), *winners)
    attribute_columns: dict[str, Column] = {}
    lineage_entries: list[Column] = []
    for index, selection in enumerate(selections):
        winner_column = F.col(f"_winner{index}")
        for member in selection.members:
            value = winner_column.getField(member)
            attribute_columns[member] = value.alias(member)
            lineage_entries += [F.lit(member), F.when(value.isNotNull(), winner_column.getField("record_id"))]
    lineage = F.map_filter(F.create_map(*lineage_entries), lambda _, record: record.isNotNull())
    return grouped.select(
        "cluster_id",
        *[attribute_columns[a] for a in CANONICAL_ATTRIBUTES],
        lineage.alias("lineage"),
        "num_records",
    )


def _spark_sort_key(selection: Selection, frequency: str, priority: Sequence[str]) -> Column:
    """The sort key of ``selection.rule``'s ``TIE_BREAKS``; null (never chosen by ``min_by``) when the key is null."""
    parts: list[Column] = []
    for criterion in TIE_BREAKS[selection.rule]:
        if criterion == "frequency":
            parts.append(-F.col(frequency))
        elif criterion == "length":
            lengths = [F.coalesce(F.length(m), F.lit(0)) for m in selection.members]
            parts.append(-reduce(lambda a, b: a + b, lengths))
        elif criterion == "source":
            position = F.array_position(F.array(*[F.lit(s) for s in priority]), F.col("source_system"))
            parts.append(F.when(position == 0, F.lit(len(priority) + 1)).otherwise(position))
        elif criterion == "recency":
            parts += [F.col("updated_at").isNull(), -F.coalesce(F.unix_micros("updated_at"), F.lit(0))]
        else:
            parts.append(F.col("record_id"))
    key = F.struct(*[part.alias(f"k{i}") for i, part in enumerate(parts)])
    return F.when(F.col(selection.key).isNotNull(), key)


STEWARD_LINEAGE = "steward:"  # lineage of an overridden attribute: "steward:<decision_id>"


def _versions(record_ids: Column, record_hashes: Column) -> Column:
    """The sorted ``record_id|record_hash`` strings of two parallel arrays."""
    return F.array_sort(F.zip_with(record_ids, record_hashes, lambda r, h: F.concat_ws("|", r, h)))


def apply_overrides(attributes: DataFrame, members: DataFrame, overrides: DataFrame) -> DataFrame:
    """``attributes`` (``golden_attributes``' rows) with the steward overrides that still hold put in.

    ``members``: ``cluster_id, record_id, record_hash``, the records of each
    cluster now. ``overrides``: ``cluster_id, attribute, value, record_ids,
    record_hashes, decision_id``, at most one per cluster and attribute, the
    value as text (a date ``YYYY-MM-DD``). An override holds while its
    cluster's records are exactly ``record_ids``, each still at the
    ``record_hash`` it had when the steward decided: once a source changes,
    adds or removes a record, survivorship's own choice comes back. The
    overridden attribute's lineage is ``steward:<decision_id>``.
    """
    current = members.groupBy("cluster_id").agg(
        F.array_sort(F.collect_list(F.concat_ws("|", "record_id", "record_hash"))).alias("_now")
    )
    held = (
        overrides.join(current, "cluster_id")
        .where(F.col("_now") == _versions(F.col("record_ids"), F.col("record_hashes")))
        .groupBy("cluster_id")
        .agg(
            F.map_from_entries(F.collect_list(F.struct("attribute", "value"))).alias("_values"),
            F.map_from_entries(
                F.collect_list(F.struct("attribute", F.concat(F.lit(STEWARD_LINEAGE), "decision_id")))
            ).alias("_sources"),
        )
    )
    types = {f.name: f.dataType for f in CANONICAL_SCHEMA.fields}
    joined = attributes.join(held, "cluster_id", "left")
    kept_lineage = F.map_filter("lineage", lambda attribute, _: ~F.array_contains(F.map_keys("_sources"), attribute))
    overridden = {
        a: F.coalesce(F.col("_values").getItem(a).cast(types[a]), F.col(a)).alias(a) for a in CANONICAL_ATTRIBUTES
    }
    overridden["lineage"] = (
        F.when(F.col("_sources").isNull(), F.col("lineage")).otherwise(F.map_concat(kept_lineage, "_sources")).alias("lineage")
    )
    return joined.select(*[overridden.get(c, F.col(c)) for c in attributes.columns])
