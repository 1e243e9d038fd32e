"""What reaches the terminal from PySpark's own loggers."""

from __future__ import annotations

import logging

import pytest
from pyspark.logger import PySparkLogger

from jobs.logs import PYSPARK_ERROR_LOGGERS, configure_logging


@pytest.fixture
def restored_loggers():
    loggers = [logging.getLogger("cdi"), *(PySparkLogger.getLogger(n) for n in PYSPARK_ERROR_LOGGERS)]
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
