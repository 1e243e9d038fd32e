"""Fault injection for resilience tests: die like a killed driver at a named point.

``CDI_FAULT_POINT=<point>`` makes the process SIGKILL itself when it reaches
``<point>`` (for example ``publish:after:golden_customers``). A point named
``...:during:<table>`` arms a timer instead, so the kill lands while the
write to ``<table>`` is running (``CDI_FAULT_DELAY`` seconds, default 1).
Unset, every call is a no-op.

The points: ``stage:after:<stage>`` (the stage's work done, its audit row not
yet written), ``ingest:during:<source>`` (the append to ``bronze/<source>``),
``validate:during:customers_std`` (the MERGE into ``silver/customers_std``),
``publish:during:<gold table>`` and ``publish:after:<gold table>``.
"""

from __future__ import annotations

import os
import signal
import threading


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def fault_point(name: str) -> None:
    wanted = os.environ.get("CDI_FAULT_POINT")
    if wanted == name:
        if ":during:" in name:
            threading.Timer(float(os.environ.get("CDI_FAULT_DELAY", "1")), _kill).start()
        else:
            _kill()
