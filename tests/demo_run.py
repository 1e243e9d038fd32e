"""The demo pipeline config pointed at a test's own lake."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from config.pipeline import PipelineConfig, load_pipeline_config
from jobs.runs import RunContext

CONF = Path(__file__).resolve().parents[1] / "conf" / "cdi.yaml"


def without_activities(config: PipelineConfig) -> PipelineConfig:
    """``config`` with no activity tables: a test about matching does not pay for landing six more tables."""
    return config.model_copy(update={"sources": tuple(s.model_copy(update={"activities": ()}) for s in config.sources)})


def demo_context(lake: Path, run_id: str, activities: bool = False, **options: Any) -> RunContext:
    """A run of ``conf/cdi.yaml`` (sources from ``$CDI_DATA_DIR``) into ``lake``, at a fixed start time.

    Without ``activities`` the sources' activity tables are left out (``without_activities``).
    ``options`` as for ``RunContext.create`` (``incremental``, ``model_path``).
    """
    config = load_pipeline_config(CONF)
    if not activities:
        config = without_activities(config)
    return RunContext.create(
        config.model_copy(update={"lake": str(lake)}), run_id, started_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
        **options,
    )
