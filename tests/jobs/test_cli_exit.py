"""The `cdi` command ends with its own exit code, whatever native threads its libraries leave behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
        for _ in range(10)
    ]

    assert [done.returncode for done in codes] == [0] * 10, [done.stderr[-300:] for done in codes]
    assert all("usage: cdi" in done.stdout and "interpreter teardown" not in done.stdout for done in codes)


def test_an_error_exit_code_and_its_message_come_through(tmp_path):
    missing = tmp_path / "none.yaml"

    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "show", "--config", str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 2, done.stderr
    assert str(missing) in done.stderr
