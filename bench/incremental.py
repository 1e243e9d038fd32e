"""Incremental against full: the cost of a run that brings 1% new source rows.

Run from the repository root (Java 17 for Spark)::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.incremental --customers 45000

Generates the demo sources (about 2.2 rows per customer), holds back the
newest web shop signups so that the held-back rows are ``--share`` of all
source rows, and runs the whole pipeline on the rest (run 1). The lake is then
copied; with the held-back rows restored, run 2 goes once with
``cdi run --incremental`` (reads only rows past each source's watermark,
scores only pairs of new or changed records with run 1's model and
re-clusters the components they touch) and once as a full run that reads
every source row and scores every pair with the same model (``--model``),
each on its own copy. Both run 2s must publish the same golden table; the script checks that
and prints wall time and seconds per stage of each. Work files go to
``bench/out/incremental/`` (git-ignored); the table is written to the
"Incremental runs" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable

from bench.accuracy import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "incremental"
CDI = [sys.executable, "-m", "jobs.cli"]
SECTION = "## Incremental runs"
SIGNUPS = "webshop_signups.jsonl"
STAGES = ("ingest", "standardize", "validate", "match", "publish")


def source_rows(data: Path) -> int:
    """Rows across the four demo sources, from the generator's truth file (one line per source row)."""
    with (data / "truth.csv").open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1


def hold_back(data: Path, share: float) -> tuple[list[str], int]:
    """Remove the newest signups (by ``created_at``, the source's watermark) so about ``share`` of all rows
    arrive in run 2, as new rows do; return the full file's lines and the number held back."""
    path = data / SIGNUPS
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    wanted = min(len(lines), max(1, round(share * source_rows(data))))
    newest = sorted(range(len(lines)), key=lambda i: json.loads(lines[i])["created_at"])[-wanted:]
    held = set(newest)
    path.write_text("".join(line for i, line in enumerate(lines) if i not in held), encoding="utf-8")
    return lines, len(held)


def cdi_run(lake: Path, data: Path, run_id: str, *flags: str) -> float:
    env = {**os.environ, "CDI_DATA_DIR": str(data), "CDI_LAKE": str(lake)}
    log = lake.parent / f"{run_id}.log"
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([*CDI, "run", "--config", "conf/cdi.yaml", "--run-id", run_id, *flags],
                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"cdi run {run_id} failed ({done.returncode}); see {log}")
    return time.perf_counter() - started


def stage_seconds(lake: Path, run_id: str) -> dict[str, float]:
    summary = json.loads((lake / "_runs" / run_id / "summary.json").read_text())
    return {stage: summary["timings_seconds"].get(stage, float("nan")) for stage in STAGES}


def golden(lake: Path) -> pd.DataFrame:
    frame = DeltaTable(str(lake / "gold" / "customer_xref")).to_pandas(columns=["record_id", "golden_id"])
    return frame.sort_values("record_id").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=45000)
    parser.add_argument("--share", type=float, default=0.01, help="share of source rows arriving in run 2")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    shutil.rmtree(OUT, ignore_errors=True)
    data = OUT / "data"
    subprocess.run([*CDI, "demo-data", "--out", str(data), "--customers", str(args.customers), "--seed", str(args.seed)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    total = source_rows(data)
    lines, held = hold_back(data, args.share)
    base = OUT / "base" / "lake"
    base.parent.mkdir(parents=True)
    first = cdi_run(base, data, "run-1")
    (data / SIGNUPS).write_text("".join(lines), encoding="utf-8")

    results: dict[str, tuple[float, dict[str, float]]] = {}
    model = base / "_runs" / "run-1" / "model.json"
    for name, flags in (("incremental", ("--incremental",)), ("full", ("--model", str(model)))):
        lake = OUT / name / "lake"
        shutil.copytree(base, lake)
        results[name] = (cdi_run(lake, data, "run-2", *flags), stage_seconds(lake, "run-2"))
    same = golden(OUT / "incremental" / "lake").equals(golden(OUT / "full" / "lake"))

    header = ["run", "wall s", *[f"{s} s" for s in STAGES]]
    rows = [["run 1: full, 99% of rows", f"{first:.0f}", *[f"{v:.0f}" for v in stage_seconds(base, "run-1").values()]]]
    for name, (wall, stages) in results.items():
        label = "run 2: incremental" if name == "incremental" else "run 2: full, same model"
        rows.append([label, f"{wall:.0f}", *[f"{v:.0f}" for v in stages.values()]])
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
    )
    text = "\n".join([
        SECTION,
        "",
        f"{total:,} demo source rows ({args.customers:,} customers, seed {args.seed}); run 2 brings "
        f"{held:,} held-back rows ({held / total:.1%}). Machine: {machine()}.",
        "",
        "```",
        f"JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.incremental --customers {args.customers}",
        "```",
        "",
        table,
        "",
        f"Both run 2s published the same customer_xref: {'yes' if same else 'NO'}.",
        "",
    ])
    print(text)
    write_section(text)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
