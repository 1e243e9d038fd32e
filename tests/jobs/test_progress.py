"""Progress lines: rewritten in place on a terminal, plain lines otherwise, with the time left."""

from __future__ import annotations

import io

import pytest

from jobs.progress import Progress, remaining_seconds


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(out, live=False)
    progress.show("match", "clustering")
    progress.show("match", "sampling", 0, 4)
    progress.clear()
    assert out.getvalue().splitlines() == ["[match] clustering", "[match] sampling (0 of 4 done)"]


def test_one_line_rewritten_in_place_on_a_terminal_and_cleared_before_other_output():
    out = io.StringIO()
    progress = Progress(out, live=True)
    progress.show("publish", "writing golden customers")
    progress.show("publish", "writing the review queue")
    progress.clear()
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") == 3
    assert text.endswith("\r\x1b[K")


@pytest.mark.parametrize(
    ("elapsed", "done", "total", "left"),
    [(10.0, 1, 4, 30.0), (10.0, 4, 4, 0.0), (10.0, 0, 4, None), (6.0, 2, 3, 3.0)],
)
def test_time_left_follows_the_pace_so_far(elapsed, done, total, left):
    assert remaining_seconds(elapsed, done, total) == left
