"""A Spark Connect server from the pip distribution, set up as cdi needs one.

pyspark ships ``spark-connect_2.13`` in its jars; the server is its
``SparkConnectServer`` class under ``spark-submit``, with the Delta, JDBC and
libphonenumber jars ``make setup`` resolved and cdi's own jar (its phone
function), Delta's SQL extension and catalog, the JVM
options and heap of cdi's own driver, every clock in UTC, and Python workers
on this interpreter with the repository on their path (the comparisons'
pandas UDFs import ``matching``). Used by the Spark
Connect test and ``bench/spark_connect.py``, and to try cdi on Spark Connect::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m tools.connect_server --port 15002

On a real cluster the server is the platform's, configured the same way
(docs/operations.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyspark

from jobs.spark import CDI_JAR, DEFAULTS, EXTRA_JAVA_OPTIONS, jar_settings

ROOT = Path(__file__).resolve().parents[1]
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class ConnectServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server's process group (the JVM and its Python workers)."""
        stop_group(self.process, patience=30)


def stop_group(process: subprocess.Popen, patience: float = 15) -> None:
    """SIGTERM the process group of ``process`` (started with ``start_new_session``: a JVM and what it
    launched), then SIGKILL what lingers after ``patience`` seconds."""
    for sig, wait in ((signal.SIGTERM, patience), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(port: int) -> list[str]:
    jars = jar_settings()
    listed = [jars["spark.jars"]] if "spark.jars" in jars else []
    if CDI_JAR.is_file():
        # cdi's jar too, when `make setup` built it: its phone function (jobs.spark.register_functions) runs here.
        listed.append(str(CDI_JAR))
    given = ["--jars", ",".join(listed)] if listed else []
    if "spark.jars.packages" in jars:
        given += ["--packages", jars["spark.jars.packages"]]
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        # The JVM options and heap of cdi's own driver (log4j's quiet settings, UTC, the parallel collector, C2's
        # thresholds): the server is the driver of every cdi command sent to it.
        EXTRA_JAVA_OPTIONS: DEFAULTS[EXTRA_JAVA_OPTIONS],
        "spark.driver.memory": DEFAULTS["spark.driver.memory"],
    }
    return [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        "--class", SERVER_CLASS,
        "--master", "local[*]",
        *given,
        *[arg for key, value in settings.items() for arg in ("--conf", f"{key}={value}")],
    ]


def start_server(log: Path, port: int | None = None, environ: Mapping[str, str] | None = None) -> ConnectServer:
    """A Connect server on 127.0.0.1 (a free port unless ``port``), in its own process group, its output in
    ``log``; returns once it listens. ``environ`` adds to this process's environment."""
    port = free_port() if port is None else port
    environment = {
        **os.environ,
        **(environ or {}),
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TZ": "UTC",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(port), stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=ROOT,
            start_new_session=True,
        )
    server = ConnectServer(process, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Connect server exited with {process.returncode}: {log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the Connect server did not listen within {START_TIMEOUT:.0f} s; see {log}")


def main() -> int:
    """Start a server for trying cdi on Spark Connect; it runs until interrupted (Ctrl-C)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m tools.connect_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=15002, help="port on 127.0.0.1 (default 15002)")
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / f"cdi-connect-server-{args.port}.log"
    server = start_server(log, args.port)
    print(f"Spark Connect server at {server.url} (log: {log}); e.g. CDI_SPARK_REMOTE={server.url} .venv/bin/cdi run ...")
    # The server runs in a process group of its own: stopped here on Ctrl-C or a SIGTERM to this process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
