"""The command line of ``benchmarks/build_catalog.py``: sources, scan, plan, build in worker
processes, ``catalog_info.json`` and the summary."""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time

from .common import DEFAULT_SOURCES, REPO, finish_stage, human, log, new_stage, now_utc, process_pool
from .media_item import build_item
from .openclipart import Candidate, order_candidates, scan_openclipart, slugify
from .planning import build_sample_pool, plan
from .sources import SOURCE_INFO, ensure_deb, ensure_ovos, espeak_version
from .verify import verify_catalog

DEFAULT_OUT = "/work/bench_data/catalog_1k"


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--n-items", type=int, default=1000, help="number of items (default 1000)")
    ap.add_argument(
        "--sources", default=DEFAULT_SOURCES, help=f"cache for downloaded/extracted sources (default {DEFAULT_SOURCES})"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--image-size", type=int, default=256, help="square image side in px (default 256)")
    ap.add_argument(
        "--long-fraction", type=float, default=0.10, help="fraction of items with 20-40 s audio (default 0.10)"
    )
    ap.add_argument(
        "--jpg-fraction",
        type=float,
        default=0.10,
        help="fraction of images written as JPEG instead of PNG (default 0.10)",
    )
    ap.add_argument("--no-real-sounds", action="store_true", help="speech only, no recorded samples")
    ap.add_argument("--force", action="store_true", help="replace --out if it exists")
    ap.add_argument("--verify", action="store_true", help="after building, decode every file and check the layout")
    ap.add_argument("--verify-only", metavar="DIR", help="only check an existing catalog folder, build nothing")
    return ap


def _sources(args: argparse.Namespace) -> tuple[str, dict, dict[str, str | None]] | None:
    """(openclipart SVG root, versions, sample roots per sound source); None when a must is missing."""
    ev = espeak_version()
    if not ev:
        log("error: espeak-ng not found; install it with: apt-get install -y espeak-ng")
        return None
    log(f"[1/4] sources -> {args.sources}")
    os.makedirs(args.sources, exist_ok=True)
    oc_root, oc_ver = ensure_deb("openclipart-svg", args.sources, "usr/share/openclipart/svg")
    if not oc_root:
        log("error: openclipart-svg is not available (apt-get download failed)")
        return None
    svg_root = os.path.join(oc_root, "usr/share/openclipart/svg")
    versions = {"openclipart": oc_ver, "espeak": ev}
    roots: dict[str, str | None] = {}
    if not args.no_real_sounds:
        lm_root, lm_ver = ensure_deb("lmms-common", args.sources, "usr/share/lmms/samples")
        fd_root, fd_ver = ensure_deb("sound-theme-freedesktop", args.sources, "usr/share/sounds/freedesktop/stereo")
        roots["lmms"] = os.path.join(lm_root, "usr/share/lmms/samples") if lm_root else None
        roots["freedesktop"] = os.path.join(fd_root, "usr/share/sounds/freedesktop/stereo") if fd_root else None
        roots["ovos"] = ensure_ovos(args.sources)
        versions.update(lmms=lm_ver, freedesktop=fd_ver, ovos="0.0.3" if roots["ovos"] else None)
    for k, v in versions.items():
        log(f"  {k:12s} {v if v else 'NOT AVAILABLE'}")
    return svg_root, versions, roots


def _planned(args: argparse.Namespace, svg_root: str, roots: dict) -> tuple[list[Candidate], dict]:
    """Every candidate in build order, with its stem and plan; and the scan counts."""
    log("[2/4] scanning openclipart SVG metadata")
    cands, scan_skips = scan_openclipart(svg_root)
    n_svgs = len(cands) + sum(v for k, v in scan_skips.items() if k != "duplicate (symlink)")
    log(f"  {n_svgs} unique SVGs, {len(cands)} usable candidates; skipped: {dict(scan_skips)}")
    if len(cands) < args.n_items:
        log(f"  ! only {len(cands)} candidates for {args.n_items} items; the catalog will be smaller")
    ordered = order_candidates(cands, args.seed)
    # unique stems per category folder (decided over the whole ordered list => stable)
    used: dict[str, set[str]] = collections.defaultdict(set)
    for c in ordered:
        s0 = slugify(c.title) or slugify(os.path.splitext(os.path.basename(c.relpath))[0]) or "item"
        s, k = s0, 1
        while s in used[c.category]:
            k += 1
            s = f"{s0}-{k}"
        used[c.category].add(s)
        c.stem = s
    pool = build_sample_pool(roots) if roots else {}
    for c in ordered:
        plan(c, args.seed, pool, roots, args.long_fraction, args.jpg_fraction)
    return ordered, {"svgs_scanned": n_svgs, "usable": len(cands), "scan_skipped": dict(scan_skips)}


def _build(args: argparse.Namespace, ordered: list[Candidate], stage: str, versions: dict, t_start: float):
    """Build items in order until ``args.n_items`` succeeded; returns (accepted, tried, failures, examples)."""
    accepted: list[dict] = []
    fail_reasons: collections.Counter = collections.Counter()
    failed_examples: list[str] = []
    pos = 0
    last_print = 0
    with process_pool(args.workers) as ex:
        while len(accepted) < args.n_items and pos < len(ordered):
            need = args.n_items - len(accepted)
            batch = ordered[pos : pos + need + max(4, need // 50)]
            pos += len(batch)
            results = ex.map(
                build_item,
                batch,
                [stage] * len(batch),
                [args.image_size] * len(batch),
                [versions] * len(batch),
                chunksize=2,
            )
            for c, r in zip(batch, results, strict=True):
                if not r["ok"]:
                    fail_reasons[r["reason"].split(":")[0]] += 1
                    if len(failed_examples) < 20:
                        failed_examples.append(f"{c.relpath}: {r['reason']}")
                    continue
                if len(accepted) >= args.n_items:  # overshoot of the last batch: drop
                    for p in r["files"]:
                        os.unlink(p)
                    continue
                accepted.append(r)
                n = len(accepted)
                if n - last_print >= max(50, args.n_items // 20) or n == args.n_items:
                    last_print = n
                    el = time.time() - t_start
                    log(
                        f"  [{n:5d}/{args.n_items}] {100 * n / args.n_items:5.1f}%  "
                        f"{el:6.1f} s  skipped {sum(fail_reasons.values())}"
                    )
    return accepted, pos, fail_reasons, failed_examples


def main(argv: list[str] | None, description: str) -> int:
    ap = parser(description)
    args = ap.parse_args(argv)
    if args.verify_only:
        return verify_catalog(os.path.abspath(args.verify_only))

    t_start = time.time()
    out = os.path.abspath(args.out)
    if os.path.commonpath([out, REPO]) == REPO:
        ap.error(f"--out must be outside the repository ({REPO})")
    if os.path.exists(out) and os.listdir(out) and not args.force:
        ap.error(f"{out} exists and is not empty (use --force to replace it)")
    if args.n_items < 1:
        ap.error("--n-items must be >= 1")
    found = _sources(args)
    if found is None:
        return 2
    svg_root, versions, roots = found
    ordered, candidates = _planned(args, svg_root, roots)

    log(f"[3/4] building {args.n_items} items with {args.workers} worker(s) -> {out}")
    stage = new_stage(out)
    accepted, pos, fail_reasons, failed_examples = _build(args, ordered, stage, versions, t_start)

    log("[4/4] summary")
    per_cat = collections.Counter(r["category"] for r in accepted)
    kinds = collections.Counter(r["audio_kind"] for r in accepted)
    aexts = collections.Counter(r["audio_ext"] for r in accepted)
    iexts = collections.Counter(r["image_format"] for r in accepted)
    ssrc = collections.Counter(r["sample_source"] for r in accepted if r["sample_source"])
    durs = [r["duration_s"] for r in accepted]
    n_long = sum(1 for r in accepted if r["long"])
    info = {
        "name": os.path.basename(out),
        "created_utc": now_utc(),
        "generator": "benchmarks/build_catalog.py (mmrec)",
        "args": {k: v for k, v in vars(args).items() if k not in ("force",)},
        "n_items": len(accepted),
        "n_items_requested": args.n_items,
        "layout": "<category>/<stem>.{png|jpg, txt, wav|ogg|flac|mp3, json}",
        "per_category": dict(sorted(per_cat.items())),
        "audio": {
            "kinds": dict(kinds),
            "formats": dict(aexts),
            "real_sample_sources": dict(ssrc),
            "long_clips_20_40s": n_long,
            "duration_s": {
                "min": min(durs),
                "median": statistics.median(durs),
                "max": max(durs),
                "total": round(sum(durs), 1),
            }
            if durs
            else {},
        },
        "image": {
            "formats": dict(iexts),
            "size_px": [args.image_size, args.image_size],
            "background": "white (dark grey for all-white drawings); SVG rendered with cairosvg, cropped, centred",
        },
        "text": "title + description + keywords + category from the SVG metadata, UTF-8",
        "candidates": dict(
            candidates, tried=pos, build_skipped=dict(fail_reasons), build_skip_examples=failed_examples
        ),
        "sources": {k: dict(SOURCE_INFO[k], version=versions.get(k)) for k in SOURCE_INFO if versions.get(k)},
    }
    info = finish_stage(stage, out, info, t_start)
    nfiles, nbytes, elapsed = info["n_files"], info["total_bytes"], info["build_seconds"]

    log(
        f"  items      {len(accepted)} (requested {args.n_items}); tried {pos} candidates, "
        f"skipped {dict(fail_reasons) or 0}"
    )
    log("  categories " + ", ".join(f"{k} {v}" for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])))
    log(f"  audio      {dict(kinds)}; formats {dict(aexts)}; real samples {dict(ssrc)}")
    if durs:
        log(
            f"             durations {min(durs):.2f}-{max(durs):.2f} s (median "
            f"{statistics.median(durs):.2f} s), {n_long} long clips (20-40 s)"
        )
    log(f"  images     {dict(iexts)} {args.image_size}x{args.image_size}")
    log(f"  size       {nfiles} files, {human(nbytes)}")
    log(f"  time       {elapsed:.1f} s")
    log(f"  output     {out}")
    rc = 0 if len(accepted) >= args.n_items else 1
    if args.verify:
        rc = max(rc, verify_catalog(out))
    return rc
