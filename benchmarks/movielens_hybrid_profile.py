"""Where one epoch of the hybrid's training goes: torch profiler + cProfile of a short fit on ML-100k.

Trains ``--epochs`` epochs (leave-last-out train part, no validation during the fit), then runs one
validation pass, under :mod:`torch.profiler` (operator table by self CPU time) and :mod:`cProfile`
(Python call table by cumulative time). State the machine and the load average with the figures.

    python benchmarks/movielens_hybrid_profile.py --threads 2 --epochs 1
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens  # noqa: E402
import movielens_hybrid  # noqa: E402

from mmrec.recsys.splits import leave_last_out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=movielens.DEFAULT_WORK)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--set", action="append", default=[], help="HybridConfig field=value (ints/floats)")
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--tool", choices=("torch", "cprofile", "both"), default="both")
    args = p.parse_args(argv)
    import torch
    from torch.profiler import ProfilerActivity, profile

    from mmrec.recsys.hybrid import HybridConfig, HybridRecommender

    if args.threads:
        torch.set_num_threads(args.threads)
    kw = {}
    for item in args.set:
        k, v = item.split("=", 1)
        kw[k] = float(v) if "." in v or "e" in v else int(v)
    split = leave_last_out(movielens_hybrid.load(args.work))
    cfg = HybridConfig(**kw, epochs=args.epochs, eval_every=args.epochs, patience=10, device="cpu")

    def run() -> dict[str, float]:
        rec = HybridRecommender(cfg)
        t0, c0 = time.perf_counter(), time.process_time()
        rec.fit(split.train, None)
        t1, c1 = time.perf_counter(), time.process_time()
        rec._validation_ndcg(split.train, split.valid)
        t2, c2 = time.perf_counter(), time.process_time()
        return {"fit_s": t1 - t0, "fit_cpu_s": c1 - c0, "valid_s": t2 - t1, "valid_cpu_s": c2 - c1}

    run()  # warm-up: allocator, kernels, lazy imports
    meta = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "load": os.getloadavg()[0], **kw}
    if args.tool in ("torch", "both"):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            times = run()
        print(json.dumps({"tool": "torch", **meta, **{k: round(v, 2) for k, v in times.items()}}))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if args.tool in ("cprofile", "both"):
        pr = cProfile.Profile()
        pr.enable()
        times = run()
        pr.disable()
        print(json.dumps({"tool": "cprofile", **meta, **{k: round(v, 2) for k, v in times.items()}}))
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(args.rows)
        print(s.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
