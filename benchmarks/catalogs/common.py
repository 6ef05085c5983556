"""What every catalog builder shares: logging, the repository guard, staging and finishing an
output folder, file helpers, and the worker processes with a per-item time limit."""

from __future__ import annotations

import collections.abc
import concurrent.futures as cf
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

#: The repository root: catalogs are written outside it (they hold media that is not committed).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SOURCES = "/work/bench_data/_sources"


def log(msg: str) -> None:
    print(msg, flush=True)


def run_captured(cmd: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def quiet_stderr():
    """Silence C-library chatter on fd 2 (libmpg123 warns about the ovos MP3s' ID3 tags)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def remove_files(paths: list[str]) -> None:
    """Delete what a failed item build wrote (missing files are fine)."""
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def dir_size(root: str) -> tuple[int, int]:
    n = b = 0
    for dp, _dn, fns in os.walk(root):
        for fn in fns:
            n += 1
            b += os.path.getsize(os.path.join(dp, fn))
    return n, b


def human(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} GiB"


# --------------------------------------------------------------------------------------
# Worker processes: one item per call, bounded by SIGALRM; a failed item leaves no files.
# --------------------------------------------------------------------------------------


class ItemTimeout(Exception):
    pass


def on_alarm(_sig, _frm):
    raise ItemTimeout()


def worker_init() -> None:
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def guarded(seconds: int, work: collections.abc.Callable[[list[str]], dict], reason_chars: int = 100) -> dict:
    """Run ``work(written)`` for one item under a ``seconds`` alarm (in a :func:`process_pool` worker).

    ``work`` appends every path it writes to ``written`` and returns its result dict.  On a
    timeout or any exception the written files are deleted and ``{"ok": False, "reason": ...}``
    comes back instead, so that one bad source file cannot stop a build or leave half an item.
    """
    written: list[str] = []
    signal.alarm(seconds)
    try:
        return work(written)
    except ItemTimeout:
        reason = "timeout"
    except Exception as e:  # noqa: BLE001 - a bad source file must not stop the build
        reason = f"{type(e).__name__}: {str(e)[:reason_chars]}"
    finally:
        signal.alarm(0)
    remove_files(written)
    return {"ok": False, "reason": reason}


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"), initializer=worker_init)


# --------------------------------------------------------------------------------------
# Output folders: built in ``<out>.partial``, moved into place when complete
# --------------------------------------------------------------------------------------


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_out(out: str) -> str:
    out = os.path.abspath(out)
    if os.path.commonpath([out, REPO]) == REPO:
        raise ValueError(f"output {out} must be outside the repository ({REPO})")
    return out


def new_stage(out: str) -> str:
    stage = out + ".partial"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    return stage


def finish_stage(stage: str, out: str, info: dict, t0: float) -> dict:
    """Write catalog_info.json (with file counts and size) and move the stage into place."""
    for d in os.listdir(stage):  # drop category folders left empty by failed items
        p = os.path.join(stage, d)
        if os.path.isdir(p) and not os.listdir(p):
            os.rmdir(p)
    info["build_seconds"] = round(time.time() - t0, 1)
    path = os.path.join(stage, "catalog_info.json")
    write_json(path, info)
    info["n_files"], info["total_bytes"] = dir_size(stage)
    write_json(path, info)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(stage, out)
    return info


def write_json(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.rstrip() + "\n")


def unique_stem(stem: str, used: set[str], suffix: str = "") -> str:
    stem = stem or "item"
    if stem not in used:
        used.add(stem)
        return stem
    if suffix and f"{stem}-{suffix}" not in used:
        used.add(f"{stem}-{suffix}")
        return f"{stem}-{suffix}"
    k = 2
    while f"{stem}-{k}" in used:
        k += 1
    used.add(f"{stem}-{k}")
    return f"{stem}-{k}"


def log_summary(info: dict) -> None:
    per = info.get("per_category", {})
    log(
        f"  => {info['name']}: {info['n_items']} items, {len(per)} categories, "
        f"{info.get('n_files', 0)} files, {human(info.get('total_bytes', 0))}, {info['build_seconds']:.1f} s"
    )
    log("     " + ", ".join(f"{k} {v}" for k, v in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))))


# The labelled catalogs of build_eval_catalogs.py
EVAL_GENERATOR = "benchmarks/build_eval_catalogs.py (mmrec)"
EVAL_IMAGE_SIZE = 224
