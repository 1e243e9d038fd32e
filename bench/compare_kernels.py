"""Comparison-vector throughput: ``score_batch`` on synthetic pairs, optionally beside an older revision.

Run from the repository root (pure pandas, no Spark)::

    .venv/bin/python -m bench.compare_kernels --pairs 200000 --baseline HEAD~1

Pairs carry every attribute of ``conf/matching.yaml``: names, emails, phones,
addresses and ids copied with a typo now and then, a few accented (and a few
decomposed, "e" + U+0301) names, some values missing. They are scored in
batches of 10,000 rows, the size of the Arrow batches ``mapInPandas`` hands
over. With ``--baseline`` the ``matching/compare.py`` of that git revision
scores the same batches too, and the two sets of comparison vectors must be
equal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from matching import compare
from matching.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = load_settings(ROOT / "conf" / "matching.yaml")
KEEP = ["record_id_l", "record_id_r"]
BATCH_ROWS = 10_000

GIVEN = ["james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "zoë", "josé", "siobhan", "mohammed"]
FAMILY = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "müller", "o'brien", "nguyen"]
STREETS = ["high street", "station road", "church lane", "victoria road", "green lane", "manor road"]
CITIES = ["leeds", "york", "bath", "hull", "london", "bristol"]


def _typo(rng: np.random.Generator, text: str) -> str:
    """``text`` with one random substitution, deletion, insertion or transposition."""
    if len(text) < 2:
        return text + "x"
    i = int(rng.integers(len(text) - 1))
    edit = int(rng.integers(4))
    if edit == 0:
        return text[:i] + "q" + text[i + 1 :]
    if edit == 1:
        return text[:i] + text[i + 1 :]
    if edit == 2:
        return text[:i] + "e" + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _record(rng: np.random.Generator) -> dict[str, object]:
    given, family = str(rng.choice(GIVEN)), str(rng.choice(FAMILY))
    if rng.random() < 0.002:
        given = given.replace("e", "e\u0301", 1)  # decomposed accent: jellyfish's grapheme path
    number = int(rng.integers(1, 200))
    return {
        "given_name": given,
        "family_name": family,
        "middle_name": str(rng.choice(GIVEN)) if rng.random() < 0.3 else None,
        "birth_date": dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(30_000))),
        "birth_date_written": None,
        "email": f"{given}.{family}{int(rng.integers(100))}@example.com",
        "phone": f"+44{int(rng.integers(10**9, 10**10))}",
        "address_line1": f"{number} {rng.choice(STREETS)}",
        "postcode": f"LS{int(rng.integers(1, 30))} {int(rng.integers(1, 10))}AB",
        "city": str(rng.choice(CITIES)),
        "gender": str(rng.choice(["f", "m"])),
        "national_id": f"{int(rng.integers(10**8, 10**9))}",
    }


def _counterpart(rng: np.random.Generator, record: dict[str, object]) -> dict[str, object]:
    """The same person with typos and gaps (half the time), or another person."""
    if rng.random() < 0.5:
        return _record(rng)
    other: dict[str, object] = {}
    for column, value in record.items():
        if rng.random() < 0.05:
            other[column] = None
        elif isinstance(value, str) and rng.random() < 0.3:
            other[column] = _typo(rng, value)
        else:
            other[column] = value
    return other


def synthetic_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` attached pairs: ``<column>_l``, ``<column>_r`` for every compared column, and the tf columns."""
    rng = np.random.default_rng(seed)
    lefts = [_record(rng) for _ in range(n)]
    rights = [_counterpart(rng, left) for left in lefts]
    frame = pd.DataFrame({"record_id_l": [f"l{i}" for i in range(n)], "record_id_r": [f"r{i}" for i in range(n)]})
    for column in compare.comparison_columns(SETTINGS):
        frame[f"{column}_l"] = pd.Series([r[column] for r in lefts], dtype=object)
        frame[f"{column}_r"] = pd.Series([r[column] for r in rights], dtype=object)
    for column in compare.tf_columns(SETTINGS):
        frame[f"tf_{column}"] = np.where(frame[f"{column}_l"] == frame[f"{column}_r"], 1e-3, np.nan)
    return frame


def module_at(revision: str) -> ModuleType:
    """``matching/compare.py`` as it was at git ``revision``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:matching/compare.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "compare_baseline.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("compare_baseline", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def timed(score_batch: Callable[..., pd.DataFrame], batches: list[pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    """Seconds to score every batch, and the concatenated comparison vectors."""
    start = time.perf_counter()
    scored = [score_batch(batch, SETTINGS.comparisons, KEEP) for batch in batches]
    return time.perf_counter() - start, pd.concat(scored, ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--baseline", help="git revision whose matching/compare.py to time beside (and check against)")
    args = parser.parse_args(argv)

    pairs = synthetic_pairs(args.pairs)
    batches = [pairs.iloc[i : i + BATCH_ROWS] for i in range(0, len(pairs), BATCH_ROWS)]
    seconds, vectors = timed(compare.score_batch, batches)
    print(f"working tree: {args.pairs / seconds:,.0f} pairs/s ({seconds:.1f} s)")
    if args.baseline:
        baseline_seconds, baseline_vectors = timed(module_at(args.baseline).score_batch, batches)
        print(f"{args.baseline}: {args.pairs / baseline_seconds:,.0f} pairs/s ({baseline_seconds:.1f} s)")
        pd.testing.assert_frame_equal(vectors, baseline_vectors)
        print(f"identical comparison vectors; {baseline_seconds / seconds:.1f}x faster")


if __name__ == "__main__":
    main(sys.argv[1:])
