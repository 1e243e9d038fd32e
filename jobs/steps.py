"""Named steps of a run: every Spark job started inside ``step(spark, name)`` carries the tag ``cdi:<name>``.

A step given a ``label`` also shows it as progress (``jobs/progress.py``).
Tags are set with ``SparkSession.addTag``, which works the same on a classic
session and on Spark Connect. ``bench/profile.py`` reads them back from
Spark's event log to count jobs and time per stage and step; on a cluster the
Spark UI shows them beside each job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from jobs.progress import progress

TAG_PREFIX = "cdi:"


def step_tag(name: str) -> str:
    """The job tag of step ``name``: Spark refuses commas and empty tags."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip())
    if not cleaned:
        raise ValueError("a step needs a name")
    return TAG_PREFIX + cleaned


@contextmanager
def step(spark: SparkSession, name: str, label: str | None = None) -> Iterator[None]:
    """Tag the Spark jobs run inside the block with ``step_tag(name)``; steps nest.

    ``label`` (words for a user) is shown as progress of the stage ``name`` starts with.
    """
    tag = step_tag(name)
    if label:
        progress.show(name.split(".", 1)[0], label)
    spark.addTag(tag)
    try:
        yield
    finally:
        spark.removeTag(tag)
