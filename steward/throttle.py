"""Throttles: failed log-ins per account and per client address, API requests per token, and the password-check pool.

State is in memory, per process: an attacker cannot restart the app to reset
it, and a restart forgiving a lockout early is no weaker than the lockout
window ending. Keys that have gone quiet are dropped, so a flood from many
addresses cannot grow the tables without bound.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from steward.config import LoginLimits

T = TypeVar("T")
PRUNE_ABOVE = 10_000  # keys held before quiet ones are dropped
PASSWORD_CHECK_NICENESS = 10


class FailureThrottle:
    """``limit`` failures of one key within ``window`` seconds lock that key for ``lockout`` seconds."""

    def __init__(self, limit: int, window: float, lockout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            until = self._locked_until.get(key, 0.0)
            return max(0.0, until - self.clock())

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            failures = self._failures.setdefault(key, deque())
            failures.append(now)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) >= self.limit:
                self._locked_until[key] = now + self.lockout
                failures.clear()
            if len(self._failures) > PRUNE_ABOVE:
                self._prune(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, times in self._failures.items() if not times or times[-1] <= now - self.window]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]


class TokenBuckets:
    """A token bucket per key: up to ``rate`` requests at once, refilled at ``rate`` per minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when counted)
        self._lock = threading.Lock()

    def take(self, key: str, rate_per_minute: int) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else seconds until one is free."""
        now = self.clock()
        per_second = rate_per_minute / 60.0
        with self._lock:
            tokens, then = self._buckets.get(key, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - then) * per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / per_second


class PoolBusy(Exception):
    """Too many password checks are waiting already."""


class VerifyPool:
    """Runs password checks on a few threads of their own, never on the event loop.

    argon2 takes tens of milliseconds of CPU and releases the GIL; on the
    event loop it stalled every request. Its own small pool (rather than the
    shared thread pool of sync routes) caps how many cores a log-in flood can
    take, and ``max_waiting`` caps the queue: beyond it a log-in is refused.
    Its threads run at a lower CPU priority (Linux: nice per thread), so when
    cores are short, a lookup goes before a password guess.
    """

    def __init__(self, workers: int, max_waiting: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password-check",
                                            initializer=_lower_priority)
        self._capacity = workers + max_waiting
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, check: Callable[[], T]) -> T:
        with self._lock:
            if self._pending >= self._capacity:
                raise PoolBusy()
            self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, check)
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class LoginGuard:
    """Everything a log-in passes: the account and client-address throttles, and the password-check pool."""

    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.monotonic) -> None:
        window, lockout = 60 * limits.window_minutes, 60 * limits.lockout_minutes
        self.accounts = FailureThrottle(limits.account_failures, window, lockout, clock)
        self.clients = FailureThrottle(limits.client_failures, window, lockout, clock)
        self.pool = VerifyPool(limits.verify_workers, limits.max_waiting)

    def retry_after(self, account: str, client: str) -> float:
        return max(self.accounts.retry_after(account), self.clients.retry_after(client))

    def failed(self, account: str, client: str) -> None:
        self.accounts.failed(account)
        self.clients.failed(client)

    def succeeded(self, account: str) -> None:
        """A right password clears the account's failures, not the address's: one known
        password must not buy an address more guesses at other accounts."""
        self.accounts.succeeded(account)


def _lower_priority() -> None:
    """Lower this thread's priority where the OS allows it per thread (Linux); elsewhere leave it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_CHECK_NICENESS)
    except (AttributeError, OSError):
        pass


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
