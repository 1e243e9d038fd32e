"""Schemas of the match and gold tables.

``pairs`` (silver): every scored candidate pair of the last match run.
``clusters`` (silver): record → cluster of the last match run.
``golden_customers``: one row per golden id ever issued; ``status`` is
``active``, ``retired`` (then ``survivor_id`` points to the golden record
that absorbed it), ``deleted`` (every source record of it was deleted at its
source; the last values stay) or ``erased`` (``cdi erase``: every personal
value nulled). ``lineage`` maps each attribute to the record id
(``<source_system>:<source_key>``) its value came from.
``customer_xref``: every source record → its golden id; a record deleted at
its source keeps its row, closed (``valid_to`` set, ``linked_by='deleted'``);
an erased one keeps only a hash of its key (``linked_by='erased'``).
``match_candidates``: pairs awaiting a steward, both records side by side.
``golden_id_history``: every create, merge, split and retire, by run.
``steward_decisions``: append-only log written by the review app (``steward/decisions.py``
says what each action's columns mean).
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas.canonical import CANONICAL_ATTRIBUTES


def _attribute_fields() -> list[StructField]:
    return [StructField(a, DateType() if a == "birth_date" else StringType(), True) for a in CANONICAL_ATTRIBUTES]


RECORD_STRUCT = StructType(
    [StructField("record_id", StringType(), True), StructField("source_system", StringType(), True), *_attribute_fields()]
)

GOLDEN_CUSTOMERS_SCHEMA = StructType(
    [
        StructField("golden_id", StringType(), False),
        StructField("status", StringType(), False),  # active | retired | deleted | erased
        StructField("survivor_id", StringType(), True),  # set when retired
        *_attribute_fields(),
        StructField("lineage", MapType(StringType(), StringType()), True),  # attribute -> record_id
        StructField("num_records", IntegerType(), False),
        StructField("first_seen", TimestampType(), False),
        StructField("last_updated", TimestampType(), False),
        StructField("content_hash", StringType(), False),  # of everything above but the timestamps
        StructField("run_id", StringType(), False),  # run that last changed the row
    ]
)

# One row per published run, written last: the table versions a reader (or the
# next run) can trust as that run's complete state.
PUBLICATIONS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("published_at", TimestampType(), False),
        StructField("golden_customers_version", LongType(), False),
        StructField("customer_xref_version", LongType(), False),
    ]
)

CUSTOMER_XREF_SCHEMA = StructType(
    [
        StructField("source_system", StringType(), False),
        StructField("source_key", StringType(), False),
        StructField("record_id", StringType(), False),
        StructField("golden_id", StringType(), False),
        StructField("match_probability", DoubleType(), True),  # best link into its cluster; null for a singleton
        StructField("linked_by", StringType(), False),  # model | steward | singleton | deleted | erased
        StructField("run_id", StringType(), False),
        # when the record left its golden record (deleted at the source, or erased); null while it is current
        StructField("valid_to", TimestampType(), True),
    ]
)

MATCH_CANDIDATES_SCHEMA = StructType(
    [
        StructField("pair_id", StringType(), False),  # "<record_id_l>|<record_id_r>"
        StructField("record_id_l", StringType(), False),
        StructField("record_id_r", StringType(), False),
        StructField("match_probability", DoubleType(), False),
        StructField("match_weight", DoubleType(), False),
        StructField("evidence", MapType(StringType(), DoubleType()), False),  # comparison -> match weight
        StructField("levels", MapType(StringType(), IntegerType()), False),  # comparison -> gamma level
        StructField("blocking_rule", StringType(), True),
        StructField("reason", StringType(), False),  # between thresholds | cluster members disagree | linked but kept apart
        StructField("record_l", RECORD_STRUCT, False),
        StructField("record_r", RECORD_STRUCT, False),
        StructField("run_id", StringType(), False),
    ]
)

GOLDEN_ID_HISTORY_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("event", StringType(), False),  # create | merge | split | retire | delete | erase
        StructField("golden_id", StringType(), False),
        StructField("related_id", StringType(), True),  # survivor of a merge/retire, origin of a split
        StructField("records", IntegerType(), True),
        StructField("at", TimestampType(), False),
    ]
)

STEWARD_DECISIONS_SCHEMA = StructType(
    [
        StructField("decision_id", StringType(), False),
        StructField("decided_at", TimestampType(), False),
        StructField("steward", StringType(), False),
        StructField("action", StringType(), False),  # match | no_match | unsure | split | merge | retract | override
        StructField("record_id_l", StringType(), True),  # pair decisions; split: the (smallest) record split out
        StructField("record_id_r", StringType(), True),
        StructField("golden_id", StringType(), True),  # split: from; merge: one side; override: the golden record
        StructField("golden_id_other", StringType(), True),  # merge: the other side
        StructField("comment", StringType(), True),
        # Added later (nullable; rows written before lack them, read as nulls):
        # split: the records taken out together; override: the golden record's members at decision time
        StructField("record_ids", ArrayType(StringType()), True),
        StructField("other_ids", ArrayType(StringType()), True),  # split: the members left, at decision time
        StructField("record_hashes", ArrayType(StringType()), True),  # override: record_hash of each of record_ids
        StructField("supersedes", StringType(), True),  # retract: the decision_id withdrawn
        StructField("attribute", StringType(), True),  # override: the canonical attribute
        StructField("value", StringType(), True),  # override: the steward's value (a date as YYYY-MM-DD)
    ]
)

# silver/clusters: the match stage's clustering, one row per record of customers_std.
CLUSTERS_SCHEMA = StructType(
    [
        StructField("record_id", StringType(), False),
        StructField("cluster_id", StringType(), False),
        StructField("cluster_flag", StringType(), True),
        StructField("component_id", StringType(), False),  # connected component before cannot-link splits
        StructField("record_hash", StringType(), False),  # the record version clustered
        StructField("run_id", StringType(), False),  # the run that computed this clustering
    ]
)

