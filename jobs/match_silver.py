"""Writing the match stage's silver tables: scored pairs and clusters."""

from __future__ import annotations


from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.decisions import PAIR
from matching.cluster import cluster_pairs
from matching.settings import MatchSettings
from schemas.golden import CLUSTERS_SCHEMA

def write_table(frame: DataFrame, path: str) -> None:
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def clusters_with_lineage(clusters: DataFrame, records: DataFrame, run_id: str) -> DataFrame:
    return clusters.join(records.select("record_id", "record_hash"), "record_id").select(
        *CLUSTERS_SCHEMA.fieldNames()[:-1], F.lit(run_id).alias("run_id")
    )


def cluster_records(
    records: DataFrame, pairs: DataFrame, decisions: DataFrame, settings: MatchSettings
) -> DataFrame:
    return cluster_pairs(
        records.select("record_id"),
        pairs,
        settings.thresholds.match,
        decisions.where("is_match").select(*PAIR),
        decisions.where("NOT is_match").select(*PAIR),
        settings.thresholds.review,
    )
