"""Scale benchmark: cdi's pipeline and match stage beside Splink 5 (DuckDB and Spark) at growing sizes.

Run from the repository root (Java 17 for Spark)::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.scale --rows 10000 100000 1000000

For each size (in source rows; the demo generator writes about 2.2 rows per
customer) it runs, each step as a subprocess with a time limit:

1. ``cdi demo-data`` (streamed, with ``truth.csv``);
2. ``cdi run`` with ``conf/cdi.yaml`` on those sources into a fresh lake: the
   full pipeline, stage times from the run's ``summary.json``;
3. ``cdi run --stages match`` with a new run id on the same lake: the match
   stage alone;
4. Splink 5 with the DuckDB backend, then with the Spark backend (cdi's own
   session settings plus Splink's UDF jar), on the lake's standardized records
   with cdi's blocking rules and comparisons translated (``bench/splink_peer.py``),
   and Splink's candidate pairs counted exactly in DuckDB.

Every step's memory is sampled every 0.5 s: the sum of the resident memory of
its whole process tree (in local mode the Spark driver and executors are one
JVM, plus Python workers), and of the JVM alone. F1 is pairwise, against the
generator's truth, by ``jobs.evaluate``. A step that fails or runs out of time
is a row with its status, never left out.

Work files go to ``--out`` (default ``bench/out/scale``, git-ignored), one
folder per size with its results in ``results.json``. The table and the plot
(``docs/scale.png``) in the "Scale" section of ``docs/benchmarks.md`` cover
every size found there, so a size measured later joins the earlier ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd
import psutil
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.accuracy import DOC, machine, write_section
from jobs.evaluate import evaluate, predicted_assignment, read_truth
from config.lake import Lake
from jobs.pipeline import STAGES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "out" / "scale"
PLOT = ROOT / "docs" / "scale.png"
SECTION = "## Scale"
JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
ROWS_PER_CUSTOMER = 2.2
SEED = 42
SAMPLE_SECONDS = 0.5
FULL_RUN_ID = "scale-full"
MATCH_RUN_ID = "scale-match"
RESULTS = "results.json"
CDI_FULL = "cdi full pipeline"
CDI_MATCH = "cdi match stage"
SPLINK_DUCKDB = "Splink 5 + DuckDB"
SPLINK_SPARK = "Splink 5 + Spark"
OK = "ok"


@dataclass(frozen=True)
class Step:
    """One subprocess: how it ended, its wall time and the peaks of its process tree's memory."""

    status: str  # "ok", "failed (exit N)", "timed out after N s"
    seconds: float
    peak_bytes: int
    jvm_bytes: int


@dataclass(frozen=True)
class Row:
    tool: str
    status: str
    wall_seconds: float | None = None
    match_seconds: float | None = None
    peak_bytes: int | None = None
    jvm_bytes: int | None = None
    pairs: int | None = None
    f1: float | None = None

    @property
    def pairs_per_second(self) -> float | None:
        if self.pairs is None or not self.match_seconds:
            return None
        return self.pairs / self.match_seconds


@dataclass(frozen=True)
class SizeResult:
    """Everything measured at one size; stored as ``results.json`` in the size's folder."""

    requested_rows: int
    customers: int
    source_rows: int | None
    measured_on: str
    command: str
    load_average: float
    generate_seconds: float | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    full_wall_seconds: float | None = None
    rows: list[Row] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> "SizeResult":
        data = json.loads(text)
        data["rows"] = [Row(**row) for row in data["rows"]]
        return cls(**data)


# --- measuring a subprocess -----------------------------------------------------------------------


def _tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(RSS of the whole tree, RSS of its JVMs) in bytes; processes that end meanwhile count 0."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = jvm = 0
    for process in processes:
        try:
            rss = process.memory_info().rss
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        if name == "java":
            jvm += rss
    return total, jvm


def _kill_tree(root: psutil.Process) -> None:
    """Kill the step's processes one by one, by their ids, children first."""
    try:
        processes = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(processes, timeout=30)


def measure(command: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> Step:
    """Run ``command`` (output into ``log``), sampling its process tree's memory until it ends or times out."""
    started = time.perf_counter()
    peak = peak_jvm = 0
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(process.pid)
        while process.poll() is None:
            total, jvm = _tree_memory(root)
            peak, peak_jvm = max(peak, total), max(peak_jvm, jvm)
            if time.perf_counter() - started > timeout:
                _kill_tree(root)
                process.wait()
                return Step(f"timed out after {timeout:.0f} s", time.perf_counter() - started, peak, peak_jvm)
            try:
                process.wait(timeout=SAMPLE_SECONDS)
            except subprocess.TimeoutExpired:
                continue
    seconds = time.perf_counter() - started
    status = OK if process.returncode == 0 else f"failed (exit {process.returncode}, see {log.name})"
    return Step(status, seconds, peak, peak_jvm)


# --- the steps ------------------------------------------------------------------------------------


def _cdi(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "jobs.cli", *arguments]


def _splink(lake: Path, out: Path, *mode: str) -> list[str]:
    return [sys.executable, "-m", "bench.splink_peer", *mode, "--lake", str(lake), "--out", str(out)]


def _summary(lake: Path, run_id: str) -> dict:
    return json.loads((Path(Lake.at(lake).run_dir(run_id)) / "summary.json").read_text())


def _finished_stages(lake: Path, run_id: str) -> dict[str, float]:
    """Seconds of each stage ``run_id`` finished, from ``run_audit``: also for a run that failed later."""
    try:
        audit = DeltaTable(Lake.at(lake).run_audit).to_pandas(
            columns=["run_id", "stage", "source_system", "status", "seconds"]
        )
    except TableNotFoundError:
        return {}
    done = audit[(audit["run_id"] == run_id) & audit["source_system"].isna() & (audit["status"] == OK)]
    return {stage: float(seconds) for stage, seconds in zip(done["stage"], done["seconds"]) if stage in STAGES}


def _assignment(frame: pd.DataFrame) -> pd.Series:
    """record id -> cluster id from a frame with ``record_id`` and ``cluster_id``."""
    return pd.Series(frame["cluster_id"].astype(str).to_numpy(), index=frame["record_id"].to_numpy())


def _f1(predicted: pd.Series, truth: pd.Series) -> float:
    return evaluate(predicted, truth).pairwise.f1


def _not_run(tools: list[str], reason: str) -> list[Row]:
    return [Row(tool, f"not run: {reason}") for tool in tools]


def _row(tool: str, step: Step, **figures: float | int | None) -> Row:
    return Row(tool, step.status, step.seconds, peak_bytes=step.peak_bytes, jvm_bytes=step.jvm_bytes, **figures)


def _cdi_rows(work: Path, env: dict[str, str], truth: pd.Series, timeout: float) -> tuple[list[Row], dict[str, float]]:
    """The full pipeline, then the match stage alone on its lake; and the stage times of the full run.

    The match stage runs again only if the full run got through validate (``customers_std`` complete);
    the stage times are those of ``summary.json``, or of the stages finished before a failure.
    """
    lake = work / "lake"
    command = _cdi("run", "--config", "conf/cdi.yaml", "--run-id", FULL_RUN_ID)
    full = measure(command, work / "cdi-full.log", timeout, env)
    if full.status == OK:
        summary = _summary(lake, FULL_RUN_ID)
        stages = summary["timings_seconds"]
        full_row = _row(CDI_FULL, full, match_seconds=stages.get("match"), pairs=summary["pairs"]["pairs"],
                        f1=_f1(predicted_assignment(str(lake)), truth))
    else:
        stages = _finished_stages(lake, FULL_RUN_ID)
        full_row = _row(CDI_FULL, full)
    if "validate" not in stages:
        return [full_row, *_not_run([CDI_MATCH], "no standardized records")], stages
    command = _cdi("run", "--config", "conf/cdi.yaml", "--run-id", MATCH_RUN_ID, "--stages", "match")
    match = measure(command, work / "cdi-match.log", timeout, env)
    if match.status != OK:
        return [full_row, _row(CDI_MATCH, match)], stages
    summary = _summary(lake, MATCH_RUN_ID)
    clusters_table = DeltaTable(Lake.at(lake).path("silver", "clusters"))
    clusters = _assignment(clusters_table.to_pandas(columns=["record_id", "cluster_id"]))
    match_row = _row(CDI_MATCH, match, match_seconds=summary["timings_seconds"]["match"],
                     pairs=summary["pairs"]["pairs"], f1=_f1(clusters, truth))
    return [full_row, match_row], stages


def _splink_rows(work: Path, truth: pd.Series, timeout: float, with_spark: bool) -> list[Row]:
    lake = work / "lake"
    counted = measure(_splink(lake, work / "splink-pairs", "--count-pairs"), work / "splink-pairs.log", timeout)
    pairs = None
    if counted.status == OK:
        pairs = json.loads((work / "splink-pairs" / "result.json").read_text())["candidate_pairs"]
    rows = []
    for tool, backend in ((SPLINK_DUCKDB, "duckdb"), (SPLINK_SPARK, "spark")):
        if backend == "spark" and not with_spark:
            rows.append(Row(tool, "skipped (--skip-splink-spark)"))
            continue
        out = work / f"splink-{backend}"
        step = measure(_splink(lake, out, "--backend", backend), work / f"splink-{backend}.log", timeout)
        if step.status == OK:
            seconds = json.loads((out / "result.json").read_text())["seconds"]
            f1 = _f1(_assignment(pd.read_parquet(out / "clusters.parquet")), truth)
            row = _row(tool, step, match_seconds=seconds, pairs=pairs, f1=f1)
        else:
            row = _row(tool, step, pairs=pairs)
        if counted.status != OK:
            row = replace(row, status=f"{row.status}; pair count {counted.status}")
        rows.append(row)
    return rows


def run_size(requested_rows: int, out: Path, timeout: float, with_spark: bool, command: str) -> SizeResult:
    work = out / f"rows-{requested_rows}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    customers = max(1, round(requested_rows / ROWS_PER_CUSTOMER))
    result = SizeResult(requested_rows, customers, None, date.today().isoformat(), command, os.getloadavg()[0], None)
    generate = measure(_cdi("demo-data", "--customers", str(customers), "--seed", str(SEED), "--out", str(data)),
                       work / "demo-data.log", timeout)
    tools = [CDI_FULL, CDI_MATCH, SPLINK_DUCKDB, SPLINK_SPARK]
    if generate.status != OK:
        return _store(work, replace(result, rows=_not_run(tools, f"demo-data {generate.status}")))
    truth = read_truth(data / "truth.csv", None)
    env = {**os.environ, "CDI_DATA_DIR": str(data), "CDI_LAKE": str(work / "lake"), "GX_ANALYTICS_ENABLED": "false"}
    cdi_rows, stages = _cdi_rows(work, env, truth, timeout)
    if "validate" in stages:
        splink_rows = _splink_rows(work, truth, timeout, with_spark)
    else:
        splink_rows = _not_run([SPLINK_DUCKDB, SPLINK_SPARK], "no standardized records")
    full_wall = cdi_rows[0].wall_seconds if cdi_rows[0].status == OK else None
    return _store(work, replace(result, source_rows=len(truth), generate_seconds=generate.seconds,
                                stage_seconds=stages, full_wall_seconds=full_wall, rows=[*cdi_rows, *splink_rows]))


def _store(work: Path, result: SizeResult) -> SizeResult:
    (work / RESULTS).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


# --- tables, plot and the docs section --------------------------------------------------------------


def _number(value: float | int | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _memory(row: Row) -> str:
    if row.peak_bytes is None:
        return "—"
    return f"{row.peak_bytes / 2**30:.2f} ({row.jvm_bytes / 2**30:.2f})"


def table(results: list[SizeResult]) -> str:
    lines = [
        "| source rows | tool | status | wall (s) | match stage (s) | peak memory GiB (JVM) | candidate pairs "
        "| pairs/s | F1 |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        rows = _number(result.source_rows or result.requested_rows, ",")
        for row in result.rows:
            lines.append(
                f"| {rows} | {row.tool} | {row.status} | {_number(row.wall_seconds, '.1f')} "
                f"| {_number(row.match_seconds, '.1f')} | {_memory(row)} | {_number(row.pairs, ',')} "
                f"| {_number(row.pairs_per_second, ',.0f')} | {_number(row.f1, '.4f')} |"
            )
    return "\n".join(lines)


def stage_table(results: list[SizeResult]) -> str:
    """Where the full pipeline's time goes: generation, each stage, and the rest (Spark start, run report)."""
    lines = [
        "| source rows | generate (s) | " + " | ".join(f"{stage} (s)" for stage in STAGES) + " | other (s) | total (s) |",
        "| ---: | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: | ---: |",
    ]
    for result in results:
        stages = [result.stage_seconds.get(stage) for stage in STAGES]
        other = None
        if result.full_wall_seconds is not None and None not in stages:
            other = result.full_wall_seconds - sum(stages)
        lines.append(
            f"| {_number(result.source_rows or result.requested_rows, ',')} | {_number(result.generate_seconds, '.1f')} | "
            + " | ".join(_number(s, ".1f") for s in stages)
            + f" | {_number(other, '.1f')} | {_number(result.full_wall_seconds, '.1f')} |"
        )
    return "\n".join(lines)


def plot(results: list[SizeResult], path: Path) -> None:
    """Seconds against source rows, log-log: cdi's match stage and full pipeline, Splink's match work."""
    series = {
        CDI_MATCH: (CDI_MATCH, "match_seconds"),
        CDI_FULL: (CDI_FULL, "wall_seconds"),
        SPLINK_DUCKDB: (f"{SPLINK_DUCKDB} (train + predict + cluster)", "match_seconds"),
        SPLINK_SPARK: (f"{SPLINK_SPARK} (train + predict + cluster)", "match_seconds"),
    }
    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for tool, (label, attribute) in series.items():
        points = [
            (result.source_rows, getattr(row, attribute))
            for result in results
            for row in result.rows
            if row.tool == tool and row.status == OK and result.source_rows
        ]
        if points:
            axes.plot(*zip(*sorted(points)), marker="o", label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("source rows")
    axes.set_ylabel("seconds")
    axes.set_title("Time against rows (2 shared cores)")
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def growth(results: list[SizeResult]) -> list[str]:
    """Between consecutive sizes: how rows, cdi's candidate pairs and its match stage time grew."""
    points = []
    for result in results:
        match = next((r for r in result.rows if r.tool == CDI_MATCH and r.status == OK and r.pairs), None)
        if match is not None and match.match_seconds and result.source_rows:
            points.append((result.source_rows, match.pairs, match.match_seconds))
    lines = []
    for (rows_a, pairs_a, seconds_a), (rows_b, pairs_b, seconds_b) in zip(points, points[1:]):
        per_million = (seconds_b - seconds_a) / max(pairs_b - pairs_a, 1) * 1e6
        lines.append(
            f"- {rows_a:,} → {rows_b:,} rows (×{rows_b / rows_a:.0f}): candidate pairs ×{pairs_b / pairs_a:.1f}, "
            f"cdi's match stage {seconds_a:.0f} → {seconds_b:.0f} s (×{seconds_b / seconds_a:.1f}); "
            f"the extra pairs took {per_million:.0f} s per million."
        )
    return lines


def section(results: list[SizeResult]) -> str:
    measured = [
        f"- {_number(r.source_rows or r.requested_rows, ',')} rows: {r.measured_on}, 1-minute load average "
        f"{r.load_average:.1f} at the start, `{r.command}`"
        for r in results
    ]
    return "\n".join(
        [
            SECTION,
            "",
            f"Machine: {machine()}. The load average at each size's start is listed below: above 2, other "
            "work shared the 2 cores and the times are upper bounds.",
            "",
            "```",
            f"JAVA_HOME={JAVA_HOME} .venv/bin/python -m bench.scale --rows 10000 100000 1000000",
            "```",
            "",
            "Measured (size, date, load, command):",
            "",
            *measured,
            "",
            "Demo sources from `cdi demo-data` (about 2.2 rows per customer, seed 42). "
            "cdi full pipeline: `cdi run` with `conf/cdi.yaml` into a fresh lake, wall time from process start "
            "(Spark start, ingest → publish, run report). cdi match stage: `cdi run --stages match` again on that "
            "lake with a new run id; its match stage time is block + compare + classify + cluster and writing "
            "pairs and clusters. Blocking rules: cdi's defaults after its pair budget (a rule over 1.5 pairs per "
            "record, and over 1,000,000 pairs, takes its `refine` keys until it fits: at 1M rows "
            "9 of the 18 rules are refined (the four typo-tolerant name rules down to birth year), at 100k rows "
            "none is; "
            "the full run's log names each refinement). Splink 5: "
            "cdi's standardized records, the same refined blocking rules and cdi's comparisons "
            "translated level by level (`bench/splink_peer.py`), with the DuckDB backend and with the Spark "
            "backend (cdi's Spark settings plus Splink's UDF jar); its time is train + predict + cluster, its "
            "wall time the whole process (reading the records, Spark start). Candidate pairs: cdi's are the "
            "pairs it scored (a blocking key shared by more than 500 records is sub-blocked or skipped); "
            "Splink's are counted exactly by its blocking analysis (no such guard), the same for both backends. "
            "Pairs/s = candidate pairs / match stage seconds. Peak memory: the largest sum of resident memory "
            "over the step's process tree, sampled every 0.5 s (driver and executors are one JVM plus Python "
            "workers in local mode; shared pages count once per process, so this is an upper bound), the JVM "
            "alone in brackets. F1: pairwise, against the generator's `truth.csv`. A step that failed or ran "
            "out of time is listed with its status.",
            "",
            table(results),
            "",
            "How time grows: the match stage's time is a fixed part (Spark jobs, u from 1M random pairs, EM), "
            "a part that grows with the records (attaching them to pairs, clustering, Delta writes) and a part "
            "linear in candidate pairs (comparisons); the pair budget keeps pairs close to linear in rows. "
            "The seconds per million extra pairs below include the growth with records:",
            "",
            *growth(results),
            "",
            "Where the full pipeline's time goes (other: Spark start and the run report):",
            "",
            stage_table(results),
            "",
            f"![time against rows]({PLOT.name})",
            "",
        ]
    )


def stored_results(out: Path) -> list[SizeResult]:
    """Every size measured into ``out``, smallest first."""
    results = [SizeResult.from_json(path.read_text()) for path in out.glob(f"rows-*/{RESULTS}")]
    return sorted(results, key=lambda r: r.requested_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="sizes in source rows (default: 10000 100000 1000000)")
    parser.add_argument("--skip-splink-spark", action="store_true", help="leave out Splink's Spark backend")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="work folder (default: bench/out/scale)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per step (default: 3600)")
    args = parser.parse_args(argv)
    command = shlex.join(["JAVA_HOME=" + os.environ.get("JAVA_HOME", JAVA_HOME), ".venv/bin/python", "-m",
                          "bench.scale", *(argv if argv is not None else sys.argv[1:])])
    for rows in args.rows:
        result = run_size(rows, args.out.resolve(), args.timeout, not args.skip_splink_spark, command)
        print(table([result]), flush=True)
    results = stored_results(args.out.resolve())
    print(stage_table(results))
    plot(results, PLOT)
    write_section(section(results))
    print(f"written to {DOC} and {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
