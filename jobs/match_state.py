"""``silver/match_model``: the model of the last match and the silver table versions it goes with.

Written after silver/pairs and silver/clusters, in one commit: a match that
fails part-way leaves the last state (and its model) in place, and the next
incremental run sees from the versions that the silver tables moved on.
"""

from __future__ import annotations

import json

from pyspark.sql import Row, SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType

from jobs.delta_io import read_table, table_exists, table_version
from jobs.runs import RunContext
from matching.blocking import (
    GuardedBlock,
    Refinement,
)
from matching.model_io import SavedModel
from schemas.arrow import local_frame

MODEL_STATE_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("model_json", StringType(), False),
        StructField("guarded_blocks", StringType(), False),
        # The Delta versions of silver/pairs and silver/clusters this state goes with.
        StructField("pairs_version", LongType(), True),
        StructField("clusters_version", LongType(), True),
    ]
)


def guard_signature(guarded: list[GuardedBlock], refinements: list[Refinement]) -> str:
    """The keys the pair budget added and the blocks the guard acted on, ignoring sizes: equal signatures, equal pair sets."""
    return json.dumps(
        {
            "refined": sorted([r.rule, list(r.added)] for r in refinements),
            "blocks": sorted([b.rule, repr(b.key), b.action, b.sub_key] for b in guarded),
        }
    )


def _state_path(context: RunContext) -> str:
    return context.lake.path("silver", "match_model")


def last_match_state(spark: SparkSession, context: RunContext) -> Row | None:
    """The model and guard signature of the last full match, and the silver table versions it goes with."""
    path = _state_path(context)
    if not table_exists(spark, path):
        return None
    return read_table(spark, path).first()


def _silver_versions(spark: SparkSession, context: RunContext) -> tuple[int | None, int | None]:
    return (
        table_version(spark, context.lake.path("silver", "pairs")),
        table_version(spark, context.lake.path("silver", "clusters")),
    )


def silver_goes_with(spark: SparkSession, context: RunContext, state: Row) -> bool:
    """Whether silver/pairs and silver/clusters are as the run that wrote ``state`` left them.

    Not so after a run that failed between writing them and writing its state
    (or a state saved by an older cdi): then only a full scoring is right.
    """
    recorded = (state.asDict().get("pairs_version"), state.asDict().get("clusters_version"))
    return None not in recorded and recorded == _silver_versions(spark, context)


def write_match_state(spark: SparkSession, context: RunContext, saved: SavedModel, signature: str) -> None:
    """Replace the state in one commit, after the silver tables it goes with are written."""
    pairs_version, clusters_version = _silver_versions(spark, context)
    state = local_frame(
        spark,
        [(context.run_id, saved.to_json(), signature, pairs_version, clusters_version)], MODEL_STATE_SCHEMA
    )
    state.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(_state_path(context))
