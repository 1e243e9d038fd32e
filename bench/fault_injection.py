"""Fault injection that takes minutes: SIGKILL `cdi run` at every stage, then re-run (``bench/faults``).

Run from the repository root (Java 17 for Spark)::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.fault_injection

It runs the tests in ``bench/faults`` with pytest (a real local Spark, real
Delta lakes, each killed attempt its own `cdi run` process) and writes their
outcome, wall time and the machine's load into the "Fault injection" section
of ``docs/benchmarks.md``. Exits with pytest's code, so a failure is not
recorded as a pass. The quicker kills (during and between the publish
MERGEs) stay in the test suite (``tests/jobs/test_crash_recovery.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench.accuracy import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Fault injection"
COMMAND = "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.fault_injection"
KILL_POINTS = (
    "during the web shop's bronze write",
    "after ingest",
    "after standardize",
    "during the `customers_std` MERGE",
    "after validate",
    "after match",
)


def section(outcome: str, seconds: float, load: float, summary: str) -> str:
    points = ", ".join(KILL_POINTS)
    return "\n".join(
        [
            SECTION,
            "",
            f"Machine: {machine()}.",
            "",
            "```",
            COMMAND,
            "```",
            "",
            f"Measured {date.today().isoformat()}, 1-minute load average {load:.1f} at the start.",
            "",
            "`bench/faults/test_kill_every_stage.py`: on a lake where run 0 is published, `cdi run --run-id run-1` "
            f"(new web shop signups and one changed contact) is SIGKILLed {points}, each attempt the re-run of "
            "the one killed before it. After every kill the published tables must equal run 0's and bronze and "
            "`customers_std` must hold no duplicate; a final re-run must leave every bronze, silver and gold "
            "table equal to an uninterrupted run's. The kills during and between the publish MERGEs run in "
            "`make test` (`tests/jobs/test_crash_recovery.py`), as do the lock and the 10x-rows tests.",
            "",
            "| test | outcome | wall time (s) |",
            "| --- | --- | ---: |",
            f"| kill at every stage, then re-run | {outcome} | {seconds:.0f} |",
            "",
            f"pytest: `{summary}`",
            "",
        ]
    )


def main() -> int:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "bench/faults"],
        cwd=ROOT, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    print(result.stdout[-4000:], result.stderr[-2000:], sep="\n")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else "no output"
    outcome = "passed" if result.returncode == 0 else f"failed (pytest exit {result.returncode})"
    write_section(section(outcome, seconds, load, summary))
    print(f"fault injection: {outcome} in {seconds:.0f} s; docs/benchmarks.md updated")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
