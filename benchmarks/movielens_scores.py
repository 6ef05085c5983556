"""Score matrices of fitted sequence models on MovieLens-100k, and what their sums and slices say.

``fit`` trains one configuration of :mod:`movielens_hybrid` (leave-last-out, early-stopped on
validation) and saves its validation and test score matrices (float16, one row per target user);
``report`` ranks saved matrices as the harness does (all items, train (+ validation) masked, ties by
item index) and prints NDCG@10 of each, of the per-user standardised sums of every subset of the
same configuration's seeds (seed ensembles) and of every pair across configurations, and of each
model by the training popularity of the target item — all without refitting anything. ``--step-back`` (on
both) applies the protocol to the training part instead, so that a lever whose effect the validation split
cannot judge (one that changes which weights the validation picks) is decided on earlier data::

    python benchmarks/movielens_scores.py fit sasrec 0 --set dim=128 --out scores/sas128_s0.npz
    python benchmarks/movielens_scores.py report scores/res_s0.npz scores/res_s1.npz scores/sas_s0.npz

A matrix's name (its file stem) is ``<configuration>_s<seed>``; sums are formed per configuration.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens_hybrid as mh  # noqa: E402

from mmrec.recsys.hybrid import HybridRecommender
from mmrec.recsys.hybrid_blend import CachedScores
from mmrec.recsys.metrics import rank_metrics
from mmrec.recsys.served import standardise
from mmrec.recsys.splits import Split, leave_last_out

#: Bounds of the target items' training interaction counts for the popularity slices.
POPULARITY_EDGES = (0, 20, 60, 150)


def ndcg_per_user(split: Split, stage: str, users: np.ndarray, scores: np.ndarray) -> np.ndarray:
    history, targets, cands = split.stage(stage)
    res = rank_metrics(
        CachedScores(users, scores), history, targets, cands, kmax=10, batch=1024, ties="index", per_user=(10,)
    )
    return np.asarray(res.user_values["ndcg@10"])


def fit(args: argparse.Namespace, split: Split) -> None:
    import torch

    torch.set_num_threads(args.threads)
    cfg = replace(mh.CONFIGS[args.config], seed=args.seed, **mh.parse_overrides(args.set))
    rec = HybridRecommender(cfg)
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    rec.fit(split.train, split.valid)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, np.ndarray] = {}
    for stage in ("valid", "test"):
        history, targets, _ = split.stage(stage)
        users = np.unique(targets.users)
        out[stage] = rec.score(users, history).astype(np.float16)
        out[f"{stage}_users"] = users
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out)
    best_epoch, best = mh.kept_validation(rec, split)
    row = {
        "config": args.config,
        "seed": args.seed,
        "set": args.set,
        "fit_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        "epochs": len(rec.history),
        "best_epoch": best_epoch,
        "valid_ndcg@10": round(best, 4),
        # validation NDCG@10 after each epoch: how fast the lever converges, not only where it ends
        "curve": [round(h["valid_ndcg@10"], 4) for h in rec.history if "valid_ndcg@10" in h],
    }
    print(json.dumps(row), flush=True)


def report(args: argparse.Namespace, split: Split) -> None:
    mats = {p.stem: np.load(p) for p in args.scores}
    groups: dict[str, list[str]] = {}
    for name in mats:
        groups.setdefault(name.rsplit("_s", 1)[0], []).append(name)
    counts = split.train.counts_per_item()
    for stage in ("valid", "test"):
        z = {n: standardise(m[stage]) for n, m in mats.items()}
        users = next(iter(mats.values()))[f"{stage}_users"]
        if any(not np.array_equal(m[f"{stage}_users"], users) for m in mats.values()):
            raise SystemExit("the matrices were saved for different users (another split?)")
        rows = {n: ndcg_per_user(split, stage, users, z[n]) for n in mats}
        for members in groups.values():  # seed ensembles of one configuration
            for r in range(2, len(members) + 1):
                for combo in itertools.combinations(members, r):
                    rows["+".join(combo)] = ndcg_per_user(split, stage, users, sum(z[m] for m in combo))
        for a, b in itertools.combinations(groups, 2):  # one seed of each of two configurations
            for ma, mb in zip(groups[a], groups[b], strict=False):
                rows[f"{ma}+{mb}"] = ndcg_per_user(split, stage, users, z[ma] + z[mb])
        _, targets, _ = split.stage(stage)
        target = dict(zip(targets.users.tolist(), targets.items.tolist(), strict=True))
        bucket = np.digitize([counts[target[int(u)]] for u in users], POPULARITY_EDGES) - 1
        sizes = np.bincount(bucket, minlength=len(POPULARITY_EDGES))
        head = " ".join(f">={e}({s})" for e, s in zip(POPULARITY_EDGES, sizes, strict=True))
        print(f"\n{stage}: NDCG@10, then by the target's training interactions {head}")
        for name, values in rows.items():
            slices = " ".join(f"{values[bucket == i].mean():.4f}" for i in range(len(POPULARITY_EDGES)))
            print(f"  {name:<40} {values.mean():.4f}   {slices}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=mh.movielens.DEFAULT_WORK)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit one configuration and save its score matrices")
    f.add_argument("config", choices=sorted(mh.CONFIGS))
    f.add_argument("seed", type=int)
    f.add_argument("--set", action="append", default=[], help="override a HybridConfig field: name=value")
    f.add_argument("--threads", type=int, default=1)
    f.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report", help="NDCG@10 of saved matrices, their seed ensembles and popularity slices")
    r.add_argument("scores", type=Path, nargs="+")
    for sp in (f, r):
        sp.add_argument(
            "--step-back",
            action="store_true",
            help="the protocol one step back in time: leave-last-out of the training part (its 'test' is each "
            "user's last training interaction), for deciding a lever on data before the real validation split",
        )
    mh.add_vectors_argument(p)
    args = p.parse_args(argv)
    split = leave_last_out(mh.load(args.work, args.item_vectors))
    if args.step_back:
        split = leave_last_out(split.train)
    (fit if args.command == "fit" else report)(args, split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
