"""``mmrec evaluate`` end to end on MovieLens-100k: this tree against a previous one, interleaved.

Runs ``python -m mmrec.cli evaluate --db DB --json`` once per version per round, alternating
A B A B, each in its own process with the version's source first on ``PYTHONPATH`` (so the
previous version is a checkout of it, e.g. ``git worktree add /tmp/prev11 HEAD``). Reports per
run the wall time, the CPU time of the process and its children (user + sys), the load average
before and after, and every model's ``fit_seconds`` from the JSON; then medians per version.

    git worktree add /tmp/prev11 HEAD
    python benchmarks/movielens_evaluate_speed.py --previous /tmp/prev11 --rounds 1
    git worktree remove /tmp/prev11

Machine: state it with the figures (the script prints ``os.cpu_count()`` and the load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from child_timing import run_mmrec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = Path("/work/bench_data/movielens/db")


def run_once(tree: Path, db: Path, extra: list[str]) -> dict:
    """One ``mmrec evaluate`` of the source in ``tree``: wall, CPU (children) and per-model fit seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    load0 = os.getloadavg()[0]
    stdout, wall, cpu = run_mmrec(["evaluate", "--db", str(db), "--json", *extra], cwd=tree, env=env, what=str(tree))
    res = json.loads(stdout)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "load_before": round(load0, 1),
        "load_after": round(os.getloadavg()[0], 1),
        "source": subprocess.run(
            [sys.executable, "-c", "import mmrec; print(mmrec.__file__)"],
            env=env,
            cwd=tree,
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "fit_seconds": {m: e.get("fit_seconds") for m, e in res["models"].items()},
        "test_ndcg@10": {m: e.get("test", {}).get("ndcg@10") for m, e in res["models"].items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--previous", type=Path, help="a checkout of the previous version (omit: current only)")
    p.add_argument("--db", type=Path, default=DEFAULT_DB)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--current-first", action="store_true", help="start each round with the current version")
    p.add_argument("--out", type=Path)
    p.add_argument("extra", nargs="*", help="more arguments for mmrec evaluate (after --)")
    args = p.parse_args(argv)
    versions = [("current", ROOT)] + ([("previous", args.previous)] if args.previous else [])
    if not args.current_first:
        versions.reverse()
    runs: dict[str, list[dict]] = {name: [] for name, _ in versions}
    for r in range(args.rounds):
        for name, tree in versions:
            runs[name].append(run_once(tree, args.db, args.extra))
            print(json.dumps({"round": r, "version": name, **runs[name][-1]}), flush=True)
    summary = {n: {k: float(np.median([x[k] for x in v])) for k in ("wall_s", "cpu_s")} for n, v in runs.items() if v}
    print(json.dumps({"median": summary, "cpu_count": os.cpu_count()}))
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "summary": summary, "cpu_count": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
