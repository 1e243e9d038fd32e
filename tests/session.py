"""The test session's Spark settings: small data, two cores (used by ``tests/conftest.py`` and ``bench.stage_times``)."""

from pathlib import Path

TEST_SESSION = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "false",
    # Every test's data is small: as a run over small data does (jobs.spark.size_settings).
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.driver.memory": "2g",
}

# A JVM a test starts beside the session's own (a `cdi` process, a standalone master, worker or
# executor) lives for one short run, and the C2 compiler's work never pays back in one: with C1 only,
# a cold `cdi run --stages ingest` of 15 demo customers took 28 CPU-s against 45 (wall 22 s against
# 27). The session's own JVM keeps C2: over a whole suite its compiled code does pay back.
SHORT_LIVED_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


def processes_with(text: str) -> list[int]:
    """The processes whose command line holds ``text`` (a JVM that should have ended, found by its app name)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
