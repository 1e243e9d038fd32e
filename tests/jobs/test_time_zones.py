"""Timestamps are UTC whatever the time zones of the machine, the JVM and Python."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable

from config.lake import Lake
from demo.generator import generate
from tests.session import SHORT_LIVED_JVM_OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_in_non_utc_time_zones_stores_utc_timestamps(tmp_path):
    generate(tmp_path / "data", customers=15, seed=2)
    lake = tmp_path / "lake"
    env = {
        **os.environ,
        "TZ": "Pacific/Auckland",  # UTC+12 or +13
        "JAVA_TOOL_OPTIONS": f"-Duser.timezone=America/Los_Angeles {SHORT_LIVED_JVM_OPTIONS}",  # UTC-8 or -7
        "CDI_DATA_DIR": str(tmp_path / "data"),
        "CDI_LAKE": str(lake),
        "CDI_SPARK_LOG": str(tmp_path / "spark.log"),
    }
    before = datetime.now(timezone.utc)
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", "--config", "conf/cdi.yaml", "--run-id", "tz-1", "--stages", "ingest"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    after = datetime.now(timezone.utc)
    assert done.returncode == 0, done.stderr
    # The JVM's console output (here its notice of JAVA_TOOL_OPTIONS) goes to the Spark log, not the terminal.
    assert "Picked up JAVA_TOOL_OPTIONS" in (tmp_path / "spark.log").read_text()
    assert "Picked up JAVA_TOOL_OPTIONS" not in done.stderr

    audit = DeltaTable(Lake.at(lake).run_audit).to_pandas()
    bronze = DeltaTable(Lake.at(lake).bronze("sales_crm")).to_pandas()
    for stamps in (audit["started_at"], bronze["ingested_at"]):
        utc = pd.to_datetime(stamps, utc=True)
        assert utc.min() >= pd.Timestamp(before - timedelta(seconds=1))
        assert utc.max() <= pd.Timestamp(after + timedelta(seconds=1))
