"""What reaches the terminal from PySpark's own loggers."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.logger import PySparkLogger

from jobs.logs import PYSPARK_ERROR_LOGGERS, configure_logging

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restored_loggers():
    loggers = [logging.getLogger(), logging.getLogger("cdi"), *(PySparkLogger.getLogger(n) for n in PYSPARK_ERROR_LOGGERS)]
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    yield
    for logger, level, handlers, propagate in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_pysparks_json_log_of_each_sql_error_is_on_only_with_verbose(restored_loggers, verbose):
    configure_logging("text", verbose)

    # PySpark logs each AnalysisException it raises at ERROR, through these loggers' own stderr handlers.
    for name in PYSPARK_ERROR_LOGGERS:
        assert PySparkLogger.getLogger(name).isEnabledFor(logging.ERROR) is verbose


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_library_logging_through_the_root_logger_shows_only_with_verbose(verbose):
    # As py4j does when Ctrl-C interrupts a call to the JVM.
    script = (
        "import logging\n"
        "from jobs.logs import configure_logging\n"
        f"configure_logging('text', {verbose})\n"
        "logging.exception('KeyboardInterrupt while sending command.')\n"
    )

    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert ("KeyboardInterrupt while sending command" in done.stderr) is verbose
