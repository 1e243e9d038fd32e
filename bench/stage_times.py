"""Seconds per stage of small demo runs in one process, as the test suite pays them.

Builds one SparkSession with the test session's settings (``tests/conftest.py``),
generates the demo sources (without their activity), then runs each stage of
the pipeline on its own, for two runs on the same lake: the first in a cold
JVM, the second on unchanged sources in a warm one. Each ``run_pipeline``
call also writes the run report. With ``--event-log`` Spark's event log is
written there, for the per-job view::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.stage_times --customers 15
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from demo.generator import generate
from jobs.pipeline import STAGES, run_pipeline
from jobs.spark import build_session
from tests.demo_run import data_dir, demo_context
from tests.session import TEST_SESSION

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("bench/out/stage_times"))
    parser.add_argument("--event-log", type=Path, help="write Spark's event log into this folder")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    settings = dict(TEST_SESSION)
    if args.event_log:
        args.event_log.mkdir(parents=True, exist_ok=True)
        settings.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(args.event_log.resolve())})
    started = time.perf_counter()
    spark = build_session(settings)
    print(f"session {time.perf_counter() - started:.1f} s", flush=True)
    generate(args.out / "data", customers=args.customers, seed=8)
    try:
        with data_dir(args.out / "data"):
            for run_id in ("run-1", "run-2"):
                context = demo_context(args.out / "lake", run_id)
                for stage in STAGES:
                    at = time.perf_counter()
                    run_pipeline(spark, context, (stage,))
                    print(f"{run_id} {stage} {time.perf_counter() - at:.1f} s", flush=True)
    finally:
        spark.stop()
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    main()
