"""Independent pieces of a stage run side by side on one SparkSession.

Landing a small table is a chain of short Spark jobs (read, count, compare,
write, commit) that mostly wait on the driver: run one after another, a dozen
tables of a thousand rows each take a dozen times one table's latency. Spark
schedules jobs from several threads of one session at once, so the tables of
a stage that touch only their own Delta tables land on a few threads.

Each thread is a ``pyspark.InheritableThread``: the step tags
(``jobs/steps.py``) of the thread that started it go with it, on a classic
session and on Spark Connect alike. A piece that writes to a table other
pieces also write to (``quarantine``, the run's Great Expectations folder)
holds ``SHARED_WRITES`` while it does: Delta would refuse one of two
overwrites of one table committed at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from pyspark import InheritableThread
from pyspark.sql import SparkSession

T = TypeVar("T")

# Tables landed at once: enough to keep two cores busy while other jobs wait on the driver.
THREADS = 4
SHARED_WRITES = threading.Lock()


def run_side_by_side(spark: SparkSession, pieces: Sequence[Callable[[], T]], threads: int = THREADS) -> list[T]:
    """Each piece's result, in the order given, once every piece has finished.

    A piece that raises does not stop the others (each leaves its own table
    whole); when all are done the first failure, in the order given, is
    raised, so the caller sees every table in a settled state.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if len(pieces) <= 1 or threads == 1:
        return [piece() for piece in pieces]
    results: list[T | None] = [None] * len(pieces)
    failures: list[BaseException | None] = [None] * len(pieces)
    queue = list(range(len(pieces)))
    taking = threading.Lock()

    def work() -> None:
        while True:
            with taking:
                if not queue:
                    return
                index = queue.pop(0)
            try:
                results[index] = pieces[index]()
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                failures[index] = exc

    workers = [
        InheritableThread(work, session=spark, name=f"cdi-piece-{n}", daemon=True)
        for n in range(min(threads, len(pieces)))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for failure in failures:
        if failure is not None:
            raise failure
    return results  # type: ignore[return-value]
