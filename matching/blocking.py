"""Blocking: candidate pairs from equi-joins on rule keys, guarded against huge blocks.

Each blocking rule is an equi-join of the records with themselves on the tuple
of its key expressions; a record with a null key takes no part in that rule.

Two guards keep the pairs bounded as the data grows:

- the pair budget (``max_pairs_per_record`` times the record count, at least
  ``min_pair_budget``): a rule whose blocks would give more takes its
  ``refine`` keys, one at a time, until it fits (``refine_rules``). Keys of
  bounded cardinality (a name prefix and a birth year) make a rule's pairs
  grow with the square of the records; the budget keeps the total close to
  linear in them, loose on small data and tighter on big data;
- the huge-block guard: a key value shared by more than ``max_block_size``
  records is split by ``sub_block_key`` and, where a sub-block is still too
  big, skipped with a warning. In a skipped block, records identical on every
  compared attribute are still paired, each with one of them (``n - 1``
  pairs, not ``n (n - 1) / 2``): a file of repeated rows is the plainest
  duplication there is.

Nothing here builds a cross join or collects pairs to the driver; only block
counts per rule and the (few) oversized key values are collected.

The functions read ``records`` several times (block counts, then the join):
cache it beforehand when it is expensive to recompute.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, Literal, NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from matching.compare import comparison_columns
from matching.settings import BlockingRule, MatchSettings
from schemas.arrow import local_frame
from schemas.privacy import mask_key_value

LOGGER = logging.getLogger("cdi.matching.blocking")

_SUB = "__sub"
_SUB_VALUE = "__sub_value"
_BIG = "__big"
# A 64-bit hash modulo this, divided by it, is uniform in [0, 1): doubles hold every integer below it exactly.
_UNIFORM_SCALE = 2**53

GuardAction = Literal["sub_blocked", "skipped"]


@dataclass(frozen=True)
class GuardedBlock:
    """A key value the huge-block guard acted on.

    ``sub_key`` is None for a whole block (sub-blocked, or skipped when there
    is no ``sub_block_key``) and the sub-key value for a skipped sub-block,
    None again for the sub-block of records whose sub-key is null.
    """

    rule: str
    key: tuple[Any, ...]
    size: int
    action: GuardAction
    sub_key: str | None = None


@dataclass(frozen=True)
class BlockSize:
    key: tuple[Any, ...]
    size: int
    status: Literal["ok", "sub_blocked", "skipped"]


@dataclass(frozen=True)
class RuleReport:
    """What one rule would produce on its own, computed from block counts only."""

    rule: str
    keys: tuple[str, ...]
    pairs: int
    blocks: int
    records_keyed: int
    guarded_blocks: int
    largest: tuple[BlockSize, ...]


@dataclass(frozen=True)
class Refinement:
    """A rule over the pair budget, and the refine keys it took (``added``, possibly all and still over)."""

    rule: str
    added: tuple[str, ...]
    pairs_before: int
    pairs_after: int
    budget: int

    @property
    def fits(self) -> bool:
        return self.pairs_after <= self.budget


def _key_names(rule: BlockingRule) -> list[str]:
    return [f"__k{i}" for i in range(len(rule.keys))]


def _keyed(records: DataFrame, rule: BlockingRule, settings: MatchSettings) -> DataFrame:
    """``record_id``, ``source_system``, the rule's key columns and the sub-key value (string).

    Rows with any null key are dropped.
    """
    names = _key_names(rule)
    sub_key = F.lit(None) if settings.sub_block_key is None else F.expr(settings.sub_block_key)
    keyed = records.select(
        "record_id",
        "source_system",
        *[F.expr(key).alias(name) for key, name in zip(rule.keys, names)],
        sub_key.cast("string").alias(_SUB_VALUE),
    )
    return keyed.filter(_all_not_null([F.col(name) for name in names]))


def _union_all(frames: Sequence[DataFrame]) -> DataFrame:
    """The rows of every frame (same columns), in one union."""
    return reduce(DataFrame.unionByName, frames)


def _all_not_null(columns: Sequence[Column]) -> Column:
    return _all_true([column.isNotNull() for column in columns])


def _all_true(conditions: Sequence[Column]) -> Column:
    condition: Column = F.lit(True)
    for each in conditions:
        condition = condition & each
    return condition


def _describe_key(values: tuple[Any, ...], expressions: Sequence[str] = ()) -> str:
    """A block key's values as printed by ``cdi blocking-report``, which a user asks for explicitly.

    Values of key expressions that read ``national_id`` are masked (``•••••6789``).
    """
    masked = [mask_key_value(e, v) for e, v in zip(expressions, values)] + list(values[len(expressions):])
    return repr(tuple(masked))


def key_fingerprint(values: tuple[Any, ...]) -> str:
    """A block key for logs: its values hashed, so logs never carry names or contact details.

    ``cdi blocking-report`` prints the values beside the same fingerprint.
    """
    return "#" + hashlib.sha256(repr(tuple(values)).encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class LevelCount:
    """A rule's blocks at one refine level: the pairs they give (``n(n-1)/2`` summed) and the largest one's records."""

    pairs: int
    largest: int


def _rule_level_pairs(
    records: DataFrame, rules: Sequence[BlockingRule], levels: Mapping[int, int]
) -> dict[tuple[int, int], LevelCount]:
    """Blocks of rule ``i`` at refine level ``levels[i]``, ``(i, level) -> LevelCount``.

    One Spark job: each record's key tuple is hashed (64 bits), and blocks are
    counted by hash. For ``link_only`` the pairs are an upper bound; a hash
    collision can only make a block look bigger.
    """
    keyed: list[DataFrame] = []
    for index, level in levels.items():
        keys = [F.expr(key) for key in rules[index].refined(level).keys]
        keyed.append(
            records.filter(_all_not_null(keys)).select(
                F.lit(index).alias("rule"), F.lit(level).alias("level"), F.xxhash64(*keys).alias("block")
            )
        )
    counts = _union_all(keyed).groupBy("rule", "level", "block").count()
    totals = counts.groupBy("rule", "level").agg(
        F.sum(F.col("count") * (F.col("count") - 1) / 2).alias("pairs"), F.max("count").alias("largest")
    )
    return {(row["rule"], row["level"]): LevelCount(int(row["pairs"]), int(row["largest"])) for row in totals.collect()}


def _counted_levels(
    records: DataFrame, settings: MatchSettings, records_count: int
) -> dict[tuple[int, int], LevelCount]:
    """The blocks ``apply_pair_budget`` and the huge-block guard look at: every rule at level 0, and the next
    level of a rule with refine keys while it is over the budget (none without a budget); one Spark job per
    level reached, so data under the budget costs one."""
    budget = pair_budget(settings, records_count)
    rules = settings.blocking_rules
    pending = {index: 0 for index in range(len(rules))}
    counted: dict[tuple[int, int], LevelCount] = {}
    while pending:
        counted |= _rule_level_pairs(records, rules, pending)
        pending = {
            index: level + 1 for index, level in pending.items()
            if settings.max_pairs_per_record is not None
            and _pairs_at(counted, index, level) > budget and level < len(rules[index].refine)
        }
    return counted


def _pairs_at(counted: Mapping[tuple[int, int], LevelCount], index: int, level: int) -> int:
    found = counted.get((index, level))
    return 0 if found is None else found.pairs


def pair_budget(settings: MatchSettings, records: int) -> int:
    """Pairs a rule may give: ``max_pairs_per_record`` per record, never below ``min_pair_budget``."""
    return max(int((settings.max_pairs_per_record or 0) * records), settings.min_pair_budget)


def budget_levels(settings: MatchSettings, level_pairs: Mapping[tuple[int, int], int], records: int) -> list[int]:
    """Each rule's refine level under the pair budget (pure logic; see ``apply_pair_budget``)."""
    if settings.max_pairs_per_record is None:
        return [0] * len(settings.blocking_rules)
    budget = pair_budget(settings, records)
    levels = []
    for index, rule in enumerate(settings.blocking_rules):
        level = 0
        while level < len(rule.refine) and level_pairs.get((index, level), 0) > budget:
            level += 1
        levels.append(level)
    return levels


def apply_pair_budget(
    settings: MatchSettings, level_pairs: Mapping[tuple[int, int], int], records: int
) -> tuple[MatchSettings, list[Refinement]]:
    """The settings with each rule over the pair budget refined, and what was refined (pure logic).

    ``level_pairs`` maps ``(rule index, refine level)`` to the pairs the rule
    gives at that level (absent: none). The budget is ``max_pairs_per_record``
    times ``records``, but never below ``min_pair_budget``: small data is cheap
    to compare in full, and heavily duplicated small data has many true pairs
    per record. A rule takes its ``refine`` keys one at a time until its pairs
    fit (or it has none left: it then keeps them all, and ``Refinement.fits``
    is false).
    """
    levels = budget_levels(settings, level_pairs, records)
    if not any(levels):
        return settings, []
    budget = pair_budget(settings, records)
    rules: list[BlockingRule] = []
    refinements: list[Refinement] = []
    for index, (rule, level) in enumerate(zip(settings.blocking_rules, levels)):
        rules.append(rule.refined(level))
        if level:
            before, after = level_pairs.get((index, 0), 0), level_pairs.get((index, level), 0)
            refinements.append(Refinement(rule.name, tuple(rule.refine[:level]), before, after, budget))
    return settings.model_copy(update={"blocking_rules": rules}), refinements


# A rule whose keys are present on fewer records than this share can pair few of them.
SPARSE_RULE_SHARE = 0.1


def sparse_rules(
    rules: Sequence[BlockingRule], present: Mapping[str, int], records: int
) -> list[tuple[str, float]]:
    """Rules whose keys read an attribute present on under ``SPARSE_RULE_SHARE`` of the records, with that share.

    ``present`` counts the records holding each attribute (an attribute it lacks
    counts as present everywhere: not measured). The share is an upper bound on
    the records the rule can pair.
    """
    if records <= 0:
        return []
    found = []
    for rule in rules:
        shares = [present.get(a, records) / records for a in rule.attributes if a != "source_system"]
        share = min(shares, default=1.0)
        if share < SPARSE_RULE_SHARE:
            found.append((rule.name, share))
    return found


class RefinedRules(NamedTuple):
    """``refine_rules``' answer: the refined settings, what was refined, and the rules (indices in the
    refined settings) with a block over ``max_block_size``, for ``guarded_candidate_pairs``."""

    settings: MatchSettings
    refinements: list[Refinement]
    big_rules: frozenset[int]


def refine_rules(records: DataFrame, settings: MatchSettings, records_count: int | None = None) -> RefinedRules:
    """``apply_pair_budget`` with the rules' pairs counted on ``records``, refinements logged.

    The same counts find the rules with a huge block at their refined keys, so
    ``guarded_candidate_pairs`` need not count blocks again: a Spark job per
    refine level reached (``_counted_levels``), one when nothing needs refining.
    """
    count = records.count() if records_count is None else records_count
    counted = _counted_levels(records, settings, count)
    pairs = {key: found.pairs for key, found in counted.items()}
    refined, refinements = apply_pair_budget(settings, pairs, count)
    for refinement in refinements:
        LOGGER.warning(
            "blocking rule %r would give %d pairs, over the budget of %d (max_pairs_per_record %s): "
            "refined by %s to %d pairs%s",
            refinement.rule, refinement.pairs_before, refinement.budget, settings.max_pairs_per_record,
            ", ".join(refinement.added), refinement.pairs_after, "" if refinement.fits else ", still over",
        )
    big = frozenset(
        index for index, level in enumerate(budget_levels(settings, pairs, count))
        if counted.get((index, level), LevelCount(0, 0)).largest > settings.max_block_size
    )
    return RefinedRules(refined, refinements, big)


def rules_with_big_blocks(records: DataFrame, rules: Sequence[BlockingRule], limit: int) -> set[int]:
    """Indices of the rules with a key value shared by more than ``limit`` records, found in one Spark job.

    Blocks are counted by a 64-bit hash of the key tuple: a collision can only
    flag a rule that has no big block (``_guard`` then finds none), never miss one.
    """
    keyed = []
    for index, rule in enumerate(rules):
        keys = [F.expr(key) for key in rule.keys]
        present = records.filter(_all_not_null(keys))
        keyed.append(present.select(F.lit(index).alias("rule"), F.xxhash64(*keys).alias("block")))
    if not keyed:
        return set()
    union = _union_all(keyed)
    big = union.groupBy("rule", "block").count().filter(F.col("count") > limit).select("rule").distinct()
    return {row["rule"] for row in big.collect()}


def _guard(
    keyed: DataFrame, rule: BlockingRule, settings: MatchSettings, may_be_big: bool = True
) -> tuple[DataFrame, list[GuardedBlock], DataFrame | None]:
    """Add the sub-key column ``__sub`` ("" outside oversized blocks) and drop what stays too big.

    Returns the kept rows, the guarded blocks, and the rows of the skipped
    blocks (with ``__sub``; None when none was skipped).
    ``may_be_big=False`` (from ``rules_with_big_blocks``) skips the search for big blocks.
    """
    names = _key_names(rule)
    limit = settings.max_block_size
    oversized = keyed.groupBy(*names).count().filter(F.col("count") > limit).collect() if may_be_big else []
    if not oversized:
        return keyed.withColumn(_SUB, F.lit("")), [], None

    spark = keyed.sparkSession
    big = local_frame(spark, [tuple(row[n] for n in names) for row in oversized], keyed.select(*names).schema)
    if settings.sub_block_key is None:
        guarded = [GuardedBlock(rule.name, tuple(row[n] for n in names), row["count"], "skipped") for row in oversized]
        for block in guarded:
            LOGGER.warning(
                "blocking rule %r: key %s has %d records (max_block_size %d) and no sub_block_key: skipped "
                "(records identical on every compared attribute still paired)",
                rule.name, key_fingerprint(block.key), block.size, limit,
            )
        skipped = keyed.join(F.broadcast(big), names, "left_semi").withColumn(_SUB, F.lit(""))
        return keyed.join(F.broadcast(big), names, "left_anti").withColumn(_SUB, F.lit("")), guarded, skipped

    guarded = [GuardedBlock(rule.name, tuple(row[n] for n in names), row["count"], "sub_blocked") for row in oversized]
    for block in guarded:
        LOGGER.warning(
            "blocking rule %r: key %s has %d records (max_block_size %d): sub-blocked by %s",
            rule.name, key_fingerprint(block.key), block.size, limit, settings.sub_block_key,
        )
    flagged = (
        keyed.join(F.broadcast(big.withColumn(_BIG, F.lit(True))), names, "left")
        .withColumn(_SUB, F.when(F.col(_BIG), F.col(_SUB_VALUE)).otherwise(F.lit("")))
        .drop(_BIG)
    )
    still_big = (
        flagged.join(F.broadcast(big), names, "left_semi")
        .groupBy(*names, _SUB).count().filter(F.col("count") > limit).collect()
    )
    if not still_big:
        return flagged, guarded, None
    for row in still_big:
        block = GuardedBlock(rule.name, tuple(row[n] for n in names), row["count"], "skipped", row[_SUB])
        guarded.append(block)
        LOGGER.warning(
            "blocking rule %r: key %s: a sub-block still has %d records (max_block_size %d): skipped "
            "(records identical on every compared attribute still paired)",
            rule.name, key_fingerprint(block.key), block.size, limit,
        )
    skip = local_frame(
        spark,
        [tuple(row[n] for n in [*names, _SUB]) for row in still_big], flagged.select(*names, _SUB).schema
    )
    # A sub-key can be null (no given name): those records are a sub-block of their own, matched null-safely.
    columns = [*names, _SUB]
    on = _all_true([F.col(f"l.{c}").eqNullSafe(F.col(f"r.{c}")) for c in columns])
    skipped = flagged.alias("l").join(F.broadcast(skip.alias("r")), on, "left_semi")
    return flagged.alias("l").join(F.broadcast(skip.alias("r")), on, "left_anti"), guarded, skipped


def _rule_blocks(keyed: DataFrame, rule: BlockingRule, index: int) -> DataFrame:
    """``record_id, source_system, rule, block``: the rule's index and a 64-bit hash of its key and sub-key."""
    return keyed.select(
        "record_id", "source_system", F.lit(index).alias("rule"), F.xxhash64(*_key_names(rule), _SUB).alias("block")
    )


def _pairs_of_blocks(blocks: DataFrame, settings: MatchSettings, new_record_ids: DataFrame | None) -> DataFrame:
    """``record_id_l, record_id_r, rule``: pairs sharing a rule's block, each found once per rule and block.

    Every rule's blocks are joined at once: one join, however many rules. Two
    keys whose 64-bit hashes collide can only add a pair, never lose one.
    """
    left = blocks.withColumnsRenamed({"record_id": "record_id_l", "source_system": "source_system_l"})
    right = blocks.withColumnsRenamed({"record_id": "record_id_r", "source_system": "source_system_r"})
    if new_record_ids is None:
        condition = F.col("record_id_l") < F.col("record_id_r")
    else:
        # Only new records on the left: pairs with at least one new side, each found from its new side.
        left = left.join(new_record_ids.select(F.col("record_id").alias("record_id_l")), "record_id_l", "left_semi")
        condition = F.col("record_id_l") != F.col("record_id_r")
    if settings.link_type == "link_only":
        condition = condition & (F.col("source_system_l") != F.col("source_system_r"))
    return left.join(right, ["rule", "block"]).filter(condition).select("record_id_l", "record_id_r", "rule")


def _identical_pairs(
    skipped: DataFrame, records: DataFrame, settings: MatchSettings, new_record_ids: DataFrame | None
) -> DataFrame:
    """``record_id_l, record_id_r, rule``: in skipped blocks, each record paired with one record identical
    to it on every compared attribute (the lowest id; with ``link_only``, the lowest id of each other source).

    Records with every compared attribute null are not paired: nothing would tell them apart from strangers.
    With ``new_record_ids`` only pairs with a new side are kept.
    """
    columns = comparison_columns(settings)
    sameness = records.filter(F.coalesce(*[F.col(c).cast("string") for c in columns]).isNotNull()).select(
        "record_id", F.sha2(F.to_json(F.struct(*columns)), 256).alias("__same")
    )
    members = skipped.join(sameness, "record_id")
    group = ["rule", "block", "__same"]
    if settings.link_type == "link_only":
        firsts = members.groupBy(*group, F.col("source_system").alias("first_source")).agg(
            F.min("record_id").alias("first")
        )
        pairs = members.join(firsts, group).filter(F.col("source_system") != F.col("first_source"))
    else:
        firsts = members.groupBy(*group).agg(F.min("record_id").alias("first"))
        pairs = members.join(firsts, group).filter(F.col("record_id") != F.col("first"))
    pairs = pairs.select(
        F.least("record_id", "first").alias("record_id_l"), F.greatest("record_id", "first").alias("record_id_r"), "rule"
    )
    if new_record_ids is None:
        return pairs
    new = new_record_ids.select("record_id")
    return pairs.join(new.withColumnRenamed("record_id", "record_id_l"), "record_id_l", "left_semi").unionByName(
        pairs.join(new.withColumnRenamed("record_id", "record_id_r"), "record_id_r", "left_semi")
    )


def guarded_candidate_pairs(
    records: DataFrame,
    settings: MatchSettings,
    new_record_ids: DataFrame | None = None,
    big_rules: frozenset[int] | None = None,
) -> tuple[DataFrame, list[GuardedBlock]]:
    """Candidate pairs and the blocks the huge-block guard sub-blocked or skipped.

    Each pair appears once, ``record_id_l < record_id_r``, with the first rule
    (in settings order) that produced it. With ``new_record_ids`` (a frame with
    ``record_id``) only pairs with at least one new record are produced.
    ``big_rules`` (from ``refine_rules``, counted on the same records) saves
    looking for the rules with a huge block.
    """
    guarded: list[GuardedBlock] = []
    if big_rules is None:
        big_rules = frozenset(rules_with_big_blocks(records, settings.blocking_rules, settings.max_block_size))
    per_rule: list[DataFrame] = []
    skipped: list[DataFrame] = []
    for index, rule in enumerate(settings.blocking_rules):
        keyed, rule_guarded, rule_skipped = _guard(_keyed(records, rule, settings), rule, settings, index in big_rules)
        guarded.extend(rule_guarded)
        per_rule.append(_rule_blocks(keyed, rule, index))
        if rule_skipped is not None:
            skipped.append(_rule_blocks(rule_skipped, rule, index))
    names = local_frame(
        records.sparkSession,
        [(index, rule.name) for index, rule in enumerate(settings.blocking_rules)], "rule int, blocking_rule string"
    )
    found = _pairs_of_blocks(_union_all(per_rule), settings, new_record_ids)
    if skipped:
        found = found.unionByName(_identical_pairs(_union_all(skipped), records, settings, new_record_ids))
    pairs = found.groupBy(
        F.least("record_id_l", "record_id_r").alias("record_id_l"),
        F.greatest("record_id_l", "record_id_r").alias("record_id_r"),
    ).agg(F.min("rule").alias("rule"))
    return pairs.join(F.broadcast(names), "rule").select("record_id_l", "record_id_r", "blocking_rule"), guarded


def _pair_count(n: Column, sum_of_squares: Column, settings: MatchSettings) -> Column:
    """Pairs in a block of ``n`` records (``sum_of_squares`` of per-source counts, for link_only)."""
    if settings.link_type == "link_only":
        return (n * n - sum_of_squares) / 2
    return n * (n - 1) / 2


def blocking_report(records: DataFrame, settings: MatchSettings, largest: int = 5) -> list[RuleReport]:
    """Per rule: pairs it would produce alone (after the guard), block counts, its largest blocks.

    Computed from block-size counts (sum of n*(n-1)/2 per block, or the
    cross-source share for ``link_only``) without materializing any pair.
    """
    limit = settings.max_block_size
    reports = []
    for rule in settings.blocking_rules:
        names = _key_names(rule)
        by_source = (
            _keyed(records, rule, settings).withColumnRenamed(_SUB_VALUE, _SUB)
            .groupBy(*names, _SUB, "source_system").count()
        )
        sub_blocks = by_source.groupBy(*names, _SUB).agg(
            F.sum("count").alias("n"), F.sum(F.col("count") * F.col("count")).alias("sq")
        )
        sub_ok = F.col(_SUB).isNotNull() & (F.col("n") <= limit)
        blocks = sub_blocks.groupBy(*names).agg(
            F.sum("n").alias("n"),
            F.sum("sq").alias("sq"),
            F.sum(F.when(sub_ok, _pair_count(F.col("n"), F.col("sq"), settings)).otherwise(0)).alias("sub_pairs"),
        )
        small = F.col("n") <= limit
        blocks = blocks.withColumns(
            {
                "pairs": F.when(small, _pair_count(F.col("n"), F.col("sq"), settings)).otherwise(F.col("sub_pairs")),
                "status": F.when(small, "ok").otherwise("skipped" if settings.sub_block_key is None else "sub_blocked"),
            }
        )
        totals = blocks.agg(
            F.sum("pairs").alias("pairs"),
            F.count(F.lit(1)).alias("blocks"),
            F.sum("n").alias("records"),
            F.sum(F.when(~small, 1).otherwise(0)).alias("guarded"),
        ).first()
        top = blocks.orderBy(F.col("n").desc()).limit(largest).collect()
        reports.append(
            RuleReport(
                rule=rule.name,
                keys=tuple(rule.keys),
                pairs=int(totals["pairs"] or 0),
                blocks=int(totals["blocks"]),
                records_keyed=int(totals["records"] or 0),
                guarded_blocks=int(totals["guarded"] or 0),
                largest=tuple(BlockSize(tuple(r[n] for n in names), int(r["n"]), r["status"]) for r in top),
            )
        )
    return reports


def format_blocking_report(reports: list[RuleReport]) -> str:
    """A plain-text table for the terminal (``cdi blocking-report``)."""
    lines = [f"{'rule':<28} {'pairs':>14} {'blocks':>10} {'records':>10} {'guarded':>8}  keys"]
    for r in reports:
        lines.append(
            f"{r.rule:<28} {r.pairs:>14,} {r.blocks:>10,} {r.records_keyed:>10,} {r.guarded_blocks:>8,}"
            f"  {', '.join(r.keys)}"
        )
    lines.append(f"{'sum over rules (upper bound)':<28} {sum(r.pairs for r in reports):>14,}")
    for r in reports:
        lines.append("")
        lines.append(f"largest blocks of {r.rule}:")
        for block in r.largest:
            lines.append(f"  {block.size:>10,}  {block.status:<11}  {_describe_key(block.key, r.keys)}  {key_fingerprint(block.key)}")
    return "\n".join(lines)


def format_refinements(refinements: list[Refinement]) -> str:
    """The pair budget's refinements as plain text (``cdi blocking-report``, run logs)."""
    lines = [f"pair budget: {refinements[0].budget:,} pairs per rule"] if refinements else []
    for r in refinements:
        lines.append(
            f"  {r.rule}: {r.pairs_before:,} pairs; refined by {', '.join(r.added)} to {r.pairs_after:,}"
            + ("" if r.fits else " (still over: no refine keys left)")
        )
    return "\n".join(lines)


def possible_pairs(source_sizes: Sequence[int], link_type: str) -> int:
    """Record pairs the link type allows among sources of these sizes: every pair, or cross-source pairs for link_only."""
    total = sum(source_sizes)
    if link_type == "link_only":
        return (total * total - sum(n * n for n in source_sizes)) // 2
    return total * (total - 1) // 2


def _uniform(*columns: Column) -> Column:
    """A number in [0, 1) fixed by the values of ``columns``.

    Stands in for ``F.rand(seed)``, whose draws depend on the partition a row
    is in and its place there, i.e. on the file layout.
    """
    return F.pmod(F.xxhash64(*columns), F.lit(_UNIFORM_SCALE)) / _UNIFORM_SCALE


def random_pairs(
    records: DataFrame, n: int, seed: int, link_only: bool = False, sizes: Sequence[int] | None = None
) -> DataFrame:
    """Up to ``n`` pairs of distinct random records (``record_id_l < record_id_r``) for u estimation.

    Two independently shuffled samples of record ids are zipped by position
    within random buckets (no global sort, no cross join). When ``n`` exceeds
    the record count, several rounds of shuffling are made. With ``link_only``
    only pairs from two different sources are kept (``records`` then needs
    ``source_system``), drawing proportionally more to make up for the rest.
    ``sizes`` (records per source), when known, saves counting them.

    Every draw is a hash of the record id, the round and ``seed``, and of the
    drawn pairs (about 1.2 ``n``) the ``n`` of smallest hash are kept: the
    sample depends on the ids, ``seed`` and ``n`` only, not on how the
    records are partitioned or ordered.
    """
    if sizes is None:
        by_source = ["source_system"] if link_only else []
        sizes = [row["count"] for row in records.groupBy(*by_source).count().collect()]
    total = sum(sizes)
    allowed = possible_pairs(sizes, "link_only" if link_only else "dedupe_only")
    if allowed < 1 or n < 1:
        return local_frame(records.sparkSession, [], "record_id_l string, record_id_r string")
    share = allowed / (total * (total - 1) / 2)
    wanted = 1.2 * n / share  # margin for self-pairs, duplicates, same-source pairs and sampling noise
    rounds = max(1, math.ceil(wanted / total))
    fraction = min(1.0, wanted / (total * rounds))
    buckets = max(1, min(256, math.ceil(wanted / 10_000)))
    source = F.col("source_system") if link_only else F.lit(None).cast("string")

    def shuffled(side: str) -> DataFrame:
        record_id = f"record_id_{side}"
        ids = records.select(F.col("record_id").alias(record_id), source.alias(f"source_{side}"))
        ids = ids.withColumn("round", F.explode(F.sequence(F.lit(0), F.lit(rounds - 1))))

        def draw(purpose: str) -> Column:
            return _uniform(F.lit(seed), F.lit(side), F.lit(purpose), F.col(record_id), F.col("round"))

        ids = ids.filter(draw("sample") < fraction).withColumn("bucket", F.floor(draw("bucket") * buckets))
        order = Window.partitionBy("round", "bucket").orderBy(draw("position"), record_id)
        return ids.withColumn("position", F.row_number().over(order))

    zipped = shuffled("l").join(shuffled("r"), ["round", "bucket", "position"])
    if link_only:
        zipped = zipped.filter(F.col("source_l") != F.col("source_r"))
    drawn = (
        zipped.filter(F.col("record_id_l") != F.col("record_id_r"))
        .select(
            F.least("record_id_l", "record_id_r").alias("record_id_l"),
            F.greatest("record_id_l", "record_id_r").alias("record_id_r"),
        )
        .dropDuplicates()
    )
    first = F.xxhash64(F.lit(seed), "record_id_l", "record_id_r")
    return drawn.orderBy(first, "record_id_l", "record_id_r").limit(n)
