"""HTTP service under load: ``mmrec serve`` driven by concurrent async clients.

Usage::

    python benchmarks/service_load.py                         # copies /tmp/db5k_rec (5,000 items, 200 users)
    python benchmarks/service_load.py --db /work/bench_data/dbs/catalog_5k --seconds 10 --levels 1,10,50

The database is copied to a temporary folder first (the server may write to it,
and LanceDB reads are fastest from a private copy). A database without users
gets 200 synthetic ones (``bench-user-0..199``, 20 interactions each, imported
from CSV). The server runs as a subprocess (``mmrec serve`` on a free loopback
port, access log off); the clients are ``httpx.AsyncClient`` coroutines in this
process, each sending one request after the other for ``--seconds`` per level:

* ``recommend``: ``GET /users/bench-user-N/recommendations?k=10`` for a random user;
* ``recommend+explain``: the same with ``explain=true`` (what the web page asks);
* ``similar``: ``POST /similar {"item": random id, "k": 10}``.

It prints a Markdown table: requests, requests/s, p50 and p99 latency, errors
(any non-200 answer or transport error). With ``--baseline`` (the default) a second server
runs beside it: a FastAPI app on the same uvicorn that answers every one of these routes with a
constant JSON body of the same shape (the framework's ceiling on this machine); each level runs
against mmrec and then against it (A B), and the table gives mmrec's share of its requests/s.

``--workers 1,2`` starts one server per value (``mmrec serve --workers N``, each on its own copy of the
database; ``--threads 2,4`` likewise, and both lists give every pair) and runs every level against each
of them in turn, then the constant app; ``--rounds R``
repeats that sequence (``--workers 1,2 --rounds 2``: 1, 2, constant, 1, 2, constant). The summary
gives, per target, the median requests/s over the rounds, p50 and p99 over all their requests, the
errors, and the ratio to the first ``--workers`` value; the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FALLBACK_DB = "/work/bench_data/dbs/catalog_5k"
N_USERS = 200
#: The users the requests ask for: ``bench-user-N``, or a database's own users when it has enough.
USERS = [f"bench-user-{u}" for u in range(N_USERS)]


@dataclass
class Level:
    scenario: str
    clients: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.clients} | {self.requests} | {self.rps:.1f} | "
            f"{self.pct(0.5):.1f} | {self.pct(0.99):.1f} | {self.errors} |"
        )


def prepare_db(source: str, work: Path) -> Path:
    """Copy ``source`` into ``work``; add synthetic users when it has none."""
    dest = work / "db"
    print(f"copying {source} → {dest}", flush=True)
    shutil.copytree(source, dest)
    from mmrec import Engine

    engine = Engine(str(dest))
    if "users" in engine.store.table_names() and engine.users().users().count_rows() >= N_USERS:
        # The database's own users (e.g. MovieLens raters): the requests ask for them.
        names = engine.users().users().search().select(["user"]).limit(None).to_arrow().column("user").to_pylist()
        USERS[:] = sorted(names)[:N_USERS]
        return dest
    print(f"importing interactions for {N_USERS} synthetic users", flush=True)
    ids = [r["id"] for r in engine.store.list(limit=None, columns=["id"])]
    rng = random.Random(0)
    path = work / "interactions.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "event", "timestamp"])
        for u in range(N_USERS):
            for j, item in enumerate(rng.sample(ids, 20)):
                w.writerow([f"bench-user-{u}", item, rng.choice(["like", "view", "click"]), 1_760_000_000 + 60 * j])
    print(engine.import_interactions(path).format(), flush=True)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, port: int, threads: int, workers: int = 1) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "mmrec.cli", "serve", "--db", str(db), "--port", str(port), "--log-level", "warning"]
    cmd += ["--threads", str(threads), "--workers", str(workers)]
    return subprocess.Popen(cmd, env={**os.environ, "MMREC_API_KEY": ""})


_CONSTANT_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
ITEM = {"id": "x", "title": "t", "score": 0.5, "interest": 0, "because": [], "modalities": {}, "matched": "text"}
REC = {"user": "u", "strategy": "profile", "cold_start": False, "message": "", "items": [ITEM] * 10}
SIM = {"query": {"kind": "item", "value": "x"}, "modality": "any", "results": [ITEM] * 10}
@app.get("/health")
def health():
    return {"ready": True}
@app.get("/users/{user}/recommendations")
def rec(user: str):
    return REC
@app.post("/similar")
def sim():
    return SIM
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start_constant(port: int) -> subprocess.Popen[bytes]:
    """The framework's ceiling: FastAPI on uvicorn answering constant JSON (sync routes, like mmrec's thread pool)."""
    return subprocess.Popen([sys.executable, "-c", _CONSTANT_APP, str(port)])


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).json().get("ready"):
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit("server did not become ready")


def make_request(scenario: str, rng: random.Random, ids: list[str]) -> tuple[str, str, dict | None]:
    if scenario.startswith("recommend"):
        user = USERS[rng.randrange(len(USERS))]
        explain = "&explain=true" if scenario.endswith("explain") else ""
        return "GET", f"/users/{user}/recommendations?k=10{explain}", None
    return "POST", "/similar", {"item": rng.choice(ids), "k": 10}


async def run_level(base: str, scenario: str, clients: int, seconds: float, ids: list[str]) -> Level:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def worker(seed: int, deadline: float, record: bool) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                method, url, body = make_request(scenario, rng, ids)
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, url, json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if record:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    errors += not ok

        # One second of warm-up at this concurrency (connections opened, caches warm), not recorded.
        warm_end = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(1000 + i, warm_end, False) for i in range(clients)))
        start = time.perf_counter()
        await asyncio.gather(*(worker(i, start + seconds, True) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return Level(scenario, clients, len(latencies), elapsed, latencies, errors)


async def fetch_ids(base: str) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        offset = 0
        while True:
            page = (await c.get("/items", params={"limit": 1000, "offset": offset})).json()
            ids += [i["id"] for i in page["items"]]
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                return ids


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def summarize(runs: list[Level]) -> tuple[float, float, float, int]:
    """Median requests/s over the rounds; p50 and p99 over all their requests; total errors."""
    pooled = Level(runs[0].scenario, runs[0].clients, 0, 1.0, [x for r in runs for x in r.latencies_ms], 0)
    return statistics.median(r.rps for r in runs), pooled.pct(0.5), pooled.pct(0.99), sum(r.errors for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/db5k_rec", help="database to copy (default /tmp/db5k_rec)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level (default 10)")
    ap.add_argument("--levels", default="1,10,50", help="concurrent clients, comma-separated (default 1,10,50)")
    ap.add_argument(
        "--scenarios", default="recommend,recommend+explain,similar", help="which request kinds (default: all three)"
    )
    ap.add_argument(
        "--threads", default="0", help="the server's --threads; a list (2,4) compares them (default 0: twice the cores)"
    )
    ap.add_argument("--workers", default="1", help="the server's --workers; a list (1,2) compares them (default 1)")
    ap.add_argument("--rounds", type=int, default=1, help="times each level runs against every target (default 1)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the constant-JSON FastAPI app")
    args = ap.parse_args()
    source = args.db if Path(args.db).is_dir() else FALLBACK_DB
    if source != args.db:
        print(f"{args.db} not found; using {source}", flush=True)
    levels = [int(x) for x in args.levels.split(",")]
    scenarios = [s.strip() for s in args.scenarios.split(",")]
    worker_counts = [int(x) for x in args.workers.split(",")]
    thread_counts = [int(x) for x in args.threads.split(",")]
    servers = [(w, t) for w in worker_counts for t in thread_counts]
    work = Path(tempfile.mkdtemp(prefix="mmrec-load-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = prepare_db(source, work)
        targets: list[tuple[str, str]] = []  # (label, base URL), in the order each round visits them
        for n, (workers, threads) in enumerate(servers):
            copy = db if n == 0 else Path(shutil.copytree(db, work / f"db-{n}"))
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            procs.append(start_server(copy, port, threads, workers))
            name = " ".join(
                [f"--workers {workers}"] * (len(worker_counts) > 1)
                + [f"--threads {threads}"] * (len(thread_counts) > 1)
            )
            print(f"server {name} ready in {wait_ready(base, procs[-1]):.1f} s", flush=True)
            targets.append((f"mmrec {name}" if name else "mmrec", base))
        ids = asyncio.run(fetch_ids(targets[0][1]))
        if not args.no_baseline:
            const_port = free_port()
            const_base = f"http://127.0.0.1:{const_port}"
            procs.append(start_constant(const_port))
            wait_ready(const_base, procs[-1])
            targets.append(("constant JSON", const_base))
        runs: dict[tuple[str, int, str], list[Level]] = {}
        loads: list[str] = []
        for scenario in scenarios:
            for clients in levels:
                for _ in range(args.rounds):  # interleaved: every target once per round (A B C A B C)
                    for label, base in targets:
                        level = asyncio.run(run_level(base, scenario, clients, args.seconds, ids))
                        level.scenario = f"{scenario} ({label})"
                        print(level.row(), flush=True)
                        runs.setdefault((scenario, clients, label), []).append(level)
                loads.append(load_average())
                print(f"load average {loads[-1]}", flush=True)
        cpus = os.cpu_count() or 1
        machine = platform.processor() or platform.machine()
        print(
            f"\n{len(ids)} items; server --threads {args.threads} (0: {2 * cpus}); {cpus} CPU cores ({machine}), "
            f"client and servers on the same machine; {args.rounds} round(s) of {args.seconds:g} s per level; "
            f"load average (1/5/15 min) after each level: {', '.join(loads)}"
        )
        first = targets[0][0]
        const_label = "constant JSON" if not args.no_baseline else None
        print("\n| scenario | clients | target | median req/s | p50 ms | p99 ms | errors | vs first | vs constant |")
        print("|---|---|---|---|---|---|---|---|---|")
        for scenario in scenarios:
            for clients in levels:
                ref = summarize(runs[(scenario, clients, first)])[0]
                ceiling = summarize(runs[(scenario, clients, const_label)])[0] if const_label else None
                for label, _ in targets:
                    rps, p50, p99, errors = summarize(runs[(scenario, clients, label)])
                    vs_const = f"{rps / ceiling:.2f}" if ceiling else "-"
                    print(
                        f"| {scenario} | {clients} | {label} | {rps:.1f} | {p50:.1f} | {p99:.1f} | {errors} | "
                        f"{rps / ref:.2f} | {vs_const} |"
                    )
        total_errors = sum(r.errors for key, rs in runs.items() if key[2] != const_label for r in rs)
        single = [r.pct(0.5) for key, rs in runs.items() if key[1] == 1 and key[2] == first for r in rs]
        med = f"; single-client median p50 {statistics.median(single):.1f} ms" if single else ""
        print(f"\nerrors: {total_errors}{med}")
        return 1 if total_errors else 0
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
