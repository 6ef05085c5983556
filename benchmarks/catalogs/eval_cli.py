"""The command line of ``benchmarks/build_eval_catalogs.py``: build the chosen labelled
catalogs under ``--root``, validate each, print a summary."""

from __future__ import annotations

import argparse
import glob
import os
import time

from .common import DEFAULT_SOURCES, check_out, human, log
from .eval_openclipart import build_openclipart
from .eval_openmoji import build_openmoji
from .eval_sounds import build_sounds
from .verify import validate_catalog

DEFAULT_ROOT = "/work/bench_data/eval"

CATALOGS = ("openclipart", "openmoji", "sounds")


def _validate_and_report(root: str) -> int:
    t0 = time.time()
    problems = validate_catalog(root)
    n_items = sum(1 for _ in glob.glob(os.path.join(root, "*", "*.json")))
    log(f"  validate {root}: {n_items} items, {len(problems)} problem(s), {time.time() - t0:.1f} s")
    for p in problems[:30]:
        log("    ! " + p)
    return 1 if problems else 0


def main(argv: list[str] | None, description: str) -> int:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=DEFAULT_ROOT, help=f"parent folder of the catalogs (default {DEFAULT_ROOT})")
    ap.add_argument("--only", choices=CATALOGS, action="append", help="build only this catalog (repeatable)")
    ap.add_argument("--sources", default=DEFAULT_SOURCES, help=f"source cache (default {DEFAULT_SOURCES})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="render processes (default 2)")
    ap.add_argument("--openclipart-n", type=int, default=2000)
    ap.add_argument("--openclipart-cap", type=int, default=None, help="max items per openclipart category")
    ap.add_argument("--openmoji-n", type=int, default=2500)
    ap.add_argument("--no-waveforms", action="store_true", help="leave LMMS single-cycle waveforms out of sounds/")
    ap.add_argument("--no-validate", action="store_true", help="skip decoding every file after the build")
    ap.add_argument("--verify-only", metavar="DIR", help="only validate an existing catalog folder")
    args = ap.parse_args(argv)
    if args.verify_only:
        return _validate_and_report(os.path.abspath(args.verify_only))
    try:
        root = check_out(args.root)
    except ValueError as e:
        ap.error(str(e))
    os.makedirs(root, exist_ok=True)
    os.makedirs(args.sources, exist_ok=True)
    which = args.only or list(CATALOGS)
    t0 = time.time()
    rc = 0
    infos = {}
    for name in CATALOGS:
        if name not in which:
            continue
        out = os.path.join(root, name)
        if name == "openclipart":
            infos[name] = build_openclipart(
                out,
                args.openclipart_n,
                args.seed,
                cap_per_category=args.openclipart_cap,
                sources=args.sources,
                workers=args.workers,
            )
        elif name == "openmoji":
            infos[name] = build_openmoji(out, args.openmoji_n, args.seed, sources=args.sources, workers=args.workers)
        else:
            infos[name] = build_sounds(out, sources=args.sources, include_waveforms=not args.no_waveforms)
        if not args.no_validate:
            rc |= _validate_and_report(out)
    log(f"summary ({time.time() - t0:.1f} s total) -> {root}")
    for name, info in infos.items():
        log(
            f"  {name:12s} {info['n_items']:5d} items  {info['n_categories']:3d} categories  "
            f"{human(info['total_bytes']):>10s}  {info['build_seconds']:6.1f} s"
        )
    return rc
