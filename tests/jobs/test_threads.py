"""Pieces of a stage side by side: results in order, every piece finished before a failure is raised, step tags kept."""

from __future__ import annotations

import threading
import time

import pytest

from jobs.steps import step, step_tag
from jobs.threads import run_side_by_side


def test_results_come_in_the_order_given_whatever_order_the_pieces_finish_in(spark):
    def piece(n: int, pause: float):
        def run() -> int:
            time.sleep(pause)
            return n
        return run

    pieces = [piece(n, pause) for n, pause in enumerate([0.3, 0.0, 0.2, 0.1, 0.0])]
    assert run_side_by_side(spark, pieces, threads=3) == [0, 1, 2, 3, 4]


def test_pieces_run_at_once_up_to_the_thread_count(spark):
    running, most = 0, 0
    lock = threading.Lock()

    def piece() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1

    run_side_by_side(spark, [piece] * 6, threads=3)
    assert most == 3


def test_a_failure_is_raised_after_every_other_piece_has_finished(spark):
    finished = []

    def failing() -> None:
        raise ValueError("piece 0 failed")

    def slow(n: int):
        def run() -> None:
            time.sleep(0.2)
            finished.append(n)
        return run

    def also_failing() -> None:
        raise KeyError("piece 3 failed")

    with pytest.raises(ValueError, match="piece 0 failed"):
        run_side_by_side(spark, [failing, slow(1), slow(2), also_failing, slow(4)], threads=2)
    assert sorted(finished) == [1, 2, 4]


def test_spark_jobs_of_every_piece_carry_the_step_tags_of_the_caller(spark):
    def piece() -> tuple[set[str], int]:
        return spark.getTags(), spark.range(5).count()

    with step(spark, "ingest"):
        results = run_side_by_side(spark, [piece] * 3, threads=3)
    assert [(step_tag("ingest") in tags, count) for tags, count in results] == [(True, 5)] * 3


def test_fewer_than_one_thread_is_refused(spark):
    with pytest.raises(ValueError, match="at least 1"):
        run_side_by_side(spark, [lambda: 1], threads=0)
