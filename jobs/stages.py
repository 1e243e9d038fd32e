"""The pipeline's stages in the order a run takes them (no imports, so every job module can use it)."""

from __future__ import annotations

STAGES: tuple[str, ...] = ("ingest", "standardize", "validate", "match", "publish")
