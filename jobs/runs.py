"""Run ids and the per-run context every stage receives."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from config.pipeline import PipelineConfig
from config.errors import ConfigError
from config.lake import Lake

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def new_run_id(now: datetime | None = None) -> str:
    """``20261124T091500Z-3f9a1c``: sortable by start time, unique without coordination."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise ConfigError(
            f"--run-id {run_id!r}: expected letters, digits, '.', '_' or '-' (at most 80, starting alphanumeric)"
        )
    return run_id


@dataclass(frozen=True)
class RunContext:
    config: PipelineConfig
    lake: Lake
    run_id: str
    started_at: datetime
    incremental: bool = False
    model_path: Path | None = None  # score with this saved model instead of training
