"""Recommendation latency: ``Engine.recommend`` against an exact NumPy scan of the same profiles.

Usage::

    # a real ingested catalog (e.g. the 5,000-item one)
    python benchmarks/recommend_latency.py --db /work/bench_data/dbs/catalog_5k --users 200
    # 100,000 items with synthetic clustered vectors (built once into --synthetic-db)
    python benchmarks/recommend_latency.py --synthetic 100000 --synthetic-db /work/bench_data/dbs/synthetic_100k --users 200
    # LanceDB's own IVF_PQ index (Store.nearest, the search the lancedb serving path makes): recall@10
    python benchmarks/recommend_latency.py --db /work/bench_data/serving/lance_100k --path lancedb --queries 200
    # Engine.recommend / similar served with serving="lancedb" (no vectors in memory) against exact NumPy
    python benchmarks/recommend_latency.py --db /work/bench_data/serving/lance_100k --path serving-lancedb --users 50

Synthetic users are made from the catalog itself: each has 2 tastes (an item
and its nearest neighbours) and 20 timestamped interactions, imported through
``Engine.import_interactions``. Then, interleaved per user, the script times

* ``Engine.recommend(user, k=10)`` — the full path (profile read, one search per
  interest with the consumed items excluded inside the search, merge), and
* an exact NumPy scan over all fused vectors held in memory for the same
  interest vectors, exclusions and quotas (the bandwidth-bound baseline),

and reports median and p99 latency and recall@10 of ``recommend`` against the
exact scan's top items.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def synthetic_vectors(n: int, dim: int = 384, clusters: int = 200, seed: int = 0) -> np.ndarray:
    """``(n, dim)`` float32 clustered unit vectors: the rows :func:`build_synthetic` stores, in the same order."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 20000):
        m = min(20000, n - start)
        c = rng.integers(0, clusters, m)
        v = centres[c] + 0.6 * rng.normal(size=(m, dim)).astype(np.float32)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def build_synthetic(
    db: str, n: int, dim: int = 384, clusters: int = 200, seed: int = 0, lance_index: bool = True
) -> None:
    """An items table of ``n`` rows with clustered unit vectors and no media (encoders of the real defaults)."""
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa

    from encoders.base import EncoderIdentity
    from encoders.registry import DEFAULT_ENCODERS
    from mmrec.space import DEFAULT_FUSION
    from mmrec.store.items import Store

    store = Store(db)
    if store.has_items():
        return
    # The identities of the default encoders, so that Engine opens the table normally.
    idents = {
        "text": EncoderIdentity("minilm-l6", "synthetic", "synthetic", dim),
        "image": EncoderIdentity("efficientnet-lite0", "synthetic", "synthetic", 1280),
        "audio": EncoderIdentity("yamnet", "synthetic", "synthetic", 1024),
    }
    store.create_items(
        idents,
        dict(DEFAULT_ENCODERS),
        {"image": 1000, "audio": 521},
        {"name": DEFAULT_FUSION, "version": 0, "fingerprint": "synthetic"},
    )
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    now = datetime.now(timezone.utc)
    tbl = store.items()
    for start in range(0, n, 20000):
        m = min(20000, n - start)
        c = rng.integers(0, clusters, m)
        v = centres[c] + 0.6 * rng.normal(size=(m, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        ids = [f"s{start + i:07d}" for i in range(m)]
        data = {
            "id": ids,
            "catalog": ["synthetic"] * m,
            "title": [f"item {i} (cluster {k})" for i, k in zip(ids, c, strict=True)],
            "has_text": [True] * m,
            "has_image": [False] * m,
            "has_audio": [False] * m,
            "fused_vec": list(v),
            "text_shared": list(v),
            "fusion_weights": [np.array([1, 0, 0], np.float32)] * m,
            "created_at": [now] * m,
            "updated_at": [now] * m,
        }
        schema = tbl.schema
        cols = {f.name: data.get(f.name, [None] * m) for f in schema}
        tbl.add(pa.Table.from_pydict(cols, schema=schema), on_bad_vectors="null")
    if lance_index:
        store.ensure_vector_index()  # what an ingest of this many items does
    store.optimize(timedelta(seconds=1))


def make_users(engine, n_users: int, vectors: np.ndarray, ids: list[str], seed: int, path: Path) -> list[str]:
    rng = np.random.default_rng(seed)
    users = []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "event", "timestamp"])
        for u in range(n_users):
            user = f"bench-user-{u}"
            users.append(user)
            t = 1_760_000_000
            for _ in range(2):  # two tastes
                seed_item = rng.integers(0, len(ids))
                near = np.argpartition(-(vectors @ vectors[seed_item]), 40)[:40]
                for j in rng.choice(near, 10, replace=False):
                    t += int(rng.integers(60, 3600))
                    w.writerow([user, ids[j], rng.choice(["view", "like", "like", "purchase"]), t])
    report = engine.import_interactions(path)
    assert not report.bad, report.bad[:3]
    return users


def exact(profile, vectors: np.ndarray, index: dict[str, int], k: int, allow: np.ndarray | None = None) -> list[int]:
    """The same retrieval as ``recommend`` by brute force: per-interest quotas, consumed items excluded
    (and only the rows of ``allow`` ``(N,)`` bool, when given)."""
    from mmrec.recsys.recommend import quotas as _quotas

    interests = profile.interests()
    quotas = _quotas([w for _, w in interests], k)
    banned = np.zeros(len(vectors), bool) if allow is None else ~allow
    banned[[index[i] for i in profile.seen if i in index]] = True
    out: list[int] = []
    for (direction, _), q in zip(interests, quotas, strict=True):
        scores = vectors @ direction
        scores[banned] = -np.inf
        scores[out] = -np.inf
        top = np.argpartition(-scores, q)[:q]
        out.extend(top[np.argsort(-scores[top])].tolist())
    return out[:k]


def p99(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 3), "p99": round(p99(xs), 3)}


def memory_mb() -> float:
    """This process's resident memory (MB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class Timer:
    """Wall (``perf_counter``) and this thread's CPU time (``thread_time``: what a loaded machine's waiting
    for a core does not inflate) of each call, in ms, per name."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def __call__(self, name: str, fn):
        w0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        c1, w1 = time.thread_time(), time.perf_counter()
        self.wall.setdefault(name, []).append((w1 - w0) * 1000)
        self.cpu.setdefault(name, []).append((c1 - c0) * 1000)
        return out

    def pair(self, first: tuple[str, object], second: tuple[str, object], swap: bool) -> list:
        """Both calls, in swapped order every other time (A B, B A: neither always runs on a warmer cache)."""
        calls = [first, second][::-1] if swap else [first, second]
        out = {name: self(name, fn) for name, fn in calls}
        return [out[first[0]], out[second[0]]]

    def report(self, name: str) -> dict[str, float]:
        return {"wall": stats(self.wall[name]), "cpu": stats(self.cpu[name])}

    def ratio(self, a: str, b: str) -> dict[str, float]:
        return {
            k: round(statistics.median(d[a]) / statistics.median(d[b]), 2)
            for k, d in (("wall", self.wall), ("cpu", self.cpu))
        }


def lancedb_path(db: str, queries: int, rebuild: bool, sweep: str | None, seed: int, k: int) -> dict:
    """Recall@k and latency of LanceDB's own IVF_PQ index (``Store.nearest``), A B interleaved with an exact
    single-threaded NumPy scan of the same vectors (the truth). The index is built when missing, at any size
    (``--rebuild-index``: again, with the current settings). Queries are stored items' vectors moved off them
    by a random unit step of length 0.3, so the nearest items are not the query's own item alone."""
    from threadpoolctl import threadpool_limits

    from mmrec.store.items import Store
    from mmrec.store.vector_index import plan

    store = Store(db)
    tbl = store.items()
    ids, vecs = store.item_vectors()
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    n, dim = vecs.shape
    t0, c0 = time.perf_counter(), time.process_time()
    built = store.ensure_vector_index(min_rows=0, rebuild=rebuild)
    build = (round(time.perf_counter() - t0, 1), round(time.process_time() - c0, 1)) if built else None
    settings = plan(store._indexed["fused_vec"], dim)
    rng = np.random.default_rng(seed)
    step = rng.normal(size=(queries, dim)).astype(np.float32)
    qs = vecs[rng.integers(0, n, queries)] + 0.3 * step / np.linalg.norm(step, axis=1, keepdims=True)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    with threadpool_limits(1):
        truth = [set(np.argpartition(-(vecs @ q), k)[:k].tolist()) for q in qs]
    timer, recalls = Timer(), []
    for j, q in enumerate(qs):
        with threadpool_limits(1):
            got, _ = timer.pair(
                ("lancedb", partial(store.nearest, [q], "fused_vec", ["id"], k, [])),
                ("exact", partial(lambda q: np.argpartition(-(vecs @ q), k)[:k], q)),
                j % 2 == 1,
            )
        recalls.append(len({r["id"] for r in got[0]} & {ids[i] for i in truth[j]}) / k)
    res = {
        "db": db,
        "items": n,
        "k": k,
        "queries": queries,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "index": {
            "partitions": settings.partitions,
            "sub_vectors": settings.sub_vectors,
            "nprobes": settings.nprobes,
            "refine_factor": settings.refine_factor,
        },
        "index_build_s_wall_cpu": build,
        "lancedb_ms": timer.report("lancedb"),
        "exact_numpy_ms": timer.report("exact"),
        "lancedb_over_exact": timer.ratio("lancedb", "exact"),
        "recall_at_k_vs_exact": round(float(np.mean(recalls)), 4),
        "recall_at_k_min": round(float(np.min(recalls)), 2),
    }
    if sweep:  # other search settings on the same index: "nprobes:refine,nprobes:refine"
        res["sweep"] = {}
        for pair in sweep.split(","):
            nprobes, refine = (int(x) for x in pair.split(":"))
            rc, ms = [], []
            for j, q in enumerate(qs):
                t = time.perf_counter()
                q_ = tbl.search(q, vector_column_name="fused_vec").metric("cosine").select(["id"]).limit(k)
                got = q_.nprobes(nprobes).refine_factor(refine).to_arrow().column("id").to_pylist()
                ms.append((time.perf_counter() - t) * 1000)
                rc.append(len(set(got) & {ids[i] for i in truth[j]}) / k)
            res["sweep"][pair] = {"recall": round(float(np.mean(rc)), 4), "ms": stats(ms)}
    return res


def serving_lancedb(db: str, n_users: int, seed: int, k: int) -> dict:
    """``Engine.recommend`` and ``similar(item=…)`` with ``serving="lancedb"`` (the snapshot holds no vectors;
    searches go through LanceDB's IVF_PQ index, ``Store.nearest``), each A B / B A interleaved with an exact
    single-threaded NumPy scan of the same float32 vectors for the same query (the truth, for recall@k),
    plus a selective (1 %) filter. Memory: the snapshot's own bytes per item and the process's resident
    growth while it was built (before the benchmark's float32 copy of the vectors is read)."""
    from threadpoolctl import threadpool_limits

    from mmrec import Engine
    from mmrec.store.vector_index import ensure_id_index

    engine = Engine(db, serving="lancedb")
    with engine.store.writer.hold("benchmark"):  # what an ingest of this many items now builds with the index
        if ensure_id_index(engine.store.items()):
            engine.store.reopen()
    rss0, t0, c0 = memory_mb(), time.perf_counter(), time.process_time()
    snap = engine.snapshot()
    build_s, build_cpu_s, rss1 = time.perf_counter() - t0, time.process_time() - c0, memory_mb()
    side = snap.items
    assert side.kind == "lancedb", side.kind
    ids, n_items = list(side.ids), len(side.ids)
    stored_ids, stored = engine.store.item_vectors()
    vectors = np.zeros((n_items, stored.shape[1]), np.float32)
    vectors[np.array([side.index[i] for i in stored_ids], np.int64)] = stored
    del stored
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = {i: n for n, i in enumerate(ids)}
    known = sorted(u for u in snap.profiles if u.startswith("bench-user-"))
    if len(known) >= n_users:
        users = known[:n_users]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            users = make_users(engine, n_users, vectors, ids, seed, Path(tmp) / "interactions.csv")
    engine.recommend(users[0], k)  # warm up (and fold the new profiles in)
    snap = engine.snapshot()
    timer = Timer()
    rec_recall, sim_recall, f_rec, f_sim = [], [], [], []
    where = "id LIKE '%00'"  # 1 item in 100
    allow = snap.items.allow(engine.store, where).mask

    def exact_similar(item: str, mask: np.ndarray | None = None) -> set[str]:
        s = vectors @ vectors[index[item]]
        s[index[item]] = -np.inf
        if mask is not None:
            s[~mask] = -np.inf
        return {ids[i] for i in np.argpartition(-s, k)[:k]}

    for n_user, user in enumerate(users):
        swap = n_user % 2 == 1
        profile = snap.profile(user)
        with threadpool_limits(1):  # one core, like a request
            result, best = timer.pair(
                ("recommend", partial(engine.recommend, user, k)),
                ("recommend_exact", partial(exact, profile, vectors, index, k)),
                swap,
            )
        rec_recall.append(len({ids[i] for i in best} & {r.id for r in result.items}) / max(len(best), 1))
        item = ids[(n_user * 7919) % n_items]
        with threadpool_limits(1):
            got, truth = timer.pair(
                ("similar", partial(engine.similar, item=item, k=k)),
                ("similar_exact", partial(exact_similar, item)),
                swap,
            )
        sim_recall.append(len(truth & {m.id for m in got}) / k)
        with threadpool_limits(1):
            got = timer("recommend_1pct", partial(engine.recommend, user, k, where=where))
            best = exact(profile, vectors, index, k, allow)
            f_rec.append(len({ids[i] for i in best} & {r.id for r in got.items}) / max(len(best), 1))
            got = timer("similar_1pct", partial(engine.similar, item=item, k=k, where=where))
            f_sim.append(len(exact_similar(item, allow) & {m.id for m in got}) / k)
    from mmrec.store.vector_index import indexed_rows, plan

    indexed = indexed_rows(engine.store.items(), "fused_vec")
    settings = plan(indexed, vectors.shape[1]) if indexed else None
    return {
        "db": db,
        "path": "serving=lancedb (Engine.recommend / similar through LanceDB's index)",
        "items": n_items,
        "users": len(users),
        "k": k,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "index": None if settings is None else {**dataclasses.asdict(settings), "indexed_rows": indexed},
        "snapshot_build_s": round(build_s, 1),
        "snapshot_build_cpu_s": round(build_cpu_s, 1),
        "snapshot_bytes_per_item": round(side.nbytes() / n_items),
        "snapshot_resident_bytes_per_item": round((rss1 - rss0) * 1e6 / n_items),
        "recommend_ms": timer.report("recommend"),
        "recommend_exact_numpy_ms": timer.report("recommend_exact"),
        "recommend_over_exact": timer.ratio("recommend", "recommend_exact"),
        "recommend_recall_at_k_vs_exact": round(float(np.mean(rec_recall)), 4),
        "similar_ms": timer.report("similar"),
        "similar_exact_numpy_ms": timer.report("similar_exact"),
        "similar_over_exact": timer.ratio("similar", "similar_exact"),
        "similar_recall_at_k_vs_exact": round(float(np.mean(sim_recall)), 4),
        "filtered_1pct": {
            "rows": int(allow.sum()),
            "recommend_ms": timer.report("recommend_1pct"),
            "recommend_recall_at_k": round(float(np.mean(f_rec)), 4),
            "similar_ms": timer.report("similar_1pct"),
            "similar_recall_at_k": round(float(np.mean(f_sim)), 4),
        },
    }


def main() -> None:
    import faiss
    from threadpoolctl import threadpool_limits

    from mmrec import Engine
    from mmrec.recsys.recommend import OVERFETCH, quotas
    from mmrec.recsys.retrieval import NPROBE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db")
    ap.add_argument("--synthetic", type=int, help="build a synthetic catalog of this many items")
    ap.add_argument("--synthetic-db", help="where the synthetic catalog goes (reused when present)")
    ap.add_argument("--no-lance-index", action="store_true", help="skip LanceDB's IVF_PQ index when building")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="passes over the users (A B A B interleaved in each)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument(
        "--path",
        choices=["memory", "lancedb", "serving-lancedb"],
        default="memory",
        help="memory: the serving snapshot (Engine.recommend/similar); lancedb: LanceDB's IVF_PQ index (Store.nearest); "
        "serving-lancedb: Engine.recommend/similar with serving='lancedb' against exact NumPy",
    )
    ap.add_argument("--queries", type=int, default=200, help="--path lancedb: queries timed")
    ap.add_argument("--rebuild-index", action="store_true", help="--path lancedb: build the index again first")
    ap.add_argument("--sweep", help="--path lancedb: other nprobes:refine pairs to measure, e.g. 20:10,40:20")
    args = ap.parse_args()
    db = args.db
    if args.synthetic:
        db = args.synthetic_db or str(Path(tempfile.mkdtemp()) / "synthetic")
        t0 = time.perf_counter()
        build_synthetic(db, args.synthetic, lance_index=not args.no_lance_index)
        print(f"synthetic catalog: {args.synthetic} items in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.path != "memory":
        if args.path == "lancedb":
            res = lancedb_path(db, args.queries, args.rebuild_index, args.sweep, args.seed, args.k)
        else:
            res = serving_lancedb(db, args.users, args.seed, args.k)
        print(json.dumps(res, indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(res, indent=2))
        return
    engine = Engine(db)
    engine.store.has_items()  # LanceDB imported and connected: the build below is the snapshot's own
    import lancedb  # noqa: F401

    rss0, t0, c0 = memory_mb(), time.perf_counter(), time.process_time()
    snap = engine.snapshot()
    build_s, build_cpu_s, rss1 = time.perf_counter() - t0, time.process_time() - c0, memory_mb()
    side = snap.items
    searcher = side.searcher("fused_vec")
    ids = list(side.ids)
    n_items = len(ids)
    print(
        f"{n_items} items; snapshot built in {build_s:.1f} s ({build_cpu_s:.1f} CPU-s), "
        f"{side.nbytes() / n_items:.0f} B/item held, {(rss1 - rss0) * 1e6 / n_items:.0f} B/item resident, "
        f"{'IVF ' + str(searcher.ivf.nlist) + ' lists' if searcher.ivf is not None else 'exact'}",
        flush=True,
    )
    vectors = side.vectors["fused_vec"].astype(np.float32)  # exact baseline over the same (float16) vectors
    index = {i: n for n, i in enumerate(ids)}
    known = sorted(u for u in snap.profiles if u.startswith("bench-user-"))
    if len(known) >= args.users:
        users = known[: args.users]  # made by an earlier run on this database
    else:
        with tempfile.TemporaryDirectory() as tmp:
            users = make_users(engine, args.users, vectors, ids, args.seed, Path(tmp) / "interactions.csv")
    engine.recommend(users[0], args.k)  # warm up (and fold the new profiles in)
    snap = engine.snapshot()
    params = faiss.SearchParametersIVF()
    params.nprobe = NPROBE
    raw_index = searcher.ivf if searcher.ivf is not None else searcher._full32()

    def raw_inputs(user: str) -> tuple[np.ndarray, int]:
        """What ``recommend`` hands the ANN library for ``user``: its interest vectors and the k with over-fetch."""
        taste = snap.taste(snap.profile(user))
        slots = quotas(taste.weights, args.k)
        limit = max(slots) * OVERFETCH + args.k + len(taste.seen)
        return np.ascontiguousarray(taste.directions[: min(args.k, len(taste.weights))]), limit

    def raw_call(queries: np.ndarray, k: int):
        if searcher.ivf is not None:
            return raw_index.search(queries, k, params=params)
        return raw_index.search(queries, k)

    timer = Timer()
    recalls, sim_recalls = [], []
    n_users = len(users)
    for rnd in range(args.rounds):
        for n_user, user in enumerate(users):
            # The raw call searches another user's vectors: each call of the pair reads its own (cold) lists.
            queries, limit = raw_inputs(users[(n_user + n_users // 2) % n_users])
            swap = (n_user + rnd) % 2 == 1
            result, _ = timer.pair(
                ("recommend", partial(engine.recommend, user, args.k)),
                ("raw_ann", partial(raw_call, queries, limit)),
                swap,
            )
            item = ids[(n_user * 7919 + rnd) % n_items]
            other = vectors[index[ids[(n_user * 7919 + rnd + n_items // 2) % n_items]]][None]
            got, _ = timer.pair(
                ("similar", partial(engine.similar, item=item, k=args.k)),
                ("similar_raw", partial(raw_call, other, args.k + 1)),
                swap,
            )
            if rnd:
                continue
            profile = snap.profile(user)
            with threadpool_limits(1):  # one core, like a request (idle BLAS threads would slow the next call)
                best = timer("exact", partial(exact, profile, vectors, index, args.k))
                s = vectors @ vectors[index[item]]
            truth = {ids[i] for i in best}
            recalls.append(len(truth & {r.id for r in result.items}) / max(len(truth), 1))
            s[index[item]] = -np.inf
            sim_truth = {ids[i] for i in np.argpartition(-s, args.k)[: args.k]}
            sim_recalls.append(len(sim_truth & {m.id for m in got}) / args.k)
    # A selective filter (1 in 100 items) and a broad one (1 in 3), on recommend and similar-by-item.
    filtered = {}
    for name, where in (
        ("selective_1pct", "id LIKE '%00'"),
        ("broad_33pct", "id < 's0' OR id LIKE '%1' OR id LIKE '%2' OR id LIKE '%3'"),
    ):
        allow = side.allow(engine.store, where)
        rc, src = [], []
        for n_user, user in enumerate(users):
            got = timer(f"recommend_{name}", partial(engine.recommend, user, args.k, where=where))
            with threadpool_limits(1):
                truth = {ids[i] for i in exact(snap.profile(user), vectors, index, args.k, allow.mask)}
            rc.append(len(truth & {r.id for r in got.items}) / max(len(truth), 1))
            item = ids[(n_user * 104729) % n_items]
            sim = timer(f"similar_{name}", partial(engine.similar, item=item, k=args.k, where=where))
            with threadpool_limits(1):
                s = vectors @ vectors[index[item]]
            s[~allow.mask] = -np.inf
            s[index[item]] = -np.inf
            truth = {ids[i] for i in np.argpartition(-s, args.k)[: args.k]}
            src.append(len(truth & {m.id for m in sim}) / args.k)
        filtered[name] = {
            "rows": len(allow),
            "recommend_ms": timer.report(f"recommend_{name}"),
            "recommend_recall_at_k": round(float(np.mean(rc)), 4),
            "similar_ms": timer.report(f"similar_{name}"),
            "similar_recall_at_k": round(float(np.mean(src)), 4),
        }
    ivf = searcher.ivf
    res = {
        "db": db,
        "items": n_items,
        "users": n_users,
        "rounds": args.rounds,
        "k": args.k,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "snapshot_build_s": round(build_s, 1),
        "snapshot_build_cpu_s": round(build_cpu_s, 1),
        "snapshot_bytes_per_item": round(side.nbytes() / n_items),
        "snapshot_resident_bytes_per_item": round((rss1 - rss0) * 1e6 / n_items),
        "search": f"faiss IVF{ivf.nlist},SQfp16 nprobe {NPROBE}" if ivf is not None else "exact (faiss flat)",
        "recommend_ms": timer.report("recommend"),
        "raw_ann_ms": timer.report("raw_ann"),
        "recommend_over_raw_ann": timer.ratio("recommend", "raw_ann"),
        "exact_numpy_ms": timer.report("exact"),
        "recommend_recall_at_k_vs_exact": round(float(np.mean(recalls)), 4),
        "similar_ms": timer.report("similar"),
        "similar_raw_ann_ms": timer.report("similar_raw"),
        "similar_over_raw_ann": timer.ratio("similar", "similar_raw"),
        "similar_recall_at_k_vs_exact": round(float(np.mean(sim_recalls)), 4),
        "filtered": filtered,
    }
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
