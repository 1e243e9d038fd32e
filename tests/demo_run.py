"""The demo pipeline config pointed at a test's own lake, and the one demo run the suite shares."""

from __future__ import annotations

import fcntl
import pickle
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

import jobs.match_full
from config.lake import Lake
from config.pipeline import PipelineConfig, load_pipeline_config
from demo.generator import generate
from jobs.pipeline import run_pipeline
from jobs.runs import RunContext
from matching.model_io import SavedModel

CONF = Path(__file__).resolve().parents[1] / "conf" / "cdi.yaml"
# Columns holding the wall-clock start of the run (cdi run stamps it), so they differ
# between two runs of the same data: golden_customers' first_seen and last_updated
# (its content_hash leaves them out). customer_xref has no time column; golden ids
# come from the run id and record ids, not the time.
TIME_COLUMNS = {"golden_customers": ["first_seen", "last_updated"], "customer_xref": []}


def without_activities(config: PipelineConfig) -> PipelineConfig:
    """``config`` with no activity tables: a test about matching does not pay for landing six more tables."""
    return config.model_copy(update={"sources": tuple(s.model_copy(update={"activities": ()}) for s in config.sources)})


def demo_context(
    lake: Path, run_id: str, activities: bool = False, matching: Path | None = None, **options: Any
) -> RunContext:
    """A run of ``conf/cdi.yaml`` (sources from ``$CDI_DATA_DIR``) into ``lake``, at a fixed start time.

    Without ``activities`` the sources' activity tables are left out (``without_activities``);
    ``matching`` replaces its matching settings file.
    ``options`` as for ``RunContext.create`` (``incremental``, ``model_path``).
    """
    config = load_pipeline_config(CONF)
    if not activities:
        config = without_activities(config)
    update: dict[str, str] = {"lake": str(lake)}
    if matching is not None:
        update["matching"] = str(matching)
    return RunContext.create(
        config.model_copy(update=update), run_id, started_at=datetime(2026, 3, 1, tzinfo=timezone.utc), **options,
    )


@contextmanager
def data_dir(data: Path) -> Iterator[None]:
    """``$CDI_DATA_DIR`` set to ``data`` for the duration."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        yield


@dataclass(frozen=True)
class DemoRun:
    """A published full run of the demo sources with their activity (150 customers, seed 11).

    Read it in place; a test that writes to the lake (another run, a steward's
    decision, a report) works on ``copy``'s lake instead, so every test sees
    the lake as the run left it.
    """

    data: Path
    lake: Path
    run_id: str
    trained: tuple[SavedModel, ...]  # what the match stage's train_model returned, with the term frequencies it was given

    def context(self, run_id: str | None = None) -> RunContext:
        """The run's context (or another run's, ``run_id``, on the same lake and sources)."""
        with data_dir(self.data):
            return demo_context(self.lake, run_id or self.run_id, activities=True)

    def copy(self, folder: Path) -> "DemoRun":
        """The same run with its lake copied into ``folder``."""
        lake = folder / "lake"
        shutil.copytree(self.lake, lake)
        return replace(self, lake=lake)


def publish_demo(spark: SparkSession, folder: Path) -> DemoRun:
    """Generate the demo sources into ``folder`` and run the whole pipeline on them, recording the model trained."""
    data, lake = folder / "data", folder / "lake"
    generate(data, customers=150, seed=11)
    trained: list[SavedModel] = []
    train_model = jobs.match_full.train_model

    def recording_train_model(vectors, labelled, settings, random_patterns):
        model, report = train_model(vectors, labelled, settings, random_patterns)
        trained.append(SavedModel(model, random_patterns.frequencies))
        return model, report

    run = DemoRun(data, lake, "run-1", ())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobs.match_full, "train_model", recording_train_model)
        context = run.context()
        with data_dir(data):
            run_pipeline(spark, context)
    return replace(run, trained=tuple(trained))


def shared_demo_run(spark: SparkSession, folder: Path) -> DemoRun:
    """``publish_demo`` into ``folder`` by whichever test process gets there first; the others wait for it
    (a lock on a file in ``folder``) and read the published run back."""
    folder.mkdir(exist_ok=True)
    saved = folder / "run.pickle"
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.exists():
            saved.write_bytes(pickle.dumps(publish_demo(spark, folder)))
        return pickle.loads(saved.read_bytes())


def gold(lake: Path, table: str) -> pd.DataFrame:
    """A gold table (of ``TIME_COLUMNS``) without its time columns, every value comparable, rows in a fixed
    order: what two runs of the same sources must publish alike."""
    frame = DeltaTable(Lake.at(lake).gold(table)).to_pandas().drop(columns=TIME_COLUMNS[table])
    frame = frame.map(lambda v: repr(sorted(v)) if isinstance(v, list) else repr(v))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)
