"""The pipeline's stages in the order a run takes them (no imports, so every job module can use it)."""

from __future__ import annotations

# Matching ends at publish (``cdi dedupe`` stops there); customer_360 builds the views on what was published.
MATCH_STAGES: tuple[str, ...] = ("ingest", "standardize", "validate", "match", "publish")
STAGES: tuple[str, ...] = (*MATCH_STAGES, "customer_360")
