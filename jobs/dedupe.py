"""``cdi dedupe FILE``: the quick path for one file with default settings.

Builds a one-source pipeline config from the command line (the file, its id
column and ``SOURCE_COLUMN=attribute`` mappings), runs every stage into
``OUT/lake`` and writes ``OUT/clusters.csv`` (``record_id,golden_id``, one row
per input record). Unmapped columns are carried along in bronze but not
compared.
"""

from __future__ import annotations

from pathlib import Path

from jobs.config import CONF_DIR, PipelineConfig, parse_model
from jobs.errors import ConfigError

SOURCE_NAME = "input"


def parse_mappings(items: list[str]) -> dict[str, str]:
    """``["first=given_name", ...]`` → ``{"given_name": "first", ...}``."""
    mapping: dict[str, str] = {}
    for item in items:
        column, sep, attribute = item.partition("=")
        if not sep or not column or not attribute:
            raise ConfigError(f"--map {item!r}: expected SOURCE_COLUMN=canonical_attribute")
        if attribute in mapping:
            raise ConfigError(f"--map: attribute {attribute!r} is mapped twice")
        mapping[attribute] = column
    if not mapping:
        raise ConfigError("--map: give at least one SOURCE_COLUMN=canonical_attribute")
    return mapping


def dedupe_config(
    path: Path, id_column: str, mapping: dict[str, str], out: Path, region: str, day_first: bool
) -> PipelineConfig:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"{path}: expected a .csv or .parquet file")
    source = {
        "name": SOURCE_NAME,
        "kind": "csv" if suffix == ".csv" else "parquet",
        "path": str(path),
        "primary_key": [id_column],
        "mapping": mapping,
        "standardize": {"default_region": region, "day_first": day_first},
    }
    return parse_model(
        PipelineConfig,
        {
            "lake": str(out / "lake"),
            "canonical_suite": str(CONF_DIR / "quality" / "dedupe.yaml"),
            "sources": [source],
        },
        "command line",
    )
