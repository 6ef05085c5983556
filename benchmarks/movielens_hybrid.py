"""The hybrid on MovieLens-100k leave-last-out: configurations side by side, interleaved, one process.

Each configuration is trained on the train part (early stopping on validation) and scored on the
test part (train + validation masked, all 1,682 items ranked, ties by item index). Configurations
run interleaved A B A B … over ``--seeds``, so that machine noise falls on all of them alike;
results are medians over seeds with the per-user bootstrap interval of the first seed.

    python benchmarks/movielens_hybrid.py --configs previous,residual,sasrec --seeds 0,1,2

The data are read from the database that ``benchmarks/movielens.py`` builds (cached as
``ml100k_cache.npz`` beside it, so repeated runs skip LanceDB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens  # noqa: E402

from mmrec.names import item_vector_columns
from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig, HybridRecommender
from mmrec.recsys.hybrid_ensemble import HybridEnsemble
from mmrec.recsys.metrics import rank_metrics
from mmrec.recsys.splits import leave_last_out

#: The configuration of the release before last (gated item tower, 60 epochs, dropout 0.3), the last one
#: (residual tower, 50 positions, 128 windows a step, attention dropout, lr 1e-3, validated every 5 epochs)
#: and the new defaults (window from the history lengths, 2,048 positions a step, lr 2e-3, every epoch).
CONFIGS: dict[str, HybridConfig] = {
    "previous": HybridConfig(
        item_tower="gated", max_len=50, batch_tokens=6400, attn_dropout=0.3, lr=1e-3, eval_every=5, patience=3
    ),
    "last": HybridConfig(
        max_len=50, batch_tokens=6400, attn_dropout=0.3, lr=1e-3, eval_every=5, patience=3, id_lr_scale=1.0
    ),
    "residual": HybridConfig(members=1),
    # mmrec train --members 2: two fits side by side, their standardised scores averaged
    "ensemble": HybridConfig(members=2),
    "sasrec": HybridConfig(item_tower="id"),
}


def load(work: Path, vector_column: str = "fused_vec") -> InteractionData:
    """ML-100k as an InteractionData (every rating a positive), from the cache or the database.

    ``vector_column`` is the stored item vector the models get as content (``fused_vec``, or e.g. ``text_vec``,
    the raw MiniLM vector that ``mmrec train`` chooses on validation for this text-only catalog); one cache each.
    """
    cache = work / ("ml100k_cache.npz" if vector_column == "fused_vec" else f"ml100k_cache_{vector_column}.npz")
    if not cache.is_file():
        from mmrec.engine import Engine
        from mmrec.recsys.data import interaction_data

        db = work / "db"
        if not (db / "interactions.lance").exists():
            movielens.build(work)
        engine = Engine(db)
        d = interaction_data(engine.store, engine.users(), vector_column=vector_column)
        np.savez(
            cache,
            users=d.users,
            items=d.items,
            ts=d.ts,
            weights=d.weights,
            vec=d.item_vectors,
            uids=np.array(d.user_ids),
            iids=np.array(d.item_ids),
        )
    z = np.load(cache)
    return InteractionData(
        [str(x) for x in z["uids"]],
        [str(x) for x in z["iids"]],
        z["users"],
        z["items"],
        z["ts"],
        np.ones(len(z["users"]), np.float32),
        z["vec"],
    )


def add_vectors_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--item-vectors",
        default="fused_vec",
        choices=item_vector_columns(),
        help="stored item vector column the models get as content (default fused_vec)",
    )


def parse_overrides(pairs: list[str]) -> dict:
    """``--set name=value`` pairs → HybridConfig field values, typed by the field's default."""
    out: dict = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        default = getattr(HybridConfig(), k)  # an unknown name raises AttributeError
        if v == "None":
            out[k] = None
        elif isinstance(default, str):
            out[k] = v
        elif isinstance(default, bool):
            if v.lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise SystemExit(f"--set {k}={v}: a boolean field takes true/false (1/0, yes/no)")
            out[k] = v.lower() in ("1", "true", "yes")
        else:  # numbers; a field whose default is None (max_len, time_budget_s) takes an int or a float
            out[k] = type(default)(v) if default is not None else (int(v) if v.isdigit() else float(v))
    return out


def kept_validation(rec: HybridRecommender, split) -> tuple[int, float]:
    """``(best epoch, validation NDCG@10 of the weights the fit kept)``: the average of the best epochs' weights
    (``HybridConfig.average_best``; measured once more, as the fit does not), or the best epoch's (its early stop
    may judge a smoothed score)."""
    if rec.averaged_epochs:
        return rec.best_epoch, rec._validation_ndcg(split.train, split.valid)
    kept = {int(h["epoch"]): h["valid_ndcg@10"] for h in rec.history}
    if rec.best_epoch in kept:
        return rec.best_epoch, kept[rec.best_epoch]
    return 0, max(kept.values(), default=float("nan"))


def bootstrap(per_user: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean over users."""
    rng = np.random.default_rng(seed)
    means = per_user[rng.integers(0, len(per_user), (n, len(per_user)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_one(name: str, config: HybridConfig, split, seed: int, log=None) -> dict:
    """Fit one configuration on the split's train part and measure it on test."""
    cfg = replace(config, seed=seed)
    rec: HybridRecommender | HybridEnsemble = HybridEnsemble(cfg) if cfg.members > 1 else HybridRecommender(cfg)
    t0 = time.perf_counter()
    stamp = (lambda line: log(f"{name} s{seed} {time.perf_counter() - t0:6.1f}s {line}")) if log else None
    rec.fit(split.train, split.valid, log=stamp)
    fit_s = time.perf_counter() - t0
    history, targets, cands = split.stage("test")
    res = rank_metrics(rec, history, targets, cands, kmax=20, batch=1024, ties="index", per_user=(10,))
    if isinstance(rec, HybridEnsemble):  # the ensemble's own validation; epochs and curve: member 0's
        best_epoch, best = rec.best_epoch, rank_metrics(rec, split.train, split.valid, ties="index").at("ndcg", 10)
    else:
        best_epoch, best = kept_validation(rec, split)
    out = {
        "config": name,
        "seed": seed,
        "fit_seconds": round(fit_s, 1),
        "epochs": rec.history[-1]["epoch"] if rec.history else 0,
        "valid_ndcg@10": round(best, 4),
        "test_ndcg@10": round(res.at("ndcg", 10), 4),
        "test_hit@10": round(res.at("hit", 10), 4),
        "test_ndcg@20": round(res.at("ndcg", 20), 4),
    }
    # The validation curve, to compare configurations over the same budget (epochs, not only the best).
    out["valid_curve"] = [[int(h["epoch"]), round(h["valid_ndcg@10"], 4)] for h in rec.history]
    out["best_epoch"] = int(best_epoch)
    if isinstance(rec, HybridEnsemble):
        out["members"] = rec.member_epochs
    if "ndcg@10" in res.user_values:
        out["test_ndcg@10_ci95"] = [round(x, 4) for x in bootstrap(np.asarray(res.user_values["ndcg@10"]))]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=movielens.DEFAULT_WORK)
    p.add_argument("--configs", default="previous,residual,sasrec", help=f"comma-separated from {', '.join(CONFIGS)}")
    p.add_argument("--seeds", default="0")
    p.add_argument("--set", action="append", default=[], help="override a field of every config: name=value")
    p.add_argument("--out", type=Path)
    add_vectors_argument(p)
    args = p.parse_args(argv)
    data = load(args.work, args.item_vectors)
    split = leave_last_out(data)
    overrides = parse_overrides(args.set)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in names:  # interleaved: A B A B …
            cfg = replace(CONFIGS[name], **overrides) if name != "previous" else CONFIGS[name]
            row = run_one(name, cfg, split, seed)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nmedians over seeds:")
    summary = {}
    for name in names:
        mine = [r for r in rows if r["config"] == name]
        med = {
            k: float(np.median([r[k] for r in mine]))
            for k in ("fit_seconds", "valid_ndcg@10", "test_ndcg@10", "test_hit@10")
        }
        summary[name] = {**med, "config": asdict(replace(CONFIGS[name], **(overrides if name != "previous" else {})))}
        print(
            f"  {name:<10} "
            + "  ".join(f"{k} {v:.4f}" if "ndcg" in k or "hit" in k else f"{k} {v:.1f}" for k, v in med.items())
        )
    meta = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "runs": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
