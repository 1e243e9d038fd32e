"""The pipeline's stages in the order a run takes them (importing only config.errors, so every job module can use it)."""

from __future__ import annotations

from config.errors import ConfigError

# Matching ends at publish (``cdi dedupe`` stops there); customer_360 builds the views on what was published.
MATCH_STAGES: tuple[str, ...] = ("ingest", "standardize", "validate", "match", "publish")
STAGES: tuple[str, ...] = (*MATCH_STAGES, "customer_360")


def parse_stages(text: str) -> tuple[str, ...]:
    """``ingest-validate`` (a range) or ``match,publish`` (a contiguous list)."""
    if "-" in text and "," not in text:
        first, _, last = text.partition("-")
        for name in (first, last):
            if name not in STAGES:
                raise ConfigError(f"--stages: unknown stage {name!r}; expected one of {', '.join(STAGES)}")
        i, j = STAGES.index(first), STAGES.index(last)
        if i > j:
            raise ConfigError(f"--stages: {first!r} comes after {last!r}")
        return STAGES[i : j + 1]
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in STAGES:
            raise ConfigError(f"--stages: unknown stage {name!r}; expected one of {', '.join(STAGES)}")
    indices = sorted(STAGES.index(n) for n in names)
    if indices != list(range(indices[0], indices[0] + len(indices))):
        raise ConfigError(f"--stages: {text!r} is not a contiguous run of stages ({' → '.join(STAGES)})")
    return tuple(STAGES[i] for i in indices)
