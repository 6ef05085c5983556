"""The labelled OpenMoji catalog (image + annotation/tags): the OpenMoji 17.0.0 colour emoji
without skin-tone variants, rendered to 224 px PNGs; category = emoji group."""

from __future__ import annotations

import collections
import io
import json
import os
import random
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
from .openclipart import slugify
from .sources import OPENMOJI_VERSION, ensure_openmoji

OPENMOJI_INFO = {
    "name": f"OpenMoji {OPENMOJI_VERSION} (npm package openmoji)",
    "npm_package": f"openmoji@{OPENMOJI_VERSION}",
    "url": "https://openmoji.org",
    "license": "CC-BY-SA-4.0 (emoji graphics); attribution: OpenMoji, the open-source emoji and icon project",
    "used_for": "images (color/svg rendered to 224 px PNG) and text (data/openmoji.json annotation + tags)",
}


def _split_tags(s: str) -> list[str]:
    return [t.strip() for t in (s or "").split(",") if t.strip()]


def _render_openmoji_item(job: dict) -> dict:
    import cairosvg
    from PIL import Image

    def work(written: list[str]) -> dict:
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
        write_text(base + ".txt", job["text"])
        written.append(base + ".txt")
        write_json(base + ".json", job["sidecar"])
        written.append(base + ".json")
        return {"ok": True, "files": written}

    return guarded(30, work)


def build_openmoji(
    out: str,
    n: int = 2500,
    seed: int = 0,
    *,
    sources: str = DEFAULT_SOURCES,
    workers: int = 2,
    size: int = EVAL_IMAGE_SIZE,
) -> dict:
    """Build the OpenMoji image+text catalog (all non-skin-tone emoji, at most ``n``) into ``out``.

    When there are more than ``n`` emoji, a seeded round-robin over per-group shuffles picks
    them (balanced across groups); otherwise all are taken and ``seed`` has no effect.
    """
    t0 = time.time()
    out = check_out(out)
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

    stage = new_stage(out)
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
        stem = unique_stem(slugify(annotation), used[group], e["hexcode"].lower())
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
    with process_pool(workers) as ex:
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
        "created_utc": now_utc(),
        "generator": EVAL_GENERATOR,
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
    info = finish_stage(stage, out, info, t0)
    log_summary(info)
    return info
