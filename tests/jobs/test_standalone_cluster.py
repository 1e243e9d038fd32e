"""The whole pipeline on a real Spark standalone cluster equals the same run in local mode.

A master and two one-core workers are started on 127.0.0.1 from the pyspark
package's own ``bin/spark-class``; ``cdi run`` then runs as a separate process
against ``spark://127.0.0.1:<port>``, so every task (JDBC and file reads,
pandas UDFs, Delta data files) runs in executor processes the workers launch.
The suite's shared demo run (``demo_run``: the same sources, run by the test
session's ``local[2]`` Spark) gives the reference golden tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyspark
import pytest

from tests.demo_run import TIME_COLUMNS, DemoRun, gold
from tests.session import SHORT_LIVED_JVM_OPTIONS
from tools.connect_server import free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf" / "cdi.yaml"
SPARK_HOME = Path(pyspark.__file__).resolve().parent
JAVA_HOME = os.environ.get("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
WORKERS = 2
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Cluster:
    master_url: str
    webui: str
    work_dirs: tuple[Path, ...]

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.webui}/json/", timeout=5) as response:
            return json.load(response)


def spark_env() -> dict[str, str]:
    """Every JVM here (master, workers, their executors, the ``cdi`` driver) lives for one short run."""
    return {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "JAVA_HOME": JAVA_HOME,
        "JAVA_TOOL_OPTIONS": SHORT_LIVED_JVM_OPTIONS,
    }


def start_daemon(args: list[str], log: Path) -> subprocess.Popen:
    """``spark-class <args>`` in its own process group, so teardown kills it with every child."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), *args],
            env=spark_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_for_workers(cluster: Cluster, processes: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs):
            if process.poll() is not None:
                raise RuntimeError(f"{log.name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            alive = [w for w in cluster.state()["workers"] if w["state"] == "ALIVE"]
            if len(alive) == WORKERS:
                return
        except OSError:
            pass  # the master's web UI is not up yet
        time.sleep(0.5)
    tails = "\n".join(log.read_text()[-2000:] for log in logs)
    raise RuntimeError(f"no {WORKERS} ALIVE workers after {START_TIMEOUT} s:\n{tails}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A standalone master and two workers (1 core, 1 GiB each), all stopped at the end of the module."""
    base = tmp_path_factory.mktemp("standalone")
    port, webui_port = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    processes: list[subprocess.Popen] = []
    logs = [base / "master.log"]
    work_dirs = tuple(base / f"worker-{i}" for i in range(WORKERS))
    try:
        processes.append(start_daemon(
            ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(webui_port)],
            logs[0],
        ))
        for i, work_dir in enumerate(work_dirs):
            work_dir.mkdir()
            logs.append(base / f"worker-{i}.log")
            processes.append(start_daemon(
                ["org.apache.spark.deploy.worker.Worker", master_url, "--cores", "1", "--memory", "1g",
                 "--host", "127.0.0.1", "--webui-port", str(free_port()), "--work-dir", str(work_dir)],
                logs[-1],
            ))
        cluster = Cluster(master_url, f"http://127.0.0.1:{webui_port}", work_dirs)
        wait_for_workers(cluster, processes, logs)
        yield cluster
    finally:
        for process in reversed(processes):
            stop_group(process)


def cdi_run(data: Path, lake: Path, run_id: str, master: str, log: Path) -> subprocess.Popen:
    """``cdi run`` of the demo config as its own process (output to ``log``), with small-data Spark settings."""
    env = {
        **spark_env(),
        "CDI_DATA_DIR": str(data),
        "CDI_LAKE": str(lake),
        "CDI_SPARK_MASTER": master,
        "CDI_SPARK_CONF_spark__ui__enabled": "false",
        "CDI_SPARK_CONF_spark__sql__shuffle__partitions": "2",
        "CDI_SPARK_CONF_spark__default__parallelism": "2",
        "CDI_SPARK_CONF_spark__driver__memory": "1g",
        "CDI_SPARK_CONF_spark__executor__memory": "1g",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "run", "--config", str(CONF), "--run-id", run_id],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


@pytest.fixture(scope="module")
def lakes(demo_run: DemoRun, cluster: Cluster, tmp_path_factory) -> tuple[Path, Path]:
    """(cluster lake, local lake): the shared demo run's sources run again on the cluster, and the demo run's lake."""
    on_cluster, log = tmp_path_factory.mktemp("cluster") / "lake", tmp_path_factory.mktemp("logs") / "cluster.log"
    process = cdi_run(demo_run.data, on_cluster, demo_run.run_id, cluster.master_url, log)
    try:
        process.wait(timeout=600)
        assert process.returncode == 0, f"cdi run on the cluster failed:\n{log.read_text()[-4000:]}"
    finally:
        stop_group(process)
    return on_cluster, demo_run.lake


def test_the_pipeline_ran_on_the_workers_executors(cluster: Cluster, lakes) -> None:
    deadline = time.monotonic() + 10  # the master marks the application completed shortly after the driver exits
    while cluster.state()["activeapps"] and time.monotonic() < deadline:
        time.sleep(0.5)
    completed = cluster.state()["completedapps"]
    assert [(app["name"], app["state"]) for app in completed] == [("cdi", "FINISHED")]
    executor_logs = [log for work_dir in cluster.work_dirs for log in work_dir.glob("app-*/*/stderr")]
    assert {log.parents[2] for log in executor_logs} == set(cluster.work_dirs), "each worker ran an executor"


@pytest.mark.parametrize("table", sorted(TIME_COLUMNS))
def test_cluster_and_local_mode_publish_the_same_golden_tables(lakes, table: str) -> None:
    on_cluster, local = lakes
    expected = gold(local, table)

    actual = gold(on_cluster, table)

    assert len(expected) > 0
    pd.testing.assert_frame_equal(actual, expected, obj=table)
