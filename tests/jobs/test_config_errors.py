"""A broken configuration file stops `cdi run` with exit 2, naming the file and key, before anything is written."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from demo.generator import generate
from jobs.cli import main
from tests.session import processes_with

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def lake_fingerprint(lake: Path) -> dict[str, str]:
    """Every file under the lake with the hash of its bytes."""
    return {
        str(path.relative_to(lake)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(lake.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def workspace(spark, tmp_path_factory) -> Path:
    """A copy of conf/ pointing at its own files, and a lake that an ingest has written."""
    root = tmp_path_factory.mktemp("config-errors")
    shutil.copytree(CONF, root / "conf")
    config = (root / "conf" / "cdi.yaml").read_text()
    (root / "conf" / "cdi.yaml").write_text(config.replace(": conf", f": {root / 'conf'}"))
    generate(root / "data", customers=20, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(root / "data"))
        patch.setenv("CDI_LAKE", str(root / "lake"))
        assert main(["run", "--config", str(root / "conf" / "cdi.yaml"), "--stages", "ingest"]) == 0
    return root


def _break(workspace: Path, relative: str, old: str, new: str) -> Path:
    path = workspace / "conf" / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


BROKEN = {
    "matching": ("matching.yaml", "\ncomparisons:", "\ncomparisonz:", "comparisonz"),
    "survivorship": ("survivorship.yaml", "attributes:", "attributez:", "attributez"),
    "suite": ("quality/canonical.yaml", "severity: batch", "severity: sometimes", "severity"),
    "vocabulary": ("name_tokens.yaml", "honorifics:", "honorifics: 7\nunused:", "honorifics"),
    "blocking SQL": ("matching.yaml", "keys: [", "keys: [\"substring(family_name, 1\", ", "blocking_rules[0].keys[0]"),
    # Parses, but Spark cannot resolve it: the one plan of every expression fails, then each is tried alone.
    "blocking function": ("matching.yaml", 'keys: ["email"]', 'keys: ["no_such_function(email)"]', "blocking_rules[2].keys[0]"),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_config_file_exits_2_naming_file_and_key_and_writes_nothing(
    workspace, broken, dry_run, monkeypatch, capsys
):
    relative, old, new, key = BROKEN[broken]
    original = (workspace / "conf" / relative).read_text()
    path = _break(workspace, relative, old, new)
    monkeypatch.setenv("CDI_DATA_DIR", str(workspace / "data"))
    monkeypatch.setenv("CDI_LAKE", str(workspace / "lake"))
    before = lake_fingerprint(workspace / "lake")
    try:
        code = main(["run", "--config", str(workspace / "conf" / "cdi.yaml"), *(["--dry-run"] if dry_run else [])])
    finally:
        path.write_text(original)

    error = capsys.readouterr().err
    assert code == 2, error
    assert str(path) in error and key in error
    assert "Traceback" not in error
    assert lake_fingerprint(workspace / "lake") == before


def test_a_config_error_found_while_spark_starts_exits_2_at_once_and_leaves_no_jvm(workspace, tmp_path):
    """`cdi run` starts the JVM in the background while it parses the rest of the configuration."""
    app = f"cdi-config-error-{uuid.uuid4().hex}"
    path = tmp_path / "conf"
    shutil.copytree(workspace / "conf", path)
    config = path / "cdi.yaml"
    config.write_text(config.read_text().replace(str(workspace / "conf"), str(path)))
    matching = path / "matching.yaml"
    matching.write_text(matching.read_text().replace("\ncomparisons:", "\ncomparisonz:", 1))
    env = {
        **os.environ,
        "CDI_DATA_DIR": str(workspace / "data"),
        "CDI_LAKE": str(tmp_path / "lake"),
        "CDI_SPARK_CONF_spark__app__name": app,
        "CDI_SPARK_LOG": str(tmp_path / "spark.log"),
    }

    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", "--config", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 2, done.stderr
    assert str(matching) in done.stderr and "comparisonz" in done.stderr
    assert (tmp_path / "spark.log").exists()  # the JVM had been launched
    assert not (tmp_path / "lake").exists()
    deadline = time.monotonic() + 30
    while processes_with(app) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with(app) == []

