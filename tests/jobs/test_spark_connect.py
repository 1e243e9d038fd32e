"""The whole pipeline through a Spark Connect server equals the same run in local mode.

A Connect server is started from the pip distribution (``tools.connect_server``);
``cdi run`` then runs as a separate process with ``CDI_SPARK_REMOTE`` and no
way to start a JVM of its own (``SPARK_HOME`` and ``JAVA_HOME`` point nowhere),
so every query, Delta commit and pandas UDF runs on the server. The suite's
shared demo run (``demo_run``: the same sources, run by the test session's
local Spark) gives the reference golden tables. ``cdi erase``, ``cdi
suppressions --lift`` and ``cdi maintain`` then run on that lake the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from deltalake import DeltaTable

from config.lake import Lake
from jobs.suppressions import suppressions_path
from tests.demo_run import CONF, TIME_COLUMNS, DemoRun, gold
from tools.connect_server import ROOT, ConnectServer, start_server

NOWHERE = "/nonexistent/cdi-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ConnectServer]:
    log = tmp_path_factory.mktemp("connect") / "server.log"
    # The server keeps C2 (unlike a short-lived JVM of the suite, tests.session): it is the driver of four cdi
    # commands, and they took 364 s with it against 586 s with C1 alone (docs/benchmarks.md).
    started = start_server(log)
    try:
        yield started
    finally:
        started.stop()


def cdi(server: ConnectServer, data: Path, lake: Path, *args: str) -> str:
    """``cdi <args>`` on the demo config through ``server``, as a process that cannot start a JVM; its output."""
    env = {
        **os.environ,
        "CDI_DATA_DIR": str(data),
        "CDI_LAKE": str(lake),
        "CDI_SPARK_REMOTE": server.url,
        "SPARK_HOME": NOWHERE,
        "JAVA_HOME": NOWHERE,
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args, "--config", str(CONF)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"cdi {args[0]} through Spark Connect failed:\n{output[-4000:]}\n{server.log.read_text()[-3000:]}"
    return output


@pytest.fixture(scope="module")
def connect_run(demo_run: DemoRun, server: ConnectServer, tmp_path_factory) -> tuple[Path, str]:
    """(lake, output) of ``cdi run`` of the shared demo run's sources through the server."""
    lake = tmp_path_factory.mktemp("connect_lake") / "lake"
    return lake, cdi(server, demo_run.data, lake, "run", "--run-id", demo_run.run_id)


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


def test_erasure_suppression_lifting_and_maintenance_run_through_spark_connect(
    demo_run: DemoRun, server: ConnectServer, connect_run, tmp_path
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(connect_run[0], lake)
    xref = DeltaTable(Lake.at(lake).gold("customer_xref")).to_pandas()
    person = xref.sort_values("record_id").iloc[0]

    erased = cdi(server, demo_run.data, lake, "erase", "--source", person["source_system"], "--key", person["source_key"],
                 "--reason", "TICKET-1")
    erasure_id = DeltaTable(suppressions_path(Lake.at(lake))).to_pandas()["erasure_id"].iloc[0]
    cdi(server, demo_run.data, lake, "suppressions", "--lift", erasure_id, "--by", "tester")
    maintained = cdi(server, demo_run.data, lake, "maintain")

    golden = DeltaTable(Lake.at(lake).gold("golden_customers")).to_pandas().set_index("golden_id")
    assert golden.loc[person["golden_id"], "status"] == "erased"
    assert f"erasure {erasure_id}" in erased
    suppressions = DeltaTable(suppressions_path(Lake.at(lake))).to_pandas()
    assert list(suppressions["lifted_by"]) == ["tester"] * len(suppressions)
    assert "gold/golden_customers" in maintained


def test_a_session_on_the_server_gets_cdis_phone_function(server: ConnectServer) -> None:
    """The server holds cdi's jar (``tools.connect_server``), so standardization parses phones in its JVM."""
    script = (
        "from jobs.spark import E164_FUNCTION, build_session, has_function\n"
        f"spark = build_session({{'spark.remote': {server.url!r}}})\n"
        "print(has_function(spark, E164_FUNCTION), spark.sql(\"select cdi_to_e164('020 7946 0958', 'GB')\").first()[0])\n"
    )
    env = {**os.environ, "SPARK_HOME": NOWHERE, "JAVA_HOME": NOWHERE}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "+442079460958"]
