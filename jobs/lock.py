"""One run at a time per lake: an exclusive lock file ``<lake>/_lock``.

The lock is an operating-system lock (``flock``) on ``<lake>/_lock``, and the
file holds who took it (run id, host, pid, start time) so a second run can
say who is in the way. A kernel lock rather than "the file exists" means a
run that dies (even by SIGKILL) releases the lake at once: the next run finds
the file without a live lock on it, logs that it takes over a stale lock, and
goes on. Nobody has to remove a lock file by hand, and no pid checks can be
fooled by a recycled pid or a lock written from another host.

Lakes on Hadoop URIs (``s3a://``, ``hdfs://``, ``abfss://``) cannot take a
file lock: there the lock is skipped with a warning and the scheduler must
keep to one writer per lake (Airflow ``max_active_runs=1``, one cron entry).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from config.errors import LakeLocked
from config.lake import Lake

log = logging.getLogger("cdi.lock")

LOCK_FILE = "_lock"


@dataclass(frozen=True)
class LockHolder:
    run_id: str
    host: str
    pid: int
    since: str  # ISO 8601, UTC

    @classmethod
    def for_this_process(cls, run_id: str) -> "LockHolder":
        since = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        return cls(run_id=run_id, host=socket.gethostname(), pid=os.getpid(), since=since)

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on host {self.host} since {self.since})"


def lock_path(lake: Lake) -> Path:
    return Path(lake.root) / LOCK_FILE


def read_holder(fd: int) -> LockHolder | None:
    """The holder written in an open lock file; None when it is empty or not ours."""
    text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
    try:
        return LockHolder(**json.loads(text))
    except (ValueError, TypeError):
        return None


def _open_and_lock(path: Path) -> tuple[int, bool]:
    """Open ``path`` and try to lock it: (fd, True) when locked, (fd, False) when another process holds it.

    A holder removes the file when it releases the lock, so a file opened just
    before that removal may be locked but no longer be the lock: compare inodes
    and start again on the new file.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return fd, False
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd, True
        os.close(fd)


def _locked_message(lake: Lake, holder: LockHolder | None) -> str:
    who = holder.describe() if holder else "another run (it is starting and has not written its details yet)"
    return f"lake {lake.root} is locked by {who}; wait for it to finish, or stop it if it hangs"


def acquire(lake: Lake, run_id: str) -> int:
    """Take the lake's lock for ``run_id``; returns the open lock file, raises LakeLocked."""
    path = lock_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, locked = _open_and_lock(path)
    if not locked:
        holder = read_holder(fd)
        os.close(fd)
        raise LakeLocked(_locked_message(lake, holder))
    stale = read_holder(fd)
    if stale is not None:
        log.warning("lake %s: taking over the stale lock of %s, which ended without releasing it", lake.root, stale.describe())
    content = json.dumps(asdict(LockHolder.for_this_process(run_id))).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, content, 0)
    os.fsync(fd)
    return fd


def release(lake: Lake, fd: int) -> None:
    """Remove the file while still holding the lock, then unlock (by closing)."""
    try:
        lock_path(lake).unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextmanager
def lake_lock(lake: Lake, run_id: str) -> Iterator[None]:
    """Hold the lake for one run; raises ``LakeLocked`` (exit code 5) when another run holds it."""
    if not lake.is_local:
        log.warning("lake %s is not a local path: no lock is taken; run one writer per lake", lake.root)
        yield
        return
    fd = acquire(lake, run_id)
    try:
        yield
    finally:
        release(lake, fd)
