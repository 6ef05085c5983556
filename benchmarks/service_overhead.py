"""Cost of the request middleware (request id, JSON access log, Prometheus metrics) on cheap routes.

Two servers run side by side on one database, identical but for :class:`mmrec.service.middleware.ObserveMiddleware`:

* ``bare``: the app without it (no request id, no access line, no request metrics);
* ``observed``: the app as ``mmrec serve --metrics --log-format json`` runs it (one JSON line per request,
  written to a file, as under a process manager).

The client sends sequential keep-alive requests, in batches that alternate between the two servers
(A/B interleaved, order shuffled per round, so drift in the machine's load hits both alike), and reports
the median of the per-batch median latencies, per route, and the difference.

Usage::

    python benchmarks/service_overhead.py                  # ingests the demo catalog into a temporary db
    python benchmarks/service_overhead.py --db my.db --rounds 30 --batch 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
ROUTES = ("/health", "/items?limit=5")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_server(variant: str, db: str, port: int) -> None:
    """The server side (this script re-invoked with ``--serve``)."""
    from mmrec.service import create_app
    from mmrec.service.logs import configure_logging
    from mmrec.service.middleware import ObserveMiddleware
    from mmrec.service.server import serve

    configure_logging("json", "info", access_log=variant == "observed")
    app = create_app(db, warm=False, metrics=variant == "observed")
    if variant == "bare":
        # The same app less the middleware measured (the middleware stack is built at start-up, after this).
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ObserveMiddleware]
    serve(app, host="127.0.0.1", port=port)


def start(variant: str, db: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", variant, "--db", db, "--port", str(port)]
    # The log goes to a file, as under a process manager; read by nothing in this process, whose GIL the
    # client's timing shares.
    log = open(Path(tempfile.gettempdir()) / f"mmrec-overhead-{variant}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{variant} server did not start")


def batch(client: httpx.Client, url: str, n: int) -> float:
    """Median latency (ms) of ``n`` sequential requests."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="database (default: the demo catalog ingested into a temporary folder)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=200, help="requests per batch")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--serve", choices=["bare", "observed"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        run_server(args.serve, args.db, args.port)
        return
    db = args.db
    if db is None:
        from mmrec import Engine

        db = str(Path(tempfile.mkdtemp(prefix="mmrec-overhead-")) / "db")
        print("ingesting the demo catalog …", flush=True)
        Engine(db).ingest(REPO / "assets" / "demo")
    servers = {v: start(v, db) for v in ("bare", "observed")}
    rng = random.Random(0)
    medians: dict[tuple[str, str], list[float]] = {(v, r): [] for v in servers for r in ROUTES}
    try:
        clients = {v: httpx.Client(base_url=base, timeout=30) for v, (_, base) in servers.items()}
        for c in clients.values():  # warm-up: connections, first-request paths, the health verdict
            for route in ROUTES:
                batch(c, route, 50)
        for _ in range(args.rounds):
            for route in ROUTES:
                order = list(servers)
                rng.shuffle(order)
                for v in order:
                    medians[(v, route)].append(batch(clients[v], route, args.batch))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    out = {"rounds": args.rounds, "batch": args.batch, "cpus": os.cpu_count(), "routes": {}}
    print(f"\n{'route':<16} {'bare ms':>9} {'observed ms':>12} {'overhead':>10}")
    for route in ROUTES:
        bare = statistics.median(medians[("bare", route)])
        seen = statistics.median(medians[("observed", route)])
        # Paired per round: the difference of the two batches run back to back.
        diffs = [o - b for b, o in zip(medians[("bare", route)], medians[("observed", route)], strict=True)]
        delta = statistics.median(diffs)
        out["routes"][route] = {
            "bare_ms": bare,
            "observed_ms": seen,
            "overhead_ms": delta,
            "overhead_pct": 100 * delta / bare,
        }
        print(f"{route:<16} {bare:>9.3f} {seen:>12.3f} {delta * 1000:>7.0f} µs ({100 * delta / bare:+.1f} %)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
