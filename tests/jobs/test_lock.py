"""The lake lock: one run at a time, clear messages, no lock outliving its run. Pure Python."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from config.errors import LakeLocked
from config.lake import Lake
from jobs.lock import LOCK_FILE, lake_lock

SPAWN = multiprocessing.get_context("spawn")  # no fork of a process that may run a JVM
pytestmark = pytest.mark.timeout(120)


def _hold_until_killed(root: str, run_id: str, held) -> None:
    with lake_lock(Lake.at(root), run_id):
        held.set()
        time.sleep(60)


def _race(root: str, run_id: str, start, results) -> None:
    start.wait(30)
    try:
        with lake_lock(Lake.at(root), run_id):
            results.put(("won", run_id))
            start.wait(30)  # hold the lock until every racer has tried
    except LakeLocked as exc:
        results.put(("lost", str(exc)))
        start.wait(30)


def test_a_second_run_on_the_same_lake_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    lake = Lake.at(tmp_path / "lake")
    with lake_lock(lake, "run-a"):
        with pytest.raises(LakeLocked) as refused:
            with lake_lock(lake, "run-b"):
                pass
    message = str(refused.value)
    assert refused.value.exit_code == 5
    assert f"lake {lake.root} is locked by run run-a (pid {os.getpid()} on host {socket.gethostname()} since " in message
    assert "\n" not in message


def test_the_lock_file_names_the_holder_and_is_removed_on_release(tmp_path: Path) -> None:
    lake = Lake.at(tmp_path)
    with lake_lock(lake, "run-a"):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["run_id"] == "run-a" and holder["pid"] == os.getpid()
        assert set(holder) == {"run_id", "host", "pid", "since"}
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_lock_is_released_when_the_run_fails(tmp_path: Path) -> None:
    lake = Lake.at(tmp_path)
    with pytest.raises(RuntimeError):
        with lake_lock(lake, "run-a"):
            raise RuntimeError("stage failed")
    with lake_lock(lake, "run-b"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["run_id"] == "run-b"


def test_a_lock_file_left_by_a_dead_run_is_taken_over_with_a_warning(tmp_path: Path, caplog) -> None:
    stale = {"run_id": "run-dead", "host": socket.gethostname(), "pid": 999_999, "since": "2026-01-01T00:00:00+00:00"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    with caplog.at_level(logging.WARNING, logger="cdi.lock"):
        with lake_lock(Lake.at(tmp_path), "run-new"):
            assert json.loads((tmp_path / LOCK_FILE).read_text())["run_id"] == "run-new"
    assert "taking over the stale lock of run run-dead (pid 999999" in caplog.text


def test_a_killed_run_releases_the_lake_at_once(tmp_path: Path) -> None:
    held = SPAWN.Event()  # nothing the holder waits on: a SIGKILLed waiter would block its notifier forever
    holder = SPAWN.Process(target=_hold_until_killed, args=(str(tmp_path), "run-killed", held))
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(LakeLocked, match="run-killed"):
            with lake_lock(Lake.at(tmp_path), "run-b"):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
        with lake_lock(Lake.at(tmp_path), "run-b"):
            pass
    finally:
        holder.kill()
        holder.join(30)


def test_of_two_processes_racing_for_the_lake_exactly_one_wins(tmp_path: Path) -> None:
    start, results = SPAWN.Barrier(2), SPAWN.Queue()
    racers = [SPAWN.Process(target=_race, args=(str(tmp_path), f"run-{i}", start, results)) for i in range(2)]
    for racer in racers:
        racer.start()
    outcomes = [results.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(30)
    assert sorted(kind for kind, _ in outcomes) == ["lost", "won"]
    winner = next(detail for kind, detail in outcomes if kind == "won")
    loser_message = next(detail for kind, detail in outcomes if kind == "lost")
    assert f"locked by run {winner} " in loser_message or "has not written its details yet" in loser_message
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lake_on_a_uri_is_not_locked_and_says_so(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="cdi.lock"):
        with lake_lock(Lake.at("s3a://bucket/cdi"), "run-a"):
            pass
    assert "no lock is taken" in caplog.text
