"""A full match: every candidate pair scored, a model trained unless one is given, all records clustered."""

from __future__ import annotations


from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.decisions import PAIR
from jobs.delta_io import read_table
from jobs.match_model import (
    collect_term_frequencies,
    RandomPairPatterns,
    comparison_vectors,
    distinct_people,
    source_sizes,
    score_pairs,
    train_model,
)
from jobs.match_silver import cluster_records, clusters_with_lineage, write_table
from jobs.match_state import guard_signature, write_match_state
from jobs.runs import RunContext
from jobs.spark import session_conf
from jobs.steps import step
from matching.blocking import (
    GuardedBlock,
    Refinement,
    guarded_candidate_pairs,
    possible_pairs,
)
from matching.fellegi_sunter import (
    TrainingReport,
)
from matching.model_io import SavedModel
from matching.settings import MatchSettings

# Adaptive execution does not reuse an exchange over a cached relation (its query stages of the cache
# canonicalize apart, SPARK-58767), so the blocking self-join computed and shuffled every rule's blocks
# twice: 11 million rows a side at a million records. Planned statically, both sides read one exchange
# (the candidate pairs of 1M demo records: 38.1 and 41.0 s adaptive, 32.0 and 33.5 s static, alternated).
# Small data (up to STATIC_PLAN_RECORDS records) keeps adaptive execution, whose coalesced partitions
# matter more there.
STATIC_PLAN = {"spark.sql.adaptive.enabled": "false"}
STATIC_PLAN_RECORDS = 20_000


def match_everything(
    spark: SparkSession,
    context: RunContext,
    settings: MatchSettings,
    records: DataFrame,
    decisions: DataFrame,
    saved: SavedModel | None,
    refinements: list[Refinement],
    big_rules: frozenset[int],
    records_count: int,
) -> tuple[SavedModel, list[GuardedBlock], TrainingReport | None]:
    """Score every candidate pair (training a model unless ``saved``) and cluster all records.

    ``settings`` carry the blocking rules as refined for the pair budget (``refinements``); ``big_rules``
    are those with a huge block (see ``matching.blocking.refine_rules``).
    The training report is None when no Fellegi-Sunter model was trained here.
    """
    training = None
    with step(spark, "match.block_compare", "blocking and comparing candidate pairs"):
        pairs, guarded = guarded_candidate_pairs(records, settings, big_rules=big_rules)
        if saved is None:
            sizes = source_sizes(records)
            people = distinct_people(records, settings).persist()
            drawn, drawn_sizes = people, source_sizes(people)
            if possible_pairs(drawn_sizes, settings.link_type) == 0:
                # One person's records only (or one source's, linking): u can be measured on the records alone.
                drawn, drawn_sizes = records, sizes
            frequencies = collect_term_frequencies(drawn, settings)
            random_patterns = RandomPairPatterns(drawn, settings, frequencies, drawn_sizes, record_sizes=sizes)
        else:
            frequencies = saved.term_frequencies
        with session_conf(spark, STATIC_PLAN if records_count > STATIC_PLAN_RECORDS else {}):
            vectors = comparison_vectors(pairs, records, settings, frequencies).localCheckpoint()
    if saved is None:
        with step(spark, "match.train", "training the model"):
            labelled = comparison_vectors(decisions.select(*PAIR), records, settings, frequencies)
            labelled = labelled.join(decisions, PAIR).drop("blocking_rule")
            model, training = train_model(vectors, labelled, settings, random_patterns)
            people.unpersist()
        saved = SavedModel(model, frequencies)

    pairs_path = context.lake.path("silver", "pairs")
    with step(spark, "match.score", "scoring candidate pairs"):
        scored = score_pairs(vectors, saved.model, settings).withColumn("run_id", F.lit(context.run_id))
        write_table(scored, pairs_path)
    with step(spark, "match.cluster", "clustering"):
        clusters = cluster_records(records, read_table(spark, pairs_path), decisions, settings)
        write_table(clusters_with_lineage(clusters, records, context.run_id), context.lake.path("silver", "clusters"))
    write_match_state(spark, context, saved, guard_signature(guarded, refinements))
    return saved, guarded, training
