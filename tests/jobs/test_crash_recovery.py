"""SIGKILL the driver between and during the publish MERGEs, then run again.

Each killed attempt runs as its own `cdi run` process; the re-run and the
uninterrupted reference run in this process on copies of the same lake.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs.demo_data import generate
from jobs.lake import Lake
from jobs.pipeline import STAGES, run_pipeline
from tests.demo_run import demo_context

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf" / "cdi.yaml"
PUBLISHED = ("golden_customers", "customer_xref", "match_candidates", "golden_id_history", "_publications")


def snapshot(lake: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for name in PUBLISHED:
        frame = DeltaTable(Lake.at(lake).gold(name)).to_pandas()
        frame = frame.map(lambda v: repr(sorted(v)) if isinstance(v, list) else repr(v))
        frames[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return frames


@pytest.fixture(scope="module")
def matched_lake(spark, tmp_path_factory):
    """A lake where run-1 got as far as `match`, and the state an uninterrupted publish leaves."""
    data = tmp_path_factory.mktemp("demo")
    base = tmp_path_factory.mktemp("base") / "lake"
    generate(data, customers=60, seed=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        run_pipeline(spark, demo_context(base, "run-1"), STAGES[: STAGES.index("match") + 1])
        reference = tmp_path_factory.mktemp("reference") / "lake"
        shutil.copytree(base, reference)
        run_pipeline(spark, demo_context(reference, "run-1"), ("publish",))
    return data, base, snapshot(reference)


@pytest.mark.parametrize(
    "point",
    ["publish:after:golden_customers", "publish:during:customer_xref"],
)
def test_killed_publish_then_rerun_equals_an_uninterrupted_run(spark, matched_lake, tmp_path, point):
    data, base, expected = matched_lake
    lake = tmp_path / "lake"
    shutil.copytree(base, lake)
    env = {
        **os.environ,
        "CDI_DATA_DIR": str(data),
        "CDI_LAKE": str(lake),
        "CDI_FAULT_POINT": point,
        "CDI_FAULT_DELAY": "0.5",
        "CDI_SPARK_MASTER": "local[2]",
        "CDI_SPARK_CONF_spark__ui__enabled": "false",
        "CDI_SPARK_CONF_spark__sql__shuffle__partitions": "2",
    }
    killed = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", "--config", str(CONF), "--run-id", "run-1", "--stages", "publish"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    gold = Lake.at(lake)
    golden_ids = set(DeltaTable(gold.gold("golden_customers")).to_pandas(columns=["golden_id"])["golden_id"])
    xref_ids = set(DeltaTable(gold.gold("customer_xref")).to_pandas(columns=["golden_id"])["golden_id"])
    assert xref_ids <= golden_ids, "a reader saw an xref pointing at a golden id that does not exist"

    run_pipeline(spark, demo_context(lake, "run-1"), ("publish",))

    actual = snapshot(lake)
    for name in PUBLISHED:
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=name)
