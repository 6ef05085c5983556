"""The labelled openclipart catalog (image + caption): ~2,000 public-domain SVGs rendered to
224 px PNGs, captioned from their own metadata, balanced across the openclipart folders."""

from __future__ import annotations

import collections
import os
import re
import time

from .common import (
    DEFAULT_SOURCES,
    EVAL_GENERATOR,
    EVAL_IMAGE_SIZE,
    check_out,
    finish_stage,
    guarded,
    log,
    log_summary,
    new_stage,
    now_utc,
    process_pool,
    unique_stem,
    write_json,
    write_text,
)
from .openclipart import Candidate, order_candidates, render_image, scan_openclipart, slugify
from .sources import ensure_deb

OPENCLIPART_INFO = {
    "name": "Open Clip Art Library (Debian package openclipart-svg)",
    "debian_package": "openclipart-svg",
    "url": "https://openclipart.org",
    "license": "Public Domain (Creative Commons Public Domain Dedication)",
    "used_for": "images (SVG rendered to 224 px PNG) and captions (SVG dc:title, dc:subject keywords, dc:description)",
}

MAX_DESC_CHARS = 160  # descriptions longer than this are not put into the caption
MAX_CAPTION_KEYWORDS = 10


def _short_description(c: Candidate) -> str:
    d = (c.description or "").strip()
    if not d or len(d) > MAX_DESC_CHARS:
        return ""
    dl, tl = d.lower().strip(". "), c.title.lower().strip(". ")
    if dl == tl or dl in tl:
        return ""
    if re.search(r"\b(inkscape|created with|drawn with|made with|openclipart|clip ?art library)\b", dl):
        return ""
    return d.rstrip(" .")


def openclipart_caption(c: Candidate) -> tuple[str, list[str]]:
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

    def work(written: list[str]) -> dict:
        img, background = render_image(job["svg_path"], job["size"])
        os.makedirs(job["folder"], exist_ok=True)
        base = os.path.join(job["folder"], job["stem"])
        img.save(base + ".png", "PNG", compress_level=6)
        written.append(base + ".png")
        write_text(base + ".txt", job["text"])
        written.append(base + ".txt")
        side = dict(job["sidecar"])
        side["image"] = dict(side["image"], width=img.width, height=img.height, background=background)
        write_json(base + ".json", side)
        written.append(base + ".json")
        return {"ok": True, "files": written}

    return guarded(45, work)


def build_openclipart(
    out: str,
    n: int = 2000,
    seed: int = 0,
    *,
    cap_per_category: int | None = None,
    sources: str = DEFAULT_SOURCES,
    workers: int = 2,
    size: int = EVAL_IMAGE_SIZE,
) -> dict:
    """Build the openclipart image+text catalog with ``n`` items into ``out``.

    Candidates are the titled SVGs (``catalogs.openclipart.scan_openclipart``), shuffled per
    category with ``seed`` and taken round-robin across categories, so every category
    gets an equal share until it runs out (water-filling); ``cap_per_category`` bounds it
    further.  Items whose caption repeats an earlier one exactly are skipped, as are SVGs
    that fail to render (blank, degenerate, > 45 s); the next candidate takes their place.
    """
    t0 = time.time()
    out = check_out(out)
    oc_root, oc_ver = ensure_deb("openclipart-svg", sources, "usr/share/openclipart/svg")
    if not oc_root:
        raise RuntimeError("openclipart-svg is not available (apt-get download failed)")
    svg_root = os.path.join(oc_root, "usr/share/openclipart/svg")
    log(f"[openclipart] scanning SVG metadata in {svg_root}")
    cands, scan_skips = scan_openclipart(svg_root)
    n_svgs = len(cands) + sum(v for k, v in scan_skips.items() if k != "duplicate (symlink)")
    log(
        f"  {n_svgs} unique SVGs, {len(cands)} titled candidates; skipped {dict(scan_skips)} ({time.time() - t0:.1f} s)"
    )
    ordered = order_candidates(cands, seed)

    # plan: caption, stem; drop exact caption duplicates and anything over the cap
    rank: collections.Counter = collections.Counter()
    seen_captions: set[str] = set()
    used_stems: dict[str, set[str]] = collections.defaultdict(set)
    plan_skips: collections.Counter = collections.Counter()
    jobs: list[dict] = []
    stage = new_stage(out)
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
        stem = slugify(c.title) or slugify(os.path.splitext(os.path.basename(c.relpath))[0])
        stem = unique_stem(stem, used_stems[c.category])
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
    with process_pool(workers) as ex:
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
        "created_utc": now_utc(),
        "generator": EVAL_GENERATOR,
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
    info = finish_stage(stage, out, info, t0)
    log_summary(info)
    return info
