"""Run ids and the per-run context every stage receives.

Every configuration file a run reads (the pipeline config, matching settings,
survivorship, quality suites, vocabularies and a ``--model`` file) is parsed
into typed objects once, by ``load_run_settings``, before the SparkSession
starts and before anything is written; stages read them from the context.
"""

from __future__ import annotations

import re
import secrets
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from config.pipeline import PipelineConfig
from config.errors import ConfigError
from config.lake import Lake
from matching.model_io import SavedModel, load_model_file
from matching.settings import MatchSettings, load_settings
from matching.standardize import Vocabulary, load_vocabulary
from matching.survivorship import SurvivorshipSettings, load_survivorship
from quality.suites import SuiteConfig, load_suite

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


T = TypeVar("T")


@dataclass(frozen=True)
class RunSettings:
    """Every configuration file of a run, parsed and checked."""

    matching: MatchSettings
    survivorship: SurvivorshipSettings
    vocabulary: Vocabulary
    canonical_suite: SuiteConfig
    source_suites: Mapping[str, SuiteConfig]  # source name -> its suite, for sources that have one
    model: SavedModel | None = None  # a ``--model`` file: score with it instead of training
    # "<source>/<activity>" -> its suite, for activity tables that have one
    activity_suites: Mapping[str, SuiteConfig] = field(default_factory=dict)


def _config_file(path: str | Path, load: Callable[[], T]) -> T:
    """``load()``, its ValueError or OSError turned into a ConfigError naming ``path``."""
    try:
        return load()
    except ConfigError:
        raise
    except (ValueError, OSError) as exc:
        message = str(exc)
        raise ConfigError(message if str(path) in message else f"{path}: {message}") from None


def _suite(path: str | Path) -> SuiteConfig:
    """A suite whose expectations Great Expectations also accepts (``to_gx`` checks their kwargs)."""
    suite = load_suite(path)
    suite.to_gx(today=dt.date.today(), previous_row_count=None)
    return suite


def load_run_settings(config: PipelineConfig, model_path: Path | None = None) -> RunSettings:
    """Parse every file ``config`` names; the first problem raises a ConfigError naming the file and key."""
    matching = _config_file(config.matching, lambda: load_settings(Path(config.matching)))
    return RunSettings(
        matching=matching,
        survivorship=_config_file(config.survivorship, lambda: load_survivorship(config.survivorship)),
        vocabulary=_config_file(config.vocabulary_dir, lambda: load_vocabulary(Path(config.vocabulary_dir))),
        canonical_suite=_config_file(config.canonical_suite, lambda: _suite(config.canonical_suite)),
        source_suites={
            source.name: _config_file(source.suite, lambda s=source.suite: _suite(s))
            for source in config.sources
            if source.suite
        },
        model=None if model_path is None else load_model_file(model_path, matching),
        activity_suites={
            f"{source.name}/{activity.name}": _config_file(activity.suite, lambda s=activity.suite: _suite(s))
            for source in config.sources
            for activity in source.activities
            if activity.suite
        },
    )


@dataclass(frozen=True)
class RunContext:
    config: PipelineConfig
    lake: Lake
    run_id: str
    started_at: datetime
    settings: RunSettings
    incremental: bool = False
    model_path: Path | None = None  # score with this saved model instead of training (``settings.model``)

    @classmethod
    def create(
        cls,
        config: PipelineConfig,
        run_id: str | None = None,
        *,
        started_at: datetime | None = None,
        incremental: bool = False,
        model_path: Path | None = None,
    ) -> "RunContext":
        """The context of a new run: every configuration file parsed, nothing written."""
        return cls(
            config=config,
            lake=Lake.at(config.lake),
            run_id=check_run_id(run_id) if run_id else new_run_id(),
            started_at=started_at or datetime.now(timezone.utc).replace(microsecond=0),
            settings=load_run_settings(config, model_path),
            incremental=incremental,
            model_path=model_path,
        )
