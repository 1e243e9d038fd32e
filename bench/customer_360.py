"""The customer_360 stage at scale: 1M golden customers, about 10M activity rows.

A synthetic lake is written first, as a published run would leave it:
``gold/golden_customers`` (every customer active; one in five shares a
home and family name with another), ``gold/customer_xref`` (1 to 3 source
records per customer over four sources) and one bronze activity table per
source with the ingest's lineage columns (each record 0 to 8 activities,
0.5% of them for customer keys no source holds). Then, each step a
``cdi`` process timed with its memory sampled:

1. ``cdi run --stages customer_360`` on that lake: links every activity,
   builds ``customer_360`` and ``households`` from nothing;
2. 1% of the customers merge into another (their xref rows now point at the
   survivor; the survivor's golden row absorbs them), then the stage again:
   activity follows its records, and only the changed rows of the views are
   rewritten.

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.customer_360 --customers 1000000

Prints a table of wall time, peak memory and rows per step and writes it to
``bench/out/customer_360/<customers>.json``. Target (issue 18): the first
build within 10 minutes on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from bench.scale import measure

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "customer_360"
SOURCES = ("crm", "billing", "desk", "shop")
CONFIG = """lake: {lake}
customer_360: {{as_of: 2026-01-01}}
sources:
{sources}
"""
SOURCE = """  - name: {name}
    kind: csv
    path: {lake}/unused_{name}.csv
    primary_key: [id]
    mapping: {{full_name: name}}
    activities:
      - {{name: events, kind: csv, path: {lake}/unused_events.csv, primary_key: [event_id],
         customer_key: [customer], timestamp: at, type: kind, amount: total, currency: cur, channel: via,
         status: state}}
"""


def generate(lake: Path, customers: int) -> None:
    """Write the synthetic published lake (Spark, in this process)."""
    from pyspark.sql import functions as F

    from config.lake import Lake
    from jobs.spark import build_session
    from schemas.golden import CUSTOMER_XREF_SCHEMA, GOLDEN_CUSTOMERS_SCHEMA

    spark = build_session({"spark.sql.shuffle.partitions": "16"})
    where = Lake.at(lake)
    at = F.lit("2026-01-01 00:00:00").cast("timestamp")
    ids = spark.range(customers).withColumn("golden_id", F.format_string("G%012d", "id"))
    # One customer in five lives with the next one: same family name, address and phone.
    home = F.when(F.col("id") % 10 < 2, F.col("id") - F.col("id") % 2).otherwise(F.col("id"))
    golden_values = {
        "golden_id": F.col("golden_id"),
        "status": F.lit("active"),
        "given_name": F.format_string("given%d", F.col("id") % 5000),
        "family_name": F.format_string("family%d", home % 20000),
        "full_name": F.format_string("given%d family%d", F.col("id") % 5000, home % 20000),
        "phone": F.format_string("+44700%07d", home),
        "email": F.format_string("p%d@example.com", F.col("id")),
        "address_line1": F.format_string("%d high st", home % 200 + 1),
        "postcode": F.format_string("AB%dCD", home),
        "num_records": F.lit(1),
        "first_seen": at,
        "last_updated": at,
        "content_hash": F.col("golden_id"),
        "run_id": F.lit("bench-0"),
    }
    golden = ids.select(
        *[(golden_values.get(f.name, F.lit(None))).cast(f.dataType).alias(f.name) for f in GOLDEN_CUSTOMERS_SCHEMA.fields]
    )
    golden.write.format("delta").mode("overwrite").save(where.gold("golden_customers"))
    records = ids.withColumn("k", F.explode(F.sequence(F.lit(0), F.col("id") % 3))).withColumn(
        "source_system", F.element_at(F.array(*[F.lit(s) for s in SOURCES]), ((F.col("id") + F.col("k")) % 4 + 1).cast("int"))
    ).withColumn("source_key", F.format_string("%d-%d", "id", "k"))
    xref = records.select(
        "source_system", "source_key", F.concat_ws(":", "source_system", "source_key").alias("record_id"),
        "golden_id", F.lit(0.99).alias("match_probability"), F.lit("model").alias("linked_by"),
        F.lit("bench-0").alias("run_id"), F.lit(None).cast("timestamp").alias("valid_to"),
    )
    spark.createDataFrame(xref.rdd, CUSTOMER_XREF_SCHEMA).write.format("delta").mode("overwrite").save(
        where.gold("customer_xref")
    )
    per_record = F.pmod(F.xxhash64("source_key"), F.lit(9))
    events = records.withColumn("n", F.explode(F.sequence(F.lit(0), per_record))).where(per_record > 0)
    orphan = F.pmod(F.xxhash64("source_key", "n"), F.lit(200)) == 0
    days = F.pmod(F.xxhash64("n", "source_key"), F.lit(8 * 365)).cast("int")
    events = events.select(
        "source_system",
        F.format_string("e%s-%d", "source_key", "n").alias("event_id"),
        F.when(orphan, F.format_string("gone-%s", "source_key")).otherwise(F.col("source_key")).alias("customer"),
        F.date_format(F.expr("timestamp'2026-01-01 00:00:00'") - F.make_interval(days=days), "yyyy-MM-dd HH:mm:ss").alias("at"),
        F.element_at(F.array(F.lit("order"), F.lit("ticket"), F.lit("invoice")), (F.col("n") % 3 + 1).cast("int")).alias("kind"),
        F.format_string("%d.%02d", F.col("n") * 7 % 500, F.col("n") % 100).alias("total"),
        F.lit("GBP").alias("cur"),
        F.element_at(F.array(F.lit("web"), F.lit("phone"), F.lit("email")), (F.col("n") % 3 + 1).cast("int")).alias("via"),
        F.element_at(F.array(F.lit("open"), F.lit("closed")), (F.col("n") % 2 + 1).cast("int")).alias("state"),
    )
    for source in SOURCES:
        bronze = events.where(F.col("source_system") == source).select(
            "event_id", "customer", "at", "kind", "total", "cur", "via", "state",
            F.lit(source).alias("source_system"), F.lit("events").alias("activity"),
            F.col("event_id").alias("source_key"), F.col("customer").alias("customer_key"),
            F.lit("bench-0").alias("run_id"), at.alias("ingested_at"),
            F.sha2(F.col("event_id"), 256).alias("record_hash"), F.lit(False).alias("cdi_tombstone"),
        )
        bronze.write.format("delta").mode("overwrite").save(where.bronze_activity(source, "events"))
    sources = "".join(SOURCE.format(name=s, lake=lake) for s in SOURCES)
    (lake / "cdi.yaml").write_text(CONFIG.format(lake=lake, sources=sources))
    spark.stop()


def merge_some(lake: Path, share: float) -> None:
    """``share`` of the customers merge into the customer before them: xref rows move, the absorbed retire."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from config.lake import Lake
    from jobs.spark import build_session

    spark = build_session({"spark.sql.shuffle.partitions": "16"})
    where = Lake.at(lake)
    every = int(round(1 / share))
    absorbed = F.substring("golden_id", 2, 12).cast("long") % every == 1
    survivor = F.format_string("G%012d", F.substring("golden_id", 2, 12).cast("long") - 1)
    xref = DeltaTable.forPath(spark, where.gold("customer_xref"))
    xref.update(absorbed, {"golden_id": survivor})
    DeltaTable.forPath(spark, where.gold("golden_customers")).update(absorbed, {"status": F.lit("retired")})
    spark.stop()


def _rows(lake: Path) -> dict[str, int]:
    from deltalake import DeltaTable

    def count(path: Path) -> int:
        return sum(a.num_rows for a in DeltaTable(str(path)).to_pyarrow_dataset().to_batches(columns=[]))

    found = {"activity": sum(count(lake / "bronze" / f"{s}.events") for s in SOURCES)}
    for table in ("customer_activity", "customer_360", "households"):
        path = lake / "gold" / table
        if path.exists():
            found[table] = count(path)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--step", choices=("generate", "merge"), help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "generate":
        generate(args.lake, args.customers)
        return 0
    if args.step == "merge":
        merge_some(args.lake, 0.01)
        return 0

    work = OUT / str(args.customers)
    shutil.rmtree(work, ignore_errors=True)
    lake = work / "lake"
    lake.mkdir(parents=True)
    env = {**os.environ, "CDI_SPARK_LOG": str(work / "spark.log")}
    me = [sys.executable, "-m", "bench.customer_360", "--customers", str(args.customers), "--lake", str(lake)]
    cdi = [sys.executable, "-m", "jobs.cli", "run", "--config", str(lake / "cdi.yaml"), "--stages", "customer_360"]
    results = []
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    for name, command in (
        ("generate the lake", [*me, "--step", "generate"]),
        ("customer_360 from nothing", [*cdi, "--run-id", "bench-1"]),
        ("1% of customers merge", [*me, "--step", "merge"]),
        ("customer_360 after the merges", [*cdi, "--run-id", "bench-2"]),
    ):
        started = time.perf_counter()
        step = measure(command, work / f"{name.replace(' ', '_').replace('%', '')}.log", args.timeout, env)
        rows = _rows(lake) if step.status == "ok" else {}
        results.append({"step": name, "status": step.status, "seconds": round(time.perf_counter() - started, 1),
                        "peak_gib": round(step.peak_bytes / 2**30, 2), "peak_jvm_gib": round(step.jvm_bytes / 2**30, 2),
                        "rows": rows})
        print(f"{name:<32} {step.status:<10} {results[-1]['seconds']:>8.1f} s  peak {results[-1]['peak_gib']:.2f} GiB "
              f"(JVM {results[-1]['peak_jvm_gib']:.2f})  {rows}", flush=True)
        if step.status != "ok":
            break
    (OUT / f"{args.customers}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
