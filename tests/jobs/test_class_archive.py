"""The JVM class archive: mapped when ``make setup`` built it; a cut-off one is caught before it is put in place."""

from __future__ import annotations

import pytest

import jobs.spark
from jobs.class_archive import _runs_with
from jobs.spark import CLASS_ARCHIVE, DEFAULTS, EXTRA_JAVA_OPTIONS, archive_options, resolve_settings


def test_no_archive_no_options_and_the_defaults_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs.spark, "CLASS_ARCHIVE", tmp_path / "none.jsa")

    assert archive_options() == ""
    assert resolve_settings({}, {})[EXTRA_JAVA_OPTIONS] == DEFAULTS[EXTRA_JAVA_OPTIONS]


def test_an_archive_is_mapped_quietly_after_the_default_options_and_a_configured_value_wins(tmp_path, monkeypatch):
    archive = tmp_path / "spark.jsa"
    archive.write_bytes(b"archive")
    monkeypatch.setattr(jobs.spark, "CLASS_ARCHIVE", archive)

    options = resolve_settings({}, {})[EXTRA_JAVA_OPTIONS]

    assert options == f"{DEFAULTS[EXTRA_JAVA_OPTIONS]} -XX:SharedArchiveFile={archive} -Xlog:cds=off -Xlog:cds+dynamic=off"
    assert resolve_settings({EXTRA_JAVA_OPTIONS: "-Dmine=1"}, {})[EXTRA_JAVA_OPTIONS] == "-Dmine=1"


def test_make_setup_built_an_archive_a_jvm_runs_with_and_a_cut_off_copy_crashes_it(tmp_path, monkeypatch):
    assert CLASS_ARCHIVE.is_file(), "make setup builds it (python -m jobs.class_archive)"
    monkeypatch.chdir(tmp_path)
    cut_off = tmp_path / "cut.jsa"
    with CLASS_ARCHIVE.open("rb") as whole, cut_off.open("wb") as part:
        part.write(whole.read(CLASS_ARCHIVE.stat().st_size // 2))

    assert _runs_with(CLASS_ARCHIVE)
    assert not _runs_with(cut_off)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.jsa"], "the crash left no report or core here"


@pytest.mark.parametrize("content", [b"", b"not an archive"])
def test_a_file_that_is_no_archive_is_ignored_and_the_jvm_runs(tmp_path, content):
    archive = tmp_path / "spark.jsa"
    archive.write_bytes(content)

    assert _runs_with(archive)
