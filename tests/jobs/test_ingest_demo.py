"""All four demo departmental sources through ingest, read back with delta-rs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from config.pipeline import load_pipeline_config
from demo.generator import generate
from jobs.ingest import ingest
from config.lake import Lake

CONF = Path(__file__).resolve().parents[2] / "conf" / "cdi.yaml"


def test_demo_sources_land_in_bronze_and_read_back_with_delta_rs(spark, tmp_path, monkeypatch):
    summary = generate(tmp_path / "demo", customers=120, seed=7)
    monkeypatch.setenv("CDI_DATA_DIR", str(tmp_path / "demo"))
    monkeypatch.setenv("CDI_LAKE", str(tmp_path / "lake"))
    config = load_pipeline_config(CONF)
    lake = Lake.at(config.lake)

    results = ingest(spark, config, lake, "demo-1", datetime(2026, 1, 1))

    assert {r.source: r.read for r in results} == summary.rows_per_source
    assert all(r.landed + r.rejected == r.read for r in results)
    for source in config.sources:
        table = DeltaTable(lake.bronze(source.name))
        frame = table.to_pandas()
        landed = next(r.landed for r in results if r.source == source.name)
        assert len(frame) == landed
        assert {"source_system", "source_key", "run_id", "ingested_at", "record_hash"} <= set(frame.columns)
        assert frame["source_key"].is_unique
        assert set(frame["source_system"]) == {source.name}
    nested = pa.table(DeltaTable(lake.bronze("webshop")).to_pyarrow_dataset().to_table()).schema.field("address")
    assert pa.types.is_struct(nested.type)
