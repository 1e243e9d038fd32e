"""``cdi run --dry-run``: every check runs against the demo sources and nothing lands in the lake."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from config.pipeline import load_pipeline_config
from demo.generator import generate
from jobs.dry_run import dry_run
from config.errors import ConfigError, SourceError
from jobs.pipeline import STAGES
from jobs.runs import RunContext
from matching.compare import comparison_levels
from matching.fellegi_sunter import untrained_model
from matching.settings import load_settings

CONF = Path(__file__).resolve().parents[2] / "conf" / "cdi.yaml"


def context_for(data: Path, lake: str | Path, **changes: str) -> RunContext:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        config = load_pipeline_config(CONF)
    return RunContext.create(
        config.model_copy(update={"lake": str(lake), **changes}), "dry-1", started_at=datetime(2026, 3, 1, tzinfo=timezone.utc)
    )


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    generate(data, customers=20, seed=3)
    return data


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_dry_run_lists_every_source_and_table_and_creates_no_lake(spark, demo_data, tmp_path):
    lake = tmp_path / "lake"
    context = context_for(demo_data, lake)
    plan = "\n".join(dry_run(spark, context, STAGES))
    assert not lake.exists()
    assert list(tmp_path.iterdir()) == []
    for source in context.config.sources:
        assert f"  {source.name:<14} {source.kind:<8} " in plan
        assert context.lake.bronze(source.name) in plan
    for table in ("customers_std", "pairs", "clusters", "golden_customers", "customer_xref", "match_candidates"):
        assert f"/{table}\n" in plan
    assert "stages: ingest → standardize → validate → match → publish" in plan


def test_a_dry_run_leaves_an_existing_lake_as_it_was(spark, demo_data, tmp_path):
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "marker.txt").write_text("kept")
    before = snapshot(tmp_path)
    dry_run(spark, context_for(demo_data, tmp_path), ("match", "publish"))
    assert snapshot(tmp_path) == before


def test_a_dry_run_on_a_uri_lake_probes_through_hadoop_and_leaves_nothing(spark, demo_data, tmp_path):
    lake = tmp_path / "lake"
    plan = dry_run(spark, context_for(demo_data, f"file://{lake}"), ("publish",))
    assert "through Hadoop FileSystem" in "\n".join(plan)
    assert not lake.exists()


def test_a_missing_source_file_is_a_source_error(spark, tmp_path):
    with pytest.raises(SourceError, match="sales_crm"):
        dry_run(spark, context_for(tmp_path / "nowhere", tmp_path / "lake"), STAGES)


def test_stages_that_do_not_ingest_do_not_open_the_sources(spark, tmp_path):
    plan = dry_run(spark, context_for(tmp_path / "nowhere", tmp_path / "lake"), ("match", "publish"))
    assert "  (not read by these stages)" in plan


def test_a_missing_matching_file_is_a_config_error_before_the_run_starts(demo_data, tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        context_for(demo_data, tmp_path / "lake", matching=str(tmp_path / "missing.yaml"))


def test_a_lake_inside_a_file_is_a_config_error(spark, demo_data, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        dry_run(spark, context_for(demo_data, tmp_path / "file" / "lake"), ("publish",))


def test_a_model_without_term_frequencies_is_a_config_error_naming_the_file(demo_data, tmp_path):
    config = context_for(demo_data, tmp_path / "lake").config
    model = untrained_model(comparison_levels(load_settings(Path(config.matching))), None)  # fits, but no shares
    path = tmp_path / "old-model.json"
    path.write_text(model.to_json())

    with pytest.raises(ConfigError, match=f"--model {path}: no term frequencies for given_name, family_name"):
        RunContext.create(config, "dry-1", model_path=path)
