"""Progress of long steps: one line rewritten in place on a terminal, plain lines otherwise.

A stage calls ``progress.show("match", "comparing candidate pairs")`` as it
enters a step, and ``progress.show(..., done=i, total=n)`` inside a counted
one (random-pair samples): the line then carries an estimate
of the time left from the pace so far. ``progress.clear()`` ends the line
before the stage prints its summary. With ``--log-format json`` or when
output is not a terminal, every call prints a plain line instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self._stream = stream
        self._live = live
        self._step: tuple[str, str] | None = None
        self._step_started = 0.0
        self._open_line = False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    @property
    def live(self) -> bool:
        return self.stream.isatty() if self._live is None else self._live

    def configure(self, live: bool | None) -> None:
        """``False`` forces plain lines (JSON logs); ``None`` decides by whether output is a terminal."""
        self._live = live

    def show(self, stage: str, step: str, done: int | None = None, total: int | None = None) -> None:
        now = time.monotonic()
        if self._step != (stage, step):
            self._step, self._step_started = (stage, step), now
        text = f"[{stage}] {step}"
        if done is not None and total:
            left = remaining_seconds(now - self._step_started, done, total)
            text += f" ({done} of {total} done" + ("" if left is None else f", about {left:.0f} s left") + ")"
        if self.live:
            self.stream.write("\r\x1b[K" + text)
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """End an in-place line so the next output starts on a fresh one."""
        if self._open_line:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._open_line = False
        self._step = None


def remaining_seconds(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the pace so far; None before anything is done."""
    if done <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return elapsed / done * (total - done)


progress = Progress()
