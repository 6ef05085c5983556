"""Rating prediction on MovieLens-100k: random 5-fold cross-validation, MAE / MSE / RMSE per model.

The data is extracted at run time from the ``recbole==1.2.1`` wheel (see ``benchmarks/movielens.py``;
never committed) and imported as star ratings (event ``rating``) into ``--work/db-ratings``, whose
fused item vectors (MiniLM over "Title (year). Genres: …") are the hybrid's content input. The
evaluation is exactly ``mmrec evaluate --task rating`` (:mod:`mmrec.recsys.rating_eval`): seeded
folds, every model fitted on 4 folds and tested on the fifth, RMSE as mean ± std over folds and a
95 % bootstrap interval over users of the pooled out-of-fold predictions.

    python benchmarks/movielens_rating.py                       # all models, seed 0
    python benchmarks/movielens_rating.py --models svd,hybrid --seeds 0,1,2 --json out.json

Anchors (Surprise on ML-100k, 5-fold): SVD RMSE 0.934–0.937 / MAE 0.738, SVD++ ≈ 0.92,
BaselineOnly 0.944; published neural models ≈ 0.89.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens  # noqa: E402 - the sibling benchmark that builds the database

from mmrec.engine import Engine  # noqa: E402
from mmrec.recsys.rating_eval import format_rating_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=movielens.DEFAULT_WORK, help="data and database folder")
    p.add_argument("--models", default=None, help="comma-separated rating models (default all)")
    p.add_argument("--seeds", default="0", help="comma-separated fold/model seeds (default 0)")
    p.add_argument("--json", type=Path, help="write every figure here")
    args = p.parse_args(argv)
    db = movielens.build(args.work, events="rating")
    engine = Engine(db)
    models = args.models.split(",") if args.models else None
    runs = {}
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; python {platform.python_version()}")
    for seed in (int(s) for s in args.seeds.split(",")):
        t0 = time.perf_counter()
        res = engine.evaluate(models=models, seed=seed, task="rating", log=lambda line: print(line, flush=True))
        res["seconds"] = round(time.perf_counter() - t0, 1)
        runs[seed] = res
        print(f"\n{res['protocol']}: {res['ratings']} ratings ({res['seconds']} s)")
        print(format_rating_table(res), flush=True)
    if len(runs) > 1:
        print("\nRMSE over seeds (mean of the per-seed 5-fold means, min–max):")
        for name in next(iter(runs.values()))["models"]:
            vals = [r["models"][name]["rmse"] for r in runs.values()]
            print(f"  {name}: {sum(vals) / len(vals):.4f} ({min(vals):.4f}–{max(vals):.4f})")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
