"""The whole pipeline through a Spark Connect server equals the same run in local mode.

A Connect server is started from the pip distribution (``tools.connect_server``);
``cdi run`` then runs as a separate process with ``CDI_SPARK_REMOTE`` and no
way to start a JVM of its own (``SPARK_HOME`` and ``JAVA_HOME`` point nowhere),
so every query, Delta commit and pandas UDF runs on the server. The suite's
shared demo run (``demo_run``: the same sources, run by the test session's
local Spark) gives the reference golden tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from tests.demo_run import CONF, TIME_COLUMNS, DemoRun, gold
from tests.session import SHORT_LIVED_JVM_OPTIONS
from tools.connect_server import ROOT, ConnectServer, start_server

NOWHERE = "/nonexistent/cdi-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ConnectServer]:
    log = tmp_path_factory.mktemp("connect") / "server.log"
    started = start_server(log, environ={"JAVA_TOOL_OPTIONS": SHORT_LIVED_JVM_OPTIONS})
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def connect_run(demo_run: DemoRun, server: ConnectServer, tmp_path_factory) -> tuple[Path, str]:
    """(lake, output) of ``cdi run`` of the shared demo run's sources through the server."""
    lake = tmp_path_factory.mktemp("connect_lake") / "lake"
    env = {
        **os.environ,
        "CDI_DATA_DIR": str(demo_run.data),
        "CDI_LAKE": str(lake),
        "CDI_SPARK_REMOTE": server.url,
        "SPARK_HOME": NOWHERE,
        "JAVA_HOME": NOWHERE,
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", "--config", str(CONF), "--run-id", demo_run.run_id],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"cdi run through Spark Connect failed:\n{output[-4000:]}\n{server.log.read_text()[-3000:]}"
    return lake, output


@pytest.mark.parametrize("table", sorted(TIME_COLUMNS))
def test_spark_connect_and_local_mode_publish_the_same_golden_tables(demo_run: DemoRun, connect_run, table: str) -> None:
    lake, _ = connect_run
    expected = gold(demo_run.lake, table)

    actual = gold(lake, table)

    assert len(expected) > 0
    pd.testing.assert_frame_equal(actual, expected, obj=table)


def test_the_run_reports_every_stage_and_no_spark_warning(connect_run) -> None:
    _, output = connect_run

    for stage in ("ingest", "standardize", "validate", "match", "publish", "customer_360"):
        assert f"[{stage}] done in" in output
    assert "WARN" not in output
    assert "Warning" not in output
