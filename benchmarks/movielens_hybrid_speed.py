"""Training speed of the hybrid, this version against a previous one, interleaved in one process.

The previous ``mmrec/recsys/hybrid.py`` is read from git (``--rev``, default ``HEAD``) and imported
as a module of its own, so both versions train on the same data in the same process, epoch for
epoch, alternating A B A B; the figures are medians over ``--rounds`` (seconds per training epoch
and per validation pass, wall and CPU: on a shared machine the process's CPU time, user + sys, and the
ratio of the two versions measured side by side are the figures to compare). Machine: state it with the
result (``os.cpu_count()``; the load average is printed with every measurement).

    python benchmarks/movielens_hybrid_speed.py --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens  # noqa: E402
import movielens_hybrid  # noqa: E402

from mmrec.recsys.splits import leave_last_out

ROOT = Path(__file__).resolve().parent.parent


def previous_module(rev: str):
    """The hybrid module as it was at git revision ``rev``, imported under another name."""
    src = subprocess.run(
        ["git", "show", f"{rev}:mmrec/recsys/hybrid.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(f"/tmp/mmrec_hybrid_{rev.replace('/', '_')}.py")
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("mmrec_hybrid_previous", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def epoch_seconds(module, split, config_kw: dict, epochs: int) -> dict[str, float]:
    """Wall and CPU seconds per training epoch and per validation pass of one short fit."""
    cfg = module.HybridConfig(**config_kw, epochs=epochs, eval_every=epochs, patience=10, device="cpu")
    rec = module.HybridRecommender(cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    rec.fit(split.train, None)
    t1, c1 = time.perf_counter(), time.process_time()
    rec._validation_ndcg(split.train, split.valid)
    t2, c2 = time.perf_counter(), time.process_time()
    return {
        "train_epoch_s": round((t1 - t0) / epochs, 2),
        "train_epoch_cpu_s": round((c1 - c0) / epochs, 2),
        "validation_s": round(t2 - t1, 2),
        "validation_cpu_s": round(c2 - c1, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=movielens.DEFAULT_WORK)
    p.add_argument("--rev", default="HEAD")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1, help="training epochs per measurement")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="an extra run of the current version, NAME:field=value,field=value (e.g. bt6144:batch_tokens=6144)",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import mmrec.recsys.hybrid as current

    previous = previous_module(args.rev)
    split = leave_last_out(movielens_hybrid.load(args.work))
    # Each version with its own defaults, so the ratio is what a user gets; variants change fields
    # of the current version's config.
    versions = [("previous", previous, {}), ("current", current, {})]
    for spec in args.variant:
        name, _, fields = spec.partition(":")
        # typed by each field's default (numbers, booleans, strings), as movielens_hybrid.py --set does
        kw = movielens_hybrid.parse_overrides(list(filter(None, fields.split(","))))
        versions.append((name, current, kw))
    runs: dict[str, list] = {name: [] for name, _, _ in versions}
    for r in range(args.rounds):
        for name, mod, kw in versions:
            runs[name].append({**epoch_seconds(mod, split, kw, args.epochs), "load": round(os.getloadavg()[0], 1)})
            print(json.dumps({"round": r, "version": name, **runs[name][-1]}), flush=True)
    keys = ("train_epoch_s", "train_epoch_cpu_s", "validation_s", "validation_cpu_s")
    summary = {n: {k: float(np.median([x[k] for x in v])) for k in keys} for n, v in runs.items()}
    ratio = {
        f"previous / {n}": {
            k: round(summary["previous"][k] / summary[n][k], 2) for k in ("train_epoch_s", "train_epoch_cpu_s")
        }
        for n in runs
        if n != "previous"
    }
    print(json.dumps({"median": summary, "ratio": ratio, "threads": torch.get_num_threads()}))
    if args.out:
        meta = {"cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "rev": args.rev}
        args.out.write_text(json.dumps({"runs": runs, "summary": summary, "ratio": ratio, "meta": meta}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
