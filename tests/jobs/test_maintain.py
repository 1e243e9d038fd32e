"""``cdi maintain`` on a tiny lake of real Delta tables whose history is made to look hours or days old.

Delta (4.0.1, no in-commit timestamps) takes a commit's time from its log
file's modification time, and VACUUM goes by a remove's ``deletionTimestamp``
and a data file's modification time: ``age_history`` sets all three as if
each commit had been written that many hours ago.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from config.errors import LakeLocked
from config.lake import Lake
from config.pipeline import load_pipeline_config
from jobs.cli import main
from jobs.lock import lake_lock
from jobs.maintain import RETENTION_CHECK, hours_needed, maintain
from jobs.match_state import MODEL_STATE_SCHEMA
from schemas.golden import CUSTOMER_XREF_SCHEMA, GOLDEN_CUSTOMERS_SCHEMA, PUBLICATIONS_SCHEMA
from schemas.tables import RUN_AUDIT_SCHEMA

pytestmark = pytest.mark.timeout(600)

NOW = datetime.now(timezone.utc)
DAY = 86400
CONFIG = """lake: {lake}
retention: {{vacuum_hours: 0, run_folder_days: 30}}
sources:
  - name: crm
    kind: csv
    path: crm.csv
    primary_key: [id]
    mapping: {{email: email}}
"""


def rows_of(schema, keys: list[str], run_id: str) -> list[tuple]:
    """One row per key with every required column filled and the rest null."""
    values = {
        "status": "active", "num_records": 1, "first_seen": NOW, "last_updated": NOW, "content_hash": "h",
        "run_id": run_id, "source_system": "crm", "linked_by": "singleton",
    }
    return [
        tuple(key if f.name in ("golden_id", "record_id", "source_key") else values.get(f.name) for f in schema)
        for key in keys
    ]


def write(path: Path, frame, mode: str = "overwrite", files: int = 1) -> None:
    frame.repartition(files).write.format("delta").mode(mode).save(str(path))


def age_history(table: Path, hours_ago: list[float]) -> None:
    """Make commit ``v`` look written ``hours_ago[v]`` hours ago."""
    now = time.time()
    for version, hours in enumerate(hours_ago):
        at = now - hours * 3600
        log = table / "_delta_log" / f"{version:020d}.json"
        actions = [json.loads(line) for line in log.read_text().splitlines() if line]
        for action in actions:
            if "remove" in action:
                action["remove"]["deletionTimestamp"] = int(at * 1000)
            if "add" in action:
                os.utime(table / action["add"]["path"], (at, at))
        log.write_text("".join(json.dumps(a) + "\n" for a in actions))
        (table / "_delta_log" / f".{log.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old text
        os.utime(log, (at, at))


def data_files(table: Path, version: int) -> list[Path]:
    """The data files commit ``version`` added."""
    log = table / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [table / a["add"]["path"] for a in actions if "add" in a]


def run_folder(root: Path, name: str, days_ago: float) -> None:
    folder = root / "_runs" / name
    folder.mkdir(parents=True)
    (folder / "report.html").write_text(name)
    at = time.time() - days_ago * DAY
    for path in (folder / "report.html", folder):
        os.utime(path, (at, at))


def build_lake(spark, root: Path) -> None:
    """bronze/crm: 3 small appends. gold/golden_customers: v0, v1, v2 (50, 40, 20 h ago), the latest
    publication at v1. gold/customer_xref: v0 (30 h ago), v1 (10 h ago, 3 files), the latest publication
    at v1. silver/pairs: v0 (30 h ago), v1 (10 h ago, 3 files), recorded by silver/match_model.
    Run folders: old-a (50 days), old-b (files fresh, but its run_audit rows are 40 days old), newest (35 days)."""
    crm = root / "bronze" / "crm"
    for batch in range(3):
        write(crm, spark.range(batch * 5, batch * 5 + 5), mode="append")

    golden = root / "gold" / "golden_customers"
    for version, keys in enumerate([["g1"], ["g1", "g2"], ["g1", "g2", "g3"]]):
        write(golden, spark.createDataFrame(rows_of(GOLDEN_CUSTOMERS_SCHEMA, keys, f"r{version}"), GOLDEN_CUSTOMERS_SCHEMA))
    age_history(golden, [50, 40, 20])

    xref = root / "gold" / "customer_xref"
    for version, keys in enumerate([["x1"], ["x1", "x2", "x3"]]):
        frame = spark.createDataFrame(rows_of(CUSTOMER_XREF_SCHEMA, keys, f"r{version}"), CUSTOMER_XREF_SCHEMA)
        write(xref, frame, files=1 + 2 * version)
    age_history(xref, [30, 10])

    markers = [("r0", NOW - timedelta(hours=50), 0, 0), ("r1", NOW - timedelta(hours=40), 1, 1)]
    write(root / "gold" / "_publications", spark.createDataFrame(markers, PUBLICATIONS_SCHEMA))

    pairs = root / "silver" / "pairs"
    write(pairs, spark.range(4))
    write(pairs, spark.range(6), files=3)
    age_history(pairs, [30, 10])
    state = spark.createDataFrame([("r1", "{}", "{}", 1, None)], MODEL_STATE_SCHEMA)
    write(root / "silver" / "match_model", state)

    run_folder(root, "old-a", 50)
    run_folder(root, "old-b", 0)
    run_folder(root, "newest", 35)
    audit = [("old-b", "publish", None, "ok", None, None, None, None, "{}", NOW - timedelta(days=40), 1.0)]
    write(root / "ops" / "run_audit", spark.createDataFrame(audit, RUN_AUDIT_SCHEMA))


@pytest.fixture(scope="module")
def template(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("maintain") / "lake"
    build_lake(spark, root)
    return root


@pytest.fixture
def lake_config(template, tmp_path) -> Path:
    """A fresh copy of the lake (file times kept) and a config with vacuum_hours 0, run folders 30 days."""
    shutil.copytree(template, tmp_path / "lake")
    config = tmp_path / "cdi.yaml"
    config.write_text(CONFIG.format(lake=tmp_path / "lake"))
    return config


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def version_rows(spark, path: Path, version: int, key: str) -> list[str]:
    frame = spark.read.format("delta").option("versionAsOf", version).load(str(path))
    return sorted(row[key] for row in frame.select(key).collect())


def test_maintain_compacts_vacuums_and_keeps_what_later_runs_read(spark, lake_config):
    config = load_pipeline_config(lake_config)
    root = Path(config.lake)
    golden, xref, pairs = root / "gold" / "golden_customers", root / "gold" / "customer_xref", root / "silver" / "pairs"
    old_files = {name: data_files(path, 0) for name, path in [("golden", golden), ("xref", xref), ("pairs", pairs)]}

    outcome = maintain(spark, config, "maintain-test")
    tables = {t.name: t for t in outcome.tables}

    assert sorted(tables) == [
        "bronze/crm", "gold/_publications", "gold/customer_xref", "gold/golden_customers",
        "ops/run_audit", "silver/match_model", "silver/pairs",
    ]
    # Three appends compacted into one file; with 0 h kept, the three small files are gone; the rows stay.
    crm = tables["bronze/crm"]
    assert (crm.files_before, crm.files_after, crm.files_removed) == (3, 1, 3)
    assert sorted(r.id for r in spark.read.format("delta").load(str(root / "bronze" / "crm")).collect()) == list(range(15))

    # golden_customers: the publication reads v1, and v2 came 20 h ago: 22 h kept, v0's file went, v1 is whole.
    kept = tables["gold/golden_customers"].retention
    assert kept.hours == 22 and kept.reason.startswith("gold/_publications reads version 1")
    assert not any(f.exists() for f in old_files["golden"])
    assert version_rows(spark, golden, 1, "golden_id") == ["g1", "g2"]

    # customer_xref: the publication reads the current v1; OPTIMIZE is the commit after it (seconds old, rounded
    # up to 1 h, + 1), so v1's 3 files stay while v0's went.
    xref_outcome = tables["gold/customer_xref"]
    assert (xref_outcome.files_before, xref_outcome.files_after, xref_outcome.retention.hours) == (3, 1, 2)
    assert not any(f.exists() for f in old_files["xref"])
    assert version_rows(spark, xref, 1, "record_id") == ["x1", "x2", "x3"]

    # silver/pairs: match_model records its current version, which must stay current (no OPTIMIZE, no VACUUM commits).
    assert tables["silver/pairs"].compacted.startswith("not compacted: silver/match_model")
    assert DeltaTable.forPath(spark, str(pairs)).history(1).first()["version"] == 1
    assert not any(f.exists() for f in old_files["pairs"])

    # Run folders: old-a by its files, old-b by its run_audit rows; newest is old too but the latest run.
    assert sorted(f.run_id for f in outcome.dropped) == ["old-a", "old-b"]
    assert sorted(p.name for p in (root / "_runs").iterdir()) == ["newest"]

    audit = spark.read.format("delta").load(str(root / "ops" / "run_audit")).where("stage = 'maintain'").collect()
    assert [(r.run_id, r.status) for r in audit] == [("maintain-test", "ok")]
    assert json.loads(audit[0].detail)["run_folders_dropped"] == 2
    assert spark.conf.get(RETENTION_CHECK) == "true"
    assert not (root / "_lock").exists()


def test_dry_run_changes_nothing_and_says_what_it_would_do(spark, lake_config, capsys):
    root = Path(load_pipeline_config(lake_config).lake)
    before = snapshot(root)

    assert main(["maintain", "--config", str(lake_config), "--dry-run"]) == 0

    assert snapshot(root) == before
    out = capsys.readouterr().out
    assert "  bronze/crm: 3 files, would compact; vacuum 0 h (configured): would remove 0 files" in out
    assert "  gold/golden_customers: 1 file, would compact; vacuum 22 h (gold/_publications reads version 1: 22 h)" in out
    assert f"  run folder {root / '_runs' / 'old-a'}: would drop (older than 30 days)" in out
    assert "run folders: 2 would drop, 1 kept" in out


def test_maintain_refuses_a_locked_lake_and_changes_nothing(spark, lake_config):
    config = load_pipeline_config(lake_config)
    root = Path(config.lake)
    before = snapshot(root)
    with lake_lock(Lake.at(root), "nightly"):
        with pytest.raises(LakeLocked, match="locked by run nightly"):
            maintain(spark, config, "maintain-test")
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("commits", "version", "now", "expected"),
    [
        ([(0, 0.0), (1, 3600.0)], 1, 7200.0, None),  # nothing after the recorded version: nothing to keep for it
        ([(0, 0.0), (1, 3600.0), (2, 7200.0)], 0, 10800.0, 3),  # the commit after it is 2 h old: 2 + 1
        ([(0, 0.0), (1, 3600.0)], 0, 7200.1, 3),  # 1 h and 0.1 s old rounds up to 2, + 1
        ([(0, 0.0), (1, 9000.0)], 0, 7200.0, 1),  # stamped "after now" (clock skew): still 1 h
    ],
)
def test_hours_needed_keeps_everything_removed_since_the_recorded_version(commits, version, now, expected):
    assert hours_needed(commits, version, now) == expected
