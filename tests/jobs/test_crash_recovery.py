"""SIGKILL `cdi run` during and between its publish writes, then run again.

The chained kill at every earlier stage (ingest, standardize, validate, match)
takes minutes, so it lives in ``bench/faults`` and is run by
``python -m bench.fault_injection``, which records its result in
``docs/benchmarks.md``; it uses the helpers and fixtures of this module.

Run 0 publishes the demo data less every eighth web shop signup; run 1 brings
those signups and one changed support desk contact, so it lands, standardizes,
merges and publishes real changes on top of a published lake. Each killed
attempt is its own `cdi run` process; re-runs and the uninterrupted reference
run in this process on copies of the same lake.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from config.pipeline import load_pipeline_config
from demo.generator import generate
from config.lake import Lake
from jobs.pipeline import STAGES, run_pipeline
from tests.demo_run import demo_context
from tests.session import SHORT_LIVED_JVM_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf" / "cdi.yaml"
SOURCES = tuple(source.name for source in load_pipeline_config(CONF).sources)
PUBLISHED = ("golden_customers", "customer_xref", "match_candidates", "golden_id_history", "_publications")
RUN_0_START = datetime(2026, 2, 1, tzinfo=timezone.utc)
RUN_1_START = "<run-1 start>"
# Seconds from a `during` point to the kill: far less than any Delta write takes here.
FAULT_DELAY = "0.1"
# The table whose write each `during` point interrupts.
INTERRUPTED_WRITES = {
    "ingest:during:webshop": ("bronze", "webshop"),
    "validate:during:customers_std": ("silver", "customers_std"),
    "publish:during:customer_xref": ("gold", "customer_xref"),
}


@dataclass(frozen=True)
class Lakes:
    data: Path  # run 1's sources
    published: Path  # run 0 published
    matched: Path  # and run 1 through match
    reference: Path  # and run 1 published: the uninterrupted run


def change_one_email(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    target = next(row for row in rows if row["email"])
    target["email"] = "moved.on@example.org"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory) -> Lakes:
    data = tmp_path_factory.mktemp("demo")
    generate(data, customers=40, seed=5)
    signups = data / "webshop_signups.jsonl"
    lines = signups.read_text(encoding="utf-8").splitlines(keepends=True)
    signups.write_text("".join(line for i, line in enumerate(lines) if i % 8), encoding="utf-8")
    root = tmp_path_factory.mktemp("lakes")
    lakes = Lakes(data, root / "published", root / "matched", root / "reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        run_pipeline(spark, replace(demo_context(lakes.published, "run-0"), started_at=RUN_0_START))
        signups.write_text("".join(lines), encoding="utf-8")
        change_one_email(data / "support_desk.csv")
        shutil.copytree(lakes.published, lakes.matched)
        run_pipeline(spark, demo_context(lakes.matched, "run-1"), STAGES[: STAGES.index("match") + 1])
        shutil.copytree(lakes.matched, lakes.reference)
        run_pipeline(spark, demo_context(lakes.reference, "run-1"), ("publish",))
    return lakes


def run_1_start(lake: Path) -> pd.Timestamp | None:
    """When the first attempt of run 1 started: every time the run stamps (ingested_at, first_seen, ...)."""
    audit = DeltaTable(Lake.at(lake).run_audit).to_pandas(columns=["run_id", "stage", "started_at"])
    starts = audit.loc[(audit["run_id"] == "run-1") & (audit["stage"] == "run"), "started_at"]
    return starts.min() if len(starts) else None


def table(path: str, start: pd.Timestamp | None) -> pd.DataFrame:
    """Every value as text, run 1's start time as a token (killed attempts start at the wall clock), rows sorted."""

    def text(value: object) -> str:
        if start is not None and isinstance(value, pd.Timestamp) and value == start:
            return RUN_1_START
        return repr(sorted(value)) if isinstance(value, list) else repr(value)

    frame = DeltaTable(path).to_pandas().map(text)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def snapshot(lake: Path, names: tuple[str, ...] = PUBLISHED) -> dict[str, pd.DataFrame]:
    start = run_1_start(lake)
    return {name: table(Lake.at(lake).gold(name), start) for name in names}


def layers(lake: Path) -> dict[str, pd.DataFrame]:
    """Bronze and customers_std."""
    start, at = run_1_start(lake), Lake.at(lake)
    paths = {f"bronze/{source}": at.bronze(source) for source in SOURCES} | {"customers_std": at.customers_std}
    return {name: table(path, start) for name, path in paths.items()}


def assert_frames_equal(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame], when: str) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=f"{name} {when}")


def assert_no_duplicates(lake: Path, when: str) -> None:
    """Each source row version lands in bronze once; each source record is in customers_std once."""
    at = Lake.at(lake)
    for source in SOURCES:
        bronze = DeltaTable(at.bronze(source)).to_pandas(columns=["source_key", "record_hash"])
        assert not bronze.duplicated().any(), f"bronze/{source} holds a row twice {when}"
    std = DeltaTable(at.customers_std).to_pandas(columns=["record_id"])
    assert not std.duplicated().any(), f"customers_std holds a record twice {when}"


def killed_run(data: Path, lake: Path, point: str, stages: str | None = None) -> None:
    """A `cdi run --run-id run-1` process that SIGKILLs itself at ``point``.

    A `during` point must hit before the interrupted write commits: the table's
    Delta version is unchanged by the killed attempt.
    """
    interrupted = Lake.at(lake).path(*INTERRUPTED_WRITES[point]) if point in INTERRUPTED_WRITES else None
    version_before = DeltaTable(interrupted).version() if interrupted else None
    env = {
        **os.environ,
        "CDI_DATA_DIR": str(data),
        "CDI_LAKE": str(lake),
        "CDI_FAULT_POINT": point,
        "CDI_FAULT_DELAY": FAULT_DELAY,
        "JAVA_TOOL_OPTIONS": SHORT_LIVED_JVM_OPTIONS,
        "CDI_SPARK_MASTER": "local[2]",
        "CDI_SPARK_CONF_spark__ui__enabled": "false",
        "CDI_SPARK_CONF_spark__sql__shuffle__partitions": "2",
        "CDI_SPARK_CONF_spark__default__parallelism": "2",
        "CDI_SPARK_CONF_spark__sql__adaptive__enabled": "false",
        "CDI_SPARK_CONF_spark__driver__memory": "2g",
    }
    command = [sys.executable, "-m", "jobs.cli", "run", "--config", str(CONF), "--run-id", "run-1"]
    killed = subprocess.run(
        command + (["--stages", stages] if stages else []),
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    output = killed.stdout[-2000:] + killed.stderr[-2000:]
    assert killed.returncode == -signal.SIGKILL, f"not killed at {point}:\n{output}"
    if interrupted:
        assert DeltaTable(interrupted).version() == version_before, f"the write committed before the kill at {point}"


@pytest.mark.parametrize("point", ["publish:after:golden_customers", "publish:during:customer_xref"])
def test_killed_publish_then_rerun_equals_an_uninterrupted_run(spark, lakes, tmp_path, monkeypatch, point):
    lake = tmp_path / "lake"
    shutil.copytree(lakes.matched, lake)

    killed_run(lakes.data, lake, point, stages="publish")

    gold = Lake.at(lake)
    golden_ids = set(DeltaTable(gold.gold("golden_customers")).to_pandas(columns=["golden_id"])["golden_id"])
    xref_ids = set(DeltaTable(gold.gold("customer_xref")).to_pandas(columns=["golden_id"])["golden_id"])
    assert xref_ids <= golden_ids, "a reader saw an xref pointing at a golden id that does not exist"

    monkeypatch.setenv("CDI_DATA_DIR", str(lakes.data))
    run_pipeline(spark, demo_context(lake, "run-1"), ("publish",))

    assert_frames_equal(snapshot(lake), snapshot(lakes.reference), "after the re-run")
