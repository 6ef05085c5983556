"""Sources of the pretraining corpus built at run time (``pretrain_space.py``): Noto emoji, the sounds split by licence, subsets."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np

NOTO_PKG = "emoji-datasource-google@16.0.0"
EMOJIBASE_PKG = "emojibase-data@17.0.0"
NOTO_SOURCE = {
    "package": f"npm {NOTO_PKG} (images) + npm {EMOJIBASE_PKG} (English annotations, tags)",
    "license": "Apache-2.0 (Noto emoji images); MIT (emoji-datasource and emojibase data)",
    "modalities": ["image", "text"],
}


def build_noto(out: Path, sources: Path) -> int:
    """Noto emoji PNGs + English annotation and tags, as an mmrec catalog ``<category>/<stem>.{png,txt,json}``."""
    if (out / "catalog_info.json").is_file():
        return json.loads((out / "catalog_info.json").read_text())["n_items"]
    npm = sources / "npm"
    npm.mkdir(parents=True, exist_ok=True)
    pkgs = {}
    for spec in (NOTO_PKG, EMOJIBASE_PKG):
        name, version = spec.rsplit("@", 1)
        tgz = npm / f"{name}-{version}.tgz"
        if not tgz.is_file():
            import subprocess

            subprocess.run(["npm", "pack", spec], cwd=npm, check=True, capture_output=True)
        dest = npm / f"{name}-{version}"
        if not dest.is_dir():
            with tarfile.open(tgz) as t:
                t.extractall(dest, filter="data")
        pkgs[name] = dest / "package"
    noto, base = pkgs["emoji-datasource-google"], pkgs["emojibase-data"]
    annotations = {e["hexcode"]: e for e in json.loads((base / "en" / "data.json").read_text())}
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    n = 0
    used: set[str] = set()
    for e in json.loads((noto / "emoji.json").read_text()):
        png = noto / "img" / "google" / "64" / e["image"]
        if not e.get("has_img_google") or not png.is_file() or e["category"] == "Component":
            continue
        ann = annotations.get(e["unified"]) or annotations.get(e.get("non_qualified") or "")
        title = (ann or {}).get("label") or e["name"].lower()
        tags = list((ann or {}).get("tags") or e.get("short_names") or [])
        category = e["category"].lower().replace(" & ", "-").replace(" ", "-")
        stem = "".join(c if c.isalnum() else "_" for c in title)[:60].strip("_") or e["unified"]
        while stem in used:
            stem += "_"
        used.add(stem)
        folder = stage / category
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, folder / f"{stem}.png")
        (folder / f"{stem}.txt").write_text(f"{title}\n{', '.join(tags)}.\n", encoding="utf-8")
        sidecar = {
            "title": title,
            "tags": tags,
            "category": category,
            "subgroup": e.get("subcategory"),
            "hexcode": e["unified"],
            "source": "noto",
            "license": "Apache-2.0 (Noto emoji image); MIT (emoji-datasource, emojibase annotation)",
        }
        (folder / f"{stem}.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
        n += 1
    (stage / "catalog_info.json").write_text(json.dumps({"name": "noto", "n_items": n, **NOTO_SOURCE}))
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return n


def split_sounds(sounds: Path, data: Path) -> tuple[Path, Path]:
    """The labelled sounds catalog split by licence: CC0 (trainable) and the rest (held out)."""
    cc0, rest = data / "animals_cc0", data / "sounds_heldout"
    if not (cc0 / ".done").is_file():
        for d in (cc0, rest):
            shutil.rmtree(d, ignore_errors=True)
        for side in sorted(sounds.glob("*/*.json")):
            meta = json.loads(side.read_text())
            dest = cc0 if str(meta.get("license", "")).startswith("CC0") else rest
            folder = dest / side.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            for f in side.parent.glob(side.stem + ".*"):
                shutil.copyfile(f, folder / f.name)
        (cc0 / ".done").write_text("")
    return cc0, rest


def subset_catalog(src: Path, n: int | None, seed: int) -> Path:
    """A seeded, category-balanced subset of ``n`` items of ``src`` (round-robin over shuffled categories).

    The shared CPU of the machine this was made on encodes about one item per second, so the
    full sources (11,000 items) did not fit; the subset keeps every category. Item ids
    (``category/stem``) are those of the full catalog.
    """
    if n is None:
        return src
    dst = src.with_name(f"{src.name}-sub{n}-seed{seed}")
    if (dst / ".done").is_file():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    rng = np.random.default_rng(seed)
    by_cat = {}
    for side in sorted(src.glob("*/*.json")):
        by_cat.setdefault(side.parent.name, []).append(side)
    for items in by_cat.values():
        rng.shuffle(items)
    chosen, k = [], 0
    while len(chosen) < n and any(k < len(v) for v in by_cat.values()):
        chosen += [v[k] for v in by_cat.values() if k < len(v)][: n - len(chosen)]
        k += 1
    for side in chosen:
        folder = dst / side.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for f in side.parent.glob(side.stem + ".*"):
            if f.stem == side.stem:
                shutil.copyfile(f, folder / f.name)
    (dst / ".done").write_text("")
    return dst
