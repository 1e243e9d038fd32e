"""Login-flood load test: API latency while four clients hammer ``/login`` with wrong passwords.

Serves the review app (over the small fake lake of the steward tests) in a
process of its own, measures sequential API lookups alone, then again while
four other processes post wrong passwords to ``/login`` as fast as they can.
Two floods: with the default throttling (the flooders are soon locked out and
answered 429 without a password check), and with throttling out of reach
(every attempt costs a full argon2 check), which is what shows the checks
no longer run on the event loop. Prints p50 / p95 / max per phase; the target
is an API p95 under 100 ms during both floods.

    .venv/bin/python -m bench.login_flood [--seconds 15]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections import Counter
from multiprocessing.synchronize import Event, Semaphore
from pathlib import Path

import httpx
import uvicorn

from steward.app import create_app, uvicorn_config
from steward.config import LoginLimits, StewardSettings, create_api_token, create_user
from tests.steward.fake_lake import MATCHING, build_lake
from tests.steward.live import free_port

FLOODERS = 4
LOOKUP = "/api/v1/golden/G3f2a9c4e1b7d0a53"
TARGET_P95_MS = 100.0
UNTHROTTLED = LoginLimits(account_failures=10**9, client_failures=10**9)


def _serve(settings: StewardSettings, port: int) -> None:
    uvicorn.Server(uvicorn_config(create_app(settings), port=port)).run()


def _flood(url: str, ready: Semaphore, stop: Event, counts: "multiprocessing.Queue[Counter[int]]", worker: int) -> None:
    answers: Counter[int] = Counter()
    with httpx.Client(base_url=url, timeout=60) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        ready.release()
        attempt = 0
        while not stop.is_set():
            attempt += 1
            form = {"username": f"flood{worker}-{attempt % 50}", "password": "wrong-password", "csrf_token": token}
            answers[client.post("/login", data=form).status_code] += 1
    counts.put(answers)


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/login", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the app did not start")


def _lookups(url: str, token: str, seconds: float) -> list[float]:
    """Sequential lookups for ``seconds``; their latencies in milliseconds."""
    latencies = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            response = client.get(LOOKUP)
            latencies.append(1000 * (time.perf_counter() - started))
            response.raise_for_status()
            time.sleep(0.01)
    return latencies


def _summary(name: str, latencies: list[float], logins: Counter[int] | None = None) -> tuple[str, float]:
    cuts = statistics.quantiles(latencies, n=100)
    p50, p95 = cuts[49], cuts[94]
    line = f"{name:<34} n={len(latencies):4d}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {max(latencies):7.1f} ms"
    if logins is not None:
        line += "  /login answers: " + ", ".join(f"{code}x{n}" for code, n in sorted(logins.items()))
    return line, p95


def _phase(settings: StewardSettings, token: str, seconds: float, flood: bool) -> tuple[list[float], Counter[int]]:
    # The app is spawned (delta-rs does not survive a fork); the flooders, which only speak HTTP, are forked.
    fork = multiprocessing.get_context("fork")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(settings, port), daemon=True)
    server.start()
    try:
        _wait_until_up(url)
        _lookups(url, token, 1.0)  # warm caches and connections
        ready, stop, counts = fork.Semaphore(0), fork.Event(), fork.Queue()
        flooders = [fork.Process(target=_flood, args=(url, ready, stop, counts, n), daemon=True)
                    for n in range(FLOODERS if flood else 0)]
        for process in flooders:
            process.start()
        for _ in flooders:
            ready.acquire(timeout=60)
        time.sleep(1.0 if flood else 0.0)  # let the flood build up
        latencies = _lookups(url, token, seconds)
        stop.set()
        answers: Counter[int] = Counter()
        for _ in flooders:
            answers.update(counts.get(timeout=120))
        for process in flooders:
            process.join(timeout=30)
        return latencies, answers
    finally:
        server.terminate()
        server.join(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="seconds of lookups per phase (default 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        build_lake(root / "lake")
        stewards = root / "stewards.yaml"
        create_user(stewards, "alice", "steward", "alice-steward-pw-1")
        token = create_api_token(stewards, "bench", scope="lookup", rate_per_minute=1_000_000)
        settings = StewardSettings(lake=str(root / "lake"), matching=MATCHING, stewards=stewards,
                                   session_secret="bench-secret-" + "b" * 40)
        print(f"API lookups ({LOOKUP}) while {FLOODERS} clients post wrong passwords to /login; "
              f"{args.seconds:g} s per phase")
        quiet, _ = _phase(settings, token, args.seconds, flood=False)
        throttled, throttled_logins = _phase(settings, token, args.seconds, flood=True)
        unthrottled_settings = StewardSettings(**{**settings.__dict__, "login_limits": UNTHROTTLED})
        unthrottled, unthrottled_logins = _phase(unthrottled_settings, token, args.seconds, flood=True)
    results = [
        _summary("no flood", quiet),
        _summary("flood, default throttling", throttled, throttled_logins),
        _summary("flood, throttling out of reach", unthrottled, unthrottled_logins),
    ]
    for line, _ in results:
        print(line)
    print("load average while measuring (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    worst = max(p95 for _, p95 in results[1:])
    print(f"worst API p95 under flood: {worst:.1f} ms (target < {TARGET_P95_MS:.0f} ms): "
          + ("ok" if worst < TARGET_P95_MS else "MISSED"))
    return 0 if worst < TARGET_P95_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
