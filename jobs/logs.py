"""Logging set-up: plain text for people, JSON lines for log shippers.

Nothing logged by cdi carries record values: messages name sources, stages,
counts and keys of configuration, never a customer's attributes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from pyspark.logger import PySparkLogger

PYSPARK_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str = "text", verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("cdi")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # PySpark logs every SQL error it raises, with the JVM's stack trace, as JSON on stderr; cdi reports
    # the error itself (a ConfigError names file and key), so those lines show only with --verbose.
    for name in PYSPARK_ERROR_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    # py4j logs an interrupted call (Ctrl-C) through the root logger itself, which then sets up a stderr
    # handler of its own and prints a traceback before cdi's "interrupted"; such lines show with --verbose.
    top = logging.getLogger()
    if not verbose and not top.handlers:
        top.addHandler(logging.NullHandler())
