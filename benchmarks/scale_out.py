"""Scale-out: items/s of the local pipeline against ``--engine ray`` (1 and 2 workers), and commit cost.

Usage::

    python benchmarks/scale_out.py --catalog /work/bench_data/catalog_800 --items 48 --repeats 2
    python benchmarks/scale_out.py --json out.json

Two parts, both in this one process:

* **ingest** — ``Engine.ingest`` of the same ``--items`` items into a fresh database, run interleaved
  ``local, ray×1, ray×2, local, ray×1, ray×2 …`` (``--repeats`` rounds). Ray is started once
  (``num_cpus`` = 2) before the clock, so the figures hold each run's actor start-up and model loading
  (every actor loads the encoders once) but not Ray's own start-up, which is measured separately.
  The local runs use already-loaded models, as a long-lived process would. Reported: median
  (and max, the p99 of so few runs) seconds and items/s, and the ratio against local.
* **commit** — N fragments of R rows written to a Lance table, then made visible by one
  ``LanceDataset.commit(Append)`` (what the driver of a Ray ingest does), against N LanceDB ``add()``
  calls of R rows (one commit each, what N write batches of the local pipeline cost); and the scan of
  the id column that :func:`mmrec.store.fragments.commit_fragments` runs first (``dedupe_scan_s``: R
  new ids looked up among the N × R stored rows, so that a concurrent ingest's rows are replaced).

With no ``--catalog``, a synthetic catalog (tests/media_factory.py) of ``--items`` items is made.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest_throughput import subset_catalog  # noqa: E402  (the same symlinked subset as the throughput benchmark)


def synthetic_catalog(dest: Path, n: int) -> Path:
    """``n`` items with text, image and (every other one) audio, made by the test media factory."""
    from media_factory import noise, tone, write_audio, write_image, write_text

    kinds = ["stripes", "gradient", "checker"]
    for i in range(n):
        base = dest / f"group{i % 4}" / f"item{i:04d}"
        write_image(base.with_suffix(".png"), kinds[i % 3])
        write_text(base.with_suffix(".txt"), f"Item {i}: a {kinds[i % 3]} picture, number {i} of {n}.")
        if i % 2 == 0:
            write_audio(base.with_suffix(".wav"), tone(220 + 20 * i, 2.0) if i % 4 == 0 else noise(2.0, seed=i))
    return dest


def ingest_once(catalog: Path, workdir: Path, mode: str) -> dict:
    from mmrec import Engine
    from mmrec.config import IngestConfig

    db = workdir / f"db-{mode}-{time.monotonic_ns()}"
    engine = Engine(db)
    engine.encoders()  # shared_encoder: loaded once per process, like a long-lived service
    if mode == "local":
        config = IngestConfig()
    else:
        config = IngestConfig(engine="ray", ray_workers=int(mode.split("x")[1]), ray_cpus_per_worker=1.0)
    t0 = time.perf_counter()
    report = engine.ingest(catalog, config=config)
    seconds = time.perf_counter() - t0
    done = report.added + report.updated
    shutil.rmtree(db, ignore_errors=True)
    return {"seconds": seconds, "items": done, "items_per_s": done / seconds, "problems": len(report.problems)}


def commit_bench(workdir: Path, fragments: int, rows: int, dim: int = 384) -> dict:
    """Seconds to make ``fragments`` × ``rows`` rows visible: one Append commit vs one ``add()`` each."""
    import lance
    import lancedb
    import numpy as np
    import pyarrow as pa
    from lance.fragment import LanceFragment

    schema = pa.schema([pa.field("id", pa.string()), pa.field("vec", pa.list_(pa.float32(), dim))])
    rng = np.random.default_rng(0)

    def batch(k: int) -> pa.Table:
        vecs = rng.standard_normal((rows, dim), dtype=np.float32)
        return pa.Table.from_arrays(
            [pa.array([f"{k}-{j}" for j in range(rows)]), pa.FixedSizeListArray.from_arrays(vecs.ravel(), dim)],
            schema=schema,
        )

    data = [batch(k) for k in range(fragments)]
    db = lancedb.connect(workdir / f"commit-{time.monotonic_ns()}")
    tbl = db.create_table("t", schema=schema)
    t0 = time.perf_counter()
    for d in data:
        tbl.add(d)
    adds = time.perf_counter() - t0
    tbl2 = db.create_table("t2", schema=schema)
    ds = lance.dataset(tbl2.uri)
    t0 = time.perf_counter()
    frags = [
        LanceFragment.create(tbl2.uri, d, schema=schema, data_storage_version=ds.data_storage_version) for d in data
    ]
    written = time.perf_counter() - t0
    t1 = time.perf_counter()
    lance.LanceDataset.commit(tbl2.uri, lance.LanceOperation.Append(frags), read_version=ds.version)
    commit = time.perf_counter() - t1
    assert db.open_table("t2").count_rows() == tbl.count_rows() == fragments * rows  # a fresh handle sees the commit
    # What commit_fragments adds before its commit: the rows already stored for the ids it writes, found
    # by one scan of the id column (here the next run's ``rows`` new ids against all committed rows).
    from mmrec.store.fragments import _deletions

    t2 = time.perf_counter()
    found = _deletions(lance.dataset(tbl2.uri), [f"next-{j}" for j in range(rows)])
    dedupe = time.perf_counter() - t2
    assert found == ([], [])
    return {
        "fragments": fragments,
        "rows_per_fragment": rows,
        "lancedb_add_each_s": adds,
        "versions_after_adds": tbl.version,
        "fragment_write_s": written,
        "one_commit_s": commit,
        "dedupe_scan_s": dedupe,
        "versions_after_commit": db.open_table("t2").version,
    }


def summary(runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    rates = [r["items_per_s"] for r in runs]
    return {
        "runs": len(runs),
        "median_s": statistics.median(secs),
        "max_s": max(secs),
        "median_items_per_s": statistics.median(rates),
        "min_items_per_s": min(rates),
        "items": runs[0]["items"],
        "problems": runs[0]["problems"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, help="a catalog to take --items items from (default: synthetic)")
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--modes", default="local,rayx1,rayx2")
    ap.add_argument("--fragments", default="1,8,64", help="fragment counts for the commit part")
    ap.add_argument("--rows", type=int, default=256, help="rows per fragment in the commit part")
    ap.add_argument("--commit-repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()

    import ray

    work = Path(tempfile.mkdtemp(prefix="mmrec-scale-"))
    out: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.platform()})",
        "items": args.items,
        "repeats": args.repeats,
    }
    try:
        cat = work / "catalog"
        if args.catalog:
            subset_catalog(args.catalog, args.items, cat)
        else:
            synthetic_catalog(cat, args.items)
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        out["ray_init_s"] = time.perf_counter() - t0
        modes = [m for m in args.modes.split(",") if m]  # --modes "" measures the commit part only
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        if modes:
            ingest_once(cat, work, "local")  # warm-up: model loading and bridges, not counted
        for r in range(args.repeats):
            for m in modes:  # interleaved A B C A B C: drift of a shared machine hits every mode alike
                res = ingest_once(cat, work, m)
                runs[m].append(res)
                print(f"round {r} {m:7s} {res['seconds']:7.1f} s {res['items_per_s']:6.2f} items/s", flush=True)
        out["ingest"] = {m: summary(v) for m, v in runs.items()}
        base = out["ingest"].get("local", {}).get("median_items_per_s")
        if base:
            for s in out["ingest"].values():
                s["ratio_vs_local"] = s["median_items_per_s"] / base
        ray.shutdown()
        counts = [int(n) for n in args.fragments.split(",")]
        trials: dict[int, list[dict]] = {n: [] for n in counts}
        for _ in range(args.commit_repeats):  # interleaved over the fragment counts
            for n in counts:
                trials[n].append(commit_bench(work, n, args.rows))
        out["commit"] = [
            {
                **{k: v for k, v in ts[0].items() if not k.endswith("_s")},
                **{f"median_{k}": statistics.median(t[k] for t in ts) for k in ts[0] if k.endswith("_s")},
                **{f"max_{k}": max(t[k] for t in ts) for k in ts[0] if k.endswith("_s")},
                "repeats": len(ts),
            }
            for ts in trials.values()
        ]
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
