"""Which ANN library serves mmrec's vectors: faiss-cpu, hnswlib and usearch on the same clustered 384-d vectors.

Usage::

    python benchmarks/ann_choice.py --items 100000 --queries 300

The vectors are the synthetic clustered unit vectors of ``recommend_latency.py`` (200 clusters), the
queries profile-like directions (the normalised mean of a few items of one cluster). Every library gets
the same HNSW graph parameters (M=32, efConstruction=80) and is queried one vector per call (how a
request searches), interleaved query by query with exact NumPy (float32 matrix-vector product), so a
shared machine's drift hits all alike. Reported: build seconds, memory per item, median/p99 latency and
recall@10 against exact, at the ``ef`` values listed; plus faiss's filtered search (an allow-list as an
``IDSelectorBitmap`` inside the graph walk), which the other two only offer as a per-node Python callback
(hnswlib) or not at all (usearch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from recommend_latency import synthetic_vectors  # noqa: E402


def p99(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def queries_for(vectors: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        seed_item = vectors[rng.integers(0, len(vectors))]
        near = np.argsort(-(vectors[: min(len(vectors), 20000)] @ seed_item))[:8]
        q = vectors[near].mean(0)
        out.append(q / np.linalg.norm(q))
    return np.stack(out).astype(np.float32)


def compression(args: argparse.Namespace) -> None:
    """Recall@k of exact search over compressed vectors against float32, and bytes per vector."""
    import faiss

    x = synthetic_vectors(args.items)
    n, d = x.shape
    qs = queries_for(x, args.queries, 1)
    truth = [set(np.argpartition(-(x @ q), args.k)[: args.k].tolist()) for q in qs]
    scale = np.abs(x).max(0) / 127.0  # int8, one symmetric scale per dimension
    forms = {
        "float32": (x, d * 4),
        "float16": (x.astype(np.float16).astype(np.float32), d * 2),
        "int8": ((np.round(x / scale).astype(np.int8).astype(np.float32) * scale), d + 0),
    }
    res: dict = {"items": n, "dim": d, "k": args.k, "forms": {}}
    for name, (v, nbytes) in forms.items():
        rc = [
            len(t & set(np.argpartition(-(v @ q), args.k)[: args.k].tolist())) / args.k
            for q, t in zip(qs, truth, strict=True)
        ]
        res["forms"][name] = {"bytes_per_vector": nbytes, "recall@10": round(float(np.mean(rc)), 4)}
    for m in (48, 96):  # product quantisation (faiss IndexPQ, 8 bits per sub-vector), with and without re-ranking
        pq = faiss.IndexPQ(d, m, 8, faiss.METRIC_INNER_PRODUCT)
        pq.train(x[np.random.default_rng(0).choice(n, min(n, 20000), replace=False)])
        pq.add(x)
        _, ids = pq.search(qs, args.k)
        rc = [len(t & set(i.tolist())) / args.k for i, t in zip(ids, truth, strict=True)]
        _, wide = pq.search(qs, args.k * 10)
        rr = []
        for q, cand, t in zip(qs, wide, truth, strict=True):  # refine x10 with the float16 vectors
            s = forms["float16"][0][cand] @ q
            rr.append(len(t & set(cand[np.argsort(-s)[: args.k]].tolist())) / args.k)
        res["forms"][f"PQ{m}x8"] = {"bytes_per_vector": m, "recall@10": round(float(np.mean(rc)), 4)}
        res["forms"][f"PQ{m}x8 + float16 refine x10"] = {
            "bytes_per_vector": m + 2 * d,
            "recall@10": round(float(np.mean(rr)), 4),
        }
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))


def ivf_grid(args: argparse.Namespace) -> None:
    """faiss IVF sizing: lists per square root of n, training vectors per list, Flat or SQfp16 storage.

    Per configuration: the k-means training and the add in CPU seconds (``process_time``, both cores), then
    at nprobe 8/16/32 the median latency of one call with 2 queries and k = 50 (what ``recommend`` asks for a
    two-interest profile, over-fetch included) and recall@k of its first ``k`` against exact search over the
    same float16-rounded vectors. Chose 2 lists per root, 20 per list, SQfp16 (``mmrec/recsys/retrieval.py``).
    """
    import faiss

    x = synthetic_vectors(args.items).astype(np.float16).astype(np.float32)
    n, d = x.shape
    qs = queries_for(x, args.queries, 1)
    truth = [set(np.argpartition(-(x @ q), args.k)[: args.k].tolist()) for q in qs]
    res: dict = {"items": n, "k": args.k, "configs": []}
    for per_root, per_list, storage in [(1, 40, "Flat"), (2, 20, "Flat"), (2, 20, "SQfp16"), (4, 40, "Flat")]:
        nlist = int(per_root * np.sqrt(n))
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index = faiss.index_factory(d, f"IVF{nlist},{storage}", faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        index.cp.min_points_per_centroid = per_list
        rng = np.random.default_rng(0)
        sample = x if n <= per_list * nlist else x[np.sort(rng.choice(n, per_list * nlist, replace=False))]
        c0 = time.process_time()
        index.train(sample)
        c1 = time.process_time()
        index.add(x)
        c2 = time.process_time()
        faiss.omp_set_num_threads(1)
        for nprobe in (8, 16, 32):
            params = faiss.SearchParametersIVF()
            params.nprobe = nprobe
            ts, rc = [], []
            for i in range(0, len(qs) - 1, 2):
                t0 = time.perf_counter()
                _, ids = index.search(qs[i : i + 2], 50, params=params)
                ts.append((time.perf_counter() - t0) * 1000)
                rc += [len(truth[i + j] & set(ids[j][: args.k].tolist())) / args.k for j in range(2)]
            row = {
                "index": f"IVF{nlist},{storage}",
                "train_vectors": len(sample),
                "train_cpu_s": round(c1 - c0, 2),
                "add_cpu_s": round(c2 - c1, 2),
                "nprobe": nprobe,
                "search_ms_median": round(statistics.median(ts), 3),
                "recall_at_k": round(float(np.mean(rc)), 4),
            }
            print(json.dumps(row), flush=True)
            res["configs"].append(row)
    res["load_average"] = [round(v, 2) for v in os.getloadavg()]
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--libs", default="faiss,faiss-ivf,hnswlib,usearch", help="comma-separated subset")
    ap.add_argument("--compression", action="store_true", help="recall and memory of float32/float16/int8/PQ only")
    ap.add_argument(
        "--ivf-grid", action="store_true", help="faiss IVF lists/training/storage: build CPU-s, latency, recall"
    )
    ap.add_argument("--out")
    args = ap.parse_args()
    chosen = set(args.libs.split(","))
    if args.ivf_grid:
        ivf_grid(args)
        return
    if args.compression:
        return compression(args)
    import faiss

    # hnswlib and usearch are compared here only (pip install hnswlib usearch); mmrec itself needs faiss-cpu.
    hnswlib = __import__("hnswlib") if "hnswlib" in chosen else None
    Index = __import__("usearch.index", fromlist=["Index"]).Index if "usearch" in chosen else None

    faiss.omp_set_num_threads(1)  # one query per call: a request's search, not a batch job
    x = synthetic_vectors(args.items)
    n, d = x.shape
    qs = queries_for(x, args.queries, 1)
    truth = [set(np.argpartition(-(x @ q), args.k)[: args.k].tolist()) for q in qs]
    res: dict = {"items": n, "dim": d, "queries": len(qs), "k": args.k, "libraries": {}}

    builds = {}
    faiss.omp_set_num_threads(2)  # builds use both cores; queries one
    fi = hi = ui = iv = None
    if "faiss" in chosen:
        t0 = time.perf_counter()
        fi = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        fi.hnsw.efConstruction = 80
        fi.add(x)
        builds["faiss"] = time.perf_counter() - t0
    if "faiss-ivf" in chosen:
        # IVF-Flat, lists ≈ 4·√n (trained on at most 64 lists' worth of samples each): builds in seconds,
        # takes appends and removals in place, and filters with the same IDSelector.
        t0 = time.perf_counter()
        nlist = max(1, int(4 * np.sqrt(n)))
        iv = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = x[np.random.default_rng(3).choice(n, min(n, 64 * nlist), replace=False)]
        iv.train(sample)
        iv.add(x)
        builds["faiss-ivf"] = time.perf_counter() - t0
    if "hnswlib" in chosen:
        t0 = time.perf_counter()
        hi = hnswlib.Index(space="ip", dim=d)
        hi.init_index(max_elements=n, M=32, ef_construction=80)
        hi.add_items(x, np.arange(n), num_threads=2)
        builds["hnswlib"] = time.perf_counter() - t0
    if "usearch" in chosen:
        t0 = time.perf_counter()
        ui = Index(ndim=d, metric="ip", dtype="f32", connectivity=32, expansion_add=80)
        ui.add(np.arange(n), x, threads=2)
        builds["usearch"] = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)
    print({k: round(v, 1) for k, v in builds.items()}, flush=True)

    def ivf_search(q, ef, params=None):
        p = params or faiss.SearchParametersIVF()
        p.nprobe = ef // 4  # ef 32/64/128 -> 8/16/32 lists
        return iv.search(q[None], args.k, params=p)[1][0]

    def faiss_search(q, ef, params=None):
        p = params or faiss.SearchParametersHNSW()
        p.efSearch = ef
        return fi.search(q[None], args.k, params=p)[1][0]

    def hnsw_search(q, ef):
        hi.set_ef(ef)
        return hi.knn_query(q, args.k, num_threads=1)[0][0]

    def usearch_search(q, ef):
        ui.expansion_search = ef
        return ui.search(q, args.k, threads=1).keys

    def exact(q):
        s = x @ q
        return np.argpartition(-s, args.k)[: args.k]

    libs = {"faiss": faiss_search, "faiss-ivf": ivf_search, "hnswlib": hnsw_search, "usearch": usearch_search}
    libs = {k: v for k, v in libs.items() if k in chosen}
    for ef in (32, 64, 128):
        times: dict[str, list[float]] = {name: [] for name in [*libs, "exact"]}
        recall: dict[str, list[float]] = {name: [] for name in libs}
        for q, t in zip(qs, truth, strict=True):
            for name, fn in libs.items():
                t0 = time.perf_counter()
                got = fn(q, ef)
                times[name].append((time.perf_counter() - t0) * 1000)
                recall[name].append(len(t & {int(i) for i in got}) / args.k)
            t0 = time.perf_counter()
            exact(q)
            times["exact"].append((time.perf_counter() - t0) * 1000)
        for name in libs:
            res["libraries"].setdefault(name, {"build_s": round(builds[name], 1)})[f"ef{ef}"] = {
                "median_ms": round(statistics.median(times[name]), 3),
                "p99_ms": round(p99(times[name]), 3),
                "recall@10": round(float(np.mean(recall[name])), 4),
            }
        res.setdefault("exact_numpy_ms", {"median": round(statistics.median(times["exact"]), 3)})
        print(ef, json.dumps({k: v[f"ef{ef}"] for k, v in res["libraries"].items()}), flush=True)

    # Filtered search (faiss): allow-lists of 30 % and 2 % of the items.
    rng = np.random.default_rng(2)
    for share in (0.3, 0.02) if chosen & {"faiss", "faiss-ivf"} else ():
        allowed = rng.random(n) < share
        bits = np.packbits(allowed, bitorder="little")
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        use_ivf = "faiss-ivf" in chosen
        params = faiss.SearchParametersIVF(sel=sel) if use_ivf else faiss.SearchParametersHNSW(sel=sel)
        idx = np.flatnonzero(allowed)
        sub = x[idx]
        tf, te, rc = [], [], []
        for q in qs:
            t0 = time.perf_counter()
            got = ivf_search(q, 128, params) if use_ivf else faiss_search(q, 128, params)
            tf.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            s = sub @ q
            best = idx[np.argpartition(-s, args.k)[: args.k]]
            te.append((time.perf_counter() - t0) * 1000)
            rc.append(len(set(best.tolist()) & {int(i) for i in got}) / args.k)
        res[f"{'faiss-ivf' if use_ivf else 'faiss'}_filtered_{share}"] = {
            "median_ms": round(statistics.median(tf), 3),
            "recall@10": round(float(np.mean(rc)), 4),
            "exact_over_allow_list_ms": round(statistics.median(te), 3),
        }
        print(share, {k: v for k, v in res.items() if k.endswith(f"filtered_{share}")}, flush=True)
    res["bytes_per_item"] = {
        "float32 vector": d * 4,
        "faiss HNSW32 graph (approx.)": 32 * 2 * 4 + 8,
    }
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
