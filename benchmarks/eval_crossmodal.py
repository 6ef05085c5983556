"""Cross-modal retrieval quality on labelled catalogs, with held-out items.

Usage::

    python benchmarks/build_eval_catalogs.py            # → /work/bench_data/eval/{openclipart,openmoji,sounds}
    python benchmarks/eval_crossmodal.py --out results.json

For each catalog the items are ingested (incrementally, into ``--work``), split
80/20 by a seeded permutation, and the fusion layer is trained on the 80 %
only. Every metric is computed on the held-out 20 %, ranking among held-out
items only:

* ``text→image R@10`` — a caption as query, searched against the items' image
  vectors in the shared space (``similar --text … --modality image``); a hit is
  the caption's own item in the top 10. ``image→text`` and ``audio→text`` alike.
  Items whose text is identical to the query item's count as hits (the sound
  catalogue has e.g. several "snare drum" samples that no system could tell apart).
* ``image category P@10`` — an item's image as query against the fused vectors
  of the other held-out items (``similar --image … --modality any``): the share
  of the top 10 in the query's category.

Conditions: ``random`` (a random ranking), ``bridge`` (the ConSE bridge with a
plain mean, the ``mean`` fusion layer), ``untrained`` (the attention layer as
initialised) and ``trained`` (after ``mmrec train`` on the training split).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from encoders.base import MODALITIES  # noqa: E402

CATALOGS = {
    "openclipart": [("text", "image"), ("image", "text"), "category:image"],
    "openmoji": [("text", "image"), ("image", "text"), "category:image"],
    "sounds": [("audio", "text"), ("text", "audio"), "category:audio"],
}


def load(engine, catalog_dir: Path):
    """Rows with vectors, captions and categories."""
    cols = ["id", "text", "metadata", "text_vec", "image_vec", "image_scores", "audio_vec", "audio_scores"]
    rows = engine.store.list(limit=None, columns=cols)
    for r in rows:
        meta = json.loads(r["metadata"] or "{}")
        r["category"] = meta.get("category") or r["id"].split("/")[0]
    return rows


def recall_at_k(q: np.ndarray, c: np.ndarray, same: np.ndarray, k: int = 10) -> float:
    """``q`` (N, D) queries, ``c`` (N, D) candidates; hit when a top-k candidate j has same[i, j]."""
    sims = q @ c.T
    top = np.argsort(-sims, axis=1)[:, :k]
    return float(np.mean([same[i, top[i]].any() for i in range(len(q))]))


def category_precision(q: np.ndarray, c: np.ndarray, cats: np.ndarray, k: int = 10) -> float:
    sims = q @ c.T
    np.fill_diagonal(sims, -np.inf)  # the query item itself is excluded, as in `similar --item`
    top = np.argsort(-sims, axis=1)[:, :k]
    return float(np.mean(cats[top] == cats[:, None]))


def evaluate(space, layer, data, rows, tasks, seed: int, random_ranking: bool = False) -> dict[str, float]:
    import torch

    space = space.with_layer(layer, space.version)  # the same bridges, this layer
    n = len(rows)
    texts = np.array([r["text"] or "" for r in rows])
    same_text = (texts[:, None] == texts[None, :]) | np.eye(n, dtype=bool)
    cats = np.array([r["category"] for r in rows])
    rng = np.random.default_rng(seed)
    with torch.inference_mode():
        fused_all, tokens, _ = space.fuse(data)
    out = {}
    for task in tasks:
        if isinstance(task, tuple):
            a, b = task
            ia, ib = MODALITIES.index(a), MODALITIES.index(b)
            qa, cb = tokens[:, ia], tokens[:, ib]
            if random_ranking:
                qa, cb = rng.normal(size=qa.shape), rng.normal(size=cb.shape)
            out[f"{a}→{b} R@10"] = recall_at_k(qa, cb, same_text)
        else:
            m = task.split(":")[1]
            only = data.subset(np.arange(n))
            only.mask = np.zeros_like(only.mask)
            only.mask[:, MODALITIES.index(m)] = True
            only.bridged = only.bridged * only.mask[:, :, None]
            with torch.inference_mode():
                q_fused, _, _ = space.fuse(only)
            q, c = q_fused, fused_all
            if random_ranking:
                q, c = rng.normal(size=q.shape), rng.normal(size=c.shape)
            out[f"{m} category P@10"] = category_precision(q, c, cats)
    return out


def run_catalog(name: str, catalog_dir: Path, work: Path, seed: int, epochs: int) -> dict:
    from fusion.layers import create_fusion
    from fusion.train import TrainConfig, train_fusion
    from mmrec import Engine
    from mmrec.space import SharedSpace

    engine = Engine(str(work / f"{name}.db"))
    t0 = time.perf_counter()
    report = engine.ingest(catalog_dir)
    ingest_s = time.perf_counter() - t0
    rows = load(engine, catalog_dir)
    space = engine.space()
    data = space.inputs_from_rows(rows)
    perm = np.random.default_rng(seed).permutation(len(rows))
    n_test = len(rows) // 5
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    test_rows = [rows[i] for i in test_idx]
    test_data = data.subset(test_idx)
    tasks = CATALOGS[name]

    config = SharedSpace.fusion_config(engine.encoders())
    untrained = create_fusion("attention", config).eval()
    t0 = time.perf_counter()
    result = train_fusion(untrained, data.subset(train_idx), TrainConfig(epochs=epochs, seed=seed))
    train_s = time.perf_counter() - t0
    results = {
        "random": evaluate(space, untrained, test_data, test_rows, tasks, seed, random_ranking=True),
        "bridge": evaluate(space, create_fusion("mean", config), test_data, test_rows, tasks, seed),
        "untrained": evaluate(space, untrained, test_data, test_rows, tasks, seed),
        "trained": evaluate(space, result.layer, test_data, test_rows, tasks, seed),
    }
    return {
        "catalog": name,
        "items": len(rows),
        "train_items": len(train_idx),
        "test_items": n_test,
        "categories": len({r["category"] for r in rows}),
        "ingest_seconds": round(ingest_s, 1),
        "ingest_added": report.added,
        "train_seconds": round(train_s, 1),
        "train": result.summary(),
        "results": results,
    }


def markdown(all_results: list[dict]) -> str:
    lines = []
    for res in all_results:
        metrics = list(next(iter(res["results"].values())))
        lines.append(
            f"\n**{res['catalog']}** — {res['items']} items, {res['categories']} categories; "
            f"trained on {res['train_items']}, evaluated on {res['test_items']} held-out items; "
            f"training {res['train_seconds']} s ({res['train']['epochs']} epochs)\n"
        )
        lines.append("| condition | " + " | ".join(metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        for cond, vals in res["results"].items():
            lines.append(f"| {cond} | " + " | ".join(f"{vals[m]:.3f}" for m in metrics) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/work/bench_data/eval", help="folder with the labelled catalogs")
    ap.add_argument(
        "--work", default="/work/bench_data/eval_dbs", help="where the databases go (reused: ingest is incremental)"
    )
    ap.add_argument("--only", action="append", choices=sorted(CATALOGS), help="evaluate only these catalogs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=1, help="repeat with this many split seeds and report the median")
    ap.add_argument("--out", help="write JSON results here")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    all_results = []
    for name in args.only or list(CATALOGS):
        catalog_dir = Path(args.root) / name
        if not catalog_dir.is_dir():
            print(f"skipping {name}: {catalog_dir} not found (run benchmarks/build_eval_catalogs.py)", flush=True)
            continue
        runs = [run_catalog(name, catalog_dir, work, args.seed + s, args.epochs) for s in range(args.seeds)]
        res = runs[0]
        if len(runs) > 1:
            for cond in res["results"]:
                for metric in res["results"][cond]:
                    res["results"][cond][metric] = statistics.median(r["results"][cond][metric] for r in runs)
            res["train_seconds"] = statistics.median(r["train_seconds"] for r in runs)
        all_results.append(res)
        print(markdown([res]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(all_results, indent=2))


if __name__ == "__main__":
    main()
