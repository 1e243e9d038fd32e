"""The ``match`` stage: block, compare, classify, cluster.

Reads ``customers_std``; writes ``silver/pairs`` (every scored candidate pair
with its comparison levels and match weights), ``silver/clusters`` (each
record's cluster, connected component and the ``record_hash`` it was
clustered with), ``silver/match_model`` (the model the pairs were scored with)
and the model as ``model.json`` in the run folder.

A full run trains a model (or loads ``--model``) and scores every candidate
pair. An incremental run (``cdi run --incremental`` with a model from an
earlier full run) scores only the pairs of records that are new or changed
since the clusters were computed, with that earlier model and its frozen term
frequencies; it replaces those records' pairs in one MERGE and re-clusters
only the connected components they touch. Both give the same pairs and
clusters on the same data with the same model. When the huge-block guard now
acts on other blocks than at the full run (pairs between unchanged records
would differ), the run falls back to scoring everything with that model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.decisions import steward_pair_decisions
from jobs.delta_io import read_table
from jobs.match_full import match_everything
from jobs.match_incremental import match_changed
from jobs.match_state import last_match_state, silver_goes_with
from jobs.runs import RunContext
from jobs.steps import step
from matching.blocking import (
    GuardedBlock,
    Refinement,
    key_fingerprint,
    refine_rules,
    sparse_rules,
)
from matching.fellegi_sunter import (
    TrainingReport,
)
from matching.model_io import SavedModel, misfits, saved_model_from_json
from matching.placeholders import (
    NAME_ATTRIBUTES,
    Placeholder,
    attribute_value_counts,
    find_placeholders,
    held_by_one_person,
    holder_agreements,
    mask_placeholders,
)
from matching.placeholders import describe as describe_placeholder
from matching.placeholders import describe_one_person
from matching.settings import MatchSettings
from schemas.canonical import MATCH_ONLY_ATTRIBUTES

log = logging.getLogger("cdi.match")


@dataclass
class MatchOutcome:
    records: int
    candidate_pairs: int
    linked_pairs: int
    review_pairs: int
    clusters: int
    multi_record_clusters: int
    flagged_clusters: int
    model_kind: str
    guarded_blocks: list[GuardedBlock] = field(default_factory=list)
    refinements: list[Refinement] = field(default_factory=list)
    changed_records: int | None = None  # set by an incremental run: records new or changed since the last match
    placeholders: list[Placeholder] = field(default_factory=list)
    training: TrainingReport | None = None  # set when this run trained a Fellegi-Sunter model
    sparse_rules: list[tuple[str, float]] = field(default_factory=list)  # rules whose keys few records have


def with_match_only_attributes(stored: DataFrame) -> DataFrame:
    """``customers_std`` with every ``MATCH_ONLY_ATTRIBUTES`` column, null where a lake written before it lacks it."""
    missing = [F.lit(None).cast("string").alias(a) for a in MATCH_ONLY_ATTRIBUTES if a not in stored.columns]
    return stored.select("*", *missing) if missing else stored


def run_match(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    run_dir: Path,
    model: SavedModel | None = None,
) -> MatchOutcome:
    """Match all records, or with ``context.incremental`` the changed ones; ``model`` scores instead of training."""
    stored = with_match_only_attributes(read_table(spark, context.lake.customers_std))
    key_attributes = sorted(set().union(*(rule.attributes for rule in settings.blocking_rules)) - {"source_system"})
    with step(spark, "match.placeholders", "looking for placeholder values"):
        counts = attribute_value_counts(
            stored, sorted({*settings.placeholders.attributes, *key_attributes}), settings.placeholders.min_records
        )
    candidates = find_placeholders(
        {a: c for a, c in counts.items() if a in settings.placeholders.attributes}, settings.placeholders
    )
    if candidates:
        with step(spark, "match.placeholder_holders", "checking whether common values are one person's"):
            agreements = holder_agreements(stored, candidates, [*settings.placeholders.attributes, *NAME_ATTRIBUTES])
    else:
        agreements = []
    placeholders = []
    for candidate, agreement in zip(candidates, agreements):
        if held_by_one_person(candidate.records, agreement):
            log.info("not a placeholder: %s", describe_one_person(candidate))
        else:
            placeholders.append(candidate)
    for placeholder in placeholders:
        log.warning("placeholder value: %s", describe_placeholder(placeholder))
    records = mask_placeholders(stored, placeholders).persist()
    present = {a: c.total for a, c in counts.items()}
    for placeholder in placeholders:
        present[placeholder.attribute] -= placeholder.records
    with step(spark, "match.records"):
        record_count = records.count()
        decisions = steward_pair_decisions(spark, context).localCheckpoint()
    sparse = sparse_rules(settings.blocking_rules, present, record_count)
    with step(spark, "match.refine", "counting pairs per blocking rule"):
        settings, refinements, big_rules = refine_rules(records, settings, record_count)
    state = last_match_state(spark, context) if context.incremental and model is None else None
    problems = misfits(saved_model_from_json(state["model_json"]).model, settings) if state is not None else []
    if problems:
        log.warning("incremental match: the last full match's model does not fit the comparison settings (%s); "
                    "training a new one on all records", "; ".join(problems))
        state = None
    if state is not None and not silver_goes_with(spark, context, state):
        log.warning("incremental match: the silver tables changed since the last match finished; "
                    "scoring all pairs with its model")
        incremental = None
    else:
        incremental = match_changed(spark, context, settings, records, decisions, state, refinements, big_rules) if state else None
    if incremental is not None:
        saved, guarded, changed = incremental
        training = None
    else:
        if model is not None:
            given = model
        elif state is not None:
            given = saved_model_from_json(state["model_json"])
        else:
            if context.incremental and not problems:
                log.warning("incremental match: no model from an earlier full match; training one on all records")
            given = None
        saved, guarded, training = match_everything(
            spark, context, settings, records, decisions, given, refinements, big_rules, record_count
        )
        changed = None
    for block in guarded:
        log.warning(
            "blocking rule %r: a block of %d records was %s (key %s; values in cdi blocking-report)",
            block.rule, block.size, block.action.replace("_", "-"), key_fingerprint(block.key),
        )
    (run_dir / "model.json").write_text(saved.to_json())
    notes = {
        "placeholders": [{"attribute": p.attribute, "records": p.records, "share": p.share} for p in placeholders],
        "sparse_rules": [{"rule": name, "share": share} for name, share in sparse],
        "training": asdict(training) if training else None,
    }
    (run_dir / "matching.json").write_text(json.dumps(notes, indent=2))
    with step(spark, "match.outcome"):
        outcome = _outcome(spark, context, settings, record_count, saved, guarded, refinements, changed)
    outcome = replace(outcome, placeholders=placeholders, training=training, sparse_rules=sparse)
    records.unpersist()
    return outcome


def _outcome(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    record_count: int,
    saved: SavedModel,
    guarded: list[GuardedBlock],
    refinements: list[Refinement],
    changed: int | None,
) -> MatchOutcome:
    scored = read_table(spark, context.lake.path("silver", "pairs"))
    clusters = read_table(spark, context.lake.path("silver", "clusters"))
    pair_stats = scored.agg(
        F.count(F.lit(1)).alias("pairs"),
        F.sum((F.col("match_probability") >= settings.thresholds.match).cast("int")).alias("linked"),
        F.sum(
            ((F.col("match_probability") >= settings.thresholds.review) & (F.col("match_probability") < settings.thresholds.match)).cast("int")
        ).alias("review"),
    )
    sizes = clusters.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("n"), F.max("cluster_flag").alias("flag"))
    cluster_stats = sizes.agg(
        F.count(F.lit(1)).alias("clusters"),
        F.sum((F.col("n") > 1).cast("int")).alias("multi"),
        F.sum(F.col("flag").isNotNull().cast("int")).alias("flagged"),
    )
    # Two one-row aggregates, read back in one query.
    stats = pair_stats.crossJoin(cluster_stats).first()
    return MatchOutcome(
        records=record_count,
        candidate_pairs=stats["pairs"],
        linked_pairs=stats["linked"] or 0,
        review_pairs=stats["review"] or 0,
        clusters=stats["clusters"],
        multi_record_clusters=stats["multi"] or 0,
        flagged_clusters=stats["flagged"] or 0,
        model_kind=type(saved.model).__name__,
        guarded_blocks=guarded,
        refinements=refinements,
        changed_records=changed,
    )
