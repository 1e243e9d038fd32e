"""The steward's key evaluator against Spark itself, on every key expression of the default settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import functions as F

from matching.settings import load_settings
from steward.explain import UNKNOWN, evaluate_key

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "conf" / "matching.yaml")
RECORDS = [
    {"given_name": "thomas", "family_name": "hughes", "birth_date": dt.date(1969, 8, 2), "address_line1": "12 high st",
     "postcode": "AB12CD", "address_line2": None, "email": "t@h.co", "phone": "+447700900123", "national_id": "AB123456C"},
    {"given_name": "zoë", "family_name": None, "birth_date": None, "address_line1": "flat", "postcode": None,
     "address_line2": "x", "email": None, "phone": None, "national_id": None},
    {"given_name": None, "family_name": "o'neil-smith", "birth_date": dt.date(1, 1, 1), "address_line1": None,
     "postcode": "00000", "address_line2": None, "email": None, "phone": None, "national_id": "123"},
]
SCHEMA = ("given_name string, family_name string, birth_date date, address_line1 string, postcode string, "
          "address_line2 string, email string, phone string, national_id string")


def test_every_default_key_evaluates_as_spark_does(spark) -> None:
    keys = sorted({key for rule in SETTINGS.blocking_rules for key in (*rule.keys, *rule.refine)})
    frame = spark.createDataFrame([tuple(r[c.split()[0]] for c in SCHEMA.split(", ")) for r in RECORDS], SCHEMA)
    rows = frame.select(*[F.expr(key).cast("string").alias(f"k{i}") for i, key in enumerate(keys)]).collect()
    for record, row in zip(RECORDS, rows):
        for i, key in enumerate(keys):
            ours = evaluate_key(key, record)
            assert ours is not UNKNOWN, key
            assert (None if ours is None else str(ours)) == row[f"k{i}"], (key, record)
