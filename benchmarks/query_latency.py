"""Latency of ``Engine.similar`` on an ingested database: median and p99 per query kind.

Usage::

    mmrec ingest /work/bench_data/catalog_5k --db /work/bench_data/dbs/catalog_5k
    python benchmarks/query_latency.py --db /work/bench_data/dbs/catalog_5k --queries 200

Query kinds run interleaved (text, item, image, audio, text, …) so that drift
of a shared machine's speed hits all kinds alike. Image and audio queries
include decoding the file and running the encoder; item queries reuse the
stored fused vector. Each call is a full ``Engine.similar`` (k=10) as the CLI
and the service make it, models already loaded.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main() -> None:
    from mmrec import Engine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", type=int, default=200, help="queries per kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()

    engine = Engine(args.db)
    rows = engine.store.list(limit=None, columns=["id", "catalog", "title", "files", "has_image", "has_audio"])
    rng = random.Random(args.seed)

    def file_of(row, role):
        f = next(f for f in row["files"] if f["role"] == role)
        return str(Path(row["catalog"]) / f["path"])

    with_image = [r for r in rows if r["has_image"]]
    with_audio = [r for r in rows if r["has_audio"]]
    makers = {
        "text": lambda: {"text": rng.choice(rows)["title"]},
        "item": lambda: {"item": rng.choice(rows)["id"]},
        "image": lambda: {"image": file_of(rng.choice(with_image), "image")} if with_image else None,
        "audio": lambda: {"audio": file_of(rng.choice(with_audio), "audio")} if with_audio else None,
        "image→audio": lambda: (
            {"image": file_of(rng.choice(with_image), "image"), "modality": "audio"}
            if with_image and with_audio
            else None
        ),
    }
    engine.similar(text="warm up", k=10)  # loads models and bridges
    times: dict[str, list[float]] = {k: [] for k in makers}
    for _ in range(args.queries):
        for kind, make in makers.items():
            q = make()
            if q is None:
                continue
            t0 = time.perf_counter()
            engine.similar(k=10, **q)
            times[kind].append((time.perf_counter() - t0) * 1000)
    result = {"db": args.db, "items": len(rows), "queries_per_kind": args.queries, "latency_ms": {}}
    print(f"{len(rows)} items, {args.queries} queries per kind, k=10")
    for kind, ts in times.items():
        if not ts:
            continue
        med, p99 = statistics.median(ts), percentile(ts, 99)
        result["latency_ms"][kind] = {"median": round(med, 2), "p99": round(p99, 2)}
        print(f"  {kind:<12} median {med:7.1f} ms   p99 {p99:7.1f} ms")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
