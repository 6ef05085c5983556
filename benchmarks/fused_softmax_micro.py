"""One training step's softmax loss, forward + backward: ``F.cross_entropy(h @ T.T)`` against the fused one.

Times :func:`mmrec.recsys.fused_softmax.linear_cross_entropy` at several block sizes against the plain
``F.cross_entropy`` of the full logits, interleaved round by round (A B A B …), medians in ms per step, on
the hybrid's ML-100k shapes by default (2,048 positions, ``d`` 64, 1,682 items). ``--dtypes`` also times the
bare ``(P × d) @ (d × W)`` product in float32 and bfloat16 (is low precision worth trying on this CPU?).

    python benchmarks/fused_softmax_micro.py --threads 2
    python benchmarks/fused_softmax_micro.py --threads 2 --dtypes

Machine: state it with the figures (the script prints ``os.cpu_count()`` and the CPU capability torch sees).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mmrec.recsys.fused_softmax import linear_cross_entropy


def median_ms(fns: dict[str, Callable[[], object]], rounds: int, reps: int) -> dict[str, float]:
    """Median ms per call of each function, measured interleaved over ``rounds`` of ``reps`` calls."""
    for f in fns.values():  # warm-up: allocator, thread pool
        f()
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                f()
            times[k].append((time.perf_counter() - t0) / reps * 1e3)
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--positions", type=int, default=2048)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--items", type=int, default=1682)
    p.add_argument("--chunks", default="128,256,512,1024,2048", help="block sizes of the fused loss")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--dtypes", action="store_true", help="also time the bare product in float32 and bfloat16")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(args.positions, args.dim, generator=g)
    table = torch.randn(args.items, args.dim, generator=g) * 0.1
    targets = torch.randint(0, args.items, (args.positions,), generator=g)

    def plain() -> None:
        h, t = hidden.clone().requires_grad_(), table.clone().requires_grad_()
        F.cross_entropy(h @ t.T, targets).backward()

    def fused(chunk: int) -> Callable[[], None]:
        def step() -> None:
            h, t = hidden.clone().requires_grad_(), table.clone().requires_grad_()
            linear_cross_entropy(h, t, targets, chunk=chunk).backward()

        return step

    fns: dict[str, Callable[[], object]] = {"plain": plain}
    fns.update({f"fused_{c}": fused(int(c)) for c in args.chunks.split(",")})
    if args.dtypes:
        for dt in (torch.float32, torch.bfloat16):
            h, t = hidden.to(dt), table.to(dt)
            fns[f"matmul_{str(dt).split('.')[-1]}"] = lambda h=h, t=t: h @ t.T
    result = {
        "ms_per_step": median_ms(fns, args.rounds, args.reps),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "shape": [args.positions, args.dim, args.items],
        "load": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
