"""Fitting torch models side by side in spawned child processes, each on its share of the cores.

Why: a training step of the hybrid is made of small operations that 2 threads run only ~1.6x faster
than 1 (ML-100k, one epoch: 5.4 s wall on 2 threads, 8.9 CPU-s on 1;
``benchmarks/movielens_hybrid_speed.py``), so two fits side by side on one core each finish sooner
than one after the other on both. Used by the evaluation harness (the hybrid's members and SASRec at
once, :mod:`mmrec.recsys.evaluation`) and by the hybrid ensemble's own fit
(:class:`~mmrec.recsys.hybrid_ensemble.HybridEnsemble`). The figures do not depend on it: every fit
seeds itself (``tests/test_evaluation.py``, ``tests/test_hybrid_ensemble.py``).

Children are *spawned*, not forked: torch's thread pools do not survive a fork. Each child starts
with ``cores // fits`` torch threads (at least 1) and, after each of its epochs (through the fit's
``log`` hook), takes the cores of the fits that have ended.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from mmrec.recsys.data import InteractionData

#: In a child process: the shared count of the fits not yet ended (running or waiting for a slot).
_REMAINING: Any = None


def _child_init(remaining: Any) -> None:
    global _REMAINING
    _REMAINING = remaining


def _fit_in_child(model: Any, train: InteractionData, valid: InteractionData | None, cores: int) -> tuple[Any, float]:
    """In a child process: fit ``model`` on its share of ``cores``; ``(fitted model, fit seconds)``."""
    import torch

    current = [0]

    def rebalance(_line: str | None = None) -> None:
        remaining = max(1, int(_REMAINING.value)) if _REMAINING is not None else 1
        threads = max(1, cores // remaining)
        if threads != current[0]:
            torch.set_num_threads(threads)
            current[0] = threads

    rebalance()
    t0 = time.perf_counter()
    try:
        if "log" in inspect.signature(model.fit).parameters:
            model.fit(train, valid, log=rebalance)
        else:
            model.fit(train, valid)
    finally:
        if _REMAINING is not None:
            with _REMAINING.get_lock():
                _REMAINING.value -= 1
    return model, time.perf_counter() - t0


def can_fit_apart() -> bool:
    """Whether fits in child processes pay: two or more cores and no GPU (on a GPU the fits share one
    device and CUDA tensors would have to cross a process boundary)."""
    if (os.cpu_count() or 1) < 2:
        return False
    import torch

    return not torch.cuda.is_available()


def start_fits(
    models: Sequence[Any], train: InteractionData, valid: InteractionData | None, cores: int | None = None
) -> tuple[Any, list[Future]]:
    """Start fitting unfitted ``models`` (picklable, with ``fit(train, valid[, log])``) in child processes.

    At most ``cores`` run at once; a fit waiting for a slot starts when one ends.

    Returns
    -------
    executor, futures
        The pool (shut it down when done) and one future per model, in order, of
        ``(fitted model, fit seconds)``.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cores = cores or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    remaining = ctx.Value("i", len(models))
    executor = ProcessPoolExecutor(
        max_workers=max(1, min(len(models), cores)), mp_context=ctx, initializer=_child_init, initargs=(remaining,)
    )
    try:
        futures = [executor.submit(_fit_in_child, m, train, valid, cores) for m in models]
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    return executor, futures
