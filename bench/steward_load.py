"""Load test of the steward app: the review queue page and an API lookup under concurrent users.

Run from the repository root::

    .venv/bin/python -m bench.steward_load --golden 1000000 --candidates 100000 --users 8 --seconds 60

1. Builds (once; cached under ``--out``, default ``bench/out/steward``,
   git-ignored) a lake written with delta-rs, no Spark, shaped like the
   pipeline's: ``--golden`` golden records with one source record each and a
   second one for every fifth, ``customer_xref``, ``golden_id_history``, a
   published run, ``--candidates`` candidate pairs in ``match_candidates``
   (records side by side, evidence and levels), and 2,000 earlier decisions
   in 20 commits. Tables carry no per-file statistics, as the Spark defaults
   write them (``delta.dataSkippingNumIndexedCols=0``).
2. Starts the app in a separate process under uvicorn (``steward.app.uvicorn_config``)
   and waits until it answers.
3. Warms it up (the first request after a table version changes loads that
   version into memory: timed and printed as "cold"), then runs ``--users``
   threads for ``--seconds``. Each logs in as its own steward and loops:
   a queue page (a random page of the queue, a third of them with a source
   filter), an API lookup ``/api/v1/golden/{id}`` of a random golden id with a
   Bearer token, and every ``--decide-every``-th round a decision on the pair
   its page showed (each decision is a new version of ``steward_decisions``,
   so the queue's decision state is rebuilt while the others read).
4. Prints p50 / p95 / max per request kind, and the server's resident memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from config.lake import Lake
from matching.settings import load_settings
from schemas.canonical import CANONICAL_SCHEMA
from schemas.golden import (
    CUSTOMER_XREF_SCHEMA,
    GOLDEN_CUSTOMERS_SCHEMA,
    GOLDEN_ID_HISTORY_SCHEMA,
    MATCH_CANDIDATES_SCHEMA,
    PUBLICATIONS_SCHEMA,
    RECORD_STRUCT,
    STEWARD_DECISIONS_SCHEMA,
)
from steward.config import create_api_token, create_user
from schemas.arrow import arrow_schema

ROOT = Path(__file__).resolve().parents[1]
MATCHING = ROOT / "conf" / "matching.yaml"
RUN_ID = "bench-r1"
PUBLISHED = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.timezone.utc)
SOURCES = ("sales_crm", "billing", "webshop", "support_desk")
REASONS = ("between thresholds", "cluster members disagree", "linked but kept apart")
RULES = ("family_prefix_birth_year", "email", "phone", "postcode_given_initial")
GIVEN = ("james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth",
         "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen",
         "emily", "oliver", "amelia", "harry", "isla", "jack", "ava", "george", "mia", "noah", "priya", "amir")
FAMILY = ("smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "robinson", "wright",
          "thompson", "evans", "walker", "white", "roberts", "green", "hall", "wood", "jackson", "clarke",
          "oneill", "natarajan", "hughes", "cooper", "mckenzie", "shah", "khan", "patel", "murphy", "kelly")
CITIES = (("london", "N1"), ("leeds", "LS6"), ("york", "YO32"), ("bristol", "BS8"), ("cardiff", "CF10"),
          ("derby", "DE1"), ("hull", "HU5"), ("leicester", "LE1"))
PASSWORD = "bench-steward-pw-1"
SECRET = "bench-session-secret-" + "x" * 40
DECISION_COMMITS, DECISIONS_PER_COMMIT = 20, 100
NO_STATS = {"delta.dataSkippingNumIndexedCols": "0"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SHOWN = re.compile(r'name="record_a" value="([^"]+)">\s*<input type="hidden" name="record_b" value="([^"]+)"')


def golden_id(number: np.ndarray) -> list[str]:
    """Distinct, random-looking golden ids (an odd multiplier permutes 64-bit numbers)."""
    mixed = (number.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) & np.uint64(2**64 - 1)
    return [f"G{int(m):016x}" for m in mixed]


def _write(path: str, columns: dict[str, object], schema: pa.Schema, configuration: dict[str, str]) -> None:
    arrays = {f.name: columns.get(f.name, pa.nulls(len(next(iter(columns.values()))), f.type)) for f in schema}
    table = pa.table({name: pa.array(value, schema.field(name).type) if not isinstance(value, pa.Array) else value
                      for name, value in arrays.items()}, schema=schema)
    write_deltalake(path, table, mode="append", configuration=configuration)


def build_lake(root: Path, goldens: int, candidates: int, seed: int) -> None:
    """The load lake: see the module docstring. Takes about a minute for a million golden records."""
    rng = np.random.default_rng(seed)
    lake = Lake.at(root)
    at = PUBLISHED - dt.timedelta(hours=1)

    # Source records: one per golden record, a second one for every fifth.
    owner = np.concatenate([np.arange(goldens), np.arange(0, goldens, 5)])
    records = len(owner)
    source = [SOURCES[i % len(SOURCES)] for i in range(records)]
    record_ids = [f"{s}:{i:09d}" for i, s in enumerate(source)]
    given = [GIVEN[i] for i in rng.integers(0, len(GIVEN), records)]
    family = [FAMILY[i] for i in rng.integers(0, len(FAMILY), records)]
    city_at = rng.integers(0, len(CITIES), records)
    birth = np.datetime64("1940-01-01") + np.array(rng.integers(0, 60 * 365, records), dtype="timedelta64[D]")
    values = {
        "given_name": given, "family_name": family, "full_name": [f"{g} {f}" for g, f in zip(given, family)],
        "birth_date": pa.array(birth.astype("datetime64[D]"), pa.date32()),
        "email": [f"{g}.{f}{i % 997}@example.com" for i, (g, f) in enumerate(zip(given, family))],
        "phone": [f"+447{700000000 + i:09d}" for i in range(records)],
        "city": [CITIES[c][0] for c in city_at], "postcode": [f"{CITIES[c][1]} {i % 9}AB" for i, c in enumerate(city_at)],
        "country": ["GB"] * records,
    }
    std = {"record_id": record_ids, "source_system": source, "source_key": [r.split(":", 1)[1] for r in record_ids],
           "run_id": [RUN_ID] * records, "ingested_at": [at] * records, "updated_at": [at] * records,
           "record_hash": [f"h{i}" for i in range(records)], **values}
    _write(lake.customers_std, std, arrow_schema(CANONICAL_SCHEMA), NO_STATS)

    ids = golden_id(np.arange(goldens))
    members = np.bincount(owner, minlength=goldens).astype(np.int32)
    first = {name: (value.slice(0, goldens) if isinstance(value, pa.Array) else value[:goldens])
             for name, value in values.items()}
    lineage_keys = ["given_name", "family_name", "email"]
    lineage = pa.MapArray.from_arrays(
        pa.array(np.arange(0, 3 * goldens + 1, 3, dtype=np.int32)),
        pa.array(lineage_keys * goldens), pa.array([r for r in record_ids[:goldens] for _ in lineage_keys]))
    golden = {"golden_id": ids, "status": ["active"] * goldens, **first, "lineage": lineage, "num_records": members,
              "first_seen": [at] * goldens, "last_updated": [at] * goldens, "content_hash": [f"c{i}" for i in range(goldens)],
              "run_id": [RUN_ID] * goldens}
    _write(lake.gold("golden_customers"), golden, arrow_schema(GOLDEN_CUSTOMERS_SCHEMA),
           {**NO_STATS, "delta.enableChangeDataFeed": "true"})
    xref = {"source_system": source, "source_key": std["source_key"], "record_id": record_ids,
            "golden_id": [ids[o] for o in owner], "match_probability": [0.99 if members[o] > 1 else None for o in owner],
            "linked_by": ["model" if members[o] > 1 else "singleton" for o in owner], "run_id": [RUN_ID] * records}
    _write(lake.gold("customer_xref"), xref, arrow_schema(CUSTOMER_XREF_SCHEMA),
           {**NO_STATS, "delta.enableChangeDataFeed": "true"})
    history = {"run_id": [RUN_ID] * goldens, "event": ["create"] * goldens, "golden_id": ids,
               "records": members, "at": [at] * goldens}
    _write(lake.gold("golden_id_history"), history, arrow_schema(GOLDEN_ID_HISTORY_SCHEMA), NO_STATS)

    # Candidate pairs: distinct pairs of records, a record in several pairs now and then.
    left = rng.integers(0, records, candidates * 2)
    right = rng.integers(0, records, candidates * 2)
    pairs = sorted({tuple(sorted((record_ids[a], record_ids[b]))) for a, b in zip(left, right) if a != b})
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[:candidates]]
    row_of = {r: i for i, r in enumerate(record_ids)}
    probability = rng.uniform(0.02, 0.98, len(pairs))
    comparisons = [c.name for c in load_settings(MATCHING).comparisons]
    record_fields = [f.name for f in RECORD_STRUCT.fields]

    def record(row: int) -> dict[str, object]:
        def value(column: object) -> object:
            return column[row].as_py() if isinstance(column, pa.Array) else column[row]

        return {f: value(std[f]) if f in std else None for f in record_fields}

    rows = []
    for (a, b), p in zip(pairs, probability):
        weights = rng.normal(0, 3, len(comparisons))
        rows.append({
            "pair_id": f"{a}|{b}", "record_id_l": a, "record_id_r": b, "match_probability": float(p),
            "match_weight": math.log2(p / (1 - p)), "evidence": list(zip(comparisons, map(float, weights))),
            "levels": [(c, int(w > 0)) for c, w in zip(comparisons, weights)],
            "blocking_rule": RULES[len(a) % len(RULES)], "reason": REASONS[int(p * 1000) % len(REASONS)],
            "record_l": record(row_of[a]), "record_r": record(row_of[b]), "run_id": RUN_ID,
        })
    write_deltalake(lake.gold("match_candidates"), pa.Table.from_pylist(rows, arrow_schema(MATCH_CANDIDATES_SCHEMA)),
                    configuration=NO_STATS)
    publication = {"run_id": [RUN_ID], "published_at": [PUBLISHED], "golden_customers_version": [0],
                   "customer_xref_version": [0]}
    _write(lake.gold("_publications"), publication, arrow_schema(PUBLICATIONS_SCHEMA), NO_STATS)

    # Earlier stewards' decisions, after the publication, in many small commits like the app's.
    decided = rng.permutation(len(pairs))[: DECISION_COMMITS * DECISIONS_PER_COMMIT]
    schema = arrow_schema(STEWARD_DECISIONS_SCHEMA)
    for commit in range(DECISION_COMMITS):
        chunk = decided[commit * DECISIONS_PER_COMMIT:(commit + 1) * DECISIONS_PER_COMMIT]
        when = PUBLISHED + dt.timedelta(minutes=commit + 1)
        batch = {"decision_id": [f"bench-{commit}-{i}" for i in range(len(chunk))], "decided_at": [when] * len(chunk),
                 "steward": ["earlier"] * len(chunk), "action": [("match", "no_match", "unsure")[i % 3] for i in chunk],
                 "record_id_l": [pairs[i][0] for i in chunk], "record_id_r": [pairs[i][1] for i in chunk]}
        _write(lake.gold("steward_decisions"), batch, schema, NO_STATS)


def prepared_lake(out: Path, goldens: int, candidates: int, seed: int) -> Path:
    """The load lake for these sizes, built when missing (a marker file says a build finished)."""
    root = out / f"lake-{goldens}-{candidates}-{seed}"
    marker = root / "_built.json"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        build_lake(root, goldens, candidates, seed)
        marker.write_text(json.dumps({"golden": goldens, "candidates": candidates, "seed": seed,
                                      "seconds": round(time.perf_counter() - started, 1)}))
    return root


def serve(lake: Path, stewards: Path, port: int) -> None:
    """The server process: the app under uvicorn, as ``cdi serve`` runs it."""
    import uvicorn

    from steward.app import create_app, uvicorn_config
    from steward.config import StewardSettings

    settings = StewardSettings(lake=str(lake), matching=MATCHING, stewards=stewards, session_secret=SECRET)
    uvicorn.Server(uvicorn_config(create_app(settings), port=port)).run()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def log_in(client: httpx.Client, username: str) -> tuple[str, float]:
    """Log in; return the CSRF token of the session and how long its first queue page took, ms."""
    token = _CSRF.search(client.get("/login").text).group(1)
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                         "next": "/review"})
    if answer.status_code != 303 or "/login" in answer.headers.get("location", ""):
        raise RuntimeError(f"{username} could not log in: {answer.status_code}")
    started = time.perf_counter()
    page = client.get("/review?page=0")
    return _CSRF.search(page.text).group(1), 1000 * (time.perf_counter() - started)


class Timings:
    def __init__(self) -> None:
        self.by_kind: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, kind: str, seconds: float, ok: bool) -> None:
        with self._lock:
            self.by_kind.setdefault(kind, []).append(seconds * 1000)
            if not ok:
                self.errors[kind] = self.errors.get(kind, 0) + 1


def timed(timings: Timings, kind: str, call: callable) -> httpx.Response:
    started = time.perf_counter()
    answer = call()
    timings.add(kind, time.perf_counter() - started, answer.status_code < 400)
    return answer


def user(base: str, name: str, token: str, golden_ids: list[str], pages: int, sources: list[str], deadline: float,
         decide_every: int, timings: Timings, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        csrf, _ = log_in(client, name)
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            params = {"page": str(rng.randrange(pages))}
            if rng.random() < 1 / 3:
                params["source"] = rng.choice(sources)
            page = timed(timings, "queue page", lambda: client.get("/review", params=params))
            lookup = rng.choice(golden_ids)
            timed(timings, "API lookup", lambda: client.get(f"/api/v1/golden/{lookup}",
                                                            headers={"Authorization": f"Bearer {token}"}))
            shown = _SHOWN.search(page.text)
            if decide_every and rounds % decide_every == 0 and shown:
                form = {"csrf_token": csrf, "record_a": shown.group(1), "record_b": shown.group(2),
                        "action": "no_match", "origin": "review", "comment": "bench"}
                timed(timings, "decision", lambda: client.post("/decide", data=form))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(share * len(ordered))) - 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--golden", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--decide-every", type=int, default=10, help="a decision every N rounds per user (0: none)")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "steward")
    parser.add_argument("--serve", nargs=2, metavar=("LAKE", "STEWARDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]), args.port)
        return

    started = time.perf_counter()
    lake = prepared_lake(args.out, args.golden, args.candidates, args.seed)
    print(f"lake {lake} ready in {time.perf_counter() - started:.0f} s", flush=True)
    stewards = args.out / "stewards.yaml"
    stewards.unlink(missing_ok=True)
    names = [f"steward{i}" for i in range(args.users)]
    for name in names:
        create_user(stewards, name, "steward", PASSWORD)
    token = create_api_token(stewards, "bench", scope="lookup", rate_per_minute=10_000_000)
    # The run's own decisions go to a copy of the decisions table, so every run starts from the built lake.
    decisions = Path(Lake.at(lake).gold("steward_decisions"))
    pristine = args.out / f"decisions-{lake.name}"
    if not pristine.exists():
        shutil.copytree(decisions, pristine)
    shutil.rmtree(decisions)
    shutil.copytree(pristine, decisions)

    server = subprocess.Popen([sys.executable, "-m", "bench.steward_load", "--port", str(args.port),
                               "--serve", str(lake), str(stewards)], cwd=ROOT)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        golden_ids = golden_id(np.random.default_rng(args.seed).integers(0, args.golden, 20_000))
        warm = Timings()
        with httpx.Client(base_url=base, timeout=600) as client:
            _, cold = log_in(client, names[0])
            print(f"first queue page (loads candidates, decisions, golden records, xref, records): {cold:.0f} ms")
            timed(warm, "search", lambda: client.get("/search", params={"q": "OCONNOR, Emily"}))
            print(f"first search (builds the search text of golden records and records): "
                  f"{warm.by_kind['search'][0]:.0f} ms")
            timed(warm, "API lookup", lambda: client.get(f"/api/v1/golden/{golden_ids[0]}",
                                                         headers={"Authorization": f"Bearer {token}"}))
            for query in ("smith, emily", "07700 900123", "Émily Wilsón"):
                timed(warm, "search", lambda: client.get("/search", params={"q": query}))
            print(f"a warm search: {percentile(warm.by_kind['search'][1:], 0.5):.0f} ms (median of 3)")
            size = int(re.search(r'<span class="count">([\d,]+)</span>', client.get("/review").text).group(1).replace(",", ""))
        print(f"server memory after warm-up: {rss_mib(server.pid):.0f} MiB; queue: {size} pairs", flush=True)
        pages = max(1, size // 50)
        timings = Timings()
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=user, args=(base, name, token, golden_ids, pages, list(SOURCES), deadline,
                                                       args.decide_every, timings, args.seed + n))
                   for n, name in enumerate(names)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"{args.users} users, {args.seconds:.0f} s, {args.golden:,} golden records, {args.candidates:,} candidates")
        print(f"{'request':<12} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'errors':>7}")
        for kind, values in timings.by_kind.items():
            print(f"{kind:<12} {len(values):>7} {percentile(values, 0.5):>8.0f} {percentile(values, 0.95):>8.0f} "
                  f"{max(values):>8.0f} {timings.errors.get(kind, 0):>7}")
        print(f"server memory at the end: {rss_mib(server.pid):.0f} MiB; "
              f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
