"""The `cdi` command ends with its own exit code, whatever native threads its libraries leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from demo.generator import generate
from tests.session import SHORT_LIVED_JVM_OPTIONS, processes_with

ROOT = Path(__file__).resolve().parents[2]
# A `cdi` command that read a Delta table with delta-rs just before it ends. A bare script doing that
# (the read, then the interpreter's own exit) aborts here about one time in three (exit 134): `run` ends
# the process without the interpreter's teardown, which an atexit handler would see.
AFTER_A_READ = """
import atexit
import sys
from jobs.cli import run
from deltalake import DeltaTable
atexit.register(lambda: print("interpreter teardown"))
held = DeltaTable(sys.argv[1]).to_pandas(columns=["id"])
sys.argv = ["cdi", "--help"]
run()
"""


def test_cdi_exits_with_its_own_code_after_reading_a_delta_table(spark, tmp_path):
    table = tmp_path / "t"
    spark.range(50).selectExpr("id", "cast(id as string) as name").write.format("delta").save(str(table))

    codes = [
        subprocess.run(
            [sys.executable, "-c", AFTER_A_READ, str(table)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        for _ in range(3)
    ]

    assert [done.returncode for done in codes] == [0] * 3, [done.stderr[-300:] for done in codes]
    assert all("usage: cdi" in done.stdout and "interpreter teardown" not in done.stdout for done in codes)


def test_an_error_exit_code_and_its_message_come_through(tmp_path):
    missing = tmp_path / "none.yaml"

    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "show", "--config", str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 2, done.stderr
    assert str(missing) in done.stderr


def test_ctrl_c_stops_a_run_with_exit_130_and_no_traceback_and_leaves_no_jvm(tmp_path):
    # Before, PySpark's own SIGINT handler called into the JVM from inside an interrupted call: py4j
    # printed tracebacks and the run went on. The session is now built off the main thread, where
    # PySpark installs no handler, so Python's own KeyboardInterrupt ends the run.
    generate(tmp_path / "data", customers=15, seed=2)
    app = f"cdi-interrupted-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "CDI_DATA_DIR": str(tmp_path / "data"),
        "CDI_LAKE": str(tmp_path / "lake"),
        "CDI_SPARK_CONF_spark__app__name": app,
        "JAVA_TOOL_OPTIONS": SHORT_LIVED_JVM_OPTIONS,
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "run", "--config", "conf/cdi.yaml", "--stages", "ingest-validate"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in run.stdout:
        if line.startswith("[standardize]"):
            break
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)

    assert run.returncode == 130, err
    assert err.strip().splitlines()[-1] == "cdi: interrupted"
    assert "Traceback" not in err and "ERROR" not in err
    deadline = time.monotonic() + 30
    while processes_with(app) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with(app) == []

