"""SIGKILL `cdi run` at every stage, each time re-running the same run id, then run it to the end.

Minutes long, so outside ``make test``: ``python -m bench.fault_injection``
runs it and records the result in ``docs/benchmarks.md``. The lakes, the kill
helper and the comparisons are those of ``tests/jobs/test_crash_recovery.py``
(publish kills, which stay in the suite).
"""

from __future__ import annotations

import shutil

import tests.conftest
import tests.jobs.test_crash_recovery as crash
from jobs.pipeline import run_pipeline
from tests.demo_run import demo_context

# Fixtures shared with the test suite: pytest finds them as attributes of this module.
spark = tests.conftest.spark
lakes = crash.lakes


def test_killed_at_every_stage_then_rerun_equals_an_uninterrupted_run(spark, lakes, tmp_path, monkeypatch):
    """One lake, one `cdi run --run-id run-1` after another, each killed at a later point, then one to the end.

    Each attempt is the re-run of the attempt killed before it, so every kill
    point is followed by a re-run through the stage it interrupted; chaining
    them costs one Spark start and a partial run per point instead of a whole
    re-run each. After every kill the published tables are still run 0's and
    no row is landed or merged twice.
    """
    lake = tmp_path / "lake"
    shutil.copytree(lakes.published, lake)
    published = crash.snapshot(lakes.published)
    points = (
        "ingest:during:webshop",
        "stage:after:ingest",
        "stage:after:standardize",
        "validate:during:customers_std",
        "stage:after:validate",
        "stage:after:match",
    )
    for point in points:
        crash.killed_run(lakes.data, lake, point)
        crash.assert_frames_equal(crash.snapshot(lake), published, f"after a kill at {point}")
        crash.assert_no_duplicates(lake, f"after a kill at {point}")

    monkeypatch.setenv("CDI_DATA_DIR", str(lakes.data))
    run_pipeline(spark, demo_context(lake, "run-1"))

    crash.assert_frames_equal(crash.snapshot(lake), crash.snapshot(lakes.reference), "after the re-run")
    crash.assert_frames_equal(crash.layers(lake), crash.layers(lakes.reference), "after the re-run")
    crash.assert_no_duplicates(lake, "after the re-run")
