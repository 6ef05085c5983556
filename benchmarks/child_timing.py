"""One ``mmrec`` CLI process, timed: what the process benchmarks (start-up, ingest, evaluate) share."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def run_mmrec(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, what: str = ""
) -> tuple[str, float, float]:
    """Run ``python -m mmrec.cli *args`` in ``cwd`` (``-m`` puts it first on ``sys.path``, before ``PYTHONPATH``).

    Returns ``(stdout, wall seconds from spawn to exit, CPU seconds of the child: user + sys)``; exits the
    benchmark with the child's last stderr lines when it fails (``what`` names the run in that message).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mmrec.cli", *args], capture_output=True, text=True, cwd=cwd, env=env or dict(os.environ)
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{what or cwd}: mmrec {' '.join(args)} failed:\n{proc.stderr.strip()[-2000:]}")
    return proc.stdout, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
