"""Does "what is popular right now" add to the hybrid? A windowed-popularity blend part, on saved score matrices.

For each target user, every item's positive interactions in the ``W`` days before the user's newest history
event (the user's "now"; all of the history when ``W`` is 0) — the trending items at that moment, with no
look past it — as ``log(1 + count)``; alone, and added to the hybrid's per-user standardised scores as
``z(hybrid) + beta * z(popularity)``. Validation decides; test is printed for the record. The matrices are
``movielens_scores.py fit`` outputs (leave-last-out, the same split)::

    python benchmarks/movielens_trend.py scores/ref_s0.npz scores/ref_s1.npz scores/ref_s2.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens_hybrid as mh  # noqa: E402
import movielens_scores as ms  # noqa: E402

from mmrec.recsys.data import InteractionData  # noqa: E402
from mmrec.recsys.served import standardise  # noqa: E402
from mmrec.recsys.splits import leave_last_out  # noqa: E402

DAY = 86_400
WINDOWS_DAYS = (1, 3, 7, 14, 30, 90, 0)
BETAS = (0.1, 0.25, 0.5)


def windowed_popularity(history: InteractionData, users: np.ndarray, window_s: int) -> np.ndarray:
    """``(len(users), n_items)`` ``log(1 + positives in the window before each user's newest event)``."""
    pos = history.weights > 0
    items, ts, owners = history.items[pos], history.ts[pos], history.users[pos]
    order = np.lexsort((ts, items))
    items_sorted, ts_sorted = items[order], ts[order]
    starts = np.searchsorted(items_sorted, np.arange(history.n_items))
    ends = np.searchsorted(items_sorted, np.arange(history.n_items), side="right")
    now = np.full(history.n_users, -1, np.int64)
    np.maximum.at(now, owners, ts)
    at = now[users]
    out = np.zeros((len(users), history.n_items), np.float32)
    for j in range(history.n_items):
        times = ts_sorted[starts[j] : ends[j]]
        if len(times):
            hi = np.searchsorted(times, at, side="right")
            lo = np.searchsorted(times, at - window_s, side="left") if window_s else 0
            out[:, j] = hi - lo
    return np.log1p(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=mh.movielens.DEFAULT_WORK)
    p.add_argument("--item-vectors", default="text_vec")
    p.add_argument("scores", type=Path, nargs="+")
    args = p.parse_args(argv)
    split = leave_last_out(mh.load(args.work, args.item_vectors))
    for stage in ("valid", "test"):
        history, _, _ = split.stage(stage)
        mats = {f.stem: np.load(f) for f in args.scores}
        users = next(iter(mats.values()))[f"{stage}_users"]
        pops = {w: windowed_popularity(history, users, w * DAY) for w in WINDOWS_DAYS}
        for w, pop in pops.items():
            print(
                f"{stage} popularity, window {w or 'all'} d, alone: {ms.ndcg_per_user(split, stage, users, pop).mean():.4f}"
            )
        for name, m in mats.items():
            z = standardise(m[stage].astype(np.float32))
            cells = [f"{stage} {name} alone {ms.ndcg_per_user(split, stage, users, z).mean():.4f}"]
            for w, pop in pops.items():
                zp = standardise(pop)
                for beta in BETAS:
                    value = ms.ndcg_per_user(split, stage, users, z + beta * zp).mean()
                    cells.append(f"W{w or 'all'}/b{beta} {value:.4f}")
            print("  ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
